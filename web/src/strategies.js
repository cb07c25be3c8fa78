// The Strategies and Risk limits regions: the person's strategies, their performance, their
// risk limits and, when a limit switched trading off, which one and why. Changes go through
// the callables.
import { collection, doc, getDocs, orderBy, query, where } from "firebase/firestore";
import { drawEquity, span } from "./charts.js";
import { $, busy, clearError, listeners, liveBadge, money, percent, setField, showError, symbolsOf } from "./ui.js";

// The product's defaults (README, "Risk limits"), shown until the person saves their own.
export const DEFAULT_LIMITS = {
  max_position_usd: "10000",
  max_daily_loss_usd: "2000",
  max_drawdown_pct: "20",
  max_trades_per_day: 10,
};
export const NAMES = { momentum_20d: "Momentum (20 days)", mean_reversion_20d: "Mean reversion (20 days)" };

export function startStrategies({ db, call, live }, uid) {
  const mine = (...path) => doc(db, "users", uid, ...path);
  const exits = exitsDialog(db, call, uid);
  let removeChart = () => {};
  let points = [];
  let earlier = { days: [], equity: [] };
  const redraw = () => {
    removeChart();
    removeChart = renderEquity(points, earlier);
  };
  const shown = (source, render) => live.watch("strategies", source, render);
  shown(query(collection(db, "users", uid, "strategies"), orderBy("created_at", "desc")), (snap) =>
    renderStrategies(snap.docs, call, exits.open),
  );
  shown(mine("stats", "summary"), (snap) => renderPerformance(snap.data()));
  live.watch("settings", mine("settings", "risk"), (snap) => fillLimits(snap.data() || DEFAULT_LIMITS));
  live.watch("settings", mine("status", "trading"), (snap) => renderTrip(snap.data()));
  shown(query(collection(db, "users", uid, "equity"), orderBy("at")), (snap) => {
    points = snap.docs;
    redraw();
  });
  const stops = [];
  // a paper account's history from before the product kept its own: asked when the person
  // first looks at the Performance region, and again when their keys change
  let keysVersion;
  let paper = false;
  let asked = null;
  let inView = false;
  const ask = () => {
    if (!inView || !paper || asked === keysVersion) return;
    const version = keysVersion;
    asked = version;
    call("portfolio_history", {})
      .then((answer) => {
        if (version !== keysVersion) return;
        earlier = answer;
        redraw();
      })
      .catch((error) => {
        if (error?.code !== "functions/failed-precondition") showError(error, $("#performance"));
      });
  };
  const watcher = new IntersectionObserver((entries) => {
    inView = entries.some((entry) => entry.isIntersecting);
    ask();
  });
  watcher.observe($("#performance"));
  stops.push(() => watcher.disconnect());
  shown(mine(), (snap) => {
    const version = snap.data()?.keys_version ?? null;
    if (version === keysVersion) return;
    keysVersion = version;
    paper = version !== null && snap.data()?.keys_paper === true;
    earlier = { days: [], equity: [] };
    redraw();
    ask();
  });
  const { on, off } = listeners();
  const strategyForm = $("#strategy-form");
  on(strategyForm, "submit", (event) => {
    event.preventDefault();
    const data = new FormData(strategyForm);
    const optional = (name) => String(data.get(name)).trim() || null;
    busy(strategyForm.querySelector("[type=submit]"), async () => {
      await call("save_strategy", {
        strategy: String(data.get("strategy")),
        symbols: symbolsOf(data.get("symbols")),
        allocation_usd: String(data.get("allocation_usd")).trim(),
        mode: String(data.get("mode")),
        take_profit_pct: optional("take_profit_pct"),
        stop_loss_pct: optional("stop_loss_pct"),
        allow_short: data.get("allow_short") === "on",
      });
      strategyForm.elements.symbols.value = "";
    });
  });
  const riskForm = $("#risk-form");
  on(riskForm, "submit", (event) => {
    event.preventDefault();
    const data = new FormData(riskForm);
    busy(riskForm.querySelector("[type=submit]"), () =>
      call("save_risk_limits", {
        max_position_usd: String(data.get("max_position_usd")).trim(),
        max_daily_loss_usd: String(data.get("max_daily_loss_usd")).trim(),
        max_drawdown_pct: String(data.get("max_drawdown_pct")).trim(),
        max_trades_per_day: Number.parseInt(String(data.get("max_trades_per_day")), 10),
      }),
    );
  });
  return () => {
    stops.forEach((stop) => stop());
    removeChart();
    off();
    exits.off();
  };
}

