"""The Alpaca stand-in, driven by alpaca-trade-api's own client."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import alpaca_trade_api as tradeapi
import pytest
import requests
from alpaca_trade_api.rest import APIError, TimeFrame
from bot_world import SYMBOLS

from localdev.alpaca_standin import AlpacaServer, price_at
from localdev.seed import register_alpaca_account


def rest(alpaca: AlpacaServer, key_id: str, secret: str = "secret-key-1") -> tradeapi.REST:
    client = tradeapi.REST(key_id, secret, base_url=alpaca.url, raw_data=True)
    client._retry = 0  # observe each answer, not the client's own retry loop
    return client


def test_account_is_served_per_key_pair(alpaca: AlpacaServer) -> None:
    register_alpaca_account(
        alpaca.url, "PKALICE001", "secret-key-1", cash="2500", holdings={"AAPL": 2}
    )
    register_alpaca_account(alpaca.url, "PKBOB00001", "secret-key-1", cash="900")
    alice = rest(alpaca, "PKALICE001").get_account()
    bob = rest(alpaca, "PKBOB00001").get_account()
    assert alice["cash"] == "2500.00"
    assert bob["cash"] == "900.00"
    assert alice["account_number"] != bob["account_number"]
    held = Decimal(alice["equity"]) - Decimal(alice["cash"])
    assert held == Decimal(alice["long_market_value"]) and held > 0
    assert bob["buying_power"] == "900.00"  # under 2,000 equity: no margin


def test_a_paper_and_a_live_account_side_by_side(alpaca: AlpacaServer) -> None:
    register_alpaca_account(alpaca.url, "PKALICE001", "secret-key-1", holdings={"AAPL": 3})
    register_alpaca_account(alpaca.url, "AKALICE001", "secret-key-1")
    paper = rest(alpaca, "PKALICE001").get_account()
    live = rest(alpaca, "AKALICE001").get_account()
    assert paper["account_number"].startswith("PA")
    assert live["account_number"].isdigit() and paper["id"] != live["id"]
    assert [p["symbol"] for p in rest(alpaca, "PKALICE001").list_positions()] == ["AAPL"]
    assert rest(alpaca, "AKALICE001").list_positions() == []


def test_a_sale_of_what_is_not_held_is_a_short_and_no_order_turns_a_position_round(
    alpaca: AlpacaServer,
) -> None:
    register_alpaca_account(alpaca.url, "PKALICE001", "secret-key-1", cash="50000")
    register_alpaca_account(alpaca.url, "PKBOB00001", "secret-key-1", holdings={"MSFT": 5})
    requests.post(f"{alpaca.url}/_standin/fill_delay", json={"seconds": 0}, timeout=5)
    alice = rest(alpaca, "PKALICE001")
    alice.submit_order("AAPL", qty="10", side="sell", type="market", time_in_force="day")
    (short,) = alice.list_positions()
    assert (short["symbol"], short["side"], short["qty"]) == ("AAPL", "short", "10")
    account = alice.get_account()
    assert Decimal(account["short_market_value"]) < 0
    assert Decimal(account["cash"]) > Decimal("50000")  # the sale's proceeds
    bob = rest(alpaca, "PKBOB00001")
    with pytest.raises(APIError) as raised:
        bob.submit_order("MSFT", qty="8", side="sell", type="market", time_in_force="day")
    assert raised.value.status_code == 403
    assert "insufficient qty available" in str(raised.value)
    assert [p["qty"] for p in bob.list_positions()] == ["5"]


def test_wrong_secret_and_unknown_key_get_401(alpaca: AlpacaServer) -> None:
    register_alpaca_account(alpaca.url, "PKALICE001", "secret-key-1")
    for key, secret in (("PKALICE001", "not-the-secret"), ("PKNOBODY01", "secret-key-1")):
        with pytest.raises(APIError) as raised:
            rest(alpaca, key, secret).get_account()
        assert raised.value.status_code == 401


def test_latest_trades_for_many_symbols_in_one_request(alpaca: AlpacaServer) -> None:
    register_alpaca_account(alpaca.url, "PKALICE001", "secret-key-1")
    now = 1_790_000_000.0
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": now}, timeout=5)
    client = tradeapi.REST("PKALICE001", "secret-key-1", base_url=alpaca.url, raw_data=True)
    import os

    os.environ["APCA_API_DATA_URL"] = alpaca.url
    try:
        trades = client.get_latest_trades(["AAPL", "MSFT", "TSLA"])
    finally:
        del os.environ["APCA_API_DATA_URL"]
    assert set(trades) == {"AAPL", "MSFT", "TSLA"}
    assert Decimal(str(trades["MSFT"]["p"])) == price_at("MSFT", now)
    stats = requests.get(f"{alpaca.url}/_standin/stats", timeout=5).json()
    assert stats["by_key"]["PKALICE001"] == {"latest_trades": 1}


def test_prices_are_deterministic_and_move_over_time() -> None:
    t = 1_790_000_000.0
    assert price_at("AAPL", t) == price_at("AAPL", t)
    assert price_at("AAPL", t) != price_at("AAPL", t + 600)
    assert price_at("AAPL", t) != price_at("MSFT", t)
    assert price_at("AAPL", t) == price_at("AAPL", t).quantize(Decimal("0.01"))


def test_daily_bars(alpaca: AlpacaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    register_alpaca_account(alpaca.url, "PKALICE001", "secret-key-1")
    monkeypatch.setenv("APCA_API_DATA_URL", alpaca.url)
    bars = list(rest(alpaca, "PKALICE001").get_bars_iter("AAPL", TimeFrame.Day, limit=30, raw=True))
    assert len(bars) == 30
    assert all(b["l"] <= min(b["o"], b["c"]) <= max(b["o"], b["c"]) <= b["h"] for b in bars)
    assert bars[0]["t"] < bars[-1]["t"]


def test_429_carries_retry_after_then_recovers(alpaca: AlpacaServer) -> None:
    fault = {"kind": "http", "status": 429, "retry_after": 2, "times": 1}
    register_alpaca_account(alpaca.url, "PKBUSY0001", "secret-key-1", fault=fault)
    answer = requests.get(
        f"{alpaca.url}/v2/account",
        headers={"APCA-API-KEY-ID": "PKBUSY0001", "APCA-API-SECRET-KEY": "secret-key-1"},
        timeout=5,
    )
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "2"
    assert rest(alpaca, "PKBUSY0001").get_account()["status"] == "ACTIVE"


@pytest.mark.parametrize("status", [403, 500])
def test_http_faults(alpaca: AlpacaServer, status: int) -> None:
    register_alpaca_account(
        alpaca.url, "PKFAULT001", "secret-key-1", fault={"kind": "http", "status": status}
    )
    with pytest.raises(APIError) as raised:
        rest(alpaca, "PKFAULT001").get_account()
    assert raised.value.status_code == status


def test_slow_and_hanging_answers(alpaca: AlpacaServer) -> None:
    register_alpaca_account(
        alpaca.url, "PKSLOW0001", "secret-key-1", fault={"kind": "slow", "seconds": 0.4}
    )
    register_alpaca_account(alpaca.url, "PKHANG0001", "secret-key-1", fault={"kind": "hang"})
    started = time.monotonic()
    assert rest(alpaca, "PKSLOW0001").get_account()["status"] == "ACTIVE"
    assert time.monotonic() - started >= 0.4
    headers = {"APCA-API-KEY-ID": "PKHANG0001", "APCA-API-SECRET-KEY": "secret-key-1"}
    with pytest.raises(requests.Timeout):
        requests.get(f"{alpaca.url}/v2/account", headers=headers, timeout=0.5)


def test_malformed_body(alpaca: AlpacaServer) -> None:
    register_alpaca_account(alpaca.url, "PKJUNK0001", "secret-key-1", fault={"kind": "malformed"})
    with pytest.raises(ValueError):
        rest(alpaca, "PKJUNK0001").get_account()


def test_faults_are_per_key_and_per_endpoint(
    alpaca: AlpacaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_alpaca_account(alpaca.url, "PKHEALTHY1", "secret-key-1")
    register_alpaca_account(
        alpaca.url,
        "PKDATAFAIL",
        "secret-key-1",
        fault={"kind": "http", "status": 500, "endpoints": ["latest_trades"]},
    )
    monkeypatch.setenv("APCA_API_DATA_URL", alpaca.url)
    assert rest(alpaca, "PKDATAFAIL").get_account()["status"] == "ACTIVE"
    with pytest.raises(APIError):
        rest(alpaca, "PKDATAFAIL").get_latest_trades(["AAPL"])
    assert "AAPL" in rest(alpaca, "PKHEALTHY1").get_latest_trades(["AAPL"])


def test_open_accounts_mode_opens_any_well_formed_pair_but_pkbad() -> None:
    """The served demo: a person who creates an account can paste any key pair."""
    server = AlpacaServer(0, open_accounts=True).start()
    try:
        opened = rest(server, "PKANYTHING42", "whatever-secret").get_account()
        assert opened["cash"] == "100000.00"
        again = rest(server, "PKANYTHING42", "whatever-secret").get_account()
        assert again["account_number"] == opened["account_number"]
        for key, secret in (
            ("PKBADKEY0001", "whatever-secret"),  # refused, as Alpaca refuses bad keys
            ("PKANYTHING42", "another-secret"),  # the pair is fixed once opened
            ("PK", "whatever-secret"),  # not well-formed
        ):
            with pytest.raises(APIError) as refused:
                rest(server, key, secret).get_account()
            assert refused.value.status_code == 401
    finally:
        server.stop()


# -- resting orders: exits that rest at Alpaca -----------------------------------------------------

NEW_YORK = ZoneInfo("America/New_York")


def at(local: str) -> float:
    return datetime.fromisoformat(local).replace(tzinfo=NEW_YORK).timestamp()


def freeze(alpaca: AlpacaServer, local: str) -> None:
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": at(local)}, timeout=5)


def held_account(alpaca: AlpacaServer, symbol: str, qty: int = 10) -> tradeapi.REST:
    register_alpaca_account(alpaca.url, "PKREST0001", "secret-key-1", holdings={symbol: qty})
    return rest(alpaca, "PKREST0001")


def test_an_oco_rests_until_the_price_path_sets_one_leg_off_and_the_other_ends(
    alpaca: AlpacaServer,
) -> None:
    freeze(alpaca, "2026-11-23T10:00")
    price = price_at("AAPL", at("2026-11-23T10:00"))
    client = held_account(alpaca, "AAPL")
    # the stop just under the price, the target far above: the stop goes first
    stop = (price * Decimal("0.995")).quantize(Decimal("0.01"))
    take = (price * 2).quantize(Decimal("0.01"))
    placed = client.submit_order(
        "AAPL", qty="10", side="sell", type="limit", time_in_force="gtc", order_class="oco",
        take_profit={"limit_price": str(take)}, stop_loss={"stop_price": str(stop)},
        client_order_id="t1-rest-1",
    )  # fmt: skip
    assert (placed["status"], placed["order_class"], placed["type"]) == ("new", "oco", "limit")
    [leg] = placed["legs"]
    assert (leg["type"], leg["stop_price"], leg["status"]) == ("stop", str(stop), "new")
    (position,) = client.list_positions()
    assert (position["qty"], position["qty_available"]) == ("10", "0")  # held for the exit
    with pytest.raises(APIError) as refused:  # a second exit for the same shares
        client.submit_order("AAPL", qty="10", side="sell", type="market", time_in_force="day")
    assert refused.value.status_code == 403 and "insufficient qty" in str(refused.value)

    crossed = next(
        t for t in range(int(at("2026-11-23T10:01")), int(at("2026-11-23T16:00")), 60)
        if price_at("AAPL", t) <= stop
    )  # fmt: skip
    requests.post(f"{alpaca.url}/_standin/clock", json={"now": crossed + 3600}, timeout=5)
    parent = client.get_order_by_client_order_id("t1-rest-1")  # between two runs, it fired
    [fired] = parent["legs"]
    assert fired["status"] == "filled" and parent["status"] == "canceled"
    assert Decimal(fired["filled_avg_price"]) <= stop
    assert Decimal(fired["filled_avg_price"]) == price_at("AAPL", crossed)
    assert fired["filled_at"].startswith(datetime.fromtimestamp(crossed, UTC).isoformat()[:16])
    assert client.list_positions() == []
    assert client.get_order(fired["id"])["status"] == "filled"


def test_a_stop_fires_through_a_gap_at_the_open_at_the_price_there(alpaca: AlpacaServer) -> None:
    """Overnight the price fell through the stop: it fills at the first minute of the next
    session, below the stop, as a stop does."""
    day, next_day = "2026-11-23", "2026-11-24"
    close, open_ = at(f"{day}T15:59"), at(f"{next_day}T09:30")
    symbol = next(s for s in SYMBOLS if price_at(s, open_) < price_at(s, close) - Decimal("0.05"))
    stop = ((price_at(symbol, open_) + price_at(symbol, close)) / 2).quantize(Decimal("0.01"))
    freeze(alpaca, f"{day}T15:59")
    client = held_account(alpaca, symbol)
    client.submit_order(
        symbol, qty="10", side="sell", type="stop", time_in_force="gtc", stop_price=str(stop),
        client_order_id="gap-stop",
    )  # fmt: skip
    freeze(alpaca, f"{next_day}T09:45")
    filled = client.get_order_by_client_order_id("gap-stop")
    assert filled["status"] == "filled"
    assert Decimal(filled["filled_avg_price"]) == price_at(symbol, open_) < stop


def test_cancelling_an_oco_ends_both_legs_and_an_ended_order_is_not_cancelable(
    alpaca: AlpacaServer,
) -> None:
    freeze(alpaca, "2026-11-23T10:00")
    price = price_at("MSFT", at("2026-11-23T10:00"))
    client = held_account(alpaca, "MSFT")
    placed = client.submit_order(
        "MSFT", qty="10", side="sell", type="limit", time_in_force="gtc", order_class="oco",
        take_profit={"limit_price": str((price * 2).quantize(Decimal("0.01")))},
        stop_loss={"stop_price": str((price / 2).quantize(Decimal("0.01")))},
        client_order_id="t2-rest-1",
    )  # fmt: skip
    client.cancel_order(placed["id"])
    ended = client.get_order(placed["id"])
    assert ended["status"] == "canceled" and ended["legs"][0]["status"] == "canceled"
    assert client.list_positions()[0]["qty_available"] == "10"  # free again
    with pytest.raises(APIError) as refused:
        client.cancel_order(placed["id"])
    assert refused.value.status_code == 422
    assert client.list_orders(status="open") == []


@pytest.mark.parametrize(
    ("order", "says"),
    [
        ({"type": "stop", "stop_price": "100.005"}, "sub-penny"),
        ({"type": "limit", "limit_price": "-1"}, "positive"),
        (
            {
                "order_class": "oco",
                "type": "limit",
                "take_profit": {"limit_price": "1.00"},
                "stop_loss": {"stop_price": "2.00"},
            },
            "other side",
        ),  # fmt: skip
    ],
)
def test_a_resting_order_of_the_wrong_shape_is_refused(
    alpaca: AlpacaServer, order: dict[str, Any], says: str
) -> None:
    client = held_account(alpaca, "AAPL")
    with pytest.raises(APIError) as refused:
        client.submit_order("AAPL", qty="10", side="sell", time_in_force="gtc", **order)
    assert refused.value.status_code == 422 and says in str(refused.value)
