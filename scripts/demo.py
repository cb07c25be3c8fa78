"""Run the product end to end on the emulators with the local Alpaca and Secret Manager.

    make demo                 # seed, run, print, shut down
    make demo ARGS=--serve    # ... then keep everything running until Ctrl-C

Runs under `firebase emulators:exec` (the Makefile does that): it serves both stand-ins,
signs people up through the Auth emulator, runs one pulse through the Functions emulator,
prints what happened to each person, shows that one person cannot read another's data, and
replays a trading day of alice's strategies (the stand-in's clock and the pulse's moved
together from the open to the close, a run every 30 minutes) and shows what she was told of
it: her feed, what her webhook (a local receiver) got, and the emails queued for her.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from google.cloud import firestore

from agenttrader import runtime
from agenttrader.bot import notices
from agenttrader.bot.reconcile import paper_book
from agenttrader.bot.run import open_trades
from agenttrader.broker.answers import NEW_YORK
from agenttrader.broker.keystore import AlpacaKeys
from agenttrader.core import clients
from agenttrader.pulse.people import OUTCOMES
from agenttrader.pulse.run import run_pulse
from agenttrader.store import paths
from localdev import ALPACA_PORT, OAUTH_CLIENT_ID, SECRETS_PORT, emulators, oauth_client_secret
from localdev.alpaca_standin import AlpacaServer
from localdev.market_calendar import is_trading_day, session
from localdev.secret_manager_standin import SecretManagerServer
from localdev.seed import open_trade, seed_user
from localdev.webhook_receiver import WebhookReceiver


@dataclass(frozen=True)
class DemoPerson:
    name: str
    scenario: str
    keys: str  # "good", "bad", "none"
    trading: bool | None
    fault: dict[str, Any] | None = None


PEOPLE = [
    DemoPerson("alice", "healthy keys, two open trades", "good", True),
    DemoPerson("bob", "keys Alpaca refuses (401)", "bad", True),
    DemoPerson("carol", "trading switched off", "good", False),
    DemoPerson("dave", "no keys saved", "none", True),
    DemoPerson(
        "erin",
        "Alpaca answers 429 twice, then OK",
        "good",
        True,
        {"kind": "http", "status": 429, "retry_after": 0.5, "times": 2},
    ),
    DemoPerson(
        "frank", "Alpaca keeps failing (500)", "good", True, {"kind": "http", "status": 500}
    ),
]


def start_standins(open_accounts: bool) -> tuple[AlpacaServer, SecretManagerServer]:
    try:
        alpaca = AlpacaServer(ALPACA_PORT, open_accounts=open_accounts).start()
        # Connect with Alpaca: the app the Functions emulator knows
        alpaca.market.oauth_clients[OAUTH_CLIENT_ID] = oauth_client_secret()
        return alpaca, SecretManagerServer(SECRETS_PORT).start()
    except OSError as error:
        raise SystemExit(
            f"demo: cannot listen on 127.0.0.1:{ALPACA_PORT}/{SECRETS_PORT} ({error}); "
            "is another demo or test run still going?"
        ) from None


def provision(alpaca: AlpacaServer) -> dict[str, emulators.Person]:
    """Sign everyone up; save keys and switch trading as each would from the web client."""
    db = clients.firestore_client()
    people = {}
    for i, person in enumerate(PEOPLE):
        signed_up = emulators.sign_up(f"{person.name}@demo.agenttrader.test")
        emulators.confirm_email(signed_up.uid)  # as following the confirmation link does
        signed_up = emulators.sign_in(signed_up)  # a token that says so
        people[person.name] = signed_up
        if person.keys == "good":
            account = {
                "key_id": f"PKDEMO{person.name.upper():0<8}",
                "secret_key": f"demo-secret-{i}",
                "cash": str(25_000 + 5_000 * i),
                # alice's account holds only what her paper strategy buys, so its positions
                # and her book can be shown side by side at the end of her trading day
                "holdings": {} if person.name == "alice" else {"AAPL": 10, "MSFT": 5},
            }
            alpaca.market.add_account(account)
            saved = callable_result(
                "save_alpaca_keys",
                {"key_id": account["key_id"], "secret_key": account["secret_key"]},
                signed_up,
            )
            print(f"  {person.name}: save_alpaca_keys -> {saved}")
            if person.fault:  # Alpaca starts misbehaving after the keys were saved
                alpaca.market.add_account({**account, "fault": person.fault})
        elif person.keys == "bad":
            # keys that worked when saved and were revoked at Alpaca since
            revoked = AlpacaKeys(key_id="PKBADREVOKED1", secret_key="revoked-secret", paper=True)
            seed_user(db, runtime.keystore(), signed_up.uid, keys=revoked, trading=None)
        if person.trading is not None:
            callable_result("set_trading_enabled", {"enabled": person.trading}, signed_up)
    alice = people["alice"].uid
    open_trade(db, alice, "demo-long-aapl", "AAPL", "BUY", "10", "150.00")
    open_trade(db, alice, "demo-short-tsla", "TSLA", "SELL", "2.5", "420.00")
    return people


def callable_result(name: str, data: Any, person: emulators.Person) -> Any:
    body = emulators.call(name, data, person.id_token).json()
    if "result" not in body:
        raise SystemExit(f"demo: {name} failed: {body}")
    return body["result"]


def callable_answer(name: str, data: Any, person: emulators.Person) -> str:
    body = emulators.call(name, data, person.id_token).json()
    if "error" in body:
        return f"{body['error']['status']}: {body['error']['message']}"
    return str(body["result"])


def wait_for_pulse(started: float) -> dict[str, Any]:
    db = clients.firestore_client()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        doc = paths.last_pulse(db).get()
        if (
            doc.exists
            and (doc.to_dict() or {}).get("finished_at")
            and doc.update_time.timestamp() >= started
        ):
            return doc.to_dict() or {}
        time.sleep(0.5)
    raise SystemExit("demo: the pulse did not finish within 120 s; see the emulator log above")


def row(person: DemoPerson, uid: str) -> list[str]:
    db = clients.firestore_client()
    sync = paths.sync_status(db, uid).get().to_dict() or {}
    error = paths.last_sync_error(db, uid).get().to_dict()
    snapshot = paths.account_snapshot(db, uid).get().to_dict()
    marks = (paths.marks(db, uid).get().to_dict() or {}).get("trades", {})
    trades = [
        {**(d.to_dict() or {}), **marks.get(d.id, {})}
        for d in paths.shadow_trades(db, uid).stream()
    ]
    if error:
        outcome = f"failed: {error['code']}"
    elif snapshot:
        outcome = "synced"
    elif person.trading is not True:
        outcome = "skipped: trading off"
    elif person.keys == "none":
        outcome = "skipped: no keys"
    else:
        outcome = "not synced"
    pnl = ", ".join(
        f"{t['symbol']} {t['side']} {t.get('unrealized_pnl', '-')} ({t.get('pnl_percent', '-')}%)"
        for t in trades
    )
    return [
        person.name,
        person.scenario,
        outcome,
        snapshot["equity"] if snapshot else "-",
        snapshot["buying_power"] if snapshot else "-",
        str(sync.get("consecutive_failures", "-")),
        pnl or "-",
    ]


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def show_isolation(people: dict[str, emulators.Person]) -> bool:
    alice, bob = people["alice"], people["bob"]
    checks = [
        (
            "alice reads her own snapshot",
            alice.id_token,
            f"users/{alice.uid}/alpacaAccounts/snapshot",
            200,
        ),
        (
            "alice reads her own trades",
            alice.id_token,
            f"users/{alice.uid}/shadowTradeHistory",
            200,
        ),
        (
            "alice reads bob's sync error",
            alice.id_token,
            f"users/{bob.uid}/status/last_sync_error",
            403,
        ),
        (
            "bob reads alice's snapshot",
            bob.id_token,
            f"users/{alice.uid}/alpacaAccounts/snapshot",
            403,
        ),
        ("bob lists alice's trades", bob.id_token, f"users/{alice.uid}/shadowTradeHistory", 403),
        ("no sign-in reads alice's profile", None, f"users/{alice.uid}", 403),
        ("alice reads the pulse summary", alice.id_token, "ops/last_pulse", 403),
    ]
    rows, ok = [], True
    for label, token, path, expected in checks:
        reader = emulators.FirestoreAs(token)
        answer = reader.list(path) if path.endswith("shadowTradeHistory") else reader.get(path)
        good = answer.status_code == expected
        ok &= good
        rows.append([label, str(expected), str(answer.status_code), "ok" if good else "WRONG"])
    print(table(["through the security rules", "expected", "got", ""], rows))
    return ok


SITE = "http://127.0.0.1:5000"
PULSE_EVERY_S = 60


def serve(people: dict[str, emulators.Person]) -> None:
    """Keep everything up for a person at the page, with a pulse every minute (the Functions
    emulator does not run schedules by itself), until Ctrl-C."""
    ops = emulators.sign_up("ops@demo.agenttrader.test")
    emulators.set_claims(ops.uid, {"admin": True})
    password = next(iter(people.values())).password
    print(f"\nthe web client: {SITE}")
    print(f"  sign in as any of: {', '.join(p.email for p in people.values())}")
    print(f"  or as the administrator {ops.email}; every password is {password}")
    print(
        "  or create an account: any well-formed key pair opens a simulated paper account, "
        "except key ids that start with PKBAD (refused with 401, as Alpaca would); or press "
        "Connect with Alpaca and Approve on the stand-in's page (a new paper account)"
    )
    print(f"a pulse runs every {PULSE_EVERY_S} s; press Ctrl-C to stop")
    stop = threading.Event()
    try:
        while not stop.wait(PULSE_EVERY_S):
            answer = emulators.run_scheduled("pulse")
            print(f"pulse: HTTP {answer.status_code} at {time.strftime('%H:%M:%S')}", flush=True)
    except KeyboardInterrupt:
        pass


DAY_SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD"]


def trading_day(alpaca: AlpacaServer, alice: emulators.Person) -> None:
    """Alice's two strategies through the last full trading day, a run every 30 minutes."""
    day = date.today() - timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    opens, closes = session(day)
    momentum = callable_result(
        "save_strategy",
        {
            "strategy": "momentum_20d",
            "symbols": DAY_SYMBOLS[:4],
            "allocation_usd": "2000",
            "mode": "paper",
            "take_profit_pct": "3",
            "stop_loss_pct": "2",
        },
        alice,
    )
    reversion = callable_result(
        "save_strategy",
        {
            "strategy": "mean_reversion_20d",
            "symbols": DAY_SYMBOLS[4:],
            "allocation_usd": "1500",
            "mode": "shadow",
        },
        alice,
    )
    for saved in (momentum, reversion):
        callable_result("set_strategy_status", {"id": saved["id"], "status": "active"}, alice)
    alpaca.market.fill_delay_s = 0.0
    db = clients.firestore_client()
    paths.pulse_state(db).delete()  # the clock as the replayed day's runs read it
    at = opens
    platform = replace(runtime.platform(), now=lambda: at.astimezone(UTC))
    print(f"\na trading day of alice's strategies, {day} ({opens:%H:%M}-{closes:%H:%M} New York):")
    while at <= closes:
        alpaca.market.frozen_now = at.timestamp()
        with pulse_log():
            summary = run_pulse(platform)
        errors = {str(code): n for code, n in summary.errors.items()}
        print(
            f"  {at:%H:%M} pulse: market_open={summary.market_open} "
            f"synced={summary.counts['synced']} errors={errors}"
        )
        at += timedelta(minutes=30)
    days_after(alpaca, db, alice.uid, day)
    alpaca.market.frozen_now = None
    paths.pulse_state(db).delete()  # back to today's clock
    uid = alice.uid
    print("  what alice sees in Firestore (and on the page):")
    for doc in paths.strategies(db, uid).stream():
        s = doc.to_dict() or {}
        print(
            f"    strategies/{doc.id}: {s['strategy']} {s['mode']} {s['status']} "
            f"decisions={s.get('last_decisions')}"
        )
    for doc in paths.shadow_trades(db, uid).stream():
        t = doc.to_dict() or {}
        if not t.get("strategy_id"):
            continue
        print(
            f"    shadowTradeHistory/{doc.id}: {t['side']} {t['quantity']} {t['symbol']} "
            f"@ {t['entry_price']} {t.get('state') or t['status']} {t.get('close_reason', '')}"
        )
    for doc in paths.orders(db, uid).stream():
        o = doc.to_dict() or {}
        kind = "an exit resting at Alpaca, " if o.get("kind") == "resting" else ""
        price = o.get("filled_avg_price")
        print(
            f"    orders/{doc.id}: {kind}{o['side']} {o['qty']} {o['symbol']}, {o['status']}"
            + (f" at ${price}" if price and o["status"] == "filled" else "")
        )
    show_resting_fills(alpaca, db, uid)
    stats = paths.stats_summary(db, uid).get().to_dict() or {}
    shown = ("realized_pnl", "unrealized_pnl", "trades_closed", "win_rate", "max_drawdown_pct")
    print("    stats/summary: " + " ".join(f"{k}={stats.get(k)}" for k in shown))
    for doc in paths.equity_points(db, uid).stream():
        print(f"    equity/{doc.id}: {(doc.to_dict() or {}).get('equity')}")
    show_book_beside_alpaca(alpaca, db, uid, "PKDEMOALICE000")


