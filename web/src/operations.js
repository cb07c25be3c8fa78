// The Operations region, for administrators only (custom claim admin: true): the global switch,
// the last pulse, the last hour at a glance, and switching one person's trading off.
import { doc } from "firebase/firestore";
import { $, busy, listeners, setField, showError } from "./ui.js";

export function startOperations({ db, call, live }) {
  const region = $("#operations");
  const globalSwitch = $("#global-trading");
  live.watch("operations", doc(db, "ops", "trading"), (snap) => {
    const halted = snap.data()?.enabled === false;
    globalSwitch.checked = !halted;
    const reason = snap.data()?.reason ? `: ${snap.data().reason}` : "";
    setField(region, "global_line", halted ? `Trading is halted for everyone${reason}.` : "Trading is on for everyone.");
  });
  let asked = 0;
  live.watch("operations", doc(db, "ops", "last_pulse"), (snap) => {
    setField(region, "last_pulse", snap.exists() ? summary(snap.data()) : "No pulse has run yet.");
    if (!snap.exists() || Date.now() - asked < 20_000) return; // the last hour, after each run
    asked = Date.now();
    call("admin_get_last_pulse", {})
      .then((answer) => renderHealth(region, answer.last_hour))
      .catch((error) => showError(error, $("#health")));
  });
  const onSwitch = () => {
    const wanted = globalSwitch.checked;
    busy(globalSwitch, async () => {
      try {
        await call("admin_set_global_trading", { enabled: wanted, reason: wanted ? "" : "halted from the page" });
      } catch (error) {
        globalSwitch.checked = !wanted;
        throw error;
      }
    });
  };
  const form = $("#disable-user-form");
  const onDisable = (event) => {
    event.preventDefault();
    const uid = String(new FormData(form).get("uid")).trim();
    busy(form.querySelector("[type=submit]"), async () => {
      await call("admin_disable_user_trading", { uid, reason: "switched off by an administrator" });
      form.reset();
    });
  };
  const people = peopleTable(call);
  globalSwitch.addEventListener("change", onSwitch);
  form.addEventListener("submit", onDisable);
  return () => {
    people.off();
    globalSwitch.removeEventListener("change", onSwitch);
    form.removeEventListener("submit", onDisable);
    region.hidden = true;
  };
}

// People, a page at a time, searchable by email; one click switches a person's trading off.
function peopleTable(call) {
  const actions = listeners();
  const search = $("#people-search");
  const more = $("#people-more");
  const body = $("#people-body");
  let query = { search: "", after: "" };

  const load = (control, append) =>
    busy(control, async () => {
      const page = await call("admin_list_people", query);
      const rows = page.people.map((person) => personRow(call, person));
      if (append) body.append(...rows);
      else body.replaceChildren(...rows);
      more.hidden = !page.next;
      query = { ...query, after: page.next || "" };
    });

  actions.on(search, "submit", (event) => {
    event.preventDefault();
    query = { search: String(new FormData(search).get("search")).trim(), after: "" };
    load(search.querySelector("[type=submit]"), false);
  });
  actions.on(more, "click", () => load(more, true));
  load(search.querySelector("[type=submit]"), false);
  return actions;
}

function personRow(call, person) {
  const row = document.createElement("tr");
  const cells = [
    person.email ?? "—",
    person.uid,
    person.sync_state,
    person.trading ? "on" : "off",
    person.last_error ?? "—",
  ];
  cells.forEach((text, i) => {
    const cell = document.createElement(i === 0 ? "th" : "td");
    if (i === 0) cell.scope = "row";
    cell.textContent = text;
    row.append(cell);
  });
  const action = document.createElement("td");
  if (person.trading) {
    const off = document.createElement("button");
    off.type = "button";
    off.textContent = "Disable trading";
    off.setAttribute("aria-label", `Disable trading for ${person.email ?? person.uid}`);
    off.addEventListener("click", () =>
      busy(off, async () => {
        await call("admin_disable_user_trading", {
          uid: person.uid,
          reason: "switched off by an administrator",
        });
        row.cells[3].textContent = "off";
        off.remove();
      }),
    );
    action.append(off);
  }
  row.append(action);
  return row;
}

function summary(run) {
  const at = run.finished_at?.toDate?.().toLocaleString() ?? "running";
  const errors = Object.entries(run.errors_by_code ?? {})
    .map(([code, n]) => `${code} ${n}`)
    .join(", ");
  if (run.halted) return `finished ${at}: trading is halted for everyone, nobody was synced`;
  return [
    `finished ${at} (${run.mode}, ${run.duration_ms} ms)`,
    `users ${run.users_total}: synced ${run.synced ?? 0}, failed ${run.failed ?? 0}, ` +
      `switched off ${run.skipped_disabled ?? 0}, without keys ${run.skipped_no_keys ?? 0}`,
    errors ? `errors: ${errors}` : "no errors",
  ].join("\n");
}

/** The last hour: runs, people synced and failed (by reason), deadlines reached, deliveries,
 * and the sentence saying whether anything needs attention now. */
function renderHealth(region, hour) {
  setField(region, "health_sentence", hour.sentence);
  const reasons = Object.entries(hour.failed_by_reason || {})
    .map(([code, n]) => `${n} ${code}`)
    .join(", ");
  setField(region, "health_runs", String(hour.runs));
  setField(region, "health_synced", String(hour.synced));
  setField(region, "health_failed", reasons ? `${hour.failed} (${reasons})` : String(hour.failed));
  setField(region, "health_deadline", String(hour.deadline_hits));
  setField(region, "health_deliveries", `${hour.deliveries_failed} failed attempts, ${hour.deliveries_gave_up} webhooks switched off`);
  $("#health").hidden = false;
}
