// The Firebase SDK, configured from the Hosting-provided /__/firebase/init.json, so the same
// bundle serves a real project and the emulators (a demo- project on localhost).
import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth } from "firebase/auth";
import { connectFirestoreEmulator, getFirestore } from "firebase/firestore";
import { connectFunctionsEmulator, getFunctions, httpsCallable } from "firebase/functions";

const REGION = "us-central1";
// The emulator ports in firebase.json.
const EMULATORS = { auth: 9099, firestore: 8080, functions: 5001 };

export async function connect() {
  const answer = await fetch("/__/firebase/init.json");
  if (!answer.ok) throw new Error("this page is not served by Firebase Hosting");
  const config = await answer.json();
  const app = initializeApp(config);
  const auth = getAuth(app);
  const db = getFirestore(app);
  const functions = getFunctions(app, REGION);
  if (config.projectId.startsWith("demo-")) {
    const host = location.hostname;
    connectAuthEmulator(auth, `http://${host}:${EMULATORS.auth}`, { disableWarnings: true });
    connectFirestoreEmulator(db, host, EMULATORS.firestore);
    connectFunctionsEmulator(functions, host, EMULATORS.functions);
  }
  const call = async (name, data = {}) => (await httpsCallable(functions, name)(data)).data;
  return { auth, db, call };
}