def days_after(alpaca: AlpacaServer, db: Any, uid: str, day: date) -> None:
    """The days after: one run near each close, while alice's exits rest at Alpaca and fire
    there between runs, at their price (until one has, ten sessions at most)."""
    for _ in range(10):
        if fired_exits(db, uid) or not resting_exits(db, uid):
            return
        day += timedelta(days=1)
        while not is_trading_day(day):
            day += timedelta(days=1)
        at = session(day)[1] - timedelta(minutes=5)
        alpaca.market.frozen_now = at.timestamp()
        with pulse_log():
            summary = run_pulse(replace(runtime.platform(), now=lambda at=at: at.astimezone(UTC)))
        print(f"  {day} {at:%H:%M} pulse: synced={summary.counts['synced']}")


def resting_exits(db: Any, uid: str) -> list[str]:
    return [
        doc.id
        for doc in paths.orders(db, uid).stream()
        if (doc.to_dict() or {}).get("kind") == "resting" and (doc.to_dict() or {}).get("open")
    ]


def fired_exits(db: Any, uid: str) -> list[dict[str, Any]]:
    return [
        t
        for t in (doc.to_dict() or {} for doc in paths.shadow_trades(db, uid).stream())
        if "resting at Alpaca filled" in str(t.get("close_reason"))
    ]


