"""Pulse benchmark: this pulse against the seeds' sequential design, in the same run.

    make bench                                          # 1,000 people, and 5,000 timed
    make bench ARGS="--users 200 --speed-users 2000"    # other populations
    make bench ARGS="--strategies 0"                    # without the run with strategies
    make bench ARGS="--reconcile-users 0"               # without the paper-positions runs
    make bench ARGS="--fanout-users 0"                  # without the fan-out at 10,000

Runs under `firebase emulators:exec` with Firestore, Functions, Pub/Sub and Tasks (the
Makefile does that; the fan-out's tasks run in the Functions emulator) with both stand-ins at
the addresses functions/.env.demo-agenttrader gives: Alpaca answers in 100 ms, Secret Manager
in 20 ms. Every user has a few open shadow trades. Firestore reads and writes are counted on
the client's gRPC channel (documents returned by gets and queries, an empty query counting one;
writes in commits).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import alpaca_trade_api as tradeapi
import firebase_admin
import grpc
import requests
from firebase_functions.https_fn import AuthData
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from agenttrader import runtime
from agenttrader.api.backtest_callables import WARM_UP, BacktestRequest, run_backtest
from agenttrader.api.guard import Services
from agenttrader.backtest import engine as backtest_engine
from agenttrader.bot import notices
from agenttrader.bot import run as bot_run
from agenttrader.bot.signals import shadow_trade_document
from agenttrader.bot.strategies import STRATEGIES
from agenttrader.broker.alpaca import AlpacaBroker, shared_connections
from agenttrader.broker.keystore import KEY_CACHE_S, AlpacaKeys, KeyStore
from agenttrader.context.platform import Platform
from agenttrader.core import clients
from agenttrader.notify import message, webhook
from agenttrader.notify.delivery import Senders, deliver, route
from agenttrader.notify.webhook import signing_secret
from agenttrader.pulse.cadence import CLOSED_EVERY
from agenttrader.pulse.people import PulseSettings
from agenttrader.pulse.run import PulseSummary, run_pulse
from agenttrader.store import paths, switches
from localdev import ALPACA_PORT, SECRETS_PORT, emulators
from localdev.alpaca_standin import price_at
from localdev.webhook_receiver import WebhookReceiver

ALPACA_LATENCY_S = 0.100
SECRETS_LATENCY_S = 0.020
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "AMD"]
TRADES_PER_USER = 3
BASELINE_SAMPLE = 100
PULSES = 10
DEFAULT_CONCURRENCY = 32
WARM_UP_RUNS = 6
"""At most this many one-minute runs for a speed population to reach a warm instance: its
first runs fill the caches and may stop at their deadline before everyone is seen."""


class OpCounter:
    """Firestore documents read and written, counted on the wire."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads = 0
        self.writes = 0

    def add(self, reads: int = 0, writes: int = 0) -> None:
        with self.lock:
            self.reads += reads
            self.writes += writes

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.reads, self.writes


class _CountedStream:
    """Wraps a streaming call: counts documents as they arrive, delegates everything else."""

    def __init__(self, call: Any, method: str, counter: OpCounter) -> None:
        self._call = call
        self._method = method
        self._counter = counter
        self._seen = 0

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        try:
            response = next(self._call)
        except StopIteration:
            if self._method.endswith("/RunQuery") and self._seen == 0:
                self._counter.add(reads=1)
            raise
        if self._method.endswith("/RunQuery"):
            if "document" in response:
                self._seen += 1
                self._counter.add(reads=1)
        elif self._method.endswith("/BatchGetDocuments"):
            if "found" in response or response.missing:
                self._counter.add(reads=1)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _Interceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, counter: OpCounter) -> None:
        self.counter = counter

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.method.endswith("/Commit"):
            self.counter.add(writes=len(request.writes))
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return _CountedStream(continuation(details, request), details.method, self.counter)


class CountingClient(firestore.Client):  # type: ignore[misc]
    """A Firestore client for the emulator whose channel counts reads and writes."""

    def __init__(self, counter: OpCounter, database: str | None = None) -> None:
        super().__init__(
            project=clients.project_id(), credentials=AnonymousCredentials(), database=database
        )
        self._counter = counter

    def _emulator_channel(self, transport: Any) -> Any:
        return grpc.intercept_channel(
            super()._emulator_channel(transport), _Interceptor(self._counter)
        )


class RemoteAlpaca:
    """The Alpaca stand-in in a process of its own, as Alpaca is remote: in this process its
    threads would compete with the pulse's for the interpreter. Driven through /_standin/*."""

    def __init__(self, port: int = ALPACA_PORT) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from localdev.alpaca_standin import AlpacaServer; "
                f"s = AlpacaServer({port}); print(s.url, flush=True); s.serve_forever()",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        self._session = requests.Session()

    def _post(self, path: str, body: dict[str, Any]) -> None:
        self._session.post(f"{self.url}/_standin/{path}", json=body, timeout=30).raise_for_status()

    def reset(self) -> None:
        self._post("reset", {})

    def latency(self, seconds: float) -> None:
        self._post("latency", {"seconds": seconds})

    def freeze(self, epoch_s: float) -> None:
        self._post("clock", {"now": epoch_s})

    def add_account(self, body: dict[str, Any]) -> None:
        self._post("accounts", body)

    def requests_total(self) -> int:
        answer = self._session.get(f"{self.url}/_standin/stats", timeout=30)
        return int(answer.json()["total"])

    def by_key(self, endpoint: str) -> dict[str, int]:
        """Requests to `endpoint`, by account."""
        answer = self._session.get(f"{self.url}/_standin/stats", timeout=30)
        return {k: v.get(endpoint, 0) for k, v in answer.json()["by_key"].items()}

    def requests_to(self, endpoint: str) -> int:
        answer = self._session.get(f"{self.url}/_standin/stats", timeout=30)
        return sum(by.get(endpoint, 0) for by in answer.json()["by_key"].values())

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


class RemoteSecrets:
    """The Secret Manager stand-in in a process of its own, for the same reason as Alpaca's:
    Secret Manager is remote, and its server's threads here would compete with the pulse's.
    Driven by one command a line on its standard input, answered on its standard output."""

    def __init__(self, port: int = SECRETS_PORT) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", _SECRETS_PROCESS, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.host = self._ask("host")

    def _ask(self, *command: object) -> str:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(" ".join(map(str, command)) + "\n")
        self._process.stdin.flush()
        return self._process.stdout.readline().strip()

    def reset(self) -> None:
        self._ask("reset")

    def latency(self, seconds: float) -> None:
        self._ask("latency", seconds)

    def accesses(self) -> int:
        """AccessSecretVersion calls answered since the last reset."""
        return int(self._ask("accesses"))

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


