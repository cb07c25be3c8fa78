"""The signed-in page's views in Chromium: each at its own address, reached from the `Main`
navigation, back and forward and reload honoured; each reading only its own documents; usable
on a phone (375 x 812) with nothing wider than the screen and targets a finger can hit; no
axe-core violation on any view at either size."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from browsing import PASSWORD, SITE
from google.cloud import firestore
from operator_scripts import ROOT
from playwright.sync_api import Browser, BrowserContext, Page, expect
from test_browser import go, on_view, save_keys, shot, sign_in, uid_of

from agenttrader.store import paths
from localdev import emulators
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import open_trade, register_alpaca_account

VIEWS = ["Overview", "Strategies", "Backtest", "History", "Notifications", "Settings"]
PHONE: dict[str, Any] = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
"""Playwright's iPhone X profile, less its user agent string."""
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def listening(page: Page) -> list[str]:
    """What the page's live listeners read now: one path per listener."""
    return sorted(page.evaluate("() => document.documentElement.dataset.listening").split())


def heading(page: Page) -> str:
    return page.locator("[data-view]:not([hidden]) > h2").inner_text()


def test_each_view_has_its_own_address_and_reads_only_what_it_shows(
    page: Page, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    keys = register_alpaca_account(alpaca.url, "PKVIEWS00001", "views-secret-1")
    page.goto(SITE)
    page.get_by_label("Email", exact=True).fill("views@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(VIEWS)  # no Operations for a non-admin
    expect(page.get_by_role("heading", level=2, name="Overview")).to_be_visible()
    save_keys(page, keys.key_id, "views-secret-1")
    expect(page).to_have_url(f"{SITE}/#/settings")
    expect(page.get_by_role("region", name="Alpaca keys")).to_contain_text("Saved:")
    uid = uid_of(db, "views@example.com")
    mine = f"users/{uid}"
    expected = {
        "Overview": [
            "ops/freshness", "ops/status", mine, f"{mine}/alpacaAccounts/snapshot",
            f"{mine}/notifications", f"{mine}/shadowTradeHistory", f"{mine}/status/last_sync_error",
            f"{mine}/status/marks", f"{mine}/status/reconciliation", f"{mine}/status/sync",
            f"{mine}/status/trading",
        ],
        "Strategies": [
            "ops/status", mine, f"{mine}/equity", f"{mine}/signals", f"{mine}/stats/summary",
            f"{mine}/strategies",
        ],
        "Backtest": ["ops/status"],
        "History": ["ops/status", f"{mine}/shadowTradeHistory", f"{mine}/strategies"],
        "Notifications": ["ops/status", f"{mine}/notifications"],
        "Settings": [
            "ops/status", mine, f"{mine}/settings/live", f"{mine}/settings/notifications",
            f"{mine}/settings/risk", f"{mine}/status/trading",
        ],
    }  # fmt: skip
    for view in VIEWS:
        go(page, view)
        expect(page).to_have_url(f"{SITE}/#/{view.lower()}")
        assert listening(page) == sorted(expected[view]), view
        assert page.title() == f"{heading(page)} · AgentTrader"
    # the browser's history: back, forward, and a reload stay on the view
    page.go_back()
    expect(page).to_have_url(f"{SITE}/#/notifications")
    expect(page.get_by_role("region", name="Notifications")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("region", name="Trade history")).to_be_visible()
    assert listening(page) == sorted(expected["History"])
    page.go_forward()
    expect(page.get_by_role("region", name="Notifications")).to_be_visible()
    page.reload()
    expect(page.get_by_role("region", name="Notifications")).to_be_visible()
    expect(page.get_by_role("region", name="Open trades")).to_have_count(0)
    expect(nav.get_by_role("link", name="Notifications")).to_have_attribute("aria-current", "page")
    page.goto(f"{SITE}/#/no-such-view")
    expect(page.get_by_role("region", name="Open trades")).to_be_visible()
    assert listening(page) == sorted(expected["Overview"])
    # the overview's latest notifications, live, link to the rest
    open_trade(db, uid, "t-views", "AAPL", "BUY", "2", "100")
    expect(page.get_by_role("region", name="Open trades")).to_contain_text("AAPL")
    latest = page.get_by_role("region", name="Latest notifications")
    latest.get_by_role("link", name="All notifications").click()
    expect(page.get_by_role("heading", level=2, name="Notifications")).to_be_focused()


@pytest.fixture
def phone(browser: Browser, site: str) -> Iterator[BrowserContext]:
    context = browser.new_context(**PHONE)
    yield context
    context.close()


def populated(page: Page, alpaca: AlpacaServer, db: firestore.Client, email: str) -> str:
    """An administrator with keys, an open trade, a strategy, closed trades, notifications and
    a backtest: every view has something in it. Returns their uid."""
    person = emulators.sign_up(email, PASSWORD)
    emulators.set_claims(person.uid, {"admin": True})
    key_id = f"PK{abs(hash(email)) % 10**10:010d}"
    register_alpaca_account(alpaca.url, key_id, "phone-secret-1")
    page.goto(SITE)
    sign_in(page, email)
    save_keys(page, key_id, "phone-secret-1")
    expect(on_view(page, "Alpaca keys")).to_contain_text("Saved:")
    uid = person.uid
    now = datetime.now(UTC)
    open_trade(db, uid, "t-open", "AAPL", "BUY", "12", "187.25")
    for i in range(3):
        paths.shadow_trades(db, uid).document(f"t-closed-{i}").set(
            {
                "symbol": "MSFT", "side": "BUY", "quantity": "4", "entry_price": "410.5",
                "exit_price": "415.25", "realized_pnl": "19", "status": "CLOSED",
                "state": "closed", "created_at": now, "closed_at": now,
                "close_reason": "take-profit: +1.2% reached +1%",
            }
        )  # fmt: skip
        paths.notifications(db, uid).document(f"n{i}").set(
            {
                "kind": "exit_filled", "at": now, "read_at": None,
                "message": "Your shadow trade sold 4 MSFT at $415.25, closing the position: "
                "realized P&L $19.00.",
            }
        )  # fmt: skip
    strategies = on_view(page, "Strategies")
    strategies.get_by_label("Symbols").fill("AAPL, MSFT")
    strategies.get_by_label("Stop loss %").fill("5")
    strategies.get_by_role("button", name="Save strategy").click()
    expect(strategies.get_by_role("row").filter(has_text="AAPL, MSFT")).to_have_count(1)
    backtest = on_view(page, "Backtest")
    backtest.get_by_label("Symbols").fill("AAPL")
    backtest.get_by_label("From", exact=True).fill("2025-01-02")
    backtest.get_by_label("To", exact=True).fill("2025-06-30")
    backtest.get_by_role("button", name="Run backtest").click()
    expect(backtest.get_by_role("figure")).to_contain_text("This strategy's equity", timeout=60_000)
    return uid


WIDEST = """() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"""
TOO_WIDE = """() => [...document.querySelectorAll('body *')]
    .filter((el) => el.checkVisibility() && el.getBoundingClientRect().right > 376
      && !el.parentElement.closest('.table-scroll'))
    .slice(0, 8).map((el) => `${el.tagName}#${el.id}.${el.className}`)
    .concat([...document.querySelectorAll('.table-scroll')].filter((el) => el.checkVisibility())
      .map((el) => `${getComputedStyle(el).overflowX} ${el.getBoundingClientRect().width}
        ${el.scrollWidth}`))"""
SMALLEST_TARGET = """() => Math.min(...[...document.querySelectorAll('button, #main-nav a')]
    .filter((el) => el.checkVisibility())
    .map((el) => el.getBoundingClientRect().height))"""


def test_every_view_fits_a_phone(
    phone: BrowserContext, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    page = phone.new_page()
    populated(page, alpaca, db, "phone@example.com")
    for view in [*VIEWS, "Operations"]:
        go(page, view)
        page.wait_for_timeout(300)  # its listeners' first answers drawn
        assert page.evaluate(WIDEST) <= 375, (view, page.evaluate(TOO_WIDE))  # never sideways
        assert page.evaluate(SMALLEST_TARGET) >= 44, view
        shot(page, f"phone-{view.lower()}")


def desktop_shots(page: Page) -> None:
    for view in [*VIEWS, "Operations"]:
        go(page, view)
        page.wait_for_timeout(300)
        shot(page, f"desktop-{view.lower()}")


def violations(page: Page) -> list[str]:
    found = page.evaluate(
        """async () => (await axe.run(document)).violations.map(
             (v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)"""
    )
    return list(found)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_no_view_has_an_accessibility_violation(
    browser: Browser, site: str, alpaca: AlpacaServer, db: firestore.Client, size: str
) -> None:
    """axe-core on every view (injected by the test: the page's CSP forbids inline scripts,
    so this context alone bypasses it)."""
    desktop = {"viewport": {"width": 1280, "height": 900}}
    options: dict[str, Any] = PHONE if size == "phone" else desktop
    context = browser.new_context(bypass_csp=True, **options)
    try:
        page = context.new_page()
        populated(page, alpaca, db, f"axe-{size}@example.com")
        found = {}
        for view in [*VIEWS, "Operations"]:
            go(page, view)
            page.wait_for_timeout(300)
            page.add_script_tag(path=str(AXE))
            found[view] = violations(page)
        assert found == {view: [] for view in found}
        if size == "desktop":
            desktop_shots(page)
    finally:
        context.close()


def test_the_readme_shows_the_views() -> None:
    readme = (ROOT / "README.md").read_text()
    for view in [*VIEWS, "Operations"]:
        image = f"docs/views/desktop-{view.lower()}.png"
        assert image in readme and (ROOT / image).exists(), image
        image = f"docs/views/phone-{view.lower()}.png"
        assert image in readme and (ROOT / image).exists(), image
    assert not re.search(r"docs/dashboard[^/]*\.png", readme)