def show_resting_fills(alpaca: AlpacaServer, db: Any, uid: str) -> None:
    """The exits that fired at Alpaca between two runs: when the leg filled (Alpaca's time),
    and the run that then recorded it."""
    account = alpaca.market.accounts.get("PKDEMOALICE000")
    fired = []
    for t in fired_exits(db, uid):
        order = account.find(str(t.get("close_order_id"))) if account else None
        legs = [] if order is None else [order, *order.legs]
        filled_at = next((leg.filled_at for leg in legs if leg.filled_at), None)
        when = ""
        if filled_at is not None:
            when = f" on {datetime.fromtimestamp(filled_at, NEW_YORK):%Y-%m-%d at %H:%M}"
        recorded = t.get("closed_at")
        run = ""
        if recorded is not None:
            run = f", recorded by the next run ({recorded.astimezone(NEW_YORK):%Y-%m-%d %H:%M})"
        fired.append(f"    {t['symbol']}: {t['close_reason']}{when}{run}")
    if not fired:
        print("  no exit resting at Alpaca was reached this day: they still rest there")
    else:
        print("  exits that fired at Alpaca between two runs:")
    for line in fired:
        print(line)


def listen(alice: emulators.Person, receiver: WebhookReceiver) -> None:
    """Alice hears of every event by webhook (the local receiver) and by email."""
    saved = callable_result(
        "save_notification_settings",
        {"events": list(notices.KINDS), "webhook_url": receiver.url, "email": True},
        alice,
    )
    receiver.state.secret = saved["signing_secret"]  # the receiver checks each signature


