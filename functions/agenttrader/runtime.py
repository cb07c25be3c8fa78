"""The production wiring: the clients a deployed instance (or an operator script) uses."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from firebase_admin import auth as admin_auth
from firebase_admin import exceptions as firebase_exceptions
from firebase_admin import functions as admin_functions

from agenttrader.api.guard import Services
from agenttrader.api.revocation import REVOKE_QUEUE
from agenttrader.broker.alpaca import broker_factory
from agenttrader.broker.keystore import KeyStore
from agenttrader.context.memory import PulseMemory
from agenttrader.context.platform import OAuthApp, Platform
from agenttrader.core import clients, config
from agenttrader.notify.delivery import Senders
from agenttrader.notify.tasks import DELIVERY_QUEUE, TaskEnqueue
from agenttrader.pulse.people import PulseSettings
from agenttrader.pulse.run import Enqueue

SYNC_QUEUE = "syncuserbatch"
"""The task queue (and task function) that takes one slice of a fanned-out pulse."""
SYNC_TASK_TIMEOUT_S = 120
"""The task function's timeout, and each task's dispatch deadline: the queue waits for a slice
as long as the function may run, instead of giving up on one still running (Cloud Tasks' own
default for a function is shorter in the emulator, 60 s) and dispatching it again."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@functools.cache
def keystore() -> KeyStore:
    """One per instance, so its cache lives across pulses."""
    return KeyStore(clients.secret_manager_client(), clients.project_id())


@functools.cache
def memory() -> PulseMemory:
    """One per instance, so what a pulse learned serves the next one."""
    return PulseMemory()


def platform() -> Platform:
    return Platform(
        db=clients.firestore_client(),
        keys=keystore(),
        brokers=broker_factory(),
        now=utcnow,
        memory=memory(),
        live_trading=config.LIVE_TRADING.value,
        live_first_days_percent=config.LIVE_FIRST_DAYS_PERCENT.value,
    )


def pulse_settings() -> PulseSettings:
    return PulseSettings(
        concurrency=config.PULSE_CONCURRENCY.value,
        fanout_threshold=config.PULSE_FANOUT_THRESHOLD.value,
        fanout_batch=config.PULSE_FANOUT_BATCH.value,
        clock_keys_secret=config.ALPACA_CLOCK_KEYS_SECRET.value,
    )


def sync_queue() -> Enqueue:
    """Enqueue a pulse slice on the task queue. Task functions read the request body's
    `data` field, which the Admin SDK for Python leaves to the caller to wrap."""
    queue = admin_functions.task_queue(SYNC_QUEUE)

    def enqueue(task: dict[str, Any]) -> None:
        queue.enqueue(
            {"data": task},
            admin_functions.TaskOptions(dispatch_deadline_seconds=SYNC_TASK_TIMEOUT_S),
        )

    return enqueue


def delivery_queue() -> TaskEnqueue:
    """Enqueue a notification's delivery under its task id; one already enqueued stays."""
    return named_tasks(DELIVERY_QUEUE)


def named_tasks(name: str) -> TaskEnqueue:
    """Enqueue on the task queue `name` under a task id; one already enqueued stays."""
    queue = admin_functions.task_queue(name)

    def enqueue(data: dict[str, Any], task_id: str) -> None:
        try:
            queue.enqueue({"data": data}, admin_functions.TaskOptions(task_id=task_id))
        except (firebase_exceptions.AlreadyExistsError, firebase_exceptions.ConflictError):
            pass  # the trigger ran twice: the first enqueue stands
        except ValueError:
            # the Admin SDK cannot read back the name the Tasks emulator answers for a task
            # enqueued under an id (it drops the name's first character); it is enqueued
            if not os.environ.get("CLOUD_TASKS_EMULATOR_HOST"):
                raise

    return enqueue


def senders() -> Senders:
    return Senders(
        webhook_key=lambda: config.WEBHOOK_SIGNING_KEY.value,
        loopback_http=config.NOTIFY_LOOPBACK_HTTP.value,
        mail_per_day=config.MAIL_PER_DAY.value,
        attempts=config.NOTIFY_ATTEMPTS.value,
    )


def delete_auth_user(uid: str) -> None:
    try:
        admin_auth.delete_user(uid)
    except admin_auth.UserNotFoundError:
        pass


def admin_standing(uid: str, token: Mapping[str, Any]) -> str:
    """Why `token` no longer speaks for an administrator ("" when it does), from their account
    as it is now: the same test as verifying the token with `check_revoked`, and the claim."""
    try:
        user = admin_auth.get_user(uid)
    except admin_auth.UserNotFoundError:
        return "your account no longer exists"
    if user.disabled:
        return "your account is disabled"
    if (user.custom_claims or {}).get("admin") is not True:
        return "you are no longer an administrator"
    signed_in = token.get("auth_time") or token.get("iat") or 0
    valid_after_ms = user.tokens_valid_after_timestamp or 0
    if not isinstance(signed_in, int | float) or signed_in * 1000 < valid_after_ms:
        return "your sign-in was revoked: sign in again"
    return ""


def services() -> Services:
    try:
        fraction = Decimal(config.SIGNAL_BUYING_POWER_FRACTION.value)
    except InvalidOperation:
        fraction = Decimal("-1")
    if not 0 < fraction <= 1:
        raise RuntimeError("SIGNAL_BUYING_POWER_FRACTION must be a number in (0, 1]")
    return Services(
        platform=platform(),
        buying_power_fraction=fraction,
        delete_auth_user=delete_auth_user,
        oauth=OAuthApp(
            client_id=config.ALPACA_OAUTH_CLIENT_ID.value,
            client_secret=lambda: config.ALPACA_OAUTH_CLIENT_SECRET.value,
            redirect_url=config.ALPACA_OAUTH_REDIRECT_URL.value,
            authorize_url=config.ALPACA_OAUTH_AUTHORIZE_URL.value,
            token_url=config.ALPACA_OAUTH_TOKEN_URL.value,
            revoke_url=config.ALPACA_OAUTH_REVOKE_URL.value,
        ),
        webhook_key=lambda: config.WEBHOOK_SIGNING_KEY.value,
        webhook_loopback_http=config.NOTIFY_LOOPBACK_HTTP.value,
        admin_standing=admin_standing,
        enqueue_revocation=named_tasks(REVOKE_QUEUE),
    )
