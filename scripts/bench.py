"""Pulse benchmark: this pulse against the seeds' sequential design, in the same run.

    make bench                      # 100 and 1,000 users
    make bench ARGS="--users 200"   # other populations

Runs under `firebase emulators:exec --only firestore` (the Makefile does that) with both
stand-ins in this process: Alpaca answers in 100 ms, Secret Manager in 20 ms. Every user has
a few open shadow trades. Firestore reads and writes are counted on the client's gRPC channel
(documents returned by gets and queries, an empty query counting one; writes in commits).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import alpaca_trade_api as tradeapi
import grpc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from agenttrader import clients, context, paths
from agenttrader.broker import AlpacaBroker
from agenttrader.context import Platform
from agenttrader.keystore import AlpacaKeys, KeyStore
from agenttrader.pulse import PulseSettings, run_pulse
from agenttrader.signals import shadow_trade_document
from localdev import emulators
from localdev.alpaca_standin import AlpacaServer
from localdev.secret_manager_standin import SecretManagerServer

ALPACA_LATENCY_S = 0.100
SECRETS_LATENCY_S = 0.020
SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "META", "GOOG", "AMD"]
TRADES_PER_USER = 3
BASELINE_SAMPLE = 100
PULSES = 10


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

    def __init__(self, counter: OpCounter) -> None:
        super().__init__(project=clients.project_id(), credentials=AnonymousCredentials())
        self._counter = counter

    def _emulator_channel(self, transport: Any) -> Any:
        return grpc.intercept_channel(
            super()._emulator_channel(transport), _Interceptor(self._counter)
        )


# -- population ---------------------------------------------------------------------------------


def uid_of(i: int) -> str:
    return f"bench{i:05d}"


def seed(n: int, db: firestore.Client, keystore: KeyStore, alpaca: AlpacaServer) -> None:
    market = alpaca.market
    for i in range(n):
        market.add_account(
            {"key_id": f"PKBENCH{i:05d}", "secret_key": f"bench-secret-{i}", "cash": "50000"}
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
        batch.set(paths.user(db, uid), {"email": f"{uid}@bench.test", "keys_version": 1})
        context.set_trading(batch, db, uid, True, now)
        for t in range(TRADES_PER_USER):
            symbol = SYMBOLS[(i + t) % len(SYMBOLS)]
            batch.set(
                paths.shadow_trades(db, uid).document(f"t{t}"),
                shadow_trade_document(
                    symbol, "BUY" if t % 2 == 0 else "SELL", Decimal(1 + t), Decimal("100.00"), now
                ),
            )
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
        if not context.switch_is_on(status.to_dict() if status.exists else None):
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
    alpaca: AlpacaServer,
    secrets: SecretManagerServer,
) -> dict[str, float]:
    reads0, writes0 = counter.snapshot()
    alpaca0 = alpaca.market.stats()["total"]
    secrets0 = secrets.store.calls["AccessSecretVersion"]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        run()
    seconds = time.perf_counter() - started
    reads1, writes1 = counter.snapshot()
    return {
        "seconds": seconds,
        "reads": reads1 - reads0,
        "writes": writes1 - writes0,
        "alpaca": alpaca.market.stats()["total"] - alpaca0,
        "secrets": secrets.store.calls["AccessSecretVersion"] - secrets0,
    }


def bench_population(n: int, alpaca: AlpacaServer, secrets: SecretManagerServer) -> str:
    emulators.clear_firestore()
    alpaca.market.reset()
    secrets.store.reset()
    alpaca.market.latency_s = 0
    secrets.store.latency_s = 0
    counter = OpCounter()
    db = CountingClient(counter)
    sm = clients.secret_manager_client()
    project = clients.project_id()
    seed(n, db, KeyStore(sm, project), alpaca)
    alpaca.market.latency_s = ALPACA_LATENCY_S
    secrets.store.latency_s = SECRETS_LATENCY_S

    sample = [uid_of(i) for i in range(min(n, BASELINE_SAMPLE))]
    base = measure(
        "baseline",
        lambda: baseline_pulse(db, sm, project, alpaca.url, sample),
        counter,
        alpaca,
        secrets,
    )
    base_rate = len(sample) / base["seconds"]

    keystore = KeyStore(sm, project)

    def broker(keys: AlpacaKeys) -> AlpacaBroker:
        return AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)

    platform = Platform(db=db, keys=keystore, brokers=broker, now=lambda: datetime.now(UTC))
    settings = PulseSettings(concurrency=int(os.environ.get("PULSE_CONCURRENCY", "32")))
    runs = [
        measure("pulse", lambda: run_pulse(platform, settings), counter, alpaca, secrets)
        for _ in range(PULSES)
    ]
    first = runs[0]
    rate = n / first["seconds"]
    per_user = {
        k: sum(r[k] for r in runs) / (PULSES * n) for k in ("reads", "writes", "alpaca", "secrets")
    }
    base_per_user = {k: base[k] / len(sample) for k in ("reads", "writes", "alpaca", "secrets")}

    sampled = (
        f" a {len(sample)}-user sample (its throughput does not depend on N)"
        if len(sample) < n
        else ""
    )
    rows = [
        (
            "design",
            "users/s",
            "Firestore reads",
            "Firestore writes",
            "Secret Manager",
            "Alpaca requests",
        ),
        (
            "sequential" + ("*" if sampled else ""),
            f"{base_rate:.1f}",
            f"{base_per_user['reads']:.2f}",
            f"{base_per_user['writes']:.2f}",
            f"{base_per_user['secrets']:.2f}",
            f"{base_per_user['alpaca']:.2f}",
        ),
        (
            "pulse",
            f"{rate:.1f}",
            f"{per_user['reads']:.2f}",
            f"{per_user['writes']:.2f}",
            f"{per_user['secrets']:.2f}",
            f"{per_user['alpaca']:.2f}",
        ),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(
        f"\n{n} users, {TRADES_PER_USER} open trades each; "
        f"Alpaca {ALPACA_LATENCY_S * 1000:.0f} ms, "
        f"Secret Manager {SECRETS_LATENCY_S * 1000:.0f} ms; "
        f"counts per user per pulse (the pulse's averaged over {PULSES} pulses)"
    )
    for r in rows:
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    if sampled:
        print(f"  * sequential design measured on{sampled}")
    mean = statistics.mean(r["seconds"] for r in runs)
    print(
        f"  pulse seconds: first (cold secret cache) {first['seconds']:.2f}, "
        f"mean of {PULSES} {mean:.2f}; ratio {rate / base_rate:.1f}x"
    )
    return (
        f"bench: users={n} pulse_s={first['seconds']:.2f} baseline_users_per_s={base_rate:.2f} "
        f"pulse_users_per_s={rate:.2f} ratio={rate / base_rate:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[100, 1000])
    args = parser.parse_args()
    alpaca = AlpacaServer().start()
    secrets = SecretManagerServer().start()
    os.environ["SECRET_MANAGER_EMULATOR_HOST"] = secrets.host
    print(
        f"machine: {os.cpu_count()} cores; "
        f"Firestore emulator at {os.environ.get('FIRESTORE_EMULATOR_HOST')}"
    )
    try:
        lines = [bench_population(n, alpaca, secrets) for n in args.users]
    finally:
        alpaca.stop()
        secrets.stop()
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