def show_notifications(alice: emulators.Person, receiver: WebhookReceiver) -> None:
    """Alice's feed after her day, where each notification went, and what the receiver and
    the `mail` collection got (the deliveries run in the Functions emulator's task queue)."""
    db = clients.firestore_client()
    feed = paths.notifications(db, alice.uid)

    def settled() -> bool:
        states = [
            ((doc.to_dict() or {}).get("deliveries") or {}).get(channel, {}).get("state")
            for doc in feed.stream()
            for channel in ("webhook", "email")
        ]
        return all(state not in (None, "sending", "failed") for state in states)

    deadline = time.monotonic() + 90
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.5)
    print("  alice's notifications (the feed on the page, oldest first, New York time):")
    for doc in feed.order_by("at").stream():
        n = doc.to_dict() or {}
        went = n.get("deliveries") or {}
        where = ", ".join(f"{c} {went[c].get('state')}" for c in sorted(went)) or "feed only"
        print(f"    {n['at'].astimezone(NEW_YORK):%H:%M} {n['kind']}: {n['message']} [{where}]")
    print(f"  what alice's webhook receiver got ({len(receiver.state.received)} requests):")
    for got in receiver.state.received:
        signed = "signature valid" if got.signature_valid else "SIGNATURE INVALID"
        print(f"    POST {got.path} {signed}: {got.body['text']}")
    mails = [doc.to_dict() or {} for doc in paths.mail(db).stream()]
    print(f"  the mail collection, which the Trigger Email extension sends: {len(mails)}")
    for mail in mails[:3]:
        print(f"    to {mail['to']}: {mail['message']['subject']}")


