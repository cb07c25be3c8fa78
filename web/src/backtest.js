// The Backtest region: a strategy set up as in Add a strategy, replayed over a range of days by
// the run_backtest callable; its equity against buy-and-hold, the statistics side by side, its
// trades a stored page at a time (every one exported), and buttons that start the strategy with
// the same settings or delete the backtest.
import { collection, doc, getDoc, getDocs, orderBy, query } from "firebase/firestore";
import { drawEquity, span } from "./charts.js";
import { csv, download } from "./history.js";
import { $, busy, dollars, listeners, percent, symbolsOf } from "./ui.js";

const ROWS = [
  ["Total return", "total_return_pct", percent],
  ["Yearly growth (CAGR)", "cagr_pct", percent],
  ["Max drawdown", "max_drawdown_pct", percent],
  ["Daily Sharpe", "sharpe_daily", (v) => v ?? "—"],
  ["Win rate", "win_rate_pct", (v) => (v ? percent(v) : "—")],
  ["Time in the market", "exposure_pct", percent],
  ["Trades closed", "trades", String],
  ["Final equity", "final_equity", dollars],
];
export const BACKTEST_TRADE_COLUMNS = [
  "symbol", "side", "quantity", "entry_day", "entry_price", "reason", "exit_day", "exit_price",
  "exit_reason", "realized_pnl",
];

export function startBacktest({ db, call }, uid) {
  const { on, off } = listeners();
  const form = $("#backtest-form");
  let removeChart = () => {};
  let last = null;
  let shown = null; // the backtest on screen: { id, stored, page }
  const year = new Date().getFullYear();
  form.elements.start.value ||= `${year - 2}-01-02`;
  form.elements.end.value ||= `${year - 1}-12-31`;
  const pages = (id) => collection(db, "users", uid, "backtests", id, "trades");
  const showPage = async (page) => {
    const snap = await getDoc(doc(pages(shown.id), String(page).padStart(4, "0")));
    shown.page = page;
    renderTrades(shown.stored, snap.exists() ? snap.data() : { first: 0, trades: [] });
  };
  on(form, "submit", (event) => {
    event.preventDefault();
    const request = requestOf(form);
    busy(form.querySelector("[type=submit]"), async () => {
      const answer = await call("run_backtest", request);
      const stored = (await getDoc(doc(db, "users", uid, "backtests", answer.id))).data();
      last = { ...request, mode: String(new FormData(form).get("mode")) };
      shown = { id: answer.id, stored, page: 0 };
      removeChart();
      removeChart = render(stored);
      await showPage(Math.max(0, (stored.trade_pages || 1) - 1)); // the newest trades first
    });
  });
  for (const [id, step] of [["#backtest-earlier", -1], ["#backtest-later", 1]]) {
    const button = $(id);
    on(button, "click", () => busy(button, () => showPage(shown.page + step)));
  }
  const exporting = $("#backtest-export");
  on(exporting, "click", () =>
    busy(exporting, async () => {
      const snap = await getDocs(query(pages(shown.id), orderBy("index")));
      const trades = snap.docs.flatMap((d) => d.data().trades);
      const rows = trades.map((t) => BACKTEST_TRADE_COLUMNS.map((c) => t[c]));
      download(`backtest-${shown.id}.csv`, csv(BACKTEST_TRADE_COLUMNS, rows));
    }),
  );
  const deleting = $("#backtest-delete");
  on(deleting, "click", () =>
    busy(deleting, async () => {
      if (!window.confirm("Delete this backtest and its trades?")) return;
      await call("delete_backtest", { backtest_id: shown.id });
      removeChart();
      removeChart = () => {};
      shown = null;
      $("#backtest-result").hidden = true;
      $("#backtest-deleted").textContent = "The backtest was deleted.";
    }),
  );
  const start = $("#backtest-start");
  on(start, "click", () =>
    busy(start, async () => {
      if (!last) return;
      const { start: _from, end: _to, ...settings } = last;
      const saved = await call("save_strategy", settings);
      await call("set_strategy_status", { id: saved.id, status: "active" });
      $("#backtest-started").textContent = "Started: it is listed under Strategies.";
    }),
  );
  return () => {
    removeChart();
    off();
  };
}

function requestOf(form) {
  const data = new FormData(form);
  const optional = (name) => String(data.get(name)).trim() || null;
  return {
    strategy: String(data.get("strategy")),
    symbols: symbolsOf(data.get("symbols")),
    allocation_usd: String(data.get("allocation_usd")).trim(),
    take_profit_pct: optional("take_profit_pct"),
    stop_loss_pct: optional("stop_loss_pct"),
    allow_short: data.get("allow_short") === "on",
    start: String(data.get("start")),
    end: String(data.get("end")),
  };
}

function render(stored) {
  $("#backtest-result").hidden = false;
  $("#backtest-started").textContent = "";
  $("#backtest-deleted").textContent = "";
  const { days, equity, buy_and_hold: hold } = stored.curve;
  const ours = stored.statistics;
  const theirs = stored.buy_and_hold;
  const caption =
    `This strategy's equity went ${span(days, equity)} (${percent(ours.total_return_pct)}, ` +
    `max drawdown ${percent(ours.max_drawdown_pct)}, ${ours.trades} trades closed); buying and ` +
    `holding the same symbols went ${span(days, hold)} (${percent(theirs.total_return_pct)}).`;
  const remove = drawEquity(
    $("#backtest-figure"),
    [
      { title: "This strategy", days, values: equity },
      { title: "Buy and hold", days, values: hold },
    ],
    caption,
  );
  $("#backtest-stats").replaceChildren(
    ...ROWS.map(([label, key, show]) => {
      const row = document.createElement("tr");
      const head = document.createElement("th");
      head.scope = "row";
      head.textContent = label;
      row.append(head, cell(show(ours[key])), cell(show(theirs[key])));
      return row;
    }),
  );
  return remove;
}

/** One stored page of the trades, newest first, and where it stands among them all. */
function renderTrades(stored, page) {
  const total = stored.trades_total;
  $("#backtest-trades").replaceChildren(
    ...[...page.trades].reverse().map((t) =>
      row([
        t.symbol,
        t.side,
        t.quantity,
        `${t.entry_day} at ${dollars(t.entry_price)}`,
        t.exit_day ? `${t.exit_day} at ${dollars(t.exit_price)}` : "still open",
        t.realized_pnl === null ? "—" : dollars(t.realized_pnl),
      ]),
    ),
  );
  const from = page.first + 1;
  const to = page.first + page.trades.length;
  const count = (n) => n.toLocaleString("en-US");
  $("#backtest-trades-note").textContent =
    total === 0
      ? "No trades."
      : total > page.trades.length
        ? `Trades ${count(from)} to ${count(to)} of ${count(total)}, the newest first.`
        : `${count(total)} trades, the newest first.`;
  $("#backtest-earlier").hidden = page.first === 0;
  $("#backtest-later").hidden = to >= total;
}

function cell(text) {
  const node = document.createElement("td");
  node.textContent = text;
  return node;
}

function row(texts) {
  const node = document.createElement("tr");
  node.append(...texts.map(cell));
  return node;
}
