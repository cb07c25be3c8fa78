"""The web client in a real headless Chromium, served by the Hosting emulator, against the Auth,
Firestore and Functions emulators and both stand-ins. Screenshots of the main screens go to
test-output/screenshots/ (the path is printed)."""

from __future__ import annotations

import contextlib
import csv
import json
import re
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
import requests
from browsing import PASSWORD, SHOTS, SITE
from google.cloud import firestore
from operator_scripts import ROOT
from playwright.sync_api import Browser, Dialog, Locator, Page, expect
from test_backtest import LONG

from agenttrader.bot import notices
from agenttrader.bot.strategies import STRATEGIES
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.broker.keystore import AlpacaKeys, KeyStore
from agenttrader.context.memory import PulseMemory
from agenttrader.context.platform import Platform
from agenttrader.notify.webhook import signing_secret
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev import emulators, webhook_signing_key
from localdev.alpaca_standin import AlpacaServer
from localdev.secret_manager_standin import SecretManagerServer
from localdev.seed import open_trade, register_alpaca_account
from localdev.webhook_receiver import Behaviour, WebhookReceiver

LIVE_S = 10_000  # ms Playwright waits for a live change; the page measures far less
# A call and the listener that shows its result on a loaded two-core machine can pass the
# default 5 s; every expectation waits as long as a live change may take.
expect.set_options(timeout=LIVE_S)
SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "QCOM", "TXN", "KO", "JPM", "PYPL", "IBM", "PEP", "DIS",
]  # fmt: skip


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = SHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True, scale="css")
    print(f"screenshot: {target}")


VIEW_OF = {
    "Account": "Overview",
    "Sync status": "Overview",
    "Open trades": "Overview",
    "Latest notifications": "Overview",
    "Strategies": "Strategies",
    "Signals": "Strategies",
    "Backtest": "Backtest",
    "Trade history": "History",
    "Notifications": "Notifications",
    "Alpaca keys": "Settings",
    "Risk limits": "Settings",
    "Notification settings": "Settings",
    "Your account": "Settings",
    "Live trading": "Settings",
    "Operations": "Operations",
}
"""Each region and the view that shows it (the navigation's link)."""


def go(page: Page, view: str) -> None:
    """Follow the navigation's link to `view`; its heading takes the focus."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=view, exact=True).click()
    expect(page.locator("[data-view]:not([hidden]) > h2")).to_be_focused()


def on_view(page: Page, name: str) -> Locator:
    """The region `name`, on its view (navigated to when another is shown)."""
    view = VIEW_OF[name]
    current = page.locator("#main-nav a[aria-current=page]")
    expect(current).to_have_count(1)  # the page has shown its first view
    if current.inner_text() != view:
        go(page, view)
    return page.get_by_role("region", name=name)


def create_account(page: Page, email: str) -> None:
    page.goto(SITE)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("region", name="Account")).to_be_visible()  # the overview


def save_keys(page: Page, key_id: str, secret: str) -> None:
    keys = on_view(page, "Alpaca keys")
    keys.get_by_label("Key ID").fill(key_id)
    keys.get_by_label("Secret key").fill(secret)
    keys.get_by_role("button", name="Save keys").click()


def person_with_keys(
    page: Page, alpaca: AlpacaServer, email: str, key_id: str, cash: str = "100000"
) -> AlpacaKeys:
    """Someone who signed up on the page and saved paper keys Alpaca knows (the save
    acknowledged: the keys line shows them)."""
    secret = f"{key_id.lower()}-secret"
    keys = register_alpaca_account(alpaca.url, key_id, secret, cash=cash)
    create_account(page, email)
    save_keys(page, key_id, secret)
    expect(on_view(page, "Alpaca keys")).to_contain_text("Saved:")
    return keys


def open_shadow_trade_from_a_signal(
    page: Page, alpaca: AlpacaServer, keys: AlpacaKeys
) -> tuple[str, Locator]:
    """Generate a signal that acts (BUY or SELL) with `Open shadow trade` checked; returns its
    symbol and the Signals region."""
    symbol, strategy = acting_symbol(alpaca, keys)
    signals = on_view(page, "Signals")
    signals.get_by_label("Symbol").fill(symbol)
    signals.get_by_label("Strategy").select_option(strategy)
    signals.get_by_label("Open shadow trade").check()
    signals.get_by_role("button", name="Generate signal").click()
    return symbol, signals


def switch_on(page: Page, db: firestore.Client, email: str) -> str:
    """Trading switched on from the page and the write acknowledged: the switch is no longer
    busy and Firestore has it (a write still in flight could land after a later change).
    Returns the person's uid."""
    switch = on_view(page, "Sync status").get_by_role("switch", name="Trading enabled")
    switch.check()
    expect(switch).to_be_checked()
    expect(switch).to_be_enabled()
    uid = uid_of(db, email)
    deadline = time.monotonic() + LIVE_S / 1000
    while not (paths.trading_status(db, uid).get().to_dict() or {}).get("enabled"):
        assert time.monotonic() < deadline, "the switch never reached Firestore"
        time.sleep(0.1)
    return uid


def freeze(alpaca: AlpacaServer, at: float) -> None:
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": at}, timeout=5).raise_for_status()


def acting_symbol(
    alpaca: AlpacaServer, keys: AlpacaKeys, sides: tuple[str, ...] = ("BUY", "SELL")
) -> tuple[str, str]:
    """A symbol and strategy that give one of `sides` at the stand-in's frozen time (BUY: what
    a long-only strategy enters on)."""
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    try:
        for strategy in STRATEGIES.values():
            for symbol in SYMBOLS:
                bars = broker.daily_bars(symbol, strategy.lookback_days)
                if strategy.decide(bars).action in sides:
                    return symbol, strategy.id
    finally:
        broker.close()
    raise AssertionError("no symbol acts at this time; pick another frozen time")


def uid_of(db: firestore.Client, email: str) -> str:
    for doc in (
        db.collection("users").where(filter=firestore.FieldFilter("email", "==", email)).stream()
    ):
        return doc.id
    raise AssertionError(f"no profile for {email}")


def test_a_signed_out_visitor_sees_only_the_sign_in_form(page: Page) -> None:
    page.goto(SITE)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name="Create account")).to_be_visible()
    for region in ("Account", "Alpaca keys", "Open trades", "Signals", "Operations"):
        expect(page.get_by_role("region", name=region)).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.get_by_label("Email", exact=True).fill("nobody@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    signin = page.get_by_role("region", name="Sign in")
    expect(signin.get_by_role("alert")).to_have_text("Wrong email or password.")
    shot(page, "signed-out")


def test_a_new_persons_whole_journey(
    page: Page, alpaca: AlpacaServer, db: firestore.Client, platform: Platform
) -> None:
    started = time.monotonic()
    t0 = 1_790_000_000.0
    freeze(alpaca, t0)
    keys = register_alpaca_account(alpaca.url, "PKJOURNEY001", "journey-secret-1", cash="25000")

    create_account(page, "journey@example.com")
    save_keys(page, keys.key_id, "journey-secret-1")
    keys_region = on_view(page, "Alpaca keys")
    expect(keys_region).to_contain_text("Saved: PKJO****Y001 (paper)")
    expect(keys_region.get_by_label("Secret key")).to_have_value("")
    uid = switch_on(page, db, "journey@example.com")

    account = on_view(page, "Account")
    # switching trading on asks for a sync at once (request_sync): no waiting for the pulse
    expect(account).to_contain_text("$25,000.00", timeout=LIVE_S)
    assert run_pulse(platform).counts["synced"] == 1
    expect(on_view(page, "Sync status")).not_to_contain_text("never")
    shot(page, "dashboard-synced")

    symbol, signals = open_shadow_trade_from_a_signal(page, alpaca, keys)
    expect(signals.get_by_role("listitem").first).to_contain_text(symbol, timeout=LIVE_S)
    trades = on_view(page, "Open trades")
    row = trades.get_by_role("row").filter(has_text=symbol)
    expect(row).to_have_count(1, timeout=LIVE_S)
    pnl_before = row.get_by_role("cell").nth(4).inner_text()

    freeze(alpaca, t0 + 3 * 3600 + 600)  # the price moves
    pulsed = time.monotonic()
    assert run_pulse(platform).counts["synced"] == 1
    expect(row.get_by_role("cell").nth(4)).not_to_have_text(pnl_before, timeout=LIVE_S)
    live_ms = (time.monotonic() - pulsed) * 1000
    print(f"live: a pulse's change showed on the page {live_ms:.0f} ms after it began")
    assert re.match(r"^-?\$[\d,]+\.\d{2}$", row.get_by_role("cell").nth(4).inner_text())
    shot(page, "dashboard-open-trade")

    row.get_by_role("button", name="Close").click()
    expect(trades.get_by_text("No open trades.")).to_be_visible(timeout=LIVE_S)
    closed = [d.to_dict() or {} for d in paths.shadow_trades(db, uid).stream()]
    assert [t["status"] for t in closed] == ["CLOSED"]

    keys_region = on_view(page, "Alpaca keys")
    keys_region.get_by_role("button", name="Remove keys").click()
    expect(keys_region).to_contain_text("No keys saved.", timeout=LIVE_S)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=LIVE_S)
    assert not paths.user(db, uid).get().exists
    with pytest.raises(requests.HTTPError):
        emulators.sign_in(emulators.Person(uid, "journey@example.com", PASSWORD, ""))
    print(f"journey: {time.monotonic() - started:.1f} s")


