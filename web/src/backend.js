// The Firebase SDK, configured from the Hosting-provided /__/firebase/init.json, so the same
// bundle serves a real project and the emulators (a demo- project on localhost).
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const REGION = "us-central1";

export async function connect() {
  const answer = await fetch("/__/firebase/init.json");
  if (!answer.ok) throw new Error("this page is not served by Firebase Hosting");
  const config = await answer.json();
  const app = initializeApp(config);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, REGION);
  if (config.projectId.startsWith("demo-")) {
    const emulators = await emulatorAddresses();
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
