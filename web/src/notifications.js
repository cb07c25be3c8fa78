// The Notifications region: what the bot did while the person was away (fills, exits, orders
// that ended, risk trips), newest first and live, with the unread count; `Mark all read` sets
// each unread one's read_at, the one field the rules let the person write there.
import { collection, limit, onSnapshot, orderBy, query, serverTimestamp, writeBatch } from "firebase/firestore";
import { $, busy, listeners, showError, when } from "./ui.js";

const SHOWN = 30;

export function startNotifications({ db }, uid) {
  let unread = [];
  const stop = onSnapshot(
    query(collection(db, "users", uid, "notifications"), orderBy("at", "desc"), limit(SHOWN)),
    (snap) => {
      unread = snap.docs.filter((d) => !d.data().read_at);
      render(snap.docs, unread.length);
    },
    showError,
  );
  const { on, off } = listeners();
  const markAll = $("#mark-all-read");
  on(markAll, "click", () =>
    busy(markAll, async () => {
      if (!unread.length) return;
      const batch = writeBatch(db);
      unread.forEach((d) => batch.update(d.ref, { read_at: serverTimestamp() }));
      await batch.commit();
    }),
  );
  return () => {
    stop();
    off();
  };
}

function render(docs, unreadCount) {
  $("#unread-count").textContent =
    unreadCount === 0 ? "Nothing unread." : `${unreadCount} unread${docs.length === SHOWN ? " among the latest" : ""}.`;
  $("#mark-all-read").hidden = unreadCount === 0;
  $("#no-notifications").hidden = docs.length > 0;
  $("#notifications-list").replaceChildren(
    ...docs.map((snap) => {
      const n = snap.data();
      const item = document.createElement("li");
      item.dataset.notificationId = snap.id;
      item.classList.toggle("unread", !n.read_at);
      const time = document.createElement("time");
      time.textContent = when(n.at);
      const text = document.createElement("span");
      text.textContent = n.message;
      if (!n.read_at) {
        const mark = document.createElement("span");
        mark.className = "sr";
        mark.textContent = "Unread: ";
        item.append(mark);
      }
      item.append(time, " ", text);
      return item;
    }),
  );
}