_SECRETS_PROCESS = """
import sys
from localdev.secret_manager_standin import SecretManagerServer
server = SecretManagerServer(int(sys.argv[1])).start()
for line in sys.stdin:
    command, *args = line.split()
    if command == "reset":
        server.store.reset()
    elif command == "latency":
        server.store.latency_s = float(args[0])
    answer = {"host": server.host, "accesses": server.store.calls["AccessSecretVersion"]}
    print(answer.get(command, "ok"), flush=True)
"""


# -- population ---------------------------------------------------------------------------------


def uid_of(i: int) -> str:
    return f"bench{i:05d}"


STRATEGY_SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "ADBE", "QCOM", "TXN", "AVGO", "CSCO", "PEP", "KO", "WMT",
]  # fmt: skip
STRATEGY_KINDS = ["momentum_20d", "mean_reversion_20d"]


def strategy_document(i: int, k: int, now: datetime) -> dict[str, Any]:
    """Person i's k-th strategy: active, shadow, two symbols from a shared list."""
    at = (i * 3 + k * 7) % len(STRATEGY_SYMBOLS)
    return {
        "strategy": STRATEGY_KINDS[k % len(STRATEGY_KINDS)],
        "symbols": [STRATEGY_SYMBOLS[at], STRATEGY_SYMBOLS[(at + 1) % len(STRATEGY_SYMBOLS)]],
        "allocation_usd": "1000",
        "mode": "shadow",
        "status": "active",
        "take_profit_pct": "5",
        "stop_loss_pct": "5",
        "created_at": now,
        "updated_at": now,
    }


def seed(
    n: int,
    db: firestore.Client,
    keystore: KeyStore,
    alpaca: RemoteAlpaca,
    strategies: int = 0,
    paper: bool = False,
) -> None:
    """`n` people with keys, trading on and TRADES_PER_USER open trades each (`paper`: paper
    trades, which their Alpaca accounts hold, so the pulse reconciles them every open run)."""
    for i in range(n):
        holdings = {}
        for t in range(TRADES_PER_USER if paper else 0):
            holdings[SYMBOLS[(i + t) % len(SYMBOLS)]] = (1 + t) * (1 if t % 2 == 0 else -1)
        alpaca.add_account(
            {
                "key_id": f"PKBENCH{i:05d}",
                "secret_key": f"bench-secret-{i}",
                "cash": "50000",
                "holdings": holdings,
            }
        )

    def save(i: int) -> None:
        keys = AlpacaKeys(key_id=f"PKBENCH{i:05d}", secret_key=f"bench-secret-{i}", paper=True)
        keystore.save(uid_of(i), keys)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(save, range(n)))
    now = datetime.now(UTC)
    batch, pending = db.batch(), 0
    for i in range(n):
        uid = uid_of(i)
        batch.set(
            paths.user(db, uid),
            {
                "email": f"{uid}@bench.test",
                "keys_version": 1,
                "open_trades": TRADES_PER_USER,
                "trades_version": 1,
                **({"bot_version": 1} if strategies else {}),
            },
        )
        switches.set_trading(batch, db, uid, True, now)
        for k in range(strategies):
            batch.set(paths.strategies(db, uid).document(f"s{k}"), strategy_document(i, k, now))
            pending += 1
        for t in range(TRADES_PER_USER):
            symbol = SYMBOLS[(i + t) % len(SYMBOLS)]
            trade = shadow_trade_document(
                symbol, "BUY" if t % 2 == 0 else "SELL", Decimal(1 + t), Decimal("100.00"), now
            )
            if paper:
                trade.update(mode="paper", state="open")
            batch.set(paths.shadow_trades(db, uid).document(f"t{t}"), trade)
        pending += 2 + TRADES_PER_USER
        if pending >= 450:
            batch.commit()
            batch, pending = db.batch(), 0
    if pending:
        batch.commit()


# -- the seeds' design: one user after another --------------------------------------------------


def baseline_pulse(
    db: firestore.Client, secrets: Any, project: str, alpaca_url: str, uids: list[str]
) -> None:
    """Per user: kill-switch, secret, account, snapshot, one price request per open trade."""
    os.environ["APCA_API_DATA_URL"] = alpaca_url
    for uid in uids:
        status = paths.trading_status(db, uid).get()
        if not switches.switch_is_on(status.to_dict() if status.exists else None):
            continue
        name = f"projects/{project}/secrets/alpaca-keys-{uid}/versions/latest"
        keys = json.loads(secrets.access_secret_version(request={"name": name}).payload.data)
        rest = tradeapi.REST(keys["key_id"], keys["secret_key"], base_url=alpaca_url, raw_data=True)
        account = rest.get_account()
        paths.account_snapshot(db, uid).set(
            {k: account[k] for k in ("equity", "cash", "buying_power", "portfolio_value", "status")}
            | {"synced_at": datetime.now(UTC)}
        )
        query = paths.shadow_trades(db, uid).where(
            filter=firestore.FieldFilter("status", "==", "OPEN")
        )
        for doc in query.stream():
            trade = doc.to_dict() or {}
            price = rest.get_latest_trade(trade["symbol"])["p"]
            doc.reference.update({"current_price": str(price), "last_priced_at": datetime.now(UTC)})


# -- measuring -----------------------------------------------------------------------------------


def measure(
    label: str,
    run: Callable[[], Any],
    counter: OpCounter,
    alpaca: RemoteAlpaca,
    secrets: RemoteSecrets,
) -> dict[str, float]:
    reads0, writes0 = counter.snapshot()
    alpaca0 = alpaca.requests_total()
    secrets0 = secrets.accesses()
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run()
    seconds = time.perf_counter() - started
    reads1, writes1 = counter.snapshot()
    return {
        "seconds": seconds,
        "reads": reads1 - reads0,
        "writes": writes1 - writes0,
        "alpaca": alpaca.requests_total() - alpaca0,
        "secrets": secrets.accesses() - secrets0,
    }


