// The signed-in page's views, each at its own address (#/overview, #/strategies, ...), and the
// live Firestore listeners each view reads: a view's listeners start when it is shown and stop
// when it is left, so a person looking at the overview reads nothing of their history.
import { onSnapshot } from "firebase/firestore";
import { $, showError } from "./ui.js";

export const VIEWS = ["overview", "strategies", "backtest", "history", "notifications", "settings", "operations"];
const ALWAYS = "*";

/** The view an address names; an unknown one (or Operations for a non-admin) is the overview. */
export function viewOf(hash, admin) {
  const found = /^#\/([a-z]+)$/.exec(hash || "");
  const view = found && VIEWS.includes(found[1]) ? found[1] : "overview";
  return view === "operations" && !admin ? "overview" : view;
}

/** The document or collection a listener reads. */
function pathOf(source) {
  return source.path ?? source._query?.path?.canonicalString?.() ?? "a query";
}

/** Live listeners by view: `watch(view, source, render)` declares one (`source` a document, a
 * query, or a function that makes one when it starts); `show(view)` starts the view's and
 * stops the rest. What those running read is on the page's root element (`data-listening`,
 * a path each), for whoever checks what a view reads. */
export function liveViews() {
  const declared = [];
  let running = [];
  let current = null;
  const count = () => {
    document.documentElement.dataset.listening = running.map((r) => r.path).join(" ");
  };
  const start = (spec) => {
    const source = typeof spec.source === "function" ? spec.source() : spec.source;
    const stop = onSnapshot(source, spec.render, showError);
    running.push({ spec, stop, path: pathOf(source) });
  };
  const stopWhere = (test) => {
    running.filter((r) => test(r.spec)).forEach((r) => r.stop());
    running = running.filter((r) => !test(r.spec));
  };
  return {
    watch(view, source, render) {
      const spec = { view, source, render };
      declared.push(spec);
      if (view === ALWAYS || view === current) start(spec);
      count();
      return {
        /** Start it again with its source made anew (a page grown by `More trades`). */
        again() {
          stopWhere((s) => s === spec);
          if (view === ALWAYS || view === current) start(spec);
          count();
        },
      };
    },
    always(source, render) {
      return this.watch(ALWAYS, source, render);
    },
    show(view) {
      if (view === current) return;
      current = view;
      // the new view's listeners start before the old view's stop: a document both read (the
      // profile) stays listened to throughout, never dropped and asked for again at once
      const leaving = running.filter((r) => r.spec.view !== ALWAYS);
      running = running.filter((r) => r.spec.view === ALWAYS);
      declared.filter((s) => s.view === view).forEach(start);
      leaving.forEach((r) => r.stop());
      count();
    },
    stop() {
      stopWhere(() => true);
      current = null;
      count();
    },
  };
}

/** Show the view the address names, its navigation link marked current, and focus its heading
 * (when the person navigated: not on the first render). */
export function route(live, admin, focus) {
  const view = viewOf(window.location.hash, admin);
  for (const section of document.querySelectorAll("[data-view]")) {
    section.hidden = section.dataset.view !== view;
  }
  for (const link of document.querySelectorAll("#main-nav a")) {
    if (link.getAttribute("href") === `#/${view}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  $("#nav-operations").hidden = !admin;
  live.show(view);
  const heading = $(`[data-view="${view}"] > h2`);
  document.title = `${heading.textContent} · AgentTrader`;
  if (focus) heading.focus();
  return view;
}