BACKTEST_FIGURES = [
    ("total return %", "total_return_pct"),
    ("CAGR %", "cagr_pct"),
    ("max drawdown %", "max_drawdown_pct"),
    ("daily Sharpe", "sharpe_daily"),
    ("win rate %", "win_rate_pct"),
    ("time in the market %", "exposure_pct"),
    ("trades closed", "trades"),
    ("final equity", "final_equity"),
]


def shown(value: Any, key: str = "") -> str:
    """A backtest's figure as a person reads it: money (stored at full precision) to the cent."""
    if value is None:
        return "—"
    if key == "final_equity":
        return f"${Decimal(value).quantize(Decimal('0.01')):,}"
    return str(value)


def show_backtest(alice: emulators.Person) -> None:
    """One backtest of alice's kind of strategy through the run_backtest callable, beside
    buy-and-hold of the same symbols."""
    request = {
        "strategy": "momentum_20d",
        "symbols": ["AAPL", "MSFT", "NVDA"],
        "allocation_usd": "5000",
        "take_profit_pct": "8",
        "stop_loss_pct": "5",
        "start": "2024-01-02",
        "end": "2025-12-31",
    }
    answer = callable_result("run_backtest", request, alice)
    print(
        f"\nalice's backtest {answer['id']}: momentum_20d on AAPL, MSFT, NVDA (NVDA split "
        f"10-for-1 on 2024-06-10), 2024-01-02 to 2025-12-31, {answer['days']} trading days, "
        f"${answer['initial_equity']} to start"
    )
    rows = [
        [label, shown(answer["statistics"][key], key), shown(answer["buy_and_hold"][key], key)]
        for label, key in BACKTEST_FIGURES
    ]
    print("  " + table(["", "the strategy", "buy and hold"], rows).replace("\n", "\n  "))


