"""Live trading's first gate, against the emulators and the stand-in's live accounts: the
operator's `LIVE_TRADING`, then the person's consent for the one live account their keys open,
given by typing its number's last four characters as Alpaca gives them, and revoked in one
call. Nothing here sends an order; a consent is what a live order will need."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from calling import Code, auth, data_of, error_of
from google.cloud import firestore

from agenttrader.api import keys_callables, live_callables
from agenttrader.api.guard import Services
from agenttrader.broker.alpaca import AlpacaBroker
from agenttrader.store import paths
from localdev.alpaca_standin import AlpacaServer
from localdev.seed import register_alpaca_account


@pytest.fixture
def offered(services: Services) -> Services:
    """A deployment whose operator switched live trading on."""
    return replace(services, platform=replace(services.platform, live_trading=True))


def save_keys(services: Services, alpaca: AlpacaServer, key_id: str, paper: bool) -> str:
    """Keys saved through the callable; returns the number of the account they open."""
    keys = register_alpaca_account(alpaca.url, key_id, f"{key_id}-secret")
    keys_callables.save_alpaca_keys(
        services,
        auth("alice"),
        {"key_id": key_id, "secret_key": f"{key_id}-secret", "paper": paper},
    )
    broker = AlpacaBroker(keys, trading_url=alpaca.url, data_url=alpaca.url)
    try:
        return broker.account().account_number
    finally:
        broker.close()


def consent(db: firestore.Client) -> dict[str, Any] | None:
    return paths.live_settings(db, "alice").get().to_dict()


def audit(db: firestore.Client) -> list[str]:
    return sorted((d.to_dict() or {})["action"] for d in paths.audit(db, "alice").stream())


def test_no_consent_is_taken_while_the_operator_has_not_switched_live_trading_on(
    services: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    number = save_keys(services, alpaca, "AKLIVE000001", paper=False)
    before = data_of(db)
    refused = error_of(
        live_callables.allow_live_trading, services, auth("alice"), {"account_last4": number[-4:]}
    )
    assert refused.code == Code.FAILED_PRECONDITION
    assert refused.message.startswith("this deployment does not offer live trading")
    assert data_of(db) == before


def test_paper_keys_or_none_cannot_consent(
    offered: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    none = error_of(
        live_callables.allow_live_trading, offered, auth("alice"), {"account_last4": "1234"}
    )
    assert none.code == Code.FAILED_PRECONDITION and "save the keys" in none.message
    number = save_keys(offered, alpaca, "PKPAPER00001", paper=True)
    paper = error_of(
        live_callables.allow_live_trading, offered, auth("alice"), {"account_last4": number[-4:]}
    )
    assert paper.code == Code.FAILED_PRECONDITION and "paper account" in paper.message
    assert consent(db) is None


def test_consent_needs_the_live_accounts_last_four_and_is_revoked_in_one_call(
    offered: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    number = save_keys(offered, alpaca, "AKLIVE000002", paper=False)
    assert number.isdigit()  # a live account's number, as the stand-in gives it
    wrong = "0000" if number[-4:] != "0000" else "1111"
    refused = error_of(
        live_callables.allow_live_trading, offered, auth("alice"), {"account_last4": wrong}
    )
    assert refused.code == Code.INVALID_ARGUMENT
    assert refused.details == {"field": "account_last4"}
    assert refused.message.startswith("Last four characters of your account number: ")
    assert consent(db) is None

    given = live_callables.allow_live_trading(
        offered, auth("alice"), {"account_last4": number[-4:]}
    )
    assert given["account_number_last4"] == number[-4:]
    stored = consent(db) or {}
    assert stored["account_number_last4"] == number[-4:] and stored["account_id"]
    assert stored["consented_at"] is not None and stored["revoked_at"] is None
    assert audit(db).count("live_consent_given") == 1

    assert live_callables.stop_live_trading(offered, auth("alice"), {}) == {"revoked": True}
    assert (consent(db) or {})["revoked_at"] is not None
    assert live_callables.stop_live_trading(offered, auth("alice"), {}) == {"revoked": False}
    assert audit(db).count("live_consent_revoked") == 1


def test_keys_for_another_live_account_need_a_new_consent(
    offered: Services, alpaca: AlpacaServer, db: firestore.Client
) -> None:
    first = save_keys(offered, alpaca, "AKLIVE000003", paper=False)
    live_callables.allow_live_trading(offered, auth("alice"), {"account_last4": first[-4:]})
    account = (consent(db) or {})["account_id"]
    second = save_keys(offered, alpaca, "AKLIVE000004", paper=False)
    assert second != first
    # the consent names the first account: a consent for the second is another one
    assert (consent(db) or {})["account_id"] == account
    if first[-4:] != second[-4:]:
        stale = error_of(
            live_callables.allow_live_trading, offered, auth("alice"), {"account_last4": first[-4:]}
        )
        assert stale.code == Code.INVALID_ARGUMENT
    live_callables.allow_live_trading(offered, auth("alice"), {"account_last4": second[-4:]})
    assert (consent(db) or {})["account_id"] != account