PRICES = {
    # US dollars per operation, list prices before free quotas
    "reads": 0.03
    / 100_000,  # Firestore document read, us-central1: firebase.google.com/docs/firestore/pricing
    "writes": 0.09 / 100_000,  # Firestore document write, us-central1: same page
    "secrets": 0.03
    / 10_000,  # Secret Manager access operation: cloud.google.com/secret-manager/pricing
    "alpaca": 0.0,  # Alpaca's trading and market-data APIs cost nothing per request
}
# The rest of the bill, list prices before free tiers (us-central1, tier 1):
SECRET_VERSION_MONTH_USD = (
    0.06  # an active secret version a month: cloud.google.com/secret-manager/pricing
)
VCPU_SECOND_USD = (
    0.000024  # Cloud Run functions (2nd gen), request-based: cloud.google.com/run/pricing
)
GIB_SECOND_USD = 0.0000025  # memory, a GiB-second: same page
INVOCATION_USD = 0.40 / 1_000_000  # a request (invocation): same page
TASK_OPERATION_USD = (
    0.40 / 1_000_000
)  # a Cloud Tasks billable operation: cloud.google.com/tasks/pricing
PULSE_VCPU, PULSE_GIB = 1, 1  # what functions/main.py declares for pulse and syncuserbatch
# notificationcreated and delivernotification: 256 MiB and the vCPU share Cloud Run functions
# give that size (cloud.google.com/functions/docs/configuring/memory)
NOTIFY_VCPU, NOTIFY_GIB = 0.167, 0.25
BILLED_MIN_S = 0.1  # a request's time is billed in 100 ms steps: cloud.google.com/run/pricing
TASK_OPERATIONS_PER_TASK = 2  # its create call and its push: cloud.google.com/tasks/pricing
FANOUT_BATCH = 100  # PULSE_FANOUT_BATCH's default: people per task once the pulse fans out
MONTH_MINUTES = 30 * 24 * 60
SESSIONS = 21
"""Market sessions in the reference month."""
OPEN_MINUTES = SESSIONS * 6.5 * 60  # 21 sessions of 6.5 hours: every minute syncs
CLOSED_SYNCS = (MONTH_MINUTES - OPEN_MINUTES) / (CLOSED_EVERY.total_seconds() / 60)
IDLE_TICKS = MONTH_MINUTES - OPEN_MINUTES - CLOSED_SYNCS
NEW_YORK = ZoneInfo("America/New_York")
OPEN_AT = datetime(2026, 11, 23, 10, 0, tzinfo=NEW_YORK)  # a Monday session
CLOSED_AT = datetime(2026, 11, 23, 20, 0, tzinfo=NEW_YORK)
KINDS = ("reads", "writes", "secrets", "alpaca")


class BenchClock:
    """The pulse's clock and the stand-in's, moved together (prices move with the latter)."""

    def __init__(self, alpaca: RemoteAlpaca) -> None:
        self.alpaca = alpaca
        self.at = OPEN_AT

    def now(self) -> datetime:
        return self.at.astimezone(UTC)

    def move(self, at: datetime, prices_move: bool = True) -> None:
        self.at = at
        if prices_move:
            self.alpaca.freeze(at.timestamp())


def per_user(m: dict[str, float], n: int) -> dict[str, float]:
    return {k: m[k] / n for k in KINDS}


def usd(counts: dict[str, float]) -> float:
    return sum(counts[k] * PRICES[k] for k in KINDS)


def seeded(
    n: int,
    db: firestore.Client,
    alpaca: RemoteAlpaca,
    secrets: RemoteSecrets,
    strategies: int = 0,
    paper: bool = False,
) -> None:
    """Empty emulators and stand-ins, `n` people seeded at once, then the stand-ins' latency."""
    emulators.clear_firestore()
    alpaca.reset()
    secrets.reset()
    alpaca.latency(0)
    secrets.latency(0)
    seed(
        n,
        db,
        KeyStore(clients.secret_manager_client(), clients.project_id()),
        alpaca,
        strategies,
        paper,
    )
    alpaca.latency(ALPACA_LATENCY_S)
    secrets.latency(SECRETS_LATENCY_S)


def bench_population(
    n: int,
    alpaca: RemoteAlpaca,
    secrets: RemoteSecrets,
    baseline: bool = True,
    strategies: int = 0,
    report: dict[str, dict[str, float]] | None = None,
    paper: bool = False,
) -> list[str]:
    """Time and count a population's pulses; with `report`, keep the per-person counts of a
    run while open (and, with the baseline, while closed) in it."""
    counter = OpCounter()
    db = CountingClient(counter)
    sm = clients.secret_manager_client()
    project = clients.project_id()
    seeded(n, db, alpaca, secrets, strategies, paper)
    clock = BenchClock(alpaca)
    clock.move(OPEN_AT)

    base: dict[str, float] = {}
    sample = [uid_of(i) for i in range(min(n, BASELINE_SAMPLE))]
    if baseline:
        base = measure(
            "baseline",
            lambda: baseline_pulse(db, sm, project, alpaca.url, sample),
            counter,
            alpaca,
            secrets,
        )

    connections = shared_connections()

    def broker(keys: AlpacaKeys) -> AlpacaBroker:
        return AlpacaBroker(
            keys, trading_url=alpaca.url, data_url=alpaca.url, connections=connections
        )

    def new_instance() -> Platform:
        """An instance that knows nobody: what a deploy or a scale-up starts."""
        return Platform(db=db, keys=KeyStore(sm, project), brokers=broker, now=clock.now)

    instance = {"platform": new_instance()}
    concurrency = int(os.environ.get("PULSE_CONCURRENCY", str(DEFAULT_CONCURRENCY)))
    settings = PulseSettings(concurrency=concurrency)

    last: dict[str, PulseSummary] = {}

    def pulse() -> None:
        last["run"] = run_pulse(instance["platform"], settings, cadence=True)

    # the market is open: a pulse a minute, prices moving between them
    open_runs = []
    first_synced = 0
    minute = 0
    for minute in range(PULSES if baseline else WARM_UP_RUNS):
        clock.move(OPEN_AT + timedelta(minutes=minute))
        open_runs.append(measure("open", pulse, counter, alpaca, secrets))
        if minute == 0:  # everyone's first sync ever: how many it reached within its minute
            first_synced = last["run"].counts["synced"]
        if not baseline and minute >= 2 and last["run"].counts["synced"] == n:
            break  # steady: a run that synced everyone on a warm instance
    first = open_runs[0]
    # steady state: a warm instance (the first runs fill its caches, and at thousands of
    # people stop at their deadline before everyone is seen; each run takes people in a new
    # order, so nobody is always the one left)
    warm = open_runs[-1:] if not baseline else open_runs[1:]
    warm_s = statistics.mean(r["seconds"] for r in warm)
    # a new instance's first run, over people synced before (every deploy and every scale-up
    # starts one), then a run that warms it again
    instance["platform"] = new_instance()
    clock.move(OPEN_AT + timedelta(minutes=minute + 1))
    cold = measure("open", pulse, counter, alpaca, secrets)
    cold_synced = last["run"].counts["synced"]
    clock.move(OPEN_AT + timedelta(minutes=minute + 2))
    measure("open", pulse, counter, alpaca, secrets)
    per_sync = statistics.mean(r["alpaca"] for r in warm) / n  # Alpaca requests per person
    bound_s = n * per_sync * ALPACA_LATENCY_S / concurrency
    lines = [
        f"bench: users={n} strategies_per_user={strategies} pulse_s={warm_s:.2f} "
        f"cold_pulse_s={cold['seconds']:.2f} cold_synced={cold_synced} "
        f"first_sync_s={first['seconds']:.2f} first_synced={first_synced} "
        f"latency_bound_s={bound_s:.2f} share_of_bound={bound_s / warm_s:.2f} "
        f"concurrency={concurrency} synced={last['run'].counts['synced']} "
        f"runs_to_warm={len(open_runs)}"
    ]
    print(
        f"\n{n} people, {TRADES_PER_USER} open trades and {strategies} active strategies each; "
        f"Alpaca {ALPACA_LATENCY_S * 1000:.0f} "
        f"ms, Secret Manager {SECRETS_LATENCY_S * 1000:.0f} ms, concurrency {concurrency}"
    )
    print(
        f"  pulse while open: {warm_s:.2f} s a minute on a warm instance; a new instance's first "
        f"run {cold['seconds']:.2f} s ({cold_synced} synced); everyone's first sync ever "
        f"{first['seconds']:.2f} s ({first_synced} synced); latency-bound limit {bound_s:.2f} s "
        f"(people x {per_sync:.2f} Alpaca requests a sync x {ALPACA_LATENCY_S * 1000:.0f} ms / "
        "concurrency)"
    )
    if baseline:
        lines.append(
            month(n, pulse, clock, open_runs, base, len(sample), counter, alpaca, secrets, report)
        )
    elif report is not None:
        report["open"] = {**per_user(warm[-1], n), "seconds": warm_s}
        report["positions"] = {"requests": float(alpaca.requests_to("positions"))}
    return lines


