"""The Alpaca broker against the stand-in: one connection pool shared by many people's brokers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from agenttrader.broker.alpaca import AlpacaBroker, shared_connections
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account


def test_people_share_one_pool_that_outlives_each_broker(alpaca: AlpacaServer) -> None:
    pool = shared_connections(size=4)
    people = [
        register_alpaca_account(alpaca.url, f"PKPOOL{i:06d}", f"secret-{i:04d}", cash=str(100 + i))
        for i in range(12)
    ]

    def cash(i: int) -> str:
        broker = AlpacaBroker(
            people[i], trading_url=alpaca.url, data_url=alpaca.url, connections=pool
        )
        try:
            return str(broker.account().cash)
        finally:
            broker.close()  # must not close the pool the others are using

    with ThreadPoolExecutor(max_workers=6) as threads:
        cashes = list(threads.map(cash, range(12)))
    assert cashes == [f"{100 + i}.00" for i in range(12)]  # each person their own account
    assert cash(3) == "103.00"  # the pool still serves after every broker closed