def test_bad_keys_show_the_alert_and_store_nothing(
    page: Page, db: firestore.Client, secrets: SecretManagerServer
) -> None:
    create_account(page, "badkeys@example.com")
    save_keys(page, "PKBADKEYS001", "not-a-real-secret")
    alert = on_view(page, "Alpaca keys").get_by_role("alert")
    expect(alert).to_contain_text("Alpaca refused these keys")
    expect(alert).not_to_contain_text("Traceback")
    expect(on_view(page, "Alpaca keys")).to_contain_text("No keys saved.")
    assert secrets.store.calls["CreateSecret"] == 0
    assert not list(db.collection("users").stream())
    shot(page, "bad-keys")


def test_a_button_is_disabled_while_its_call_is_in_flight(
    page: Page, alpaca: AlpacaServer, secrets: SecretManagerServer
) -> None:
    register_alpaca_account(alpaca.url, "PKSLOWKEYS01", "slow-secret-1")
    create_account(page, "slow@example.com")
    requests.post(f"{alpaca.url}/_standin/latency", json={"seconds": 1.5}, timeout=5)
    save_keys(page, "PKSLOWKEYS01", "slow-secret-1")
    button = page.get_by_role("button", name="Save keys")
    expect(button).to_be_disabled()
    button.click(force=True)  # a second press while the first is in flight does nothing
    expect(button).to_be_enabled(timeout=LIVE_S)
    expect(on_view(page, "Alpaca keys")).to_contain_text("PKSL****YS01")
    assert secrets.store.calls["AddSecretVersion"] == 1


def test_two_people_in_two_browsers_never_see_each_others_data(
    browser: Browser, site: str, alpaca: AlpacaServer, platform: Platform, db: firestore.Client
) -> None:
    pages = {}
    for name, cash in (("alice", "13579"), ("bob", "24680")):
        register_alpaca_account(alpaca.url, f"PK{name.upper():0<10}", f"{name}-secret-1", cash=cash)
        page = browser.new_context().new_page()
        create_account(page, f"{name}@example.com")
        save_keys(page, f"PK{name.upper():0<10}", f"{name}-secret-1")
        expect(on_view(page, "Alpaca keys")).to_contain_text("Saved:")
        switch_on(page, db, f"{name}@example.com")
        pages[name] = page
    assert run_pulse(platform).counts["synced"] == 2
    expect(pages["alice"].get_by_role("region", name="Account")).to_contain_text("$13,579.00")
    expect(pages["bob"].get_by_role("region", name="Account")).to_contain_text("$24,680.00")
    # bob's cash and buying power never reach alice's page, nor hers his
    assert not {"24,680", "49,360"} & set(re.findall(r"\d+,\d{3}", pages["alice"].content()))
    assert not {"13,579", "27,158"} & set(re.findall(r"\d+,\d{3}", pages["bob"].content()))
    assert "PKBO" not in pages["alice"].content()
    for page in pages.values():
        page.context.close()


def test_operations_is_for_admins_and_an_admin_halts_everyone(
    page: Page, browser: Browser, alpaca: AlpacaServer, db: firestore.Client, platform: Platform
) -> None:
    person_with_keys(page, alpaca, "trader@example.com", "PKTRADER0001")
    switch_on(page, db, "trader@example.com")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Operations")).to_have_count(0)
    page.goto(f"{SITE}#/operations")  # the address alone shows nothing of it
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("region", name="Operations")).to_have_count(0)

    admin = emulators.sign_up("ops@example.com", PASSWORD)
    emulators.set_claims(admin.uid, {"admin": True})
    ops_page = browser.new_context().new_page()
    ops_page.goto(SITE)
    ops_page.get_by_label("Email", exact=True).fill("ops@example.com")
    ops_page.get_by_label("Password").fill(PASSWORD)
    ops_page.get_by_role("button", name="Sign in").click()
    operations = on_view(ops_page, "Operations")
    expect(operations).to_be_visible()
    run_pulse(platform)
    expect(operations).to_contain_text("users 1", timeout=LIVE_S)
    health = operations.get_by_role("status").filter(has_text="attention")
    expect(health).to_have_text("Nothing needs attention now.")  # the last hour at a glance
    expect(operations.get_by_role("definition").first).to_have_text("1")  # one run
    everyone = operations.get_by_role("switch", name="Trading for everyone")
    expect(everyone).to_be_checked()
    everyone.uncheck()
    expect(operations).to_contain_text("Trading is halted for everyone", timeout=LIVE_S)
    assert (paths.global_trading(db).get().to_dict() or {})["enabled"] is False
    assert run_pulse(platform).halted
    shot(ops_page, "operations-halted")

    trader_uid = uid_of(db, "trader@example.com")
    operations.get_by_label("User ID").fill(trader_uid)
    operations.get_by_role("button", name="Disable user trading").click()
    expect(operations.get_by_label("User ID")).to_have_value("", timeout=LIVE_S)
    assert (paths.trading_status(db, trader_uid).get().to_dict() or {})["enabled"] is False
    expect(page.get_by_role("switch", name="Trading enabled")).not_to_be_checked()
    expect(page.get_by_role("region", name="Operations")).to_have_count(0)
    ops_page.context.close()


