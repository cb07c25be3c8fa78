// The signed-in person's own documents, live (Overview's, the keys line in Settings, the recent
// signals in Strategies), and the calls that change them.
import { collection, doc, limit, orderBy, query, where } from "firebase/firestore";
import { $, atBroker, busy, listeners, liveBadge, money, percent, setField, sign, when, withRestingChoice } from "./ui.js";

const RECENT_SIGNALS = 10;
const closing = new Set();

export function startDashboard({ db, call, live }, user) {
  const uid = user.uid;
  const root = $("#signed-in");
  const mine = (...path) => doc(db, "users", uid, ...path);
  const overview = (source, render) => live.watch("overview", source, render);
  const seen = { sync: undefined, run: undefined, snapshot: undefined };
  // the open trades, their live marks (status/marks), and the symbols that differ from Alpaca
  const book = { trades: [], marks: {}, differing: new Set() };
  const drawTrades = () => renderTrades(book, call);
  // a missing profile read from the cache (the database not reached yet) says nothing
  const keysLine = (snap) => (snap.exists() || !snap.metadata.fromCache) && renderKeysLine(snap.data() || {}, uid);
  live.watch("settings", mine(), keysLine);
  overview(mine(), keysLine); // the switch asks for a sync at once when keys are saved
  live.always(doc(db, "ops", "status"), (snap) => renderHalt(snap.data()));
  overview(mine("alpacaAccounts", "snapshot"), (snap) => {
    seen.snapshot = snap.data();
    renderAccount(root, seen.snapshot);
    renderLastSync(root, seen);
  });
  overview(mine("status", "sync"), (snap) => {
    seen.sync = snap.data();
    renderLastSync(root, seen);
  });
  overview(doc(db, "ops", "freshness"), (snap) => {
    seen.run = snap.data();
    renderLastSync(root, seen);
  });
  overview(mine("status", "last_sync_error"), (snap) => renderSyncError(root, snap.data()));
  overview(mine("status", "reconciliation"), (snap) => {
    const rows = Object.values(snap.data()?.mismatches || {});
    book.differing = new Set(rows.map((r) => r.symbol));
    renderReconciliation(root, rows, call);
    drawTrades();
  });
  overview(mine("status", "trading"), (snap) => renderSwitch(snap.data()));
  overview(
    query(collection(db, "users", uid, "shadowTradeHistory"), where("status", "==", "OPEN"), orderBy("created_at", "desc")),
    (snap) => {
      book.trades = snap.docs;
      drawTrades();
    },
  );
  overview(mine("status", "marks"), (snap) => {
    book.marks = snap.data()?.trades || {};
    drawTrades();
  });
  live.watch(
    "strategies",
    query(collection(db, "users", uid, "signals"), orderBy("created_at", "desc"), limit(RECENT_SIGNALS)),
    (snap) => renderSignals(snap.docs),
  );
  const actions = wireActions({ db, call }, uid, book);
  return () => actions.off();
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

// What Alpaca holds and what the product's paper trades hold differ: said in words, per symbol,
// each with what the person can do about it.
function renderReconciliation(root, rows, call) {
  const box = root.querySelector('[data-field="reconciliation"]');
  box.hidden = rows.length === 0;
  if (!rows.length) {
    box.replaceChildren();
    return;
  }
  const intro = document.createElement("p");
  intro.className = "error-text";
  intro.textContent =
    "Your Alpaca account and this site disagree. No new positions are opened in these symbols until they agree again, and a closing order never sells more than Alpaca holds.";
  const list = document.createElement("ul");
  list.setAttribute("aria-label", "Differences with Alpaca");
  for (const r of rows) {
    const item = document.createElement("li");
    item.textContent = `${r.symbol}: Alpaca holds ${r.broker_qty}, this site's trades hold ${r.book_qty} (since ${when(r.since)}). `;
    if (settles(r)) item.append(useAlpacasQuantity(r, call));
    else item.append("Alpaca holds more than this site opened: this site never takes over a position it did not open; close the rest at Alpaca or keep it there.");
    list.append(item);
  }
  box.replaceChildren(intro, list);
}

// the book can be set down to what Alpaca holds on the same side (or to nothing), never up
function settles({ broker_qty: broker, book_qty: book }) {
  const [b, k] = [Number(broker), Number(book)];
  return k !== 0 && (b === 0 || (Math.sign(b) === Math.sign(k) && Math.abs(b) < Math.abs(k)));
}

function useAlpacasQuantity(row, call) {
  const use = document.createElement("button");
  use.type = "button";
  use.textContent = "Use Alpaca's quantity";
  use.addEventListener("click", () => {
    const held = Math.abs(Number(row.broker_qty));
    const sure = window.confirm(
      `Set this site's ${row.symbol} trades to the ${held} shares Alpaca holds? No order is sent; what is taken out of the book records no profit or loss.`,
    );
    if (sure) busy(use, () => call("use_alpaca_quantity", { symbol: row.symbol }));
  });
  return use;
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
  if (t.resting) text += levels.length > 1 ? "; both rest at Alpaca" : "; it rests at Alpaca";
  else if (atBroker(t.mode) && t.resting_problem) text += `; not resting at Alpaca: ${t.resting_problem}`;
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
function renderTrades({ trades: docs, marks, differing }, call) {
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
        if (i === 0) cell.append(...liveBadge(t.mode));
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
      // a paper position its keys cannot reach, or one Alpaca no longer holds as the book does
      if (atBroker(t.mode) && (t.other_account || differing.has(t.symbol))) {
        action.append(" ", markClosed(snap.id, t, call));
      }
      row.append(action);
      return row;
    }),
  );
  $("#no-trades").hidden = docs.length > 0;
  $("#close-all").hidden = docs.length === 0;
}