def show_book_beside_alpaca(
    alpaca: AlpacaServer, db: firestore.Client, uid: str, key_id: str
) -> None:
    """Alice's paper book (her open paper trades, signed, as the reconciliation counts them)
    beside the stand-in's positions."""
    book = paper_book(open_trades(db, uid))
    held = {s: Decimal(q) for s, q in alpaca.market.accounts[key_id].holdings.items()}
    rows = [
        [
            s,
            str(book.get(s, 0)),
            str(held.get(s, 0)),
            "yes" if book.get(s, 0) == held.get(s, 0) else "NO",
        ]
        for s in sorted(book.keys() | held.keys())
    ]
    print("  alice's paper book beside her Alpaca positions at the close:")
    if not rows:
        print("    neither holds anything")
        return
    print("    " + table(["symbol", "book", "Alpaca", "agree"], rows).replace("\n", "\n    "))


@contextlib.contextmanager
def pulse_log() -> Iterator[None]:
    """The pulse's own log lines (JSON, one per event) go to a file while the replay runs in
    this process, so the demo prints only its story."""
    path = Path(".cache/logs/demo-pulse.log")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args()

    alpaca, secrets = start_standins(open_accounts=args.serve)
    emulators.clear_firestore()
    emulators.clear_auth()
    print(f"stand-ins: Alpaca {alpaca.url}, Secret Manager {secrets.host}")
    people = provision(alpaca)
    print(f"provisioned {len(people)} people through the Auth emulator and the callables\n")

    started = time.time()
    answer = emulators.run_scheduled("pulse")
    if answer.status_code != 200:
        print(f"demo: running the pulse failed: HTTP {answer.status_code} {answer.text[:300]}")
        return 1
    summary = wait_for_pulse(started - 1)
    rows = [row(p, people[p.name].uid) for p in PEOPLE]
    print(
        table(
            [
                "person",
                "scenario",
                "pulse outcome",
                "equity",
                "buying power",
                "fails",
                "open trades P&L",
            ],
            rows,
        )
    )
    print()
    print(
        f"pulse {summary['run_id']}: mode={summary['mode']} users={summary['users_total']} "
        f"duration_ms={summary['duration_ms']} "
        + " ".join(f"{c}={summary[c]}" for c in OUTCOMES)
        + f" errors={summary['errors_by_code']}"
    )
    print()
    alice_signal = callable_result(
        "generate_trading_signal", {"symbol": "NVDA", "open_shadow_trade": True}, people["alice"]
    )
    print(
        f"alice generate_trading_signal NVDA -> {alice_signal['action']} "
        f"{alice_signal['quantity']} @ {alice_signal['price']} "
        f"= {alice_signal['notional_usd']} USD ({alice_signal['reason']})"
    )
    for name in ("bob", "carol"):
        answer = callable_answer("generate_trading_signal", {"symbol": "NVDA"}, people[name])
        print(f"{name} generate_trading_signal NVDA -> {answer}")
    print(
        "no sign-in generate_trading_signal -> "
        + str(
            emulators.call("generate_trading_signal", {"symbol": "NVDA"}).json()["error"]["status"]
        )
    )
    print()
    isolated = show_isolation(people)
    if not isolated:
        print("demo: a security-rules check did not answer as expected")
        return 1
    receiver = WebhookReceiver("")
    listen(people["alice"], receiver)
    trading_day(alpaca, people["alice"])
    show_notifications(people["alice"], receiver)
    receiver.stop()
    show_backtest(people["alice"])
    if args.serve:
        serve(people)
    alpaca.stop()
    secrets.stop()
    print("\ndemo finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