/** Change a strategy's take-profit and stop-loss. When it holds open trades, the person is
 * asked whether the new levels apply to them too (each from its own entry) or only to the
 * trades it opens from now on: no default, so nothing changes under a trade unasked. */
function exitsDialog(db, call, uid) {
  const dialog = $("#exits-dialog");
  const form = $("#exits-form");
  const question = $("#exits-open-trades");
  let strategy = null; // { id, ...the strategy as stored }
  const { on, off } = listeners();
  const close = () => {
    strategy = null;
    dialog.close();
  };
  on($("#exits-cancel"), "click", close);
  on(form, "submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const optional = (name) => String(data.get(name)).trim() || null;
    const saving = strategy;
    busy(form.querySelector("[type=submit]"), async () => {
      if (!question.hidden && !data.get("apply")) {
        throw new Error("Choose whether the new levels apply to this strategy's open trades.");
      }
      await call("save_strategy", {
        id: saving.id,
        strategy: saving.strategy,
        symbols: saving.symbols,
        allocation_usd: saving.allocation_usd,
        mode: saving.mode,
        allow_short: saving.allow_short === true,
        take_profit_pct: optional("take_profit_pct"),
        stop_loss_pct: optional("stop_loss_pct"),
        apply_to_open_trades: !question.hidden && data.get("apply") === "yes",
      });
      if (strategy === saving) close();
    });
  });
  async function open(id, stored) {
    strategy = { id, ...stored };
    form.reset();
    clearError(form.querySelector("[type=submit]"));
    form.elements.take_profit_pct.value = stored.take_profit_pct ?? "";
    form.elements.stop_loss_pct.value = stored.stop_loss_pct ?? "";
    setField(form, "exits_of", `${NAMES[stored.strategy] || stored.strategy} on ${stored.symbols.join(", ")}`);
    const held = await getDocs(
      query(
        collection(db, "users", uid, "shadowTradeHistory"),
        where("status", "==", "OPEN"),
        where("strategy_id", "==", id),
      ),
    );
    question.hidden = held.size === 0;
    setField(
      form,
      "exits_question",
      held.size === 1
        ? "This strategy has 1 open trade. Should the new levels apply to it too?"
        : `This strategy has ${held.size} open trades. Should the new levels apply to them too?`,
    );
    if (strategy?.id === id) dialog.showModal();
  }
  return { open, off };
}

/** The Performance chart: one point a trading day (`equity/{day}`), from the first day the
 * bot kept its books; before it, for a paper account, Alpaca's own record of the account. */
function renderEquity(docs, alpaca) {
  const figure = $("#performance-figure");
  const days = docs.map((d) => d.id);
  const values = docs.map((d) => d.data().equity);
  // only what the product did not record itself
  const before = alpaca.days.map((day, i) => [day, alpaca.equity[i]]).filter(([day]) => !days.length || day < days[0]);
  const earlier = { days: before.map(([day]) => day), equity: before.map(([, value]) => value) };
  const shown = docs.length + earlier.days.length > 0;
  $("#no-equity").hidden = shown;
  if (!shown) {
    figure.hidden = true;
    return () => {};
  }
  const lines = [];
  const words = [];
  if (docs.length) {
    lines.push({ title: "Equity", days, values });
    words.push(`Your account's equity at the end of each of ${days.length} trading days went ${span(days, values)}.`);
  }
  if (earlier.days.length) {
    lines.push({ title: "Alpaca's record", days: earlier.days, values: earlier.equity });
    words.push(
      `${docs.length ? "Before that, " : ""}Alpaca's record of your paper account over ${earlier.days.length} trading days went ${span(earlier.days, earlier.equity)}.`,
    );
  }
  return drawEquity(figure, lines, words.join(" "));
}

