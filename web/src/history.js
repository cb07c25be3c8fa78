// The Trade history region: the person's closed trades, newest first, a page at a time (live),
// and their trades and signals exported as CSV files made in the page from their own documents
// (the columns: README, "Exports").
import { collection, getDocs, limit, orderBy, query, startAfter, where } from "firebase/firestore";
import { NAMES } from "./strategies.js";
import { $, atBroker, busy, listeners, liveBadge, money, when } from "./ui.js";

const PAGE = 20;
const EXPORT_PAGE = 500;

export const TRADE_COLUMNS = [
  "trade_id", "symbol", "side", "quantity", "entry_price", "exit_price", "realized_pnl",
  "opened_at", "closed_at", "strategy_id", "mode", "close_reason",
];
export const SIGNAL_COLUMNS = [
  "signal_id", "created_at", "symbol", "action", "quantity", "price", "notional_usd",
  "strategy_id", "user_strategy_id", "status", "reason",
];

export function startHistory({ db, live }, uid) {
  const trades = collection(db, "users", uid, "shadowTradeHistory");
  const closed = [where("status", "==", "CLOSED"), orderBy("closed_at", "desc")];
  const names = new Map();
  let pages = 1;
  let shown = [];
  const draw = () => renderHistory(shown, names);
  const page = live.watch(
    "history",
    () => query(trades, ...closed, limit(PAGE * pages + 1)),
    (snap) => {
      $("#history-more").hidden = snap.docs.length <= PAGE * pages;
      shown = snap.docs.slice(0, PAGE * pages);
      draw();
    },
  );
  live.watch("history", collection(db, "users", uid, "strategies"), (snap) => {
    names.clear();
    snap.docs.forEach((d) => names.set(d.id, `${NAMES[d.data().strategy] || d.data().strategy} on ${d.data().symbols.join(", ")}`));
    draw();
  });
  const { on, off } = listeners();
  on($("#history-more"), "click", () => {
    pages += 1;
    page.again();
  });
  const exportTrades = $("#export-trades");
  on(exportTrades, "click", () =>
    busy(exportTrades, async () => {
      const docs = await everything(trades, [...closed]);
      download("trades.csv", csv(TRADE_COLUMNS, docs.map((d) => tradeRow(d))));
    }),
  );
  const exportSignals = $("#export-signals");
  on(exportSignals, "click", () =>
    busy(exportSignals, async () => {
      const docs = await everything(collection(db, "users", uid, "signals"), [orderBy("created_at", "desc")]);
      download("signals.csv", csv(SIGNAL_COLUMNS, docs.map((d) => signalRow(d))));
    }),
  );
  return off;
}

/** What a closed trade bought and sold: a paper or live trade's entry fill (it holds 0 once
 * closed), a shadow trade's quantity. */
export const traded = (t) => (atBroker(t.mode) && t.filled_qty != null ? t.filled_qty : t.quantity);

function renderHistory(docs, names) {
  $("#history-body").replaceChildren(
    ...docs.map((snap) => {
      const t = snap.data();
      const row = document.createElement("tr");
      row.dataset.tradeId = snap.id;
      const strategy = t.strategy_id ? names.get(t.strategy_id) || "a deleted strategy" : "by hand";
      for (const text of [
        when(t.closed_at), t.symbol, t.side, traded(t), money(t.entry_price), money(t.exit_price),
        money(t.realized_pnl), strategy,
      ]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      row.cells[1].append(...liveBadge(t.mode));
      return row;
    }),
  );
  $("#no-history").hidden = docs.length > 0;
}

/** Every document of a query, read a page at a time. */
async function everything(source, constraints) {
  const all = [];
  let after = null;
  for (;;) {
    const page = await getDocs(
      query(source, ...constraints, ...(after ? [startAfter(after)] : []), limit(EXPORT_PAGE)),
    );
    all.push(...page.docs);
    if (page.docs.length < EXPORT_PAGE) return all;
    after = page.docs[page.docs.length - 1];
  }
}

const iso = (value) => (value && typeof value.toDate === "function" ? value.toDate().toISOString() : value ?? "");

function tradeRow(snap) {
  const t = snap.data();
  return [
    snap.id, t.symbol, t.side, traded(t), t.entry_price, t.exit_price, t.realized_pnl,
    iso(t.created_at), iso(t.closed_at), t.strategy_id, t.mode || "shadow", t.close_reason,
  ];
}

function signalRow(snap) {
  const s = snap.data();
  return [
    snap.id, iso(s.created_at), s.symbol, s.action, s.quantity, s.price, s.notional_usd,
    s.strategy_id, s.user_strategy_id, s.status, s.reason,
  ];
}

/** RFC 4180 CSV; text that a spreadsheet would run as a formula is prefixed with ', numbers
 * (a negative P&L) are left as they are. */
export function csv(columns, rows) {
  const field = (value) => {
    let text = value === undefined || value === null ? "" : String(value);
    if (/^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [columns, ...rows].map((row) => row.map(field).join(",")).join("\r\n") + "\r\n";
}

export function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