def test_a_person_runs_a_strategy_within_their_risk_limits(
    page: Page, alpaca: AlpacaServer, db: firestore.Client, platform: Platform
) -> None:
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    freeze(alpaca, monday.timestamp())
    at_monday = replace(platform, now=lambda: monday.astimezone(UTC))
    keys = register_alpaca_account(alpaca.url, "PKSTRATEGY01", "strategy-secret-1")
    create_account(page, "bot@example.com")
    save_keys(page, keys.key_id, "strategy-secret-1")
    expect(on_view(page, "Alpaca keys")).to_contain_text("Saved:")
    uid = switch_on(page, db, "bot@example.com")

    symbol, strategy = acting_symbol(alpaca, keys, sides=("BUY",))
    region = on_view(page, "Strategies")
    expect(region).to_contain_text("No strategies yet.")
    region.get_by_label("Strategy").select_option(strategy)
    region.get_by_label("Symbols").fill(f"{symbol.lower()}, ")
    region.get_by_label("Allocation per position (USD)").fill("2000")
    region.get_by_label("Take profit %").fill("8")
    region.get_by_role("button", name="Save strategy").click()
    row = region.get_by_role("row").filter(has_text=symbol)
    expect(row).to_contain_text("paused")
    expect(row).to_contain_text("$2,000.00")
    row.get_by_role("button", name="Start").click()
    expect(row).to_contain_text("active")

    assert run_pulse(at_monday).counts["synced"] == 1
    expect(row).to_contain_text(re.compile(rf"{symbol} (BUY|SELL)"))
    performance = region.get_by_role("definition")
    expect(performance.nth(0)).to_have_text("$0.00")  # realized: nothing closed yet
    shot(page, "strategies-running")
    trades = on_view(page, "Open trades")
    expect(trades.get_by_role("row").filter(has_text=symbol)).to_have_count(1)
    # the bot's entry is in the feed, live, unread until the person says otherwise
    latest = on_view(page, "Latest notifications")
    expect(latest.get_by_role("listitem").first).to_contain_text("Your shadow trade bought")
    feed = on_view(page, "Notifications")
    expect(feed.get_by_role("listitem").first).to_contain_text("Your shadow trade bought")
    expect(feed.get_by_role("listitem").first).to_contain_text(symbol)
    expect(feed.get_by_role("status")).to_have_text("1 unread.")
    feed.get_by_role("button", name="Mark all read").click()
    expect(feed.get_by_role("status")).to_have_text("Nothing unread.")
    [note] = [d.to_dict() or {} for d in paths.notifications(db, uid).stream()]
    assert note["read_at"] is not None and note["kind"] == "entry_filled"

    on_view(page, "Strategies")
    row.get_by_role("button", name="Pause").click()
    expect(row).to_contain_text("paused")

    risk = on_view(page, "Risk limits")
    expect(risk.get_by_label("Max position (USD)")).to_have_value("10000")
    risk.get_by_label("Max drawdown %").fill("1")
    risk.get_by_role("button", name="Save risk limits").click()
    expect(risk.get_by_role("button", name="Save risk limits")).to_be_enabled()
    deadline = time.monotonic() + 10
    while (paths.risk_settings(db, uid).get().to_dict() or {}).get("max_drawdown_pct") != "1":
        assert time.monotonic() < deadline, "the limits never reached Firestore"
        time.sleep(0.1)

    on_view(page, "Strategies")
    row.get_by_role("button", name="Start").click()
    expect(row).to_contain_text("active")
    paths.stats_summary(db, uid).set({"peak_equity": "150000.00"}, merge=True)
    restarted = replace(at_monday, memory=PulseMemory())  # what a new instance knows
    run_pulse(restarted)
    risk = on_view(page, "Risk limits")
    expect(risk).to_contain_text("Trading was switched off by your max drawdown limit: ")
    feed = on_view(page, "Notifications")
    expect(feed.get_by_role("listitem").first).to_contain_text(
        "Your max drawdown limit switched your trading off"
    )
    expect(feed.get_by_role("status")).to_have_text("1 unread.")
    sync_status = on_view(page, "Sync status")
    expect(page.get_by_role("switch", name="Trading enabled")).not_to_be_checked()
    expect(sync_status).to_contain_text("The last sync failed: trading switched off: ")
    expect(sync_status).not_to_contain_text("RISK_LIMIT_TRIPPED")
    shot(page, "risk-limit-tripped")

    region = on_view(page, "Strategies")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(region).to_contain_text("No strategies yet.")


def test_connect_with_alpaca_instead_of_pasting_keys(
    page: Page, db: firestore.Client, secrets: SecretManagerServer, alpaca: AlpacaServer
) -> None:
    create_account(page, "connect@example.com")
    keys = on_view(page, "Alpaca keys")
    keys.get_by_role("button", name="Connect with Alpaca").click()
    # Alpaca's own page (the stand-in's), then back to the site with a code
    page.get_by_role("button", name="Approve").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:5000/"))
    expect(keys).to_contain_text("Saved: connected with Alpaca (paper)")
    assert "code=" not in page.url and "state=" not in page.url
    expect(page.locator("[role=alert]:not(:empty)")).to_have_count(0)
    uid = uid_of(db, "connect@example.com")
    assert (paths.user(db, uid).get().to_dict() or {})["keys_version"] == 1
    assert secrets.store.calls["AddSecretVersion"] == 1
    shot(page, "connected-with-alpaca")

    # the same return link again (a reload of an old tab): refused, nothing changes
    page.goto(f"{SITE}/?code=reused-code-123&state={'x' * 43}")
    keys_alert = on_view(page, "Alpaca keys").get_by_role("alert")
    expect(keys_alert).to_contain_text("already used or never issued")
    assert (paths.user(db, uid).get().to_dict() or {})["keys_version"] == 1

    # removing the connection ends it at Alpaca too, and the page says so
    assert len(alpaca.market.tokens) == 1
    keys.get_by_role("button", name="Remove keys").click()
    expect(keys.get_by_role("status")).to_have_text(
        "Removed. Alpaca has ended this site's access to your account."
    )
    expect(keys).to_contain_text("No keys saved.")
    assert alpaca.market.tokens == {}


