// The signed-in person's own documents, live, and the calls that change them.
import {
  collection,
  doc,
  limit,
  onSnapshot,
  orderBy,
  query,
  where,
} from "firebase/firestore";
import { $, busy, listeners, money, percent, setField, showError, sign, when } from "./ui.js";

const RECENT_SIGNALS = 10;
const closing = new Set();

export function startDashboard({ db, call }, user) {
  const uid = user.uid;
  const root = $("#signed-in");
  const mine = (...path) => doc(db, "users", uid, ...path);
  const live = (ref, render) => onSnapshot(ref, render, showError);
  const seen = { sync: undefined, run: undefined, snapshot: undefined };
  const book = { trades: [], marks: {} }; // the open trades, and their live marks (status/marks)
  const drawTrades = () => renderTrades(book, call);

  const stops = [
    // a missing profile read from the cache (the database not reached yet) says nothing
    live(mine(), (snap) => (snap.exists() || !snap.metadata.fromCache) && renderKeysLine(snap.data() || {}, uid)),
    live(mine("alpacaAccounts", "snapshot"), (snap) => {
      seen.snapshot = snap.data();
      renderAccount(root, seen.snapshot);
      renderLastSync(root, seen);
    }),
    live(doc(db, "ops", "status"), (snap) => renderHalt(snap.data())),
    live(mine("status", "sync"), (snap) => {
      seen.sync = snap.data();
      renderLastSync(root, seen);
    }),
    live(doc(db, "ops", "freshness"), (snap) => {
      seen.run = snap.data();
      renderLastSync(root, seen);
    }),
    live(mine("status", "last_sync_error"), (snap) => renderSyncError(root, snap.data())),
    live(mine("status", "reconciliation"), (snap) => renderReconciliation(root, snap.data())),
    live(mine("status", "trading"), (snap) => renderSwitch(snap.data())),
    live(
      query(
        collection(db, "users", uid, "shadowTradeHistory"),
        where("status", "==", "OPEN"),
        orderBy("created_at", "desc"),
      ),
      (snap) => {
        book.trades = snap.docs;
        drawTrades();
      },
    ),
    live(mine("status", "marks"), (snap) => {
      book.marks = snap.data()?.trades || {};
      drawTrades();
    }),
    live(
      query(collection(db, "users", uid, "signals"), orderBy("created_at", "desc"), limit(RECENT_SIGNALS)),
      (snap) => renderSignals(snap.docs),
    ),
  ];
  const actions = wireActions({ db, call }, uid);
  return () => {
    stops.forEach((stop) => stop());
    actions.off();
  };
}

// The pulse writes a person's sync status only when it changes; while it is healthy, the last
// run (ops/freshness) is when their data was last confirmed. One time, shown the same in the
// Account card and in Sync status.
function renderLastSync(root, { sync, run, snapshot }) {
  let at = sync?.last_success_at;
  const healthy = at && !sync.consecutive_failures && !sync.last_error_code;
  if (healthy && run?.finished_at && run.finished_at.toMillis() > at.toMillis()) at = run.finished_at;
  if (!at && snapshot?.synced_at) at = snapshot.synced_at;
  setField(root, "last_success_at", when(at));
  setField(root, "synced_at", at ? when(at) : "not yet");
}

function renderAccount(root, snapshot) {
  setField(root, "equity", money(snapshot?.equity));
  setField(root, "cash", money(snapshot?.cash));
  setField(root, "buying_power", money(snapshot?.buying_power));
}

// Trading halted for everyone by the operators: said at once, with their reason, and the
// person's own switch shown as overridden until the halt ends.
function renderHalt(status) {
  const banner = $("#halt-banner");
  const halted = status?.halted === true;
  banner.hidden = !halted;
  const why = status?.reason ? ` The operators say: ${status.reason}.` : "";
  banner.textContent = halted
    ? `Trading is halted for everyone by the operators: nothing is bought or sold for anyone until they switch it back on.${why}`
    : "";
  const mine = $("#trading-enabled");
  mine.dataset.halted = halted ? "true" : "";
  mine.disabled = halted || mine.dataset.locked === "true";
  if (halted) mine.setAttribute("aria-describedby", "halt-banner");
  else mine.removeAttribute("aria-describedby");
}

