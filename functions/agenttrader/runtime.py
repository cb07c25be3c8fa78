"""The production wiring: the clients a deployed instance (or an operator script) uses."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from agenttrader import clients, config
from agenttrader.broker import broker_factory
from agenttrader.keystore import KeyStore
from agenttrader.pulse import Platform, PulseSettings


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.cache
def keystore() -> KeyStore:
    """One per instance, so its cache lives across pulses."""
    return KeyStore(clients.secret_manager_client(), clients.project_id())


def platform() -> Platform:
    return Platform(
        db=clients.firestore_client(),
        keys=keystore(),
        brokers=broker_factory(),
        now=utcnow,
    )


def pulse_settings() -> PulseSettings:
    return PulseSettings(
        concurrency=config.PULSE_CONCURRENCY.value,
        fanout_threshold=config.PULSE_FANOUT_THRESHOLD.value,
        fanout_batch=config.PULSE_FANOUT_BATCH.value,
    )