def test_close_all_positions_and_what_each_trade_is_doing(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    freeze(alpaca, 1_790_000_000.0)
    person_with_keys(page, alpaca, "closeall@example.com", "PKCLOSEALL01")
    # Alpaca holds TSLA the book does not: the difference below is the one any sync finds (the
    # one the page asks for when trading is switched on may land after it is seeded)
    register_alpaca_account(alpaca.url, "PKCLOSEALL01", "pkcloseall01-secret", holdings={"TSLA": 7})
    # the difference is on record before the overview is shown again (its listeners start
    # with it there), as a person coming back to the page finds it
    uid, now = uid_of(db, "closeall@example.com"), datetime.now(UTC)
    paths.reconciliation(db, uid).set(
        {"mismatches": {"TSLA": {"symbol": "TSLA", "broker_qty": "7", "book_qty": "0",
                                 "since": now}}}
    )  # fmt: skip
    assert switch_on(page, db, "closeall@example.com") == uid
    for symbol in ("AAPL", "MSFT"):
        open_trade(db, uid, f"shadow-{symbol}", symbol, "BUY", "2", "100.00")
    opening = {
        "symbol": "NVDA", "side": "BUY", "quantity": "0", "ordered_qty": "5", "filled_qty": "0",
        "entry_price": "150.00", "status": "OPEN", "state": "opening", "mode": "paper",
        "created_at": now, "stop_loss_price": "142.5", "take_profit_price": "165.0000001",
    }  # fmt: skip
    paths.shadow_trades(db, uid).document("paper-nvda").set(opening)

    trades = on_view(page, "Open trades")
    expect(trades.get_by_role("row")).to_have_count(4, timeout=LIVE_S)  # the header and three
    paper = trades.get_by_role("row").filter(has_text="NVDA")
    expect(paper).to_contain_text("Opening: 0 of 5 filled; stop at $142.50, target at $165.00")
    expect(paper.get_by_role("button", name="Close")).to_be_disabled()
    sync = on_view(page, "Sync status")
    expect(sync).to_contain_text("TSLA: Alpaca holds 7, this site's trades hold 0", timeout=LIVE_S)
    expect(sync).not_to_contain_text("book_qty")
    shot(page, "open-trades-states")

    page.once("dialog", lambda dialog: dialog.accept())
    trades.get_by_role("button", name="Close all positions").click()
    expect(trades.get_by_role("row")).to_have_count(2, timeout=LIVE_S)  # its order decides
    expect(trades.get_by_role("row").filter(has_text="NVDA")).to_have_count(1)
    expect(page.locator("[role=alert]:not(:empty)")).to_have_count(0)
    states = {
        d.id: (d.to_dict() or {}).get("status") for d in paths.shadow_trades(db, uid).stream()
    }
    assert sorted(states.values()) == ["CLOSED", "CLOSED", "OPEN"]
    audit = [(d.to_dict() or {})["action"] for d in paths.audit(db, uid).stream()]
    assert audit.count("shadow_trade_closed") == 2


def paper_trade(
    db: firestore.Client, uid: str, trade_id: str, symbol: str, qty: str, account: str
) -> None:
    """An open paper trade of `qty` shares bought at $100, held in Alpaca account `account`."""
    open_trade(db, uid, trade_id, symbol, "BUY", qty, "100")
    fills = {f"{trade_id}-open": {"role": "entry", "qty": qty, "price": "100"}}
    paths.shadow_trades(db, uid).document(trade_id).update(
        {
            "mode": "paper",
            "state": "open",
            "fills": fills,
            "filled_qty": qty,
            "account_number": account,
        }
    )


def test_a_closed_paper_trade_shows_what_it_traded(
    page: Page, alpaca: AlpacaServer, db: firestore.Client, platform: Platform
) -> None:
    """A paper trade holds 0 once closed; its history and its export show the 7 it traded."""
    monday = datetime(2026, 11, 23, 11, 0, tzinfo=ZoneInfo("America/New_York"))
    freeze(alpaca, monday.timestamp())
    keys = person_with_keys(page, alpaca, "traded@example.com", "PKTRADED0001")
    register_alpaca_account(alpaca.url, keys.key_id, "pktraded0001-secret", holdings={"AAPL": 7})
    uid = uid_of(db, "traded@example.com")
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    account = broker.account().account_number
    broker.close()
    paper_trade(db, uid, "p-aapl", "AAPL", "7", account)

    trades = on_view(page, "Open trades")
    trades.get_by_role("row").filter(has_text="AAPL").get_by_role("button", name="Close").click()
    expect(page.locator("[role=alert]:not(:empty)")).to_have_count(0)
    at_monday = replace(platform, now=lambda: monday.astimezone(UTC))
    deadline = time.monotonic() + LIVE_S / 1000
    while (paths.shadow_trades(db, uid).document("p-aapl").get().to_dict() or {}).get(
        "state"
    ) != "closed":
        assert time.monotonic() < deadline, "the close never filled"
        run_pulse(at_monday)  # follows the closing order's fill
    closed = paths.shadow_trades(db, uid).document("p-aapl").get().to_dict() or {}
    assert (closed["quantity"], closed["filled_qty"]) == ("0", "7")
    assert broker_positions(alpaca, keys) == {}

    history = on_view(page, "Trade history")
    row = history.get_by_role("row").filter(has_text="AAPL")
    expect(row.get_by_role("cell").nth(3)).to_have_text("7")
    with page.expect_download() as trades_file:
        history.get_by_role("button", name="Export trades (CSV)").click()
    [exported] = list(csv.DictReader(Path(trades_file.value.path()).read_text().splitlines()))
    assert (exported["trade_id"], exported["quantity"], exported["mode"]) == (
        "p-aapl",
        "7",
        "paper",
    )


def test_what_a_person_can_do_about_a_difference_or_another_account(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    freeze(alpaca, 1_790_000_000.0)
    keys = person_with_keys(page, alpaca, "held@example.com", "PKHELD000001")
    register_alpaca_account(alpaca.url, keys.key_id, "pkheld000001-secret", holdings={"AAPL": 4})
    uid = uid_of(db, "held@example.com")
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    account = broker.account().account_number
    broker.close()
    paper_trade(db, uid, "t-aapl", "AAPL", "10", account)
    paper_trade(db, uid, "t-msft", "MSFT", "3", "PA0000009999")  # an account since replaced
    paths.reconciliation(db, uid).set(
        {"mismatches": {"AAPL": {"symbol": "AAPL", "broker_qty": "4", "book_qty": "10",
                                 "since": datetime.now(UTC)}}}
    )  # fmt: skip

    # saving the keys again says which trades they cannot reach, and the trade says it too
    save_keys(page, keys.key_id, "pkheld000001-secret")
    notice = on_view(page, "Alpaca keys").get_by_role("status")
    expect(notice).to_contain_text("different Alpaca account from the one ending 9999")
    expect(notice).to_contain_text("MSFT trade")
    trades = on_view(page, "Open trades")
    msft = trades.get_by_role("row").filter(has_text="MSFT")
    expect(msft).to_contain_text("this position is held in Alpaca account ending 9999")

    # the difference, with what the person can do beside it
    sync = on_view(page, "Sync status")
    difference = sync.get_by_role("listitem").filter(has_text="AAPL")
    expect(difference).to_contain_text("AAPL: Alpaca holds 4, this site's trades hold 10")
    shot(page, "difference-and-another-account")
    page.once("dialog", lambda dialog: dialog.accept())
    difference.get_by_role("button", name="Use Alpaca's quantity").click()
    expect(sync.get_by_role("listitem")).to_have_count(0, timeout=LIVE_S)
    aapl = trades.get_by_role("row").filter(has_text="AAPL")
    expect(aapl.get_by_role("cell").nth(1)).to_have_text("4")
    expect(aapl.get_by_role("button", name="Mark closed by hand")).to_have_count(0)

    page.once("dialog", lambda dialog: dialog.accept())
    msft.get_by_role("button", name="Mark closed by hand").click()
    expect(msft).to_have_count(0, timeout=LIVE_S)
    expect(page.locator("[role=alert]:not(:empty)")).to_have_count(0)
    audit = {(d.to_dict() or {})["action"] for d in paths.audit(db, uid).stream()}
    assert {"book_set_to_alpaca", "trade_marked_closed"} <= audit
    held = broker_positions(alpaca, keys)
    assert held == {"AAPL": Decimal(4)}  # no order was sent for either


def broker_positions(alpaca: AlpacaServer, keys: AlpacaKeys) -> dict[str, Decimal]:
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    try:
        return broker.positions()
    finally:
        broker.close()


def test_new_exits_are_applied_to_open_trades_only_when_the_person_says_so(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    freeze(alpaca, 1_790_000_000.0)
    person_with_keys(page, alpaca, "exits@example.com", "PKEXITS00001")
    uid = uid_of(db, "exits@example.com")
    region = on_view(page, "Strategies")
    region.get_by_label("Symbols").fill("AAPL")
    region.get_by_label("Stop loss %").fill("5")
    region.get_by_role("button", name="Save strategy").click()
    row = region.get_by_role("row").filter(has_text="AAPL")
    expect(row).to_contain_text("stop loss 5%")
    [sid] = [d.id for d in paths.strategies(db, uid).stream()]
    open_trade(db, uid, "t-held", "AAPL", "BUY", "2", "100")
    paths.shadow_trades(db, uid).document("t-held").update(
        {"strategy_id": sid, "stop_loss_pct": "5", "stop_loss_price": "95"}
    )

    row.get_by_role("button", name="Change exits").click()
    dialog = page.get_by_role("dialog", name="Change exits")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("New stop loss %")).to_have_value("5")
    expect(dialog).to_contain_text("This strategy has 1 open trade. Should the new levels apply")
    dialog.get_by_label("New stop loss %").fill("2")
    dialog.get_by_role("button", name="Save exits").click()  # not said yet: asked, not saved
    expect(dialog.get_by_role("alert")).to_have_text(
        "Choose whether the new levels apply to this strategy's open trades."
    )
    shot(page, "change-exits")
    dialog.get_by_label("Yes, its open trades too").check()
    dialog.get_by_role("button", name="Save exits").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("stop loss 2%")
    held = paths.shadow_trades(db, uid).document("t-held").get().to_dict() or {}
    assert (held["stop_loss_pct"], Decimal(held["stop_loss_price"])) == ("2", Decimal("98"))
    trades = on_view(page, "Open trades")
    expect(trades.get_by_role("row").filter(has_text="AAPL")).to_contain_text("stop at $98.00")


def test_live_trading_is_allowed_for_the_live_account_by_its_last_four_and_stopped(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    keys = register_alpaca_account(alpaca.url, "AKLIVEPAGE01", "live-secret-1")
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    number = broker.account().account_number
    broker.close()
    create_account(page, "live@example.com")
    settings = on_view(page, "Alpaca keys")
    settings.get_by_label("Key ID").fill(keys.key_id)
    settings.get_by_label("Secret key").fill("live-secret-1")
    settings.get_by_label("Paper account").uncheck()
    settings.get_by_role("button", name="Save keys").click()
    expect(settings).to_contain_text("(live)")
    region = on_view(page, "Live trading")
    expect(region).to_contain_text("Live trading is not allowed")
    field = region.get_by_label("Last four characters of your account number")
    field.fill("0000" if number[-4:] != "0000" else "1111")
    region.get_by_role("button", name="I understand, allow live trading").click()
    expect(region.get_by_role("alert")).to_contain_text("these are not the last four")
    field.fill(number[-4:])
    region.get_by_role("button", name="I understand, allow live trading").click()
    expect(region).to_contain_text(
        f"Live trading is allowed in your live account ending {number[-4:]}"
    )
    shot(page, "live-trading-allowed")
    uid = uid_of(db, "live@example.com")

    # a live strategy: refused until the person's own limits are saved, then marked Live
    strategies = on_view(page, "Strategies")
    strategies.get_by_label("Symbols").fill("AAPL")
    strategies.get_by_label("Mode").select_option("live")
    strategies.get_by_label("Stop loss %").fill("5")
    strategies.get_by_role("button", name="Save strategy").click()
    expect(strategies.get_by_role("alert")).to_contain_text(
        "a live strategy needs your own Max position (USD) and Max daily loss (USD)"
    )
    limits = on_view(page, "Risk limits")
    for label, value in (("Max position (USD)", "5000"), ("Max daily loss (USD)", "500"),
                         ("Max drawdown %", "10"), ("Max trades per day", "5")):  # fmt: skip
        limits.get_by_label(label).fill(value)
    limits.get_by_role("button", name="Save risk limits").click()
    deadline = time.monotonic() + 10
    while (paths.risk_settings(db, uid).get().to_dict() or {}).get("max_position_usd") != "5000":
        assert time.monotonic() < deadline, "the limits never reached Firestore"
        time.sleep(0.1)
    strategies = on_view(page, "Strategies")
    strategies.get_by_role("button", name="Save strategy").click()
    expect(strategies.get_by_role("row").filter(has_text="AAPL")).to_contain_text("Live")

    # a live position: marked Live, and closing everything asks for the last four again
    open_trade(db, uid, "live-AAPL", "AAPL", "BUY", "3", "100.00")
    paths.shadow_trades(db, uid).document("live-AAPL").update(
        {"mode": "live", "account_number": number, "paper": False, "state": "open",
         "filled_qty": "3"}
    )  # fmt: skip
    trades = on_view(page, "Open trades")
    row = trades.get_by_role("row").filter(has_text="AAPL")
    expect(row.get_by_text("Live", exact=True)).to_be_visible()
    asked: list[str] = []

    def wrong_four(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept("0000" if number[-4:] != "0000" else "1111")

    page.once("dialog", wrong_four)
    trades.get_by_role("button", name="Close all positions").click()
    expect(trades.get_by_role("alert")).to_contain_text(
        f"closing real positions in your live account ending {number[-4:]} needs the last four"
    )
    assert "type the last four characters of its number" in asked[0]
    assert (paths.shadow_trades(db, uid).document("live-AAPL").get().to_dict() or {})[
        "status"
    ] == "OPEN"

    region = on_view(page, "Live trading")
    region.get_by_role("button", name="Stop live trading").click()
    expect(region).to_contain_text("Live trading was stopped on")
    expect(region.get_by_role("button", name="Stop live trading")).to_be_hidden()
    stored = paths.live_settings(db, uid).get().to_dict() or {}
    assert stored["account_number_last4"] == number[-4:] and stored["revoked_at"] is not None


def test_open_trades_say_whether_their_exits_rest_at_alpaca(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    freeze(alpaca, 1_790_000_000.0)
    person_with_keys(page, alpaca, "resting@example.com", "PKRESTING01")
    uid = uid_of(db, "resting@example.com")
    rests = {"order_id": "p-aapl-rest-1", "qty": "3", "take_profit": "110", "stop_loss": "95"}
    paper_trade(db, uid, "p-aapl", "AAPL", "3", "PA0000000001")
    paths.shadow_trades(db, uid).document("p-aapl").update(
        {"stop_loss_price": "95", "take_profit_price": "110", "resting": rests}
    )
    paper_trade(db, uid, "p-msft", "MSFT", "3", "PA0000000001")
    paths.shadow_trades(db, uid).document("p-msft").update(
        {"stop_loss_price": "95", "resting_problem": "a fractional quantity cannot rest at Alpaca"}
    )
    trades = on_view(page, "Open trades")
    expect(trades.get_by_role("row").filter(has_text="AAPL")).to_contain_text(
        "stop at $95.00, target at $110.00; both rest at Alpaca"
    )
    expect(trades.get_by_role("row").filter(has_text="MSFT")).to_contain_text(
        "stop at $95.00; not resting at Alpaca: a fractional quantity cannot rest at Alpaca"
    )


# -- a page that tells the truth ------------------------------------------------------------------


def sign_in(page: Page, email: str) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def admin_page(browser: Browser, email: str = "ops@example.com") -> Page:
    admin = emulators.sign_up(email, PASSWORD)
    emulators.set_claims(admin.uid, {"admin": True})
    opened = browser.new_context().new_page()
    opened.goto(SITE)
    sign_in(opened, email)
    return opened


def test_the_next_person_on_the_same_tab_never_sees_the_previous_ones_data(
    page: Page, alpaca: AlpacaServer, db: firestore.Client, platform: Platform
) -> None:
    person_with_keys(page, alpaca, "alice@example.com", "PKALICESAME1", cash="31337")
    switch_on(page, db, "alice@example.com")
    expect(on_view(page, "Account")).to_contain_text("$31,337.00", timeout=LIVE_S)
    alice = ("PKAL****AME1", "31,337")
    # every 20 ms: whose page it says it is, what the signed-in view holds (shown or not) and
    # what a person can read
    page.evaluate(
        """() => { window.__seen = []; const who = document.querySelector('#who');
           window.__timer = setInterval(() => window.__seen.push([
             who.hidden ? '' : who.textContent,
             document.querySelector('#signed-in').textContent + ' | ' + document.body.innerText,
           ]), 20); }"""
    )
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Create account")).to_be_visible()
    page.get_by_label("Email", exact=True).fill("frank@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Signed in as frank@example.com")).to_be_visible()
    expect(on_view(page, "Alpaca keys")).to_contain_text("No keys saved.")
    page.wait_for_timeout(500)
    samples: list[list[str]] = page.evaluate(
        "() => { clearInterval(window.__timer); return window.__seen; }"
    )
    after = [text for who, text in samples if who != "Signed in as alice@example.com"]
    assert len(after) > 20  # signed out, then frank's, sampled all along
    leaks = [text for text in after if any(value in text for value in alice)]
    assert not leaks, leaks[0]


def test_keys_stored_by_a_migration_show_on_the_page(
    page: Page, alpaca: AlpacaServer, db: firestore.Client, platform: Platform, keystore: KeyStore
) -> None:
    keys = register_alpaca_account(alpaca.url, "PKMIGRATED01", "migrated-secret-1")
    uid = emulators.sign_up("migrated@example.com", PASSWORD).uid
    keystore.save(uid, keys)  # as the migration before this release did: no masked id
    now = datetime.now(UTC)
    paths.user(db, uid).set({"email": "migrated@example.com", "created_at": now, "keys_version": 1})
    paths.trading_status(db, uid).set({"enabled": True, "updated_at": now})
    page.goto(SITE)
    sign_in(page, "migrated@example.com")
    keys_region = on_view(page, "Alpaca keys")
    expect(keys_region).to_contain_text("No keys saved.")
    assert run_pulse(platform).counts["synced"] == 1  # the pulse fills in what the page shows
    expect(keys_region).to_contain_text("Saved: PKMI****ED01 (paper)", timeout=LIVE_S)
    assert (paths.user(db, uid).get().to_dict() or {})["key_id_masked"] == "PKMI****ED01"


def test_a_halt_shows_on_every_persons_page_with_the_reason(
    page: Page, browser: Browser, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    person_with_keys(page, alpaca, "halted@example.com", "PKHALTED0001")
    switch_on(page, db, "halted@example.com")
    ops_page = admin_page(browser)
    operations = on_view(ops_page, "Operations")
    everyone = operations.get_by_role("switch", name="Trading for everyone")
    expect(everyone).to_be_checked(timeout=LIVE_S)  # as the admin's page has read it
    everyone.uncheck()
    banner = page.get_by_role("status").filter(has_text="halted for everyone")
    expect(banner).to_be_visible(timeout=LIVE_S)
    expect(banner).to_contain_text("halted from the page")
    mine = page.get_by_role("switch", name="Trading enabled")
    expect(mine).to_be_disabled()
    expect(mine).to_have_attribute("aria-describedby", "halt-banner")
    shot(page, "halt-banner")
    expect(everyone).to_be_enabled()
    everyone.check()
    expect(banner).to_have_count(0, timeout=LIVE_S)
    expect(mine).to_be_enabled()
    ops_page.context.close()


def test_an_error_shows_beside_the_form_that_caused_it_in_words(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    person_with_keys(page, alpaca, "words@example.com", "PKWORDS00001")
    strategies = on_view(page, "Strategies")
    strategies.get_by_label("Symbols").fill("apple, 42!")
    strategies.get_by_role("button", name="Save strategy").click()
    alert = strategies.get_by_role("alert")
    expect(alert).to_have_text(
        "Symbols: use ticker symbols such as AAPL or BRK.B, separated by commas", timeout=LIVE_S
    )
    expect(alert).to_be_in_viewport()
    described = strategies.get_by_label("Symbols").get_attribute("aria-describedby")
    assert described == alert.get_attribute("id")
    expect(page.locator("#alert")).to_be_empty()
    shot(page, "error-beside-its-form")
    said = alert.inner_text()
    risk = on_view(page, "Risk limits")
    risk.get_by_label("Max position (USD)").fill("ten thousand")
    risk.get_by_role("button", name="Save risk limits").click()
    expect(risk.get_by_role("alert")).to_have_text(
        "Max position (USD): use an amount in dollars such as 2500 or 2500.50", timeout=LIVE_S
    )
    for text in (said, risk.get_by_role("alert").inner_text()):
        assert not re.search(r"[\^$\\]|\(invalid-argument\)|_usd|allocation_", text), text


def test_the_figures_agree_from_the_moment_a_trade_opens(
    page: Page, alpaca: AlpacaServer, db: firestore.Client, platform: Platform
) -> None:
    t0 = 1_790_000_000.0
    freeze(alpaca, t0)
    keys = person_with_keys(page, alpaca, "figures@example.com", "PKFIGURES001", cash="250000")
    uid = switch_on(page, db, "figures@example.com")
    assert run_pulse(platform).counts["synced"] == 1
    risk = on_view(page, "Risk limits")
    risk.get_by_label("Max position (USD)").fill("1000")
    risk.get_by_role("button", name="Save risk limits").click()
    deadline = time.monotonic() + LIVE_S / 1000
    while (paths.risk_settings(db, uid).get().to_dict() or {}).get("max_position_usd") != "1000":
        assert time.monotonic() < deadline, "the limits never reached Firestore"
        time.sleep(0.1)
    symbol, _ = open_shadow_trade_from_a_signal(page, alpaca, keys)
    trades = on_view(page, "Open trades")
    row = trades.get_by_role("row").filter(has_text=symbol)
    expect(row).to_have_count(1, timeout=LIVE_S)
    # priced at its entry at once, before any pulse: P&L 0.00, not "—"
    expect(row.get_by_role("cell").nth(4)).to_have_text("$0.00")
    trade = next(d.to_dict() or {} for d in paths.shadow_trades(db, uid).stream())
    assert Decimal(trade["quantity"]) * Decimal(trade["entry_price"]) <= 1000
    account = on_view(page, "Account")
    synced = account.locator('[data-field="synced_at"]').inner_text()
    last = on_view(page, "Sync status").locator('[data-field="last_success_at"]')
    expect(last).to_have_text(synced)
    row.get_by_role("button", name="Close").click()
    expect(trades.get_by_text("No open trades.")).to_be_visible(timeout=LIVE_S)
    performance = on_view(page, "Strategies")
    expect(performance.locator('[data-field="trades_closed"]')).to_have_text("1", timeout=LIVE_S)


def test_an_admin_finds_people_and_switches_one_off_in_one_click(
    page: Page, browser: Browser, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    now = datetime.now(UTC)
    for name in ("amy", "ben", "cat"):
        person = emulators.sign_up(f"{name}@example.com", PASSWORD)
        paths.user(db, person.uid).set({"email": f"{name}@example.com", "created_at": now})
    person_with_keys(page, alpaca, "dan@example.com", "PKDAN0000001")
    dan = switch_on(page, db, "dan@example.com")
    ops_page = admin_page(browser)
    on_view(ops_page, "Operations")
    people = ops_page.get_by_role("table", name="People")
    expect(people.get_by_role("row")).to_have_count(5, timeout=LIVE_S)  # the header and four
    ops_page.get_by_label("Search people by email").fill("dan")
    ops_page.get_by_role("button", name="Search").click()
    row = people.get_by_role("row").filter(has_text="dan@example.com")
    expect(row).to_contain_text(dan)
    expect(people.get_by_role("row")).to_have_count(2)
    expect(row.get_by_role("cell").nth(2)).to_have_text("on")
    shot(ops_page, "operations-people")
    row.get_by_role("button", name="Disable trading for dan@example.com").click()
    expect(row.get_by_role("cell").nth(2)).to_have_text("off", timeout=LIVE_S)
    assert (paths.trading_status(db, dan).get().to_dict() or {})["enabled"] is False
    expect(page.get_by_role("switch", name="Trading enabled")).not_to_be_checked(timeout=LIVE_S)
    ops_page.context.close()


def test_small_things_a_person_notices(page: Page, alpaca: AlpacaServer) -> None:
    assert requests.get(f"{SITE}/favicon.svg", timeout=5).status_code == 200
    register_alpaca_account(alpaca.url, "PKSMALL00001", "small-secret-1")
    create_account(page, "small@example.com")
    save_keys(page, "PKSMALL00001", "small-secret-1")
    keys_region = on_view(page, "Alpaca keys")
    expect(keys_region).to_contain_text("Saved: PKSM****0001")
    expect(keys_region.get_by_label("Key ID")).to_have_value("")
    signals = on_view(page, "Signals")
    signals.get_by_label("Symbol").fill("AAPL and MSFT please")
    expect(signals.get_by_label("Symbol")).to_have_value("AAPL and MSFT please")
    signals.get_by_role("button", name="Generate signal").click()
    expect(signals.get_by_role("alert")).to_have_text(
        "Symbol: use a ticker symbol such as AAPL or BRK.B", timeout=LIVE_S
    )


# -- what the served page asks the browser to enforce -------------------------------------------


def test_the_page_sends_security_headers_and_breaks_none_of_its_own_rules(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    headers = requests.get(SITE, timeout=5).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in headers["Permissions-Policy"]
    page.add_init_script(
        """document.addEventListener('securitypolicyviolation', (e) =>
             (window.__violations ||= []).push(`${e.violatedDirective} ${e.blockedURI}`));"""
    )
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    person_with_keys(page, alpaca, "strict@example.com", "PKSTRICT0001")
    switch_on(page, db, "strict@example.com")
    expect(on_view(page, "Account")).to_contain_text("$", timeout=LIVE_S)
    assert page.evaluate("() => window.__violations || []") == []
    assert not [m for m in console if "Content Security Policy" in m or "Permissions" in m]


def test_the_page_refuses_to_be_framed(page: Page, site: str) -> None:
    page.set_content(f'<iframe title="framed" src="{SITE}/" width="800" height="600"></iframe>')
    page.wait_for_timeout(1500)
    framed = page.frame_locator("iframe")
    expect(framed.get_by_role("button", name="Sign in")).to_have_count(0)
    expect(framed.get_by_label("Password")).to_have_count(0)


class Forwarder:
    """A TCP port on 127.0.0.1 that forwards every connection to `target` (an emulator moved
    to another port, as far as the page can tell)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def test_the_page_finds_the_emulators_where_hosting_says_they_are(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    config = json.loads((ROOT / "firebase.json").read_text())["emulators"]
    moved = {name: Forwarder(config[name]["port"]) for name in ("auth", "firestore", "functions")}
    init = requests.get(f"{SITE}/__/firebase/init.js?useEmulator=true", timeout=5).text
    for name, forwarder in moved.items():  # as if firebase.json had put them elsewhere
        port = config[name]["port"]
        init = init.replace(f'"port": {port},', f'"port": {forwarder.port},')
        init = init.replace(f"127.0.0.1:{port}", f"127.0.0.1:{forwarder.port}")
    page.route(
        "**/__/firebase/init.js?useEmulator=true",
        lambda route: route.fulfill(body=init, content_type="application/javascript"),
    )
    try:
        person_with_keys(page, alpaca, "moved@example.com", "PKMOVED00001")
        switch_on(page, db, "moved@example.com")
        expect(on_view(page, "Account")).to_contain_text("$", timeout=LIVE_S)
        assert all(forwarder.connections > 0 for forwarder in moved.values())
    finally:
        for forwarder in moved.values():
            forwarder.close()


def test_every_call_carries_the_pages_app_check_token(page: Page, alpaca: AlpacaServer) -> None:
    """With a site key, the page asks App Check for a token (on the emulators with the debug
    token, which App Check's exchange endpoint, answered here, trades for a token) and sends
    it with every call. That the functions refuse a call without one is tests/test_app_check."""
    debug_token = "5e0c6a4b-0d1e-4f7a-9a53-3f2b8c1d7e90"
    exchanged: list[dict[str, Any]] = []
    app_check_token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwYWdlIn0.c2lnbmVk"
    page.route(
        f"{SITE}/app-check.json",
        lambda route: route.fulfill(
            json={"siteKey": "6LcSiteKeyOfThisPage", "debugToken": debug_token}
        ),
    )

    def exchange(route: Any) -> None:
        exchanged.append({"url": route.request.url, "body": route.request.post_data_json})
        route.fulfill(json={"token": app_check_token, "ttl": "3600s"})

    page.route("https://content-firebaseappcheck.googleapis.com/**", exchange)
    carried: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            carried.append(request.headers.get("x-firebase-appcheck"))
            if ":5001/" in request.url and request.method == "POST"
            else None
        ),
    )
    page.add_init_script(
        """document.addEventListener('securitypolicyviolation', (e) =>
             (window.__violations ||= []).push(`${e.violatedDirective} ${e.blockedURI}`));"""
    )
    person_with_keys(page, alpaca, "checked@example.com", "PKCHECKED001")
    assert exchanged and exchanged[0]["body"] == {"debug_token": debug_token}
    assert urlsplit(exchanged[0]["url"]).path.endswith(":exchangeDebugToken")
    assert carried and all(header == app_check_token for header in carried), carried
    assert page.evaluate("() => window.__violations || []") == []


def test_a_backtest_its_strategy_and_the_history_exported(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    freeze(alpaca, monday.timestamp())
    person_with_keys(page, alpaca, "quant@example.com", "PKBACKTEST02")
    uid = uid_of(db, "quant@example.com")

    region = on_view(page, "Backtest")
    region.get_by_label("Symbols").fill("aapl, nvda")
    region.get_by_label("Allocation per position (USD)").fill("5000")
    region.get_by_label("Take profit %").fill("8")
    region.get_by_label("Stop loss %").fill("5")
    region.get_by_label("From", exact=True).fill("2025-01-02")
    region.get_by_label("To", exact=True).fill("2025-12-31")
    region.get_by_role("button", name="Run backtest").click()
    figure = region.get_by_role("figure")
    expect(figure).to_contain_text("This strategy's equity went from $10,000.00 on 2025-01-02")
    expect(figure.locator("canvas").first).to_be_visible()  # drawn by the chart library
    [stored] = [d.to_dict() or {} for d in paths.backtests(db, uid).stream()]
    stats = region.get_by_role("table", name="Backtest statistics")
    trades_row = stats.get_by_role("row").filter(has_text="Trades closed")
    expect(trades_row.get_by_role("cell").nth(0)).to_have_text(str(stored["statistics"]["trades"]))
    final_row = stats.get_by_role("row").filter(has_text="Final equity")
    hold_final = Decimal(stored["buy_and_hold"]["final_equity"])
    expect(final_row.get_by_role("cell").nth(1)).to_have_text(f"${hold_final:,.2f}")
    expect(figure).to_contain_text(f"to ${Decimal(stored['curve']['buy_and_hold'][-1]):,.2f}")
    shot(page, "backtest")
    SHOTS.mkdir(parents=True, exist_ok=True)
    region.locator("#backtest-result").screenshot(path=str(SHOTS / "backtest-result.png"))

    region.get_by_role("button", name="Start this strategy").click()
    expect(region).to_contain_text("Started")
    strategies = on_view(page, "Strategies")
    row = strategies.get_by_role("row").filter(has_text="AAPL, NVDA")
    expect(row).to_contain_text("active")
    [strategy] = [d.to_dict() or {} for d in paths.strategies(db, uid).stream()]
    assert (strategy["allocation_usd"], strategy["take_profit_pct"], strategy["stop_loss_pct"]) == (
        "5000",
        "8",
        "5",
    )

    # the person's own history, written as the bot writes it (whole seconds: the page's times
    # are to the millisecond)
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(23):
        paths.shadow_trades(db, uid).document(f"t{i:02d}").set(
            {
                "symbol": "AAPL",
                "side": "BUY",
                "quantity": "3",
                "entry_price": "100",
                "exit_price": "95.5",
                "realized_pnl": f"-{i}.50",
                "status": "CLOSED",
                "state": "closed",
                "created_at": now,
                "closed_at": datetime.fromtimestamp(now.timestamp() - 3600 * (23 - i), UTC),
                "close_reason": "=HYPERLINK(1)" if i == 0 else "stop-loss: -4.5% reached -4%",
            }
        )
    paths.signals(db, uid).document("s1").set(
        {
            "symbol": "MSFT",
            "action": "BUY",
            "quantity": "2",
            "price": "410.5",
            "notional_usd": "821",
            "reason": 'a "quoted", reason',
            "strategy_id": "momentum_20d",
            "status": "NEW",
            "created_at": now,
        }
    )
    for day, equity in (
        ("2026-11-18", "100000"),
        ("2026-11-19", "100250.5"),
        ("2026-11-20", "99800"),
    ):
        paths.equity_points(db, uid).document(day).set(
            {"equity": equity, "at": datetime.fromisoformat(f"{day}T21:00:00+00:00")}
        )

    history = on_view(page, "Trade history")
    rows = history.get_by_role("row").filter(has_text="AAPL")
    expect(rows).to_have_count(20)
    expect(rows.first).to_contain_text("-$22.50")  # newest first
    history.get_by_role("button", name="More trades").click()
    expect(rows).to_have_count(23)
    expect(history.get_by_role("button", name="More trades")).to_be_hidden()
    on_view(page, "Strategies")  # the Performance chart
    performance = page.locator("#performance-figure")
    page.locator("#performance").scroll_into_view_if_needed()  # Alpaca's record is asked now
    expect(performance).to_contain_text(
        "each of 3 trading days went from $100,000.00 on 2026-11-18 to $99,800.00 on 2026-11-20"
    )
    # a paper account: Alpaca's record of the year before the product's first point
    expect(performance).to_contain_text("Before that, Alpaca's record of your paper account over")
    expect(performance.locator("canvas").first).to_be_visible()
    shot(page, "performance-and-history")
    performance.screenshot(path=str(SHOTS / "performance-chart.png"))

    history = on_view(page, "Trade history")
    with page.expect_download() as trades_file:
        history.get_by_role("button", name="Export trades (CSV)").click()
    exported = list(csv.DictReader(Path(trades_file.value.path()).read_text().splitlines()))
    docs = {d.id: d.to_dict() or {} for d in paths.shadow_trades(db, uid).stream()}
    assert [r["trade_id"] for r in exported] == sorted(docs, reverse=True)
    for r in exported:
        doc = docs[r["trade_id"]]
        assert (r["realized_pnl"], r["quantity"], r["exit_price"]) == (
            doc["realized_pnl"],
            doc["quantity"],
            doc["exit_price"],
        )
        assert r["closed_at"] == doc["closed_at"].isoformat().replace("+00:00", ".000Z")
    assert exported[-1]["close_reason"] == "'=HYPERLINK(1)"  # never run as a formula
    with page.expect_download() as signals_file:
        history.get_by_role("button", name="Export signals (CSV)").click()
    [signal] = list(csv.DictReader(Path(signals_file.value.path()).read_text().splitlines()))
    assert (signal["signal_id"], signal["notional_usd"], signal["reason"]) == (
        "s1",
        "821",
        'a "quoted", reason',
    )


def test_a_long_backtest_shows_every_trade_a_page_at_a_time_and_exports_them_all(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    monday = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    freeze(alpaca, monday.timestamp())
    person_with_keys(page, alpaca, "long@example.com", "PKLONGBT0001")
    uid = uid_of(db, "long@example.com")
    region = on_view(page, "Backtest")
    region.get_by_label("Symbols").fill(", ".join(LONG))
    region.get_by_label("Allocation per position (USD)").fill("5000")
    region.get_by_label("Take profit %").fill("8")
    region.get_by_label("Stop loss %").fill("5")
    region.get_by_label("From", exact=True).fill("2021-11-01")
    region.get_by_label("To", exact=True).fill("2026-10-30")
    region.get_by_role("button", name="Run backtest").click()
    note = region.locator("#backtest-trades-note")
    expect(note).to_contain_text("the newest first", timeout=120_000)
    [snap] = list(paths.backtests(db, uid).stream())
    stored = snap.to_dict() or {}
    total, per_page = stored["trades_total"], stored["trades_per_page"]
    assert total > 2000
    last_first = (stored["trade_pages"] - 1) * per_page
    expect(note).to_have_text(
        f"Trades {last_first + 1:,} to {total:,} of {total:,}, the newest first."
    )
    table = region.get_by_role("table", name="Backtest trades")
    expect(table.locator("tbody tr")).to_have_count(total - last_first)
    expect(region.get_by_role("button", name="Later trades")).to_be_hidden()
    region.get_by_role("button", name="Earlier trades").click()
    before = last_first - per_page
    expect(note).to_have_text(
        f"Trades {before + 1:,} to {last_first:,} of {total:,}, the newest first."
    )
    expect(table.locator("tbody tr")).to_have_count(per_page)
    pages = [d.to_dict() or {} for d in paths.backtest_trades(db, uid, snap.id).stream()]
    everything = [t for p in pages for t in p["trades"]]
    newest_of_page = everything[last_first - 1]
    expect(table.locator("tbody tr").first).to_contain_text(
        f"{newest_of_page['symbol']}{newest_of_page['side']}{newest_of_page['quantity']}"
        f"{newest_of_page['entry_day']} at"
    )
    region.get_by_role("button", name="Later trades").click()
    expect(note).to_contain_text(f"Trades {last_first + 1:,} to")

    with page.expect_download() as exported_file:
        region.get_by_role("button", name="Export backtest trades (CSV)").click()
    exported = list(csv.DictReader(Path(exported_file.value.path()).read_text().splitlines()))
    assert len(exported) == total
    assert [(r["entry_day"], r["symbol"], r["quantity"], r["realized_pnl"]) for r in exported] == [
        (t["entry_day"], t["symbol"], t["quantity"], t["realized_pnl"] or "") for t in everything
    ]

    page.once("dialog", lambda dialog: dialog.accept())
    region.get_by_role("button", name="Delete this backtest").click()
    expect(region.get_by_role("status").filter(has_text="deleted")).to_have_text(
        "The backtest was deleted."
    )
    expect(table).to_be_hidden()
    assert list(paths.backtests(db, uid).stream()) == []
    assert list(paths.backtest_trades(db, uid, snap.id).stream()) == []


def test_notification_settings_and_a_test_notification_to_the_webhook(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    person_with_keys(page, alpaca, "hear@example.com", "PKNOTIFY01")
    uid = uid_of(db, "hear@example.com")
    secret = signing_secret(webhook_signing_key(), uid)
    receiver = WebhookReceiver(secret)
    try:
        region = on_view(page, "Notification settings")
        expect(region.get_by_label("Email me")).to_be_disabled()  # not confirmed yet
        expect(region).to_contain_text("Mail goes only to a confirmed address")
        region.get_by_role("button", name="Send confirmation email").click()
        expect(region.get_by_role("status")).to_contain_text("Sent to hear@example.com")
        emulators.confirm_email(uid)  # the person follows the link
        page.reload()
        region = on_view(page, "Notification settings")
        expect(region.get_by_label("Email me")).to_be_enabled()
        expect(page.locator("#email-unconfirmed")).to_be_hidden()
        region.get_by_label("A close was refused").uncheck()
        region.get_by_label("Webhook URL").fill(receiver.url)
        region.get_by_label("Email me").check()
        region.get_by_role("button", name="Save notification settings").click()
        expect(region.get_by_role("status")).to_have_text("Saved.")
        expect(region).to_contain_text(secret)
        stored = paths.notification_settings(db, uid).get().to_dict() or {}
        assert stored["events"] == [
            "entry_filled",
            "exit_filled",
            "order_ended",
            "risk_tripped",
            "position_mismatch",
            "sync_failing",
            "daily_summary",
        ]
        assert (stored["webhook_url"], stored["email"]) == (receiver.url, True)

        region.get_by_role("button", name="Send a test notification").click()
        expect(region.get_by_role("status")).to_contain_text("your webhook accepted")
        [got] = receiver.state.received
        assert got.signature_valid and got.body["event"]["kind"] == "test"

        receiver.state.behaviour = Behaviour(status=500)
        region.get_by_role("button", name="Send a test notification").click()
        expect(region.get_by_role("alert")).to_contain_text("did not take the notification")

        # an event, as the bot writes it: delivered by the trigger and the task queue, and the
        # feed says where it went
        receiver.state.behaviour = Behaviour()
        batch = db.batch()
        notices.trade_moved(
            batch,
            db,
            uid,
            "t-hear",
            {
                "symbol": "AAPL",
                "side": "BUY",
                "mode": "paper",
                "quantity": "3",
                "entry_price": "150",
            },
            "entry_filled",
            "",
            datetime.now(UTC),
        )
        batch.commit()
        item = on_view(page, "Notifications").get_by_role("listitem").first
        expect(item).to_contain_text("Your paper trade bought 3 AAPL at $150.00.")
        expect(item).to_contain_text("Sent to your webhook.", timeout=60_000)
        expect(item).to_contain_text("Queued for email.")
        assert [r.body["event"]["id"] for r in receiver.state.received[2:]] == [
            "entry-filled-t-hear"
        ]
        shot(page, "notification-settings")

        # a webhook switched off for failing (as the delivery leaves it) is said so, in words,
        # until the settings are saved again
        region = on_view(page, "Notification settings")
        paths.notification_settings(db, uid).update(
            {
                "webhook_off_at": datetime.now(UTC),
                "webhook_off_reason": (
                    "your webhook could not be reached, or did not answer in time"
                ),
            }
        )
        off = page.get_by_text("Your webhook was switched off on")
        expect(off).to_contain_text("could not be reached, or did not answer in time")
        region.get_by_role("button", name="Save notification settings").click()
        expect(off).to_be_hidden()
        assert "webhook_off_at" not in (paths.notification_settings(db, uid).get().to_dict() or {})
    finally:
        receiver.stop()