/** The person's switch, and who switched it off when it was not them. */
function renderSwitch(trading) {
  const mine = $("#trading-enabled");
  mine.checked = trading?.enabled === true;
  const locked = Boolean(trading?.locked_by);
  mine.dataset.locked = locked ? "true" : "";
  const line = $("#trading-lock");
  line.hidden = !locked;
  line.textContent = locked
    ? `An administrator switched your trading off${trading.reason ? `: ${trading.reason}` : ""}. Only an administrator can switch it back on.`
    : "";
  mine.disabled = locked || mine.dataset.halted === "true";
}

function renderSyncError(root, error) {
  const line = root.querySelector('[data-field="last_error"]');
  line.hidden = !error;
  line.textContent = error ? `The last sync failed: ${error.message}` : "";
}

// What Alpaca holds and what the product's paper trades hold differ: said in words, per symbol.
function renderReconciliation(root, doc) {
  const rows = Object.values(doc?.mismatches || {});
  const line = root.querySelector('[data-field="reconciliation"]');
  line.hidden = rows.length === 0;
  line.textContent = rows.length
    ? "Your Alpaca account and this site disagree: " +
      rows
        .map((r) => `${r.symbol}: Alpaca holds ${r.broker_qty}, this site's trades hold ${r.book_qty} (since ${when(r.since)})`)
        .join("; ") +
      ". No new positions are opened in these symbols until they agree again."
    : "";
}

const STATES = {
  opening: (t) => `Opening: ${t.filled_qty ?? t.quantity} of ${t.ordered_qty ?? t.quantity} filled`,
  open: () => "Open",
  closing: () => "Closing: the closing order is working",
};

// a level is compared at full precision by the pulse; a person reads it to the cent
const shownLevel = (price) => Number(price).toFixed(2);

function stateText(t) {
  let text = (STATES[t.state] || STATES.open)(t);
  const levels = [
    t.stop_loss_price ? `stop at ${money(shownLevel(t.stop_loss_price))}` : "",
    t.take_profit_price ? `target at ${money(shownLevel(t.take_profit_price))}` : "",
  ].filter(Boolean);
  if (levels.length) text += `; ${levels.join(", ")}`;
  if (t.last_close_error) text += `; the last close failed: ${t.last_close_error.reason}`;
  if (t.other_account) text += `; ${t.other_account.message}`;
  return text;
}

const hasKeys = () => $('[data-field="keys_line"]').textContent.startsWith("Saved:");

let keysShown = { uid: null, version: -1 };

/** The keys line, from the profile as the listener reads it, or at once from a call's answer;
 * never from anything older than what it shows (`keys_version` only grows). */
export function renderKeysLine(profile, uid) {
  const version = profile.keys_version ?? 0;
  if (uid === keysShown.uid && version < keysShown.version) return;
  keysShown = { uid, version };
  const line = $('[data-field="keys_line"]');
  if (profile?.key_id_masked) {
    const kind = profile.keys_paper === false ? "live" : "paper";
    line.textContent = `Saved: ${profile.key_id_masked} (${kind})`;
  } else {
    line.textContent = "No keys saved.";
  }
}

// A trade's figures are as of when it opened; while it is open the pulse keeps all of a
// person's marks in one document, which wins over them.
function renderTrades({ trades: docs, marks }, call) {
  const body = $("#trades-body");
  body.replaceChildren(
    ...docs.map((snap) => {
      const t = { ...snap.data(), ...marks[snap.id] };
      const row = document.createElement("tr");
      row.dataset.tradeId = snap.id;
      const cells = [
        t.symbol,
        t.side,
        t.quantity,
        money(t.entry_price),
        money(t.current_price),
        money(t.unrealized_pnl),
        percent(t.pnl_percent),
        stateText(t),
      ];
      cells.forEach((text, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = text;
        if (i >= 5) sign(cell, i === 5 ? t.unrealized_pnl : t.pnl_percent);
        row.append(cell);
      });
      const close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      // a re-render while closing keeps it pressed; an order still working decides by itself
      close.disabled = closing.has(snap.id) || (t.state !== undefined && t.state !== "open");
      close.addEventListener("click", () => {
        closing.add(snap.id);
        busy(close, () => call("close_shadow_trade", { trade_id: snap.id })).finally(() =>
          closing.delete(snap.id),
        );
      });
      const action = document.createElement("td");
      action.append(close);
      row.append(action);
      return row;
    }),
  );
  $("#no-trades").hidden = docs.length > 0;
  $("#close-all").hidden = docs.length === 0;
}

