// Equity charts drawn with TradingView's lightweight-charts (made for finance: a time axis of
// trading days, crosshair, price scale), loaded the first time a chart is drawn. The chart
// itself is hidden from screen readers; its caption says the same in words.
import { dollars, money } from "./ui.js";

const COLOURS = ["#1f6feb", "#8a8f98"];
let library = null;

/** Draw `lines` ([{ title, days: ["2024-01-02", ...], values: ["10000.00", ...] }]) in
 * `figure` (a <figure> with a .chart and a <figcaption>), replacing what was there, and write
 * `caption` into the figcaption at once. Returns a function that removes the chart (also one
 * still loading). */
export function drawEquity(figure, lines, caption) {
  figure.querySelector("figcaption").textContent = caption;
  figure.hidden = false;
  const holder = figure.querySelector(".chart");
  let chart = null;
  let removed = false;
  library ||= import("lightweight-charts");
  library
    .then(({ createChart, LineSeries }) => {
      if (removed) return;
      holder.replaceChildren();
      chart = createChart(holder, {
        height: 260,
        autoSize: true,
        layout: { attributionLogo: false },
        rightPriceScale: { borderVisible: false },
        timeScale: { borderVisible: false },
        localization: { priceFormatter: (value) => money(value.toFixed(2)) },
      });
      lines.forEach((line, i) => {
        const series = chart.addSeries(LineSeries, {
          color: COLOURS[i % COLOURS.length],
          lineWidth: i === 0 ? 2 : 1,
          title: line.title,
          priceLineVisible: false,
        });
        series.setData(line.days.map((day, j) => ({ time: day, value: Number(line.values[j]) })));
      });
      chart.timeScale().fitContent();
    })
    .catch(() => {
      holder.textContent = "The chart could not be drawn; the figures are in its caption.";
    });
  return () => {
    removed = true;
    chart?.remove();
  };
}

/** "from $10,000.00 on 2024-01-02 to $11,234.56 on 2024-12-31" */
export function span(days, values) {
  if (!days.length) return "no days";
  return `from ${dollars(values[0])} on ${days[0]} to ${dollars(values[values.length - 1])} on ${days[days.length - 1]}`;
}