def month(
    n: int,
    pulse: Callable[[], None],
    clock: BenchClock,
    open_runs: list[dict[str, float]],
    base: dict[str, float],
    sampled: int,
    counter: OpCounter,
    alpaca: RemoteAlpaca,
    secrets: RemoteSecrets,
    report: dict[str, dict[str, float]] | None = None,
) -> str:
    """The reference month for one person, both designs, in counts and at list prices."""
    first = open_runs[0]
    # the market closes: one sync at the close, then one every CLOSED_EVERY, prices still
    clock.move(CLOSED_AT)
    measure("close", pulse, counter, alpaca, secrets)
    clock.move(CLOSED_AT + CLOSED_EVERY, prices_move=False)
    closed = measure("closed", pulse, counter, alpaca, secrets)
    clock.move(CLOSED_AT + CLOSED_EVERY + timedelta(minutes=1), prices_move=False)
    idle = measure("idle", pulse, counter, alpaca, secrets)

    steady = {k: statistics.mean(r[k] for r in open_runs[1:]) for k in KINDS}
    if report is not None:
        report["open"] = per_user(steady, n)
        report["closed"] = per_user(closed, n)
    seq = per_user(base, sampled)
    month_seq = {k: seq[k] * MONTH_MINUTES for k in KINDS}
    month_pulse = {
        k: per_user(steady, n)[k] * OPEN_MINUTES
        + per_user(closed, n)[k] * CLOSED_SYNCS
        + per_user(idle, n)[k] * IDLE_TICKS
        for k in KINDS
    }
    # keys stay cached for the key store's period, so a warm instance reads a person's secret
    # once a period however often it syncs them (a cold instance once more): count one a period
    month_pulse["secrets"] = MONTH_MINUTES * 60 / KEY_CACHE_S
    rows = [
        ("per person per run", "Firestore reads", "writes", "Secret Manager", "Alpaca"),
        ("sequential, every minute", *(f"{seq[k]:.2f}" for k in KINDS)),
        ("pulse, market open", *(f"{per_user(steady, n)[k]:.3f}" for k in KINDS)),
        ("pulse, market closed", *(f"{per_user(closed, n)[k]:.3f}" for k in KINDS)),
        ("pulse, idle tick", *(f"{per_user(idle, n)[k]:.4f}" for k in KINDS)),
        ("per person per month", "", "", "", ""),
        ("sequential", *(f"{month_seq[k]:,.0f}" for k in KINDS)),
        ("pulse", *(f"{month_pulse[k]:,.0f}" for k in KINDS)),
    ]
    table(rows)
    print(
        f"  reference month: {MONTH_MINUTES:,} minutes, {OPEN_MINUTES:,.0f} of them open "
        f"(21 sessions of 6.5 h), {CLOSED_SYNCS:,.0f} closed syncs, {IDLE_TICKS:,.0f} idle ticks; "
        "prices move only while open"
    )
    print(
        "  prices: Firestore $0.03 per 100,000 reads and $0.09 per 100,000 writes (us-central1), "
        "Secret Manager $0.03 per 10,000 accesses, Alpaca $0"
    )
    if report is not None:
        report["month"] = month_pulse
        report["month_seq"] = month_seq
        # the function's billed time: every run of the month, at what each kind took here
        report["compute"] = {
            "pulse_s": (
                statistics.mean(r["seconds"] for r in open_runs[1:]) * OPEN_MINUTES
                + closed["seconds"] * CLOSED_SYNCS
                + idle["seconds"] * IDLE_TICKS
            )
            / n,
            "sequential_s": base["seconds"] / sampled * MONTH_MINUTES,
            "syncing_runs": OPEN_MINUTES + CLOSED_SYNCS,
        }
    ratio = usd(month_pulse) / usd(month_seq)
    print(
        f"  sequential ${usd(month_seq):.4f}, pulse ${usd(month_pulse):.4f} per person a month; "
        f"sequential throughput {sampled / base['seconds']:.1f} people/s, "
        f"pulse {n / first['seconds']:.1f} people/s"
    )
    return (
        f"cost: pulse_usd_per_user_month={usd(month_pulse):.4f} "
        f"sequential_usd_per_user_month={usd(month_seq):.4f} ratio={ratio:.3f}"
    )


