"""Signals without any client: strategies, sizing, and the documents a signal is stored as."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from agenttrader.bot.signals import Sized, opens_trade, shadow_trade_document, signal_document, size
from agenttrader.bot.strategies import Decision, MeanReversion, Momentum
from agenttrader.broker.answers import Bar
from agenttrader.store.models import ShadowTrade, StoredSnapshot

NOW = datetime(2026, 1, 2, 15, 0, tzinfo=UTC)
RICH = StoredSnapshot(buying_power=Decimal("20000"), equity=Decimal(1), cash=Decimal(1))


def bars(closes: list[str]) -> list[Bar]:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    return [Bar(t=t, o=Decimal(c), h=Decimal(c), low=Decimal(c), c=Decimal(c), v=1) for c in closes]


def test_strategies_give_reasons() -> None:
    rising = bars([str(100 + i) for i in range(21)])
    assert Momentum().decide(rising).action == "BUY"
    assert "20-day change 20.0000%" in Momentum().decide(rising).reason
    assert Momentum().decide(bars(["100"] * 21)).action == "HOLD"
    assert Momentum().decide(bars(["100"] * 3)).reason.startswith("not enough history")
    dip = bars(["100"] * 19 + ["80"])
    assert MeanReversion().decide(dip).action == "BUY"
    assert MeanReversion().decide(bars(["100"] * 19 + ["120"])).action == "SELL"


def test_a_buy_that_cannot_be_afforded_becomes_hold() -> None:
    poor = StoredSnapshot(buying_power=Decimal("5.00"), equity=Decimal(5), cash=Decimal(5))
    sized = size(Decision("BUY", "momentum up"), poor, Decimal("187.20"), Decimal("0.10"))
    assert (sized.action, sized.quantity, sized.notional) == ("HOLD", Decimal(0), Decimal(0))
    assert sized.reason.startswith("momentum up; but 10% of buying power (5.00)")


def test_a_buy_is_sized_down_to_whole_ten_thousandths_within_the_budget() -> None:
    sized = size(Decision("BUY", "up"), RICH, Decimal("187.20"), Decimal("0.10"))
    assert sized == Sized("BUY", "up", Decimal("10.6837"), Decimal("1999.99"))
    assert sized.notional <= Decimal(2000)


def test_a_blocked_account_holds_and_says_why() -> None:
    blocked = RICH.model_copy(update={"trading_blocked": True})
    sized = size(Decision("SELL", "down"), blocked, Decimal(10), Decimal("0.1"))
    assert sized.action == "HOLD"
    assert "blocked" in sized.reason


def test_hold_is_never_sized_and_never_opens_a_trade() -> None:
    sized = size(Decision("HOLD", "flat"), RICH, Decimal(10), Decimal("0.1"))
    assert sized == Sized("HOLD", "flat")
    assert not opens_trade(sized, wanted=True)
    assert opens_trade(Sized("SELL", "x", Decimal(1), Decimal(10)), wanted=True)
    assert not opens_trade(Sized("SELL", "x", Decimal(1), Decimal(10)), wanted=False)


def test_documents_store_money_as_decimal_strings() -> None:
    sized = Sized("BUY", "up", Decimal("10.6837"), Decimal("1999.99"))
    signal = signal_document(
        "AAPL", sized, Decimal("187.20"), "momentum_20d", RICH.buying_power, True, NOW
    )
    assert signal == {
        "symbol": "AAPL",
        "action": "BUY",
        "notional_usd": "1999.99",
        "quantity": "10.6837",
        "price": "187.20",
        "reason": "up",
        "strategy_id": "momentum_20d",
        "buying_power": "20000",
        "status": "SHADOW_OPENED",
        "created_at": NOW,
    }
    trade = shadow_trade_document("AAPL", "BUY", sized.quantity, Decimal("187.20"), NOW, "s1")
    assert trade == {
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": "10.6837",
        "entry_price": "187.20",
        "status": "OPEN",
        "created_at": NOW,
        "signal_id": "s1",
        # priced at its entry the moment it opens
        "current_price": "187.20",
        "unrealized_pnl": "0.00",
        "pnl_percent": "0.0000",
        "last_priced_at": NOW,
    }
    assert ShadowTrade.model_validate(trade).status == "OPEN"


def test_a_trade_prices_and_closes_itself_exactly() -> None:
    short = ShadowTrade.model_validate(
        shadow_trade_document("MSFT", "SELL", Decimal("3"), Decimal("0.10"), NOW)
    )
    assert short.priced(Decimal("0.07")) == {
        "current_price": "0.07",
        "unrealized_pnl": "0.09",
        "pnl_percent": "30.0000",
    }
    assert short.closed(Decimal("0.30"), NOW) == {
        "status": "CLOSED",
        "exit_price": "0.30",
        "realized_pnl": "-0.60",
        "closed_at": NOW,
    }
