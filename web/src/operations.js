// The Operations region, for administrators only (custom claim admin: true): the global switch,
// the last pulse, and switching one person's trading off.
import { doc, onSnapshot } from "firebase/firestore";
import { $, busy, setField, showError } from "./ui.js";

export function startOperations({ db, call }) {
  const region = $("#operations");
  region.hidden = false;
  const globalSwitch = $("#global-trading");
  const stops = [
    onSnapshot(
      doc(db, "ops", "trading"),
      (snap) => {
        const halted = snap.data()?.enabled === false;
        globalSwitch.checked = !halted;
        const reason = snap.data()?.reason ? `: ${snap.data().reason}` : "";
        setField(
          region,
          "global_line",
          halted ? `Trading is halted for everyone${reason}.` : "Trading is on for everyone.",
        );
      },
      showError,
    ),
    onSnapshot(
      doc(db, "ops", "last_pulse"),
      (snap) => setField(region, "last_pulse", snap.exists() ? summary(snap.data()) : "No pulse has run yet."),
      showError,
    ),
  ];
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
  globalSwitch.addEventListener("change", onSwitch);
  form.addEventListener("submit", onDisable);
  return () => {
    stops.forEach((stop) => stop());
    globalSwitch.removeEventListener("change", onSwitch);
    form.removeEventListener("submit", onDisable);
    region.hidden = true;
  };
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