def all_in(
    counts: dict[str, float],
    compute_s: float,
    invocations: float,
    tasks: float,
    resting_writes: float = 0.0,
) -> dict[str, float]:
    """A person's month at list prices, every part of the bill; `resting_writes` are the
    Firestore writes a month of exits resting at Alpaca adds (the `stops:` replay)."""
    parts = {
        "firestore": counts["reads"] * PRICES["reads"] + counts["writes"] * PRICES["writes"],
        "resting_exits": resting_writes * PRICES["writes"],
        "secret_versions": SECRET_VERSION_MONTH_USD,  # one live version (older ones destroyed)
        "secret_access": counts["secrets"] * PRICES["secrets"],
        "compute": compute_s * (PULSE_VCPU * VCPU_SECOND_USD + PULSE_GIB * GIB_SECOND_USD),
        "invocations": invocations * INVOCATION_USD,
        "tasks": tasks * TASK_OPERATION_USD,
    }
    return {"total": sum(parts.values()), **parts}


def all_in_line(
    n: int,
    strategies: int,
    report: dict[str, dict[str, float]],
    resting_writes_per_position_day: float | None = None,
) -> str:
    """The reference person's whole month (3 open trades, `strategies` active strategies), as
    measured with `n` people: Firestore and Secret Manager from the counts, compute from the
    runs' time at the declared size, one pulse invocation a minute shared by everyone, and,
    as if the pulse fanned out, one task (and its invocation) per FANOUT_BATCH people per
    syncing run; each open trade's exit resting at Alpaca every session (the writes the
    `stops:` replay measured per position-day, when it ran); against the sequential loop,
    which ran every minute for each person."""
    compute = report["compute"]
    fanned = compute["syncing_runs"] / FANOUT_BATCH
    resting = (resting_writes_per_position_day or 0.0) * TRADES_PER_USER * SESSIONS
    pulse = all_in(report["month"], compute["pulse_s"], MONTH_MINUTES / n + fanned, fanned, resting)
    sequential = all_in(report["month_seq"], compute["sequential_s"], MONTH_MINUTES / n, 0)
    parts = " ".join(f"{k}={v:.4f}" for k, v in pulse.items() if k != "total")
    print(
        f"\n  all in, a person a month ({TRADES_PER_USER} open trades, {strategies} strategies, "
        f"{n} people): ${pulse['total']:.4f} ({parts}); the sequential loop "
        f"${sequential['total']:.4f}"
    )
    return (
        f"cost: all_in_usd_per_user_month={pulse['total']:.4f} {parts} "
        f"ratio={pulse['total'] / sequential['total']:.3f}"
    )


def strategies_line(
    n: int,
    per_user_strategies: int,
    without: dict[str, dict[str, float]],
    bot: dict[str, dict[str, float]],
) -> str:
    """What the strategies add per person per run, open and closed, against the same
    population without them in the same run."""
    parts = []
    for phase in ("open", "closed"):
        for kind in KINDS:
            parts.append(f"{phase}_{kind}=+{bot[phase][kind] - without[phase][kind]:.3f}")
    return (
        f"strategies: users={n} per_user={per_user_strategies} added_per_person_per_run "
        + " ".join(parts)
    )


def reconciliation_line(
    n: int, shadow: dict[str, dict[str, float]], paper: dict[str, dict[str, float]]
) -> str:
    """What reconciling paper positions adds per person per open run, against the same
    population with the same trades as shadow trades, in the same run."""
    added = " ".join(f"{kind}=+{paper['open'][kind] - shadow['open'][kind]:.3f}" for kind in KINDS)
    return (
        f"reconciliation: users={n} paper_positions_per_user={TRADES_PER_USER} "
        f"added_per_person_per_open_run {added} "
        f"positions_requests_shadow_only={shadow['positions']['requests']:.0f} "
        f"pulse_s_paper={paper['open']['seconds']:.2f} "
        f"pulse_s_shadow={shadow['open']['seconds']:.2f}"
    )


STOPS_DAY = datetime(2026, 11, 23, tzinfo=NEW_YORK)
"""The replayed session of the stops bench (a Monday)."""
STOP_QTY = 10
STOP_SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOGL", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "QCOM", "TXN", "KO", "JPM", "PYPL", "IBM", "PEP", "DIS",
]  # fmt: skip


def stops_population(
    n: int,
    db: firestore.Client,
    alpaca: RemoteAlpaca,
    secrets: RemoteSecrets,
    crossed: bool = True,
) -> list[tuple[str, str, Decimal, Decimal]]:
    """`n` people, each with a filled paper position entered at the first run (09:35) whose
    stop the day's price path crosses later (halfway between its entry and the day's low
    after it): (uid, symbol, entry, stop)."""
    emulators.clear_firestore()
    alpaca.reset()
    secrets.reset()
    alpaca.latency(0)
    secrets.latency(0)
    opens = STOPS_DAY.replace(hour=9, minute=35)
    start, end = int(opens.timestamp()) + 60, int(STOPS_DAY.replace(hour=15, minute=55).timestamp())
    crossing = []  # symbols whose price falls below where it stood at the first run
    for symbol in STOP_SYMBOLS:
        entry = price_at(symbol, opens.timestamp())
        low = min(price_at(symbol, t) for t in range(start, end, 60))
        if low < entry * Decimal("0.998"):
            stop = (entry + low) / 2 if crossed else entry / 2  # never reached: it rests all day
            crossing.append((symbol, entry, stop.quantize(Decimal("0.01"))))
    keystore = KeyStore(clients.secret_manager_client(), clients.project_id())
    made = []
    now = datetime.now(UTC)
    for i in range(n):
        symbol, entry, stop = crossing[i % len(crossing)]
        key_id, secret = f"PKSTOP{i:05d}", f"stop-secret-{i}"
        alpaca.add_account({"key_id": key_id, "secret_key": secret, "holdings": {symbol: STOP_QTY}})
        keys = AlpacaKeys(key_id=key_id, secret_key=secret, paper=True)
        keystore.save(uid_of(i), keys)
        number = tradeapi.REST(key_id, secret, base_url=alpaca.url, raw_data=True).get_account()[
            "account_number"
        ]
        uid = uid_of(i)
        batch = db.batch()
        batch.set(
            paths.user(db, uid),
            {
                "email": f"{uid}@bench.test",
                "keys_version": 1,
                "open_trades": 1,
                "trades_version": 1,
            },
        )
        switches.set_trading(batch, db, uid, True, now)
        batch.set(
            paths.shadow_trades(db, uid).document("t0"),
            {
                "symbol": symbol, "side": "BUY", "quantity": str(STOP_QTY),
                "filled_qty": str(STOP_QTY),
                "entry_price": str(entry), "status": "OPEN", "state": "open", "mode": "paper",
                "stop_loss_pct": str((1 - stop / entry) * 100), "stop_loss_price": str(stop),
                "take_profit_pct": None, "take_profit_price": None, "created_at": now,
                "fills": {"t0-open": {"role": "entry", "qty": str(STOP_QTY), "price": str(entry)}},
                "account_number": number, "paper": True,
            },
        )  # fmt: skip
        batch.commit()
        made.append((uid, symbol, entry, stop))
    return made


