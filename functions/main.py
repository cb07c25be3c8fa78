"""Cloud Functions entry points: triggers only; the work is in the agenttrader package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import firebase_admin
import flask
from firebase_functions import firestore_fn, https_fn, options, scheduler_fn, tasks_fn

from agenttrader import runtime
from agenttrader.api import (
    admin_callables,
    alpaca_connect,
    backtest_callables,
    callables,
    keys_callables,
    live_callables,
    notify_callables,
    portfolio_callables,
    position_callables,
    strategy_callables,
)
from agenttrader.api.guard import Handler, from_the_page, handled
from agenttrader.api.revocation import RETRY as REVOKE_RETRY
from agenttrader.api.revocation import NotYet, run_revocation
from agenttrader.core import clients, config, iam
from agenttrader.notify.delivery import route
from agenttrader.notify.tasks import RETRY, enqueue_delivery, run_delivery
from agenttrader.pulse.run import run_pulse, run_user_batch
from agenttrader.watch.backups import check_backups, firestore_backups

firebase_admin.initialize_app()
options.set_global_options(region=config.REGION, max_instances=10)


@scheduler_fn.on_schedule(
    schedule="every 1 minutes",
    timeout_sec=120,
    memory=options.MemoryOption.GB_1,
    cpu=1,
    service_account=iam.runs_as("pulse"),
)
def pulse(event: scheduler_fn.ScheduledEvent) -> None:
    """Every minute: sync everyone's snapshot and P&L when the market's cadence says so."""
    if _health_probe():
        return
    run_pulse(
        runtime.platform(), runtime.pulse_settings(), enqueue=runtime.sync_queue(), cadence=True
    )


def _health_probe() -> bool:
    """The Functions emulator checks each worker with GET /__/health, which the scheduler's
    wrapper would take for a run: one trigger would give two pulses."""
    return flask.has_request_context() and flask.request.path == "/__/health"


@tasks_fn.on_task_dispatched(
    retry_config=options.RetryConfig(max_attempts=3, min_backoff_seconds=10),
    rate_limits=options.RateLimits(
        max_concurrent_dispatches=config.PULSE_TASKS_AT_ONCE,
        max_dispatches_per_second=config.PULSE_TASKS_PER_SECOND,
    ),
    timeout_sec=runtime.SYNC_TASK_TIMEOUT_S,
    memory=options.MemoryOption.GB_1,
    cpu=1,
    service_account=iam.runs_as("syncuserbatch"),
)
def syncuserbatch(req: https_fn.CallableRequest[Any]) -> None:
    """One slice of a fanned-out pulse."""
    run_user_batch(runtime.platform(), req.data, runtime.pulse_settings())


def _exposed(
    handler: Handler, secrets: list[str] | None = None
) -> Callable[[https_fn.CallableRequest[Any]], dict[str, Any]]:
    """A declared callable as a Cloud Function, with the production services (and the secret
    params it reads). App Check is enforced for every callable by `ENFORCE_APP_CHECK` (on by
    default), read per call so an operator can switch it off: the SDK's own
    `enforce_app_check` option is fixed when this module loads and cannot follow a param. The
    SDK verifies any App Check token it is sent either way; `from_the_page` refuses a request
    without a valid one, exactly as that option would."""

    def adapter(req: https_fn.CallableRequest[Any]) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            from_the_page(req.app, config.ENFORCE_APP_CHECK.value)
            return handler(runtime.services(), req.auth, req.data)

        result: dict[str, Any] = handled(handler.__name__, work)
        return result

    adapter.__name__ = handler.__name__  # the function's deployed name
    adapter.__doc__ = handler.__doc__
    account = iam.runs_as(handler.__name__)  # only what its job needs (core/iam.py)
    return https_fn.on_call(secrets=secrets, service_account=account)(adapter)


generate_trading_signal = _exposed(callables.generate_trading_signal)
save_alpaca_keys = _exposed(keys_callables.save_alpaca_keys)
OAUTH_SECRET = [config.ALPACA_OAUTH_CLIENT_SECRET.name]
"""For the callables that exchange or revoke a Connect with Alpaca token."""
remove_alpaca_keys = _exposed(keys_callables.remove_alpaca_keys, secrets=OAUTH_SECRET)
set_trading_enabled = _exposed(callables.set_trading_enabled)
close_shadow_trade = _exposed(position_callables.close_shadow_trade)
close_all_positions = _exposed(position_callables.close_all_positions)
mark_trade_closed = _exposed(position_callables.mark_trade_closed)
use_alpaca_quantity = _exposed(position_callables.use_alpaca_quantity)
delete_my_account = _exposed(keys_callables.delete_my_account, secrets=OAUTH_SECRET)
admin_set_global_trading = _exposed(admin_callables.admin_set_global_trading)
admin_get_last_pulse = _exposed(admin_callables.admin_get_last_pulse)
admin_disable_user_trading = _exposed(admin_callables.admin_disable_user_trading)
admin_unlock_user_trading = _exposed(admin_callables.admin_unlock_user_trading)
admin_list_people = _exposed(admin_callables.admin_list_people)
request_sync = _exposed(callables.request_sync)
save_strategy = _exposed(strategy_callables.save_strategy)
set_strategy_status = _exposed(strategy_callables.set_strategy_status)
delete_strategy = _exposed(strategy_callables.delete_strategy)
save_risk_limits = _exposed(strategy_callables.save_risk_limits)
start_alpaca_connect = _exposed(alpaca_connect.start_alpaca_connect)
finish_alpaca_connect = _exposed(alpaca_connect.finish_alpaca_connect, secrets=OAUTH_SECRET)
run_backtest = _exposed(backtest_callables.run_backtest)
allow_live_trading = _exposed(live_callables.allow_live_trading)
stop_live_trading = _exposed(live_callables.stop_live_trading)
delete_backtest = _exposed(backtest_callables.delete_backtest)
portfolio_history = _exposed(portfolio_callables.portfolio_history)
WEBHOOK_KEY = [config.WEBHOOK_SIGNING_KEY.name]
"""For the callables that sign a webhook or show its signing secret."""
save_notification_settings = _exposed(notify_callables.save_notification_settings, WEBHOOK_KEY)
rotate_webhook_secret = _exposed(notify_callables.rotate_webhook_secret, WEBHOOK_KEY)
send_test_notification = _exposed(notify_callables.send_test_notification, WEBHOOK_KEY)


@firestore_fn.on_document_created(
    document="users/{uid}/notifications/{event_id}",
    memory=options.MemoryOption.MB_256,
    service_account=iam.runs_as("notificationcreated"),
)
def notificationcreated(event: firestore_fn.Event[Any]) -> None:
    """A new notification: a delivery task for each channel the person chose for it."""
    notification = event.data.to_dict() if event.data is not None else None
    route(
        clients.firestore_client(),
        event.params["uid"],
        event.params["event_id"],
        notification or {},
        enqueue_delivery(runtime.delivery_queue()),
    )


@tasks_fn.on_task_dispatched(
    retry_config=options.RetryConfig(**RETRY),
    rate_limits=options.RateLimits(max_concurrent_dispatches=20),
    timeout_sec=60,
    memory=options.MemoryOption.MB_256,
    secrets=WEBHOOK_KEY,
    service_account=iam.runs_as("delivernotification"),
)
def delivernotification(req: https_fn.CallableRequest[Any]) -> None:
    """One attempt at delivering a notification on one channel."""
    run_delivery(clients.firestore_client(), runtime.senders(), runtime.utcnow(), req.data)


@scheduler_fn.on_schedule(
    schedule="every day 06:00",  # UTC
    memory=options.MemoryOption.MB_256,
    service_account=iam.runs_as("backupcheck"),
)
def backupcheck(event: scheduler_fn.ScheduledEvent) -> None:
    """Say (an error the backup-failed alert matches) when no backup finished in 26 hours."""
    project = clients.project_id()
    check_backups(firestore_backups(project), "(default)", runtime.utcnow())


@tasks_fn.on_task_dispatched(
    retry_config=options.RetryConfig(**REVOKE_RETRY),
    rate_limits=options.RateLimits(max_concurrent_dispatches=5),
    timeout_sec=60,
    memory=options.MemoryOption.MB_256,
    secrets=OAUTH_SECRET,
    service_account=iam.runs_as("revoketoken"),
)
def revoketoken(req: https_fn.CallableRequest[Any]) -> None:
    """Ask Alpaca again to revoke a Connect with Alpaca token it did not confirm revoked."""
    try:
        run_revocation(runtime.keystore(), runtime.services().oauth, req.data)
    except NotYet as again:
        raise https_fn.HttpsError(https_fn.FunctionsErrorCode.UNAVAILABLE, str(again)) from None
