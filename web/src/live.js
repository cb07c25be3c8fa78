// The Live trading region (Settings): the person's consent to real orders in their live Alpaca
// account, given by typing its number's last four characters, revoked in one click.
import { doc } from "firebase/firestore";
import { $, busy, listeners, setField, when } from "./ui.js";

export function startLive({ db, call, live }, uid) {
  const region = $("#live");
  live.watch("settings", doc(db, "users", uid, "settings", "live"), (snap) => {
    const consent = snap.data();
    const allowed = Boolean(consent && !consent.revoked_at);
    setField(
      region,
      "live_line",
      allowed
        ? `Live trading is allowed in your live account ending ${consent.account_number_last4}, since ${when(consent.consented_at)}. ` +
            `In your first five trading days of live trading (from ${when(consent.first_consented_at || consent.consented_at)}), a live strategy uses ${consent.first_days_percent ?? 100}% of its allocation. ` +
            "Every live position's stop rests at Alpaca; stopping live trading stops new live positions, never those stops."
        : consent?.revoked_at
          ? `Live trading was stopped on ${when(consent.revoked_at)}: no new live position is opened; the stops of those you hold still rest at Alpaca.`
          : "Live trading is not allowed: no order goes to a live account.",
    );
    $("#live-stop").hidden = !allowed;
  });
  const { on, off } = listeners();
  const form = $("#live-form");
  on(form, "submit", (event) => {
    event.preventDefault();
    const last4 = String(new FormData(form).get("account_last4")).trim();
    busy(form.querySelector("[type=submit]"), async () => {
      await call("allow_live_trading", { account_last4: last4 });
      form.reset();
    });
  });
  const stop = $("#live-stop");
  on(stop, "click", () => busy(stop, () => call("stop_live_trading", {})));
  return off;
}