function markClosed(tradeId, t, call) {
  const mark = document.createElement("button");
  mark.type = "button";
  mark.textContent = "Mark closed by hand";
  mark.addEventListener("click", () => {
    const sure = window.confirm(
      `Mark your ${t.symbol} trade closed without sending any order? Do this only if you closed the position at Alpaca yourself, or it is held in an account you no longer use.`,
    );
    if (sure) busy(mark, () => call("mark_trade_closed", { trade_id: tradeId }));
  });
  return mark;
}

/** What a person is told when the keys they just saved open another account than the one
 * holding some of their trades. */
export function otherAccountNotice(held) {
  if (!held?.length) return "";
  const endings = [...new Set(held.map((t) => t.account_last4))].join(" and ");
  const what = held.length > 1 ? `${held.length} trades` : "trade";
  return (
    `These keys open a different Alpaca account from the one ending ${endings} that holds your ` +
    `${held.map((t) => t.symbol).join(", ")} ${what}. Nothing is sent for ${held.length > 1 ? "them" : "it"} ` +
    `until you save that account's keys again; if you closed ${held.length > 1 ? "them" : "it"} at Alpaca ` +
    "yourself, use Mark closed by hand in Open trades."
  );
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

function wireActions({ db, call }, uid, book) {
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
      $("#keys-notice").textContent = otherAccountNotice(saved.trades_in_other_account);
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
      const { connection_revoked: revoked } = await withRestingChoice(call, "remove_alpaca_keys", {});
      $("#keys-notice").textContent = {
        true: "Removed. Alpaca has ended this site's access to your account.",
        false:
          "Removed. Alpaca has not confirmed yet that this site's access has ended: this site " +
          "keeps asking until it does, or end it yourself under OAuth Apps in your Alpaca dashboard.",
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
    const live = book.trades.some((snap) => snap.data().mode === "live");
    const question =
      "Close all your open positions? Shadow trades close at the latest price; paper and live positions get closing orders at Alpaca.";
    if (!live) {
      if (window.confirm(question)) busy(closeAll, () => call("close_all_positions", {}));
      return;
    }
    // real money: the person types their live account's last four again
    const typed = window.prompt(
      `${question} Some are real positions in your live account: type the last four characters of its number to close them.`,
    );
    if (typed !== null) busy(closeAll, () => call("close_all_positions", { account_last4: typed.trim() }));
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
