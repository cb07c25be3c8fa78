// The page: a signed-out visitor sees only the sign-in form; a signed-in person their own data,
// live, in views at their own addresses (views.js); an administrator also Operations.
import {
  createUserWithEmailAndPassword,
  onAuthStateChanged,
  signInWithEmailAndPassword,
  signOut,
} from "firebase/auth";
import { connect } from "./backend.js";
import { startBacktest } from "./backtest.js";
import { otherAccountNotice, renderKeysLine, startDashboard } from "./dashboard.js";
import { startHistory } from "./history.js";
import { startLive } from "./live.js";
import { startNotifications } from "./notifications.js";
import { startOperations } from "./operations.js";
import { startStrategies } from "./strategies.js";
import { $, busy, clearError, showError, withRestingChoice } from "./ui.js";
import { liveViews, route } from "./views.js";

// Alpaca's authorize page sends the person back here with ?code=...&state=...: finished once
// they are signed in, then taken out of the address bar.
const returned = new URLSearchParams(window.location.search);
let connecting = returned.has("state") ? { code: returned.get("code") || "", state: returned.get("state") } : null;
// back from Alpaca: the keys are in Settings
if (connecting) window.history.replaceState(null, "", `${window.location.pathname}#/settings`);

async function finishConnect({ auth, call }) {
  const pending = connecting;
  connecting = null;
  if (!pending.code) throw new Error(`Alpaca did not connect: ${returned.get("error") || "no code came back"}`);
  const connected = await call("finish_alpaca_connect", pending);
  renderKeysLine(
    { key_id_masked: connected.key_id, keys_paper: connected.paper, keys_version: connected.keys_version },
    auth.currentUser?.uid,
  );
  $("#keys-notice").textContent = otherAccountNotice(connected.trades_in_other_account);
}

async function boot() {
  let backend;
  try {
    backend = await connect();
  } catch (error) {
    $("#loading").hidden = true;
    showError(error);
    return;
  }
  const { auth, call } = backend;
  let stop = () => {};
  // what the signed-in view looks like before anyone's data is drawn into it: put back on
  // every change of person, before anything else can show
  const signedIn = $("#signed-in");
  const pristine = signedIn.innerHTML;

  const form = $("#auth-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const email = String(data.get("email")).trim();
    const password = String(data.get("password"));
    const create = event.submitter?.value === "create";
    busy(event.submitter, () =>
      create
        ? createUserWithEmailAndPassword(auth, email, password)
        : signInWithEmailAndPassword(auth, email, password),
    );
  });
  $("#sign-out").addEventListener("click", (event) => busy(event.currentTarget, () => signOut(auth)));
  // the signed-in view is redrawn from scratch for each person: its handlers are delegated
  signedIn.addEventListener("click", (event) => {
    const button = event.target.closest("#delete-account");
    if (!button) return;
    const sure = window.confirm(
      "Delete your account? Your keys, trades, signals and history are removed for good.",
    );
    if (!sure) return;
    busy(button, async () => {
      await withRestingChoice(call, "delete_my_account", { confirm: true });
      await signOut(auth);
    });
  });

  onAuthStateChanged(auth, async (user) => {
    stop();
    stop = () => {};
    signedIn.innerHTML = pristine; // nothing of the previous person survives
    clearError();
    $("#loading").hidden = true;
    $("#signed-out").hidden = Boolean(user);
    $("#signed-in").hidden = !user;
    $("#sign-out").hidden = !user;
    $("#who").hidden = !user;
    $("#who").textContent = user ? `Signed in as ${user.email}` : "";
    if (!user) {
      form.reset();
      return;
    }
    clearError();
    const live = liveViews();
    const session = { ...backend, live };
    const stopDashboard = startDashboard(session, user);
    if (connecting) busy($("#connect-alpaca"), () => finishConnect(backend));
    const stopStrategies = startStrategies(session, user.uid);
    const stopBacktest = startBacktest(session, user.uid);
    const stopHistory = startHistory(session, user.uid);
    const stopNotifications = startNotifications(session, user);
    const stopLive = startLive(session, user.uid);
    let stopOperations = () => {};
    let admin = false;
    const navigated = () => route(live, admin, true);
    window.addEventListener("hashchange", navigated);
    // the link of the view already shown changes no address: its heading takes the focus
    const again = (event) => event.target.closest?.("#main-nav a[aria-current=page]") && navigated();
    signedIn.addEventListener("click", again);
    let ended = false;
    stop = () => {
      ended = true;
      window.removeEventListener("hashchange", navigated);
      signedIn.removeEventListener("click", again);
      live.stop();
      stopDashboard();
      stopStrategies();
      stopBacktest();
      stopHistory();
      stopNotifications();
      stopLive();
      stopOperations();
    };
    route(live, admin, false);
    try {
      admin = (await user.getIdTokenResult()).claims.admin === true;
    } catch (error) {
      showError(error);
    }
    if (admin && !ended) {
      stopOperations = startOperations(session);
      route(live, admin, false); // #/operations, when that is where they came to
    }
  });
}

boot();