function renderStrategies(docs, call, changeExits) {
  $("#strategies-body").replaceChildren(
    ...docs.map((snap) => {
      const s = snap.data();
      const row = document.createElement("tr");
      row.dataset.strategyId = snap.id;
      const name = document.createElement("th");
      name.scope = "row";
      name.textContent = NAMES[s.strategy] || s.strategy;
      row.append(name);
      const status = s.status === "error" && s.last_error ? `error: ${s.last_error.message}` : s.status;
      const decisions = Object.entries(s.last_decisions || {})
        .map(([symbol, action]) => `${symbol} ${action}`)
        .join(", ");
      const levels = [
        s.take_profit_pct ? `take profit ${s.take_profit_pct}%` : "",
        s.stop_loss_pct ? `stop loss ${s.stop_loss_pct}%` : "",
      ].filter(Boolean);
      const exits = levels.join(", ") || "none";
      for (const text of [s.symbols.join(", "), money(s.allocation_usd), s.mode, exits, status, decisions || "—"]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      name.append(...liveBadge(s.mode));
      const actions = document.createElement("td");
      const toggle = button(s.status === "active" ? "Pause" : "Start");
      const next = s.status === "active" ? "paused" : "active";
      toggle.addEventListener("click", () =>
        busy(toggle, () => call("set_strategy_status", { id: snap.id, status: next })),
      );
      const remove = button("Delete");
      remove.classList.add("danger");
      remove.addEventListener("click", () => {
        if (!window.confirm(`Delete this ${NAMES[s.strategy] || s.strategy} strategy? Its open positions stay open.`)) return;
        busy(remove, () => call("delete_strategy", { id: snap.id }));
      });
      const change = button("Change exits");
      change.addEventListener("click", () => busy(change, () => changeExits(snap.id, s)));
      actions.append(toggle, " ", change, " ", remove);
      row.append(actions);
      return row;
    }),
  );
  $("#no-strategies").hidden = docs.length > 0;
}

function button(text) {
  const node = document.createElement("button");
  node.type = "button";
  node.textContent = text;
  return node;
}

function renderPerformance(stats) {
  const root = $("#performance");
  setField(root, "realized_pnl", money(stats?.realized_pnl));
  setField(root, "unrealized_pnl", money(stats?.unrealized_pnl));
  setField(root, "trades_closed", String(stats?.trades_closed ?? 0));
  setField(root, "win_rate", stats?.win_rate ? percent(stats.win_rate) : "—");
  setField(root, "max_drawdown_pct", stats?.max_drawdown_pct ? percent(stats.max_drawdown_pct) : "—");
  setField(root, "sharpe_daily", stats?.sharpe_daily ?? "—");
  // live trades' realized P&L, apart from the paper and shadow figures, once there is any
  const live = stats?.live_realized;
  $("#live-realized").hidden = !live || Number(live) === 0;
  setField(root, "live_realized", money(live));
}

function fillLimits(limits) {
  const form = $("#risk-form");
  for (const [name, fallback] of Object.entries(DEFAULT_LIMITS)) {
    const input = form.elements[name];
    if (document.activeElement !== input) input.value = String(limits[name] ?? fallback);
  }
}

// The risk limits as the form names them (a trip names the limit by its field).
const LIMIT_NAMES = {
  max_position_usd: "max position",
  max_daily_loss_usd: "max daily loss",
  max_drawdown_pct: "max drawdown",
  max_trades_per_day: "max trades per day",
};

function renderTrip(trading) {
  const line = $('#risk [data-field="trip"]');
  const tripped = trading && trading.enabled === false && trading.tripped_by;
  line.hidden = !tripped;
  line.textContent = tripped
    ? `Trading was switched off by your ${LIMIT_NAMES[trading.tripped_by] ?? "risk"} limit: ${trading.reason}. Switch Trading enabled back on when you are ready.`
    : "";
}