def replay_stops(
    n: int,
    alpaca: RemoteAlpaca,
    secrets: RemoteSecrets,
    every_min: int,
    resting: bool,
    crossed: bool = True,
) -> dict[str, float]:
    """One session of `n` positions, a run every `every_min` minutes, with exits resting at
    Alpaca or with the pulse's check alone: slippage beyond each stop, in basis points of the
    stop, and what the day cost per position."""
    counter = OpCounter()
    db = CountingClient(counter)
    made = stops_population(n, db, alpaca, secrets, crossed)
    sm, project = clients.secret_manager_client(), clients.project_id()
    clock = BenchClock(alpaca)

    def broker(keys: AlpacaKeys) -> AlpacaBroker:
        return AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)

    platform = Platform(db=db, keys=KeyStore(sm, project), brokers=broker, now=clock.now)
    original = bot_run.rest_exits
    if not resting:  # the same product with nothing resting at Alpaca: the check alone
        bot_run.rest_exits = lambda *args, **kwargs: None
    reads0, writes0 = counter.snapshot()
    alpaca0 = alpaca.requests_total()
    at = STOPS_DAY.replace(hour=9, minute=35)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            while at <= STOPS_DAY.replace(hour=15, minute=55):
                clock.move(at)
                run_pulse(platform)
                at += timedelta(minutes=every_min)
    finally:
        bot_run.rest_exits = original
    slips = []
    for uid, _, _, stop in made:
        t = paths.shadow_trades(db, uid).document("t0").get().to_dict() or {}
        if t.get("exit_price"):
            slips.append(float((stop - Decimal(t["exit_price"])) / stop * 10_000))
    _, writes1 = counter.snapshot()
    return {
        "closed": len(slips),
        "mean_bps": sum(slips) / len(slips) if slips else 0.0,
        "worst_bps": max(slips) if slips else 0.0,
        "alpaca": (alpaca.requests_total() - alpaca0) / n,
        "writes": (writes1 - writes0) / n,
    }


def bench_stops(alpaca: RemoteAlpaca, secrets: RemoteSecrets, n: int = 40) -> tuple[str, float]:
    """Stops resting at Alpaca against the pulse's check alone, on one replayed session whose
    prices cross every stop between runs: a run every minute (as deployed) and every 15
    minutes (a slow spell, an outage), and what resting adds per position per day. Returns
    the line and the Firestore writes resting adds per position-day (the dearer of a day it
    fires and a day it rests throughout), for the all-in cost."""
    rest_1 = replay_stops(n, alpaca, secrets, 1, resting=True)
    check_1 = replay_stops(n, alpaca, secrets, 1, resting=False)
    rest_15 = replay_stops(n, alpaca, secrets, 15, resting=True)
    check_15 = replay_stops(n, alpaca, secrets, 15, resting=False)
    resting_all_day = replay_stops(n, alpaca, secrets, 1, resting=True, crossed=False)
    check_all_day = replay_stops(n, alpaca, secrets, 1, resting=False, crossed=False)

    def slip(name: str, m: dict[str, float]) -> str:
        return f"{name} mean={m['mean_bps']:.1f} worst={m['worst_bps']:.1f}"

    writes = max(
        rest_1["writes"] - check_1["writes"],
        resting_all_day["writes"] - check_all_day["writes"],
    )
    line = " ".join(
        [
            f"stops: positions={n} closed_resting={rest_1['closed']:.0f}",
            f"closed_check={check_1['closed']:.0f} slippage_bps_beyond_the_stop:",
            slip("resting", rest_1),
            slip("check_every_1min", check_1),
            slip("resting_runs_every_15min", rest_15),
            slip("check_every_15min", check_15),
            f"extra_per_position_day_when_the_stop_fires alpaca_requests="
            f"{rest_1['alpaca'] - check_1['alpaca']:+.1f}",
            f"firestore_writes={rest_1['writes'] - check_1['writes']:+.1f}",
            "extra_per_position_day_when_it_rests_all_day alpaca_requests="
            f"{resting_all_day['alpaca'] - check_all_day['alpaca']:+.1f}",
            f"firestore_writes={resting_all_day['writes'] - check_all_day['writes']:+.1f}",
        ]
    )
    return line, writes


FANOUT_WAIT_S = 900.0
"""How long the fan-out bench waits for everyone (the Functions emulator's workers share this
machine's cores, unlike Cloud Functions' instances)."""


