"""Local development: stand-ins for the services with no Firebase emulator (Alpaca, Secret
Manager), helpers that speak to the Firebase emulators over REST, and demo seeding.

The stand-ins' addresses are written once, in `functions/.env.demo-agenttrader` (which the
Functions emulator loads); the Makefile includes that file and this module reads it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

DEMO_ENV = Path(__file__).resolve().parents[1] / "functions" / ".env.demo-agenttrader"


def _demo_env() -> dict[str, str]:
    values = {}
    for line in DEMO_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


_ENV = _demo_env()
ALPACA_PORT = urlsplit(_ENV["ALPACA_API_BASE_URL"]).port or 80
"""Where the Alpaca stand-in listens for the demo and the tests (ALPACA_*_BASE_URL)."""
SECRETS_PORT = int(_ENV["SECRET_MANAGER_EMULATOR_HOST"].rsplit(":", 1)[1])
"""Where the Secret Manager stand-in listens (SECRET_MANAGER_EMULATOR_HOST)."""

SECRET_LOCAL = DEMO_ENV.parent / ".secret.local"
"""The Functions emulator's values for secret params: made by dev/bootstrap.sh, never committed."""
OAUTH_CLIENT_ID = _ENV["ALPACA_OAUTH_CLIENT_ID"]
"""The app's client id at the Alpaca stand-in (ALPACA_OAUTH_CLIENT_ID)."""
OAUTH_REDIRECT_URL = _ENV["ALPACA_OAUTH_REDIRECT_URL"]


def _secret_local(wanted: str) -> str:
    for line in SECRET_LOCAL.read_text().splitlines():
        name, _, value = line.partition("=")
        if name.strip() == wanted:
            return value.strip()
    raise RuntimeError(f"{SECRET_LOCAL} has no {wanted}: run dev/bootstrap.sh")


def oauth_client_secret() -> str:
    """The app's client secret as the Functions emulator has it (ALPACA_OAUTH_CLIENT_SECRET in
    functions/.secret.local), so the stand-in knows the same one."""
    return _secret_local("ALPACA_OAUTH_CLIENT_SECRET")


def webhook_signing_key() -> str:
    """The app key webhook signatures derive from, as the Functions emulator has it
    (WEBHOOK_SIGNING_KEY in functions/.secret.local), so a local receiver can check them."""
    return _secret_local("WEBHOOK_SIGNING_KEY")
