// The Notifications region: what the bot did while the person was away (fills, exits, orders
// that ended, risk trips, failing syncs, each day's summary), newest first and live, with the
// unread count and where each was sent; `Mark all read` sets each unread one's read_at, the one
// field the rules let the person write there. The overview shows the five latest; Settings the
// Notification settings form.
import { collection, doc, limit, orderBy, query, serverTimestamp, writeBatch } from "firebase/firestore";
import { sendEmailVerification } from "firebase/auth";
import { $, busy, listeners, setField, when } from "./ui.js";

const SHOWN = 30;
const LATEST = 5;

export function startNotifications({ db, call, live }, user) {
  const uid = user.uid;
  let unread = [];
  const form = $("#notify-form");
  offerEmail(user, true);
  confirmedSince(user); // confirmed since this browser last asked, or since its token was made
  live.watch("settings", doc(db, "users", uid, "settings", "notifications"), (snap) =>
    fillSettings(form, snap.data()),
  );
  const feed = collection(db, "users", uid, "notifications");
  live.watch("notifications", query(feed, orderBy("at", "desc"), limit(SHOWN)), (snap) => {
    unread = snap.docs.filter((d) => !d.data().read_at);
    render(snap.docs, unread.length);
  });
  live.watch("overview", query(feed, orderBy("at", "desc"), limit(LATEST)), (snap) => renderLatest(snap.docs));
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
  on(form, "submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    busy(form.querySelector("[type=submit]"), async () => {
      const answer = await call("save_notification_settings", {
        events: data.getAll("events").map(String),
        webhook_url: String(data.get("webhook_url")).trim() || null,
        email: data.get("email") === "on",
      });
      $("#notify-status").textContent = "Saved.";
      showSecret(answer.signing_secret);
    });
  });
  const confirm = $("#send-confirmation");
  on(confirm, "click", () =>
    busy(confirm, async () => {
      await sendEmailVerification(user);
      $("#notify-status").textContent = `Sent to ${user.email}: open its link, then come back to this page.`;
    }),
  );
  // back from the confirmation link in another tab: the page learns it without a reload
  const recheck = () => {
    if (document.visibilityState === "visible" && !user.emailVerified) confirmedSince(user);
  };
  on(document, "visibilitychange", recheck);
  const test = $("#send-test");
  on(test, "click", () =>
    busy(test, async () => {
      $("#notify-status").textContent = "";
      await call("send_test_notification", {});
      $("#notify-status").textContent = "Sent: your webhook accepted the test notification.";
    }),
  );
  const rotate = $("#rotate-secret");
  on(rotate, "click", () =>
    busy(rotate, async () => {
      const answer = await call("rotate_webhook_secret", {});
      showSecret(answer.signing_secret);
      $("#notify-status").textContent = "A new signing secret: the old one no longer verifies.";
    }),
  );
  return off;
}

/** Email is offered only to a confirmed address: the server refuses it otherwise (and not
 * while the page is still `checking` that its token says so). */
function offerEmail(user, checking = false) {
  const box = $("#notify-form").elements.email;
  const unconfirmed = !user.emailVerified;
  box.disabled = unconfirmed || checking;
  if (unconfirmed) box.checked = false;
  const note = $("#email-unconfirmed");
  note.hidden = !unconfirmed;
  setField(note, "email", user.email || "your address");
}

/** Whether the person confirmed their address since the page loaded; a fresh ID token then
 * carries it to the callables. */
async function confirmedSince(user) {
  try {
    if (!user.emailVerified) await user.reload();
    if (user.emailVerified && (await user.getIdTokenResult()).claims.email_verified !== true) {
      await user.getIdToken(true);
    }
  } catch {
    // asked again when the page is next shown; a save meanwhile is told why by the server
  }
  offerEmail(user);
}

function fillSettings(form, settings) {
  const off = $("#webhook-off");
  off.hidden = !settings?.webhook_off_at;
  off.textContent = settings?.webhook_off_at
    ? `Your webhook was switched off on ${when(settings.webhook_off_at)}: ${settings.webhook_off_reason}. ` +
      "Check it, then save your notification settings to switch it on again."
    : "";
  if (!settings || form.contains(document.activeElement)) return;
  const chosen = new Set(settings.events || []);
  form.querySelectorAll('input[name="events"]').forEach((box) => {
    box.checked = chosen.has(box.value);
  });
  form.elements.webhook_url.value = settings.webhook_url || "";
  form.elements.email.checked = settings.email === true && !form.elements.email.disabled;
}

function showSecret(secret) {
  const line = $("#signing-secret");
  line.querySelector("code").textContent = secret;
  line.hidden = false;
}

/** The overview's five latest, each its sentence and when, unread ones marked. */
function renderLatest(docs) {
  $("#latest-list").replaceChildren(
    ...docs.map((snap) => {
      const n = snap.data();
      const item = document.createElement("li");
      item.classList.toggle("unread", !n.read_at);
      const at = document.createElement("time");
      at.textContent = when(n.at);
      item.append(at, ` ${n.message}`);
      return item;
    }),
  );
  $("#no-latest").hidden = docs.length > 0;
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
      const sent = delivered(n.deliveries);
      if (sent) {
        const note = document.createElement("small");
        note.textContent = sent;
        item.append(" ", note);
      }
      return item;
    }),
  );
}

const SENT = {
  delivered: "Sent to your webhook.",
  failed: "Your webhook did not take it yet; it is tried again later.",
  gave_up: "Your webhook did not take it.",
  uncertain: "It may not have reached your webhook.",
};

// Where a notification went beyond this page, in words.
function delivered(deliveries) {
  const said = [];
  const hook = deliveries?.webhook?.state;
  if (SENT[hook]) said.push(SENT[hook]);
  if (deliveries?.email?.state === "queued") said.push("Queued for email.");
  return said.join(" ");
}