def bench_fanout(n: int, alpaca: RemoteAlpaca, secrets: RemoteSecrets) -> str:
    """The plan past one instance, measured: `n` people synced once in this process and once
    fanned out through the syncuserbatch task queue (the Tasks emulator dispatching to the
    Functions emulator's syncuserbatch, `PULSE_FANOUT_BATCH` people a task), each run on an
    instance that knows nobody. Reports both times, the fan-out's overhead, and that each
    person's account was read exactly once in the fanned-out run."""
    db = firestore.Client(project=clients.project_id(), credentials=AnonymousCredentials())
    sm = clients.secret_manager_client()
    seeded(n, db, alpaca, secrets)
    alpaca.freeze(OPEN_AT.timestamp())  # Alpaca's clock says open; the functions use real time
    connections = shared_connections()

    def platform() -> Platform:  # a new instance
        return Platform(
            db=db,
            keys=KeyStore(sm, clients.project_id()),
            brokers=lambda keys: AlpacaBroker(
                keys, trading_url=alpaca.url, data_url=alpaca.url, connections=connections
            ),
            now=lambda: datetime.now(UTC),
        )

    concurrency = int(os.environ.get("PULSE_CONCURRENCY", str(DEFAULT_CONCURRENCY)))
    # no deadline in either run (a run a minute is not the point here): each syncs everyone,
    # and the time it takes is the measure
    unbounded = {"concurrency": concurrency, "deadline_s": FANOUT_WAIT_S, "lease_s": FANOUT_WAIT_S}
    started = time.perf_counter()
    inline = run_pulse(platform(), PulseSettings(fanout_threshold=n, **unbounded))
    inline_s = time.perf_counter() - started

    alpaca.freeze(OPEN_AT.timestamp() + 60)
    before = alpaca.by_key("account")
    settings = PulseSettings(fanout_threshold=n - 1, **unbounded)
    started = time.perf_counter()
    fanned = run_pulse(platform(), settings, enqueue=runtime.sync_queue())
    deadline = started + FANOUT_WAIT_S
    reads: dict[str, int] = {}
    while time.perf_counter() < deadline:
        after = alpaca.by_key("account")
        reads = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        if sum(reads.values()) >= n:
            break
        time.sleep(0.5)
    fanout_s = time.perf_counter() - started
    time.sleep(3)  # late tasks would read an account twice: give them the time to
    after = alpaca.by_key("account")
    reads = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    record = paths.pulse_run(db, fanned.run_id).get().to_dict() or {}
    once = sum(1 for v in reads.values() if v == 1)
    twice = sum(1 for v in reads.values() if v > 1)
    print(
        f"\nfan-out, {n} people on new instances: in process {inline_s:.2f} s "
        f"({inline.counts['synced']} synced); through {fanned.tasks_enqueued} tasks of "
        f"{settings.fanout_batch} {fanout_s:.2f} s ({record.get('synced', 0)} synced by the "
        f"tasks' count; {once} accounts read once, {twice} more than once)"
    )
    return (
        f"fanout: users={n} tasks={fanned.tasks_enqueued} inprocess_s={inline_s:.2f} "
        f"inprocess_synced={inline.counts['synced']} fanout_s={fanout_s:.2f} "
        f"overhead={fanout_s / inline_s:.2f} synced={record.get('synced', 0)} "
        f"synced_once={once} synced_twice={twice}"
    )


BACKTEST_SYMBOLS = [
    "AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "AMD", "NFLX", "INTC",
    "ORCL", "CRM", "ADBE", "QCOM", "TXN", "AVGO", "CSCO", "IBM", "PEP", "KO",
]  # fmt: skip
BACKTEST_RUNS = 5


NOTIFY_EVENTS = 100
NOTIFY_EVENTS_PER_MONTH = 30  # one event a day
NOTIFY_KEY = "the bench's webhook signing key"


def bench_notifications() -> str:
    """A person who hears of every event by webhook and email: `NOTIFY_EVENTS` notifications
    written, routed (the trigger's part) and delivered on both channels (the tasks' part) to a
    local receiver, with Firestore counted on the wire and each part timed; against the bare
    signed POST of the same body in the same run. Priced at one event a day: Firestore,
    the three invocations and their compute (at least 100 ms each), the two tasks."""
    counter = OpCounter()
    # no trigger watches this database: this process plays the trigger's part
    emulators.clear_firestore(emulators.QUIET_DATABASE)
    db = CountingClient(counter, database=emulators.QUIET_DATABASE)
    uid = "notify-bench"
    receiver = WebhookReceiver(signing_secret(NOTIFY_KEY, uid))
    senders = Senders(webhook_key=lambda: NOTIFY_KEY, loopback_http=True)
    now = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    text = "Your paper trade bought 10 AAPL at $150.00."
    try:
        paths.user(db, uid).set({"email": "bench@example.com"})
        paths.notification_settings(db, uid).set(
            {"events": list(notices.KINDS), "webhook_url": receiver.url, "email": True}
        )
        body = message.webhook_body(
            message.event("bare", {"kind": "entry_filled", "message": text})
        )
        secret = signing_secret(NOTIFY_KEY, uid)
        started = time.perf_counter()
        for _ in range(NOTIFY_EVENTS):
            webhook.send(receiver.url, body, secret, allow_loopback_http=True)
        bare_s = time.perf_counter() - started
        reads0, writes0 = counter.snapshot()
        spent = {"trigger": [], "webhook": [], "email": []}  # type: dict[str, list[float]]
        for i in range(NOTIFY_EVENTS):
            event_id = f"entry-filled-bench-{i}"
            batch = db.batch()
            notices.notify(batch, db, uid, event_id, notices.ENTRY_FILLED, text, now, symbol="AAPL")
            batch.commit()
            started = time.perf_counter()
            routed = route(db, uid, event_id, {"kind": notices.ENTRY_FILLED}, lambda *task: None)
            spent["trigger"].append(time.perf_counter() - started)
            for channel in routed:
                started = time.perf_counter()
                assert deliver(db, senders, now, uid, event_id, channel) in ("delivered", "queued")
                spent[channel].append(time.perf_counter() - started)
        reads1, writes1 = counter.snapshot()
    finally:
        receiver.stop()
    assert len(receiver.state.received) == 2 * NOTIFY_EVENTS
    reads = (reads1 - reads0) / NOTIFY_EVENTS
    writes = (writes1 - writes0) / NOTIFY_EVENTS
    billed_s = sum(max(BILLED_MIN_S, t) for times in spent.values() for t in times) / NOTIFY_EVENTS
    invocations = len(spent)  # the trigger and a task a channel
    tasks = len(spent) - 1
    month = NOTIFY_EVENTS_PER_MONTH
    parts = {
        "firestore": month * (reads * PRICES["reads"] + writes * PRICES["writes"]),
        "compute": month * billed_s * (NOTIFY_VCPU * VCPU_SECOND_USD + NOTIFY_GIB * GIB_SECOND_USD),
        "invocations": month * invocations * INVOCATION_USD,
        "tasks": month * tasks * TASK_OPERATIONS_PER_TASK * TASK_OPERATION_USD,
    }
    total = sum(parts.values())
    delivered_s = sum(sum(t) for t in spent.values())
    print(
        f"\n  notifications, {NOTIFY_EVENTS} events by webhook and email: {reads:.2f} reads and "
        f"{writes:.2f} writes an event, {1000 * delivered_s / NOTIFY_EVENTS:.1f} ms an event "
        f"routed and delivered (a bare signed POST {1000 * bare_s / NOTIFY_EVENTS:.1f} ms); "
        f"at one event a day ${total:.6f} a person a month"
    )
    return (
        f"notify: usd_per_user_month={total:.6f} events_per_month={month} "
        + " ".join(f"{k}={v:.6f}" for k, v in parts.items())
        + f" reads_per_event={reads:.2f} writes_per_event={writes:.2f} "
        f"invocations_per_event={invocations} tasks_per_event={tasks} "
        f"delivery_ms_per_event={1000 * delivered_s / NOTIFY_EVENTS:.1f} "
        f"overhead={delivered_s / bare_s:.2f}"
    )


