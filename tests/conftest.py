"""Fixtures: the emulators (started by `make test`), both stand-ins, clean state per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import requests
from bot_world import World
from browsing import CHROMIUM_ARGS, SITE
from google.cloud import firestore
from oauth_app import CLIENT_ID, CLIENT_SECRET, REDIRECT
from playwright.sync_api import Browser, Page, sync_playwright

from agenttrader.api.guard import Services
from agenttrader.broker.alpaca import AlpacaBroker, BrokerFactory, RetryPolicy
from agenttrader.broker.keystore import AlpacaKeys, KeyStore
from agenttrader.context.platform import OAuthApp, Platform
from agenttrader.core import clients
from localdev import ALPACA_PORT, OAUTH_CLIENT_ID, SECRETS_PORT, emulators, oauth_client_secret
from localdev.alpaca_standin import AlpacaServer
from localdev.secret_manager_standin import SecretManagerServer

FAST_RETRY = RetryPolicy(attempts=3, budget_s=5, max_wait_s=1.0, initial_wait_s=0.05)


def _require_emulators() -> None:
    missing = [
        name
        for name in ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST")
        if not os.environ.get(name)
    ]
    if missing:
        pytest.exit(
            f"{', '.join(missing)} not set: run the tests with `make test`, which starts the "
            "Firebase emulators around pytest",
            returncode=2,
        )


@pytest.fixture(scope="session")
def alpaca_server() -> Iterator[AlpacaServer]:
    server = AlpacaServer(ALPACA_PORT).start()
    # the app the Functions emulator knows (ALPACA_OAUTH_CLIENT_ID, functions/.secret.local)
    server.market.oauth_clients[OAUTH_CLIENT_ID] = oauth_client_secret()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def secret_server() -> Iterator[SecretManagerServer]:
    server = SecretManagerServer(SECRETS_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def alpaca(alpaca_server: AlpacaServer) -> Iterator[AlpacaServer]:
    alpaca_server.market.reset()
    yield alpaca_server
    alpaca_server.market.reset()


@pytest.fixture
def secrets(secret_server: SecretManagerServer) -> SecretManagerServer:
    secret_server.store.reset()
    return secret_server


@pytest.fixture
def db() -> firestore.Client:
    _require_emulators()
    emulators.clear_firestore()
    return clients.firestore_client()


@pytest.fixture
def keystore(secrets: SecretManagerServer) -> KeyStore:
    os.environ["SECRET_MANAGER_EMULATOR_HOST"] = secrets.host
    return KeyStore(clients.secret_manager_client(), clients.project_id())


@pytest.fixture
def brokers(alpaca: AlpacaServer) -> BrokerFactory:
    def make(keys: AlpacaKeys) -> AlpacaBroker:
        return AlpacaBroker(
            keys,
            trading_url=alpaca.url,
            data_url=alpaca.url,
            timeout_s=2.0,
            retry_policy=FAST_RETRY,
        )

    return make


@pytest.fixture
def platform(db: firestore.Client, keystore: KeyStore, brokers: BrokerFactory) -> Platform:
    return Platform(db=db, keys=keystore, brokers=brokers, now=lambda: datetime.now(UTC))


@pytest.fixture
def services(platform: Platform) -> Services:
    deleted: list[str] = []
    return Services(
        platform=platform, buying_power_fraction=Decimal("0.10"), delete_auth_user=deleted.append
    )


@pytest.fixture
def world(services: Services, alpaca: AlpacaServer) -> World:
    """One person with paper keys and trading on, on a Monday the market is open."""
    return World(services, alpaca)


@pytest.fixture
def connecting(services: Services, alpaca: AlpacaServer) -> Services:
    """The services with Connect with Alpaca set up: the test app, registered with the
    stand-in's authorize page, token and revocation endpoints."""
    alpaca.market.oauth_clients[CLIENT_ID] = CLIENT_SECRET
    app = OAuthApp(
        CLIENT_ID,
        lambda: CLIENT_SECRET,
        REDIRECT,
        f"{alpaca.url}/oauth/authorize",
        f"{alpaca.url}/oauth/token",
        f"{alpaca.url}/oauth/revoke",
    )
    return replace(services, oauth=app)


# -- the page in Chromium (tests/test_browser.py, tests/test_views.py) ---------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def site(db: firestore.Client, alpaca: AlpacaServer, secrets: SecretManagerServer) -> str:
    """A clean project behind the page: no accounts, no documents, no secrets."""
    emulators.clear_auth()
    answer = requests.get(f"{SITE}/__/firebase/init.json", timeout=10)
    assert answer.status_code == 200, "the Hosting emulator does not serve the page"
    return SITE


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    """A fresh tab; an exception the page's script did not catch fails the test."""
    context = browser.new_context()
    opened = context.new_page()
    uncaught: list[str] = []
    opened.on("pageerror", lambda error: uncaught.append(str(error)))
    yield opened
    context.close()
    assert uncaught == [], f"the page's script failed: {uncaught}"
