// The Firebase SDK, configured from the Hosting-provided /__/firebase/init.json, so the same
// bundle serves a real project and the emulators (a demo- project on localhost).
import { initializeApp } from "firebase/app";
import { CustomProvider, initializeAppCheck, ReCaptchaEnterpriseProvider } from "firebase/app-check";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const REGION = "us-central1";
const EMULATED_APP_ID = "1:0:web:emulated"; // a demo- project has no registered web app

export async function connect() {
  const [answer, appCheck] = await Promise.all([fetch("/__/firebase/init.json"), appCheckSettings()]);
  if (!answer.ok) throw new Error("this page is not served by Firebase Hosting");
  const config = await answer.json();
  const emulated = config.projectId.startsWith("demo-");
  // known before Auth starts: Auth must be pointed at its emulator before its first request
  const emulators = emulated ? await emulatorAddresses() : null;
  const app = initializeApp(emulated ? { appId: EMULATED_APP_ID, ...config } : config);
  if (appCheck.siteKey) protect(app, appCheck, emulated);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, REGION);
  if (emulators) {
    connectAuthEmulator(auth, `http://${emulators.auth.host}:${emulators.auth.port}`, { disableWarnings: true });
    connectFirestoreEmulator(db, emulators.firestore.host, emulators.firestore.port);
    connectFunctionsEmulator(functions, emulators.functions.host, emulators.functions.port);
  }
  const call = async (name, data = {}) => (await httpsCallable(functions, name)(data)).data;
  return { auth, db, call };
}

// Where the emulators listen, as the Hosting emulator itself says (its init.js carries the
// addresses firebase.json gave them): never constants, so moving a port moves the page too.
async function emulatorAddresses() {
  const answer = await fetch("/__/firebase/init.js?useEmulator=true");
  const text = answer.ok ? await answer.text() : "";
  const found = text.match(/var firebaseEmulators = (\{[\s\S]*?\n\});/);
  const emulators = found ? JSON.parse(found[1]) : {};
  for (const name of ["auth", "firestore", "functions"]) {
    if (!emulators[name]?.host || !emulators[name]?.port) {
      throw new Error(`the ${name} emulator is not running: start the emulators (make demo ARGS=--serve)`);
    }
  }
  return emulators;
}

// The page's App Check settings (/app-check.json, written from the APP_CHECK_SITE_KEY param at
// deploy): no site key, no App Check.
async function appCheckSettings() {
  const answer = await fetch("/app-check.json");
  return answer.ok ? answer.json() : {};
}

// App Check: every call carries a token saying it comes from this page, which the functions
// require (ENFORCE_APP_CHECK). In production reCAPTCHA Enterprise vouches for the page; on the
// emulators App Check's debug provider does (the debug token given in the settings, or one the
// SDK makes and logs for registering), and reCAPTCHA is never loaded.
function protect(app, { siteKey, debugToken }, emulated) {
  let provider = new ReCaptchaEnterpriseProvider(siteKey);
  if (emulated) {
    self.FIREBASE_APPCHECK_DEBUG_TOKEN = debugToken || true;
    provider = new CustomProvider({ getToken: () => Promise.reject(new Error("debug mode only")) });
  }
  initializeAppCheck(app, { provider, isTokenAutoRefreshEnabled: true });
}
