// Small DOM helpers: a failed call's message beside what caused it, buttons that cannot be
// pressed twice.

export const $ = (selector, root = document) => root.querySelector(selector);

const AUTH_MESSAGES = {
  "auth/invalid-credential": "Wrong email or password.",
  "auth/user-not-found": "Wrong email or password.",
  "auth/wrong-password": "Wrong email or password.",
  "auth/invalid-email": "That is not an email address.",
  "auth/missing-password": "Enter a password.",
  "auth/weak-password": "Choose a password of at least 6 characters.",
  "auth/email-already-in-use": "An account with this email exists: sign in instead.",
  "auth/too-many-requests": "Too many attempts: wait a moment and try again.",
  "auth/network-request-failed": "The sign-in service could not be reached.",
};

/** A person-readable message for any error a call, a listener or sign-in gives: never a stack. */
export function messageOf(error) {
  if (error && AUTH_MESSAGES[error.code]) return AUTH_MESSAGES[error.code];
  const message = (error && typeof error.message === "string" && error.message) || "";
  const code = error && typeof error.code === "string" ? error.code.replace(/^functions\//, "") : "";
  const firstLine = message.split("\n")[0].replace(/^Firebase: /, "").slice(0, 500);
  if (code) console.warn(`call failed: ${code}`); // the code is for whoever debugs, not the sentence
  if (!firstLine || firstLine === code || firstLine.toLowerCase() === "internal") {
    return "Something went wrong; try again.";
  }
  return firstLine;
}

/** The alert area nearest a control: its form's or its region's own, else the page's. */
export function alertFor(control) {
  for (let node = control?.parentElement; node; node = node.parentElement) {
    const area = node.querySelector(":scope > .form-alert, :scope > form > .form-alert");
    if (area) return area;
  }
  return $("#alert");
}

/** Show an error beside `control` (or at the top of the page, for a listener's failure). */
export function showError(error, control) {
  const area = alertFor(control);
  area.textContent = messageOf(error);
  if (control) area.scrollIntoView?.({ block: "nearest" }); // seen where the person is looking
}

export function clearError(control) {
  alertFor(control).textContent = "";
  $("#alert").textContent = "";
}

/** Event handlers added with `on`, all removed by `off` (when the person signs out). */
export function listeners() {
  const added = [];
  return {
    on(node, type, handler) {
      node.addEventListener(type, handler);
      added.push([node, type, handler]);
    },
    off() {
      added.forEach(([node, type, handler]) => node.removeEventListener(type, handler));
      added.length = 0;
    },
  };
}

/** Run `work` with `control` disabled (no double submit); a failure shows in the alert area
 * beside it. */
export async function busy(control, work) {
  if (control.disabled) return undefined;
  control.disabled = true;
  control.setAttribute("aria-busy", "true");
  clearError(control);
  try {
    return await work();
  } catch (error) {
    showError(error, control);
    return undefined;
  } finally {
    control.disabled = false;
    control.removeAttribute("aria-busy");
  }
}

/** A decimal string rounded to the cent, half to even, without passing through a binary
 * float: "10234.5650000001" -> "10234.57". */
/** A trade or strategy at Alpaca: paper or live orders (a shadow one is recorded here only). */
export const atBroker = (mode) => mode === "paper" || mode === "live";

/** "Live", in words, beside what trades real money (never colour alone). */
export function liveBadge(mode) {
  if (mode !== "live") return [];
  const badge = document.createElement("span");
  badge.className = "badge-live";
  badge.textContent = "Live";
  return [badge];
}

export function toCents(text) {
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^-/, "").split(".");
  if (fraction.length <= 2) return text;
  let cents = BigInt(whole + fraction.slice(0, 2));
  const rest = fraction.slice(2).replace(/0+$/, "");
  if (rest > "5" || (rest === "5" && cents % 2n === 1n)) cents += 1n;
  const digits = cents.toString().padStart(3, "0");
  return `${negative && cents !== 0n ? "-" : ""}${digits.slice(0, -2)}.${digits.slice(-2)}`;
}

/** An amount of money as a person reads it, to the cent. */
export function dollars(value) {
  return money(value === undefined || value === null || value === "" ? value : toCents(String(value)));
}

/** "1234567.5" -> "$1,234,567.50" without passing through a binary float. */
export function money(value) {
  if (value === undefined || value === null || value === "") return "—";
  const text = String(value);
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = text.replace(/^-/, "").split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}$${grouped}.${(fraction + "00").slice(0, Math.max(2, fraction.length))}`;
}

export function percent(value) {
  if (value === undefined || value === null || value === "") return "—";
  const text = String(value);
  const [whole, fraction = ""] = text.split(".");
  return `${whole}.${(fraction + "00").slice(0, 2)}%`;
}

export function when(timestamp) {
  if (!timestamp) return "never";
  const date = typeof timestamp.toDate === "function" ? timestamp.toDate() : new Date(timestamp);
  return date.toLocaleString();
}

export function setField(root, name, text) {
  const node = root.querySelector(`[data-field="${name}"]`);
  if (node) node.textContent = text;
  return node;
}

export function sign(node, value) {
  node.classList.toggle("gain", Number(value) > 0);
  node.classList.toggle("loss", Number(value) < 0);
}

/** "aapl, msft nvda" -> ["AAPL", "MSFT", "NVDA"]: what a Symbols field means. */
export function symbolsOf(text) {
  return String(text)
    .split(/[\s,]+/)
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
}

/** Call `name` with `data`; when the person's exits rest at Alpaca and they have not said what
 * becomes of them, ask, then call again with their answer (`cancel_resting`). */
export async function withRestingChoice(call, name, data) {
  try {
    return await call(name, data);
  } catch (error) {
    if (error?.details?.reason !== "RESTING_EXITS") throw error;
    const symbols = (error.details.symbols || []).join(", ");
    const cancel = window.confirm(
      `Exits of yours rest at Alpaca (${symbols}). Press OK to cancel them at Alpaca, or Cancel to leave them working there: left working, they go on protecting what you hold.`,
    );
    return call(name, { ...data, cancel_resting: cancel });
  }
}