function renderSignals(docs) {
  $("#signals-list").replaceChildren(
    ...docs.map((snap) => {
      const s = snap.data();
      const item = document.createElement("li");
      const size = s.action === "HOLD" ? "" : ` ${s.quantity} for ${money(s.notional_usd)}`;
      item.textContent = `${when(s.created_at)} ${s.symbol} ${s.action}${size}: ${s.reason}`;
      return item;
    }),
  );
}

function wireActions({ db, call }, uid) {
  const actions = listeners();
  const on = actions.on;
  const keysForm = $("#keys-form");
  on(keysForm, "submit", (event) => {
    event.preventDefault();
    const data = new FormData(keysForm);
    busy(event.submitter || keysForm.querySelector("[type=submit]"), async () => {
      $("#keys-notice").textContent = "";
      const saved = await call("save_alpaca_keys", {
        key_id: String(data.get("key_id")).trim(),
        secret_key: String(data.get("secret_key")).trim(),
        paper: data.get("paper") === "on",
      });
      keysForm.elements.secret_key.value = "";
      keysForm.elements.key_id.value = ""; // the keys line shows what was saved, masked
      // at once from the answer; the listener follows
      renderKeysLine({ key_id_masked: saved.key_id, keys_paper: saved.paper, keys_version: saved.keys_version }, uid);
      if ($("#trading-enabled").checked) requestSync(); // the account shows at once
    });
  });
  const syncNow = $("#sync-now");
  const requestSync = () => busy(syncNow, () => call("request_sync", {}));
  on(syncNow, "click", requestSync);

  const connect = $("#connect-alpaca");
  on(connect, "click", () =>
    busy(connect, async () => {
      const { url } = await call("start_alpaca_connect", { paper: keysForm.elements.paper.checked });
      window.location.assign(url); // Alpaca sends the person back here with a code
    }),
  );

  const remove = $("#remove-keys");
  on(remove, "click", () =>
    busy(remove, async () => {
      const { connection_revoked: revoked } = await call("remove_alpaca_keys", {});
      $("#keys-notice").textContent = {
        true: "Removed. Alpaca has ended this site's access to your account.",
        false:
          "Removed here, but Alpaca did not confirm that this site's access has ended: end it " +
          "yourself under OAuth Apps in your Alpaca dashboard.",
      }[revoked] ?? "Removed.";
    }),
  );

  const trading = $("#trading-enabled");
  on(trading, "change", () => {
    const wanted = trading.checked;
    busy(trading, async () => {
      try {
        await call("set_trading_enabled", { enabled: wanted });
        if (wanted && hasKeys()) requestSync(); // no need to wait for the next pulse
      } catch (error) {
        trading.checked = !wanted;
        throw error;
      }
    });
  });

  const closeAll = $("#close-all");
  on(closeAll, "click", () => {
    const sure = window.confirm(
      "Close all your open positions? Shadow trades close at the latest price; paper positions get closing orders at Alpaca.",
    );
    if (sure) busy(closeAll, () => call("close_all_positions", {}));
  });

  const signalForm = $("#signal-form");
  on(signalForm, "submit", (event) => {
    event.preventDefault();
    const data = new FormData(signalForm);
    busy(signalForm.querySelector("[type=submit]"), () =>
      call("generate_trading_signal", {
        symbol: String(data.get("symbol")).trim().toUpperCase(),
        strategy: String(data.get("strategy")),
        open_shadow_trade: data.get("open_shadow_trade") === "on",
      }),
    );
  });
  return actions;
}