def bench_backtest(alpaca: RemoteAlpaca, secrets: RemoteSecrets) -> str:
    """A five-year backtest of 20 symbols: the engine alone on bars already fetched (the best
    of BACKTEST_RUNS, after one to warm up), against its baseline in the same run, the live
    decision functions alone on the same symbol-days (what any replay must do); and the
    callable's whole time (the bars fetched from the Alpaca stand-in with its latency, the
    replay, the document stored)."""
    db = firestore.Client(project=clients.project_id(), credentials=AnonymousCredentials())
    seeded(1, db, alpaca, secrets)
    end = date(2026, 10, 30)
    start = date(2021, 11, 1)
    request = {
        "strategy": "momentum_20d",
        "symbols": BACKTEST_SYMBOLS,
        "allocation_usd": "5000",
        "take_profit_pct": "8",
        "stop_loss_pct": "5",
        "start": start.isoformat(),
        "end": end.isoformat(),
    }
    platform = Platform(
        db=db,
        keys=KeyStore(clients.secret_manager_client(), clients.project_id()),
        brokers=lambda keys: AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url),
        now=lambda: datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
    )
    services = Services(
        platform=platform, buying_power_fraction=Decimal("0.1"), delete_auth_user=lambda uid: None
    )
    who = AuthData(uid=uid_of(0), token={"email": "bench@example.com"})
    started = time.perf_counter()
    answer = run_backtest(services, who, request)
    callable_s = time.perf_counter() - started
    keys = AlpacaKeys(key_id="PKBENCH00000", secret_key="bench-secret-0", paper=True)
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    try:
        bars = broker.daily_bars_many(
            BACKTEST_SYMBOLS,
            datetime.combine(start, datetime.min.time(), tzinfo=UTC) - WARM_UP,
            datetime.combine(end, datetime.max.time(), tzinfo=UTC),
        )
    finally:
        broker.close()
    strategy = BacktestRequest.model_validate(request).strategy_doc()
    rule = STRATEGIES[strategy.strategy]

    def decisions_alone() -> None:
        for history in bars.values():
            for i in range(len(history)):
                if start <= history[i].t.date() <= end:
                    rule.decide(list(history[max(0, i + 1 - rule.lookback_days) : i + 1]))

    def best(work: Callable[[], object]) -> float:
        work()
        times = []
        for _ in range(BACKTEST_RUNS):
            began = time.perf_counter()
            work()
            times.append(time.perf_counter() - began)
        return min(times)

    engine_s = best(lambda: backtest_engine.run(strategy, bars, start, end))
    baseline_s = best(decisions_alone)
    n = sum(len(b) for b in bars.values())
    print(
        f"\nbacktest, 5 years of {len(bars)} symbols ({n} bars): engine {engine_s:.3f} s, the "
        f"decisions alone {baseline_s:.3f} s; the callable {callable_s:.2f} s with "
        f"{answer['trades_total']} trades"
    )
    return (
        f"backtest: years=5 symbols={len(bars)} seconds={engine_s:.3f} bars={n} "
        f"decisions_s={baseline_s:.3f} ratio={engine_s / baseline_s:.2f} "
        f"callable_s={callable_s:.2f} trades={answer['trades_total']}"
    )


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="*", default=[1000])
    parser.add_argument(
        "--strategies",
        type=int,
        default=2,
        help="active strategies per person in a second run of the first population (0: none)",
    )
    parser.add_argument(
        "--speed-users",
        type=int,
        nargs="*",
        default=[5000],
        help="populations timed for one open-market pulse only",
    )
    parser.add_argument(
        "--reconcile-users",
        type=int,
        default=1000,
        help="people with paper positions timed against the same with shadow trades (0: skip)",
    )
    parser.add_argument(
        "--fanout-users",
        type=int,
        default=10_000,
        help="people synced in process and fanned out through the task queue (0: skip)",
    )
    parser.add_argument(
        "--notify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="count and time notifications delivered by webhook and email (--no-notify: skip)",
    )
    parser.add_argument(
        "--backtest",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time a five-year backtest of 20 symbols (--no-backtest: skip)",
    )
    parser.add_argument(
        "--stops",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stops resting at Alpaca against the pulse's check alone (--no-stops: skip)",
    )
    args = parser.parse_args()
    alpaca = RemoteAlpaca()
    secrets = RemoteSecrets(SECRETS_PORT)
    os.environ["SECRET_MANAGER_EMULATOR_HOST"] = secrets.host
    print(
        f"machine: {os.cpu_count()} cores; "
        f"Firestore emulator at {os.environ.get('FIRESTORE_EMULATOR_HOST')}"
    )
    try:
        without: dict[str, dict[str, float]] = {}
        lines = [
            line
            for i, n in enumerate(args.users)
            for line in bench_population(n, alpaca, secrets, report=without if i == 0 else None)
        ]
        if args.strategies and args.users:
            with_bot: dict[str, dict[str, float]] = {}
            lines += bench_population(
                args.users[0], alpaca, secrets, strategies=args.strategies, report=with_bot
            )
            lines.append(strategies_line(args.users[0], args.strategies, without, with_bot))
        if args.reconcile_users:
            shadow: dict[str, dict[str, float]] = {}
            paper: dict[str, dict[str, float]] = {}
            n = args.reconcile_users
            bench_population(n, alpaca, secrets, baseline=False, report=shadow)
            bench_population(n, alpaca, secrets, baseline=False, report=paper, paper=True)
            lines.append(reconciliation_line(n, shadow, paper))
        lines += [
            line
            for n in args.speed_users
            for line in bench_population(n, alpaca, secrets, baseline=False)
        ]
        if args.notify:
            lines.append(bench_notifications())
        if args.backtest:
            lines.append(bench_backtest(alpaca, secrets))
        resting_writes = None
        if args.stops:
            line, resting_writes = bench_stops(alpaca, secrets)
            lines.append(line)
        if args.strategies and args.users:  # after the stops: their writes are part of it
            lines.append(all_in_line(args.users[0], args.strategies, with_bot, resting_writes))
        if args.fanout_users:
            if not firebase_admin._apps:
                firebase_admin.initialize_app(options={"projectId": clients.project_id()})
            lines.append(bench_fanout(args.fanout_users, alpaca, secrets))
    finally:
        alpaca.stop()
        secrets.stop()
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
