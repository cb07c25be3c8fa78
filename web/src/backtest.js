// The Backtest region: a strategy set up as in Add a strategy, replayed over a range of days by
// the run_backtest callable; its equity against buy-and-hold, the statistics side by side, its
// trades, and a button that starts the strategy with the same settings.
import { doc, getDoc } from "firebase/firestore";
import { drawEquity, span } from "./charts.js";
import { $, busy, listeners, money, percent, symbolsOf } from "./ui.js";

const ROWS = [
  ["Total return", "total_return_pct", percent],
  ["Yearly growth (CAGR)", "cagr_pct", percent],
  ["Max drawdown", "max_drawdown_pct", percent],
  ["Daily Sharpe", "sharpe_daily", (v) => v ?? "—"],
  ["Win rate", "win_rate_pct", (v) => (v ? percent(v) : "—")],
  ["Time in the market", "exposure_pct", percent],
  ["Trades closed", "trades", String],
  ["Final equity", "final_equity", money],
];
const SHOWN_TRADES = 100;

export function startBacktest({ db, call }, uid) {
  const { on, off } = listeners();
  const form = $("#backtest-form");
  let removeChart = () => {};
  let last = null;
  const year = new Date().getFullYear();
  form.elements.start.value ||= `${year - 2}-01-02`;
  form.elements.end.value ||= `${year - 1}-12-31`;
  on(form, "submit", (event) => {
    event.preventDefault();
    const request = requestOf(form);
    busy(form.querySelector("[type=submit]"), async () => {
      const answer = await call("run_backtest", request);
      const stored = (await getDoc(doc(db, "users", uid, "backtests", answer.id))).data();
      last = { ...request, mode: String(new FormData(form).get("mode")) };
      removeChart();
      removeChart = render(stored);
    });
  });
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
  const trades = stored.trades.slice(-SHOWN_TRADES).reverse();
  $("#backtest-trades").replaceChildren(
    ...trades.map((t) =>
      row([
        t.symbol,
        t.side,
        t.quantity,
        `${t.entry_day} at ${money(t.entry_price)}`,
        t.exit_day ? `${t.exit_day} at ${money(t.exit_price)}` : "still open",
        t.realized_pnl === null ? "—" : money(t.realized_pnl),
      ]),
    ),
  );
  $("#backtest-trades-note").textContent =
    stored.trades_total > trades.length
      ? `The latest ${trades.length} of ${stored.trades_total} trades.`
      : `${stored.trades_total} trades.`;
  return remove;
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
