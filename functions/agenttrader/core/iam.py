"""Who runs as whom: the service accounts the functions run as, by job, and what each may do.

Only the functions that act at Alpaca for a person read `alpaca-keys-*` secrets (KEY_READER);
only the functions that save or remove keys may add and destroy their versions (KEY_KEEPER);
the functions that talk to the outside world on people's behalf (webhooks, mail) have no role
on anyone's keys (OUTSIDE); everything else reaches Firestore only (APP). The deploy
(`scripts/iam_plan.py`) creates the accounts and grants exactly what `grants` lists; each
function names its account in its decorator (`runs_as`).
"""

from __future__ import annotations

from dataclasses import dataclass

KEY_READER = "agenttrader-key-reader"
KEY_KEEPER = "agenttrader-key-keeper"
OUTSIDE = "agenttrader-outside"
APP = "agenttrader-app"

ACCOUNTS: dict[str, str] = {
    KEY_READER: "Reads people's Alpaca keys: the pulse, its sync tasks, the callables that ask "
    "Alpaca for a person",
    KEY_KEEPER: "Saves and removes people's Alpaca keys and Connect with Alpaca tokens",
    OUTSIDE: "Sends notifications to people's webhooks and mail: no access to anyone's keys",
    APP: "Everything else: the person's and the admins' data in Firestore",
}

KEYS_PREFIX = "alpaca-keys-"
"""Every person's secret is named `alpaca-keys-{uid}`."""

KEEPER_ROLE = "agenttraderKeyKeeper"
KEEPER_PERMISSIONS = (
    "secretmanager.secrets.get",
    "secretmanager.secrets.delete",
    "secretmanager.versions.add",
    "secretmanager.versions.access",
    "secretmanager.versions.destroy",
    "secretmanager.versions.list",
)
"""A custom role: what saving, replacing and removing a person's keys needs (granted only on
`alpaca-keys-*`)."""
CREATOR_ROLE = "agenttraderSecretCreator"
CREATOR_PERMISSIONS = ("secretmanager.secrets.create",)
"""A custom role of its own: creating a secret (a new person's first save). It reads nothing."""

FUNCTIONS: dict[str, str] = {
    # acting at Alpaca for a person: their keys, read only
    "pulse": KEY_READER,
    "syncuserbatch": KEY_READER,
    "generate_trading_signal": KEY_READER,
    "close_shadow_trade": KEY_READER,
    "close_all_positions": KEY_READER,
    "use_alpaca_quantity": KEY_READER,
    "request_sync": KEY_READER,
    "run_backtest": KEY_READER,
    "allow_live_trading": KEY_READER,
    "portfolio_history": KEY_READER,
    # saving and removing keys
    "save_alpaca_keys": KEY_KEEPER,
    "remove_alpaca_keys": KEY_KEEPER,
    "delete_my_account": KEY_KEEPER,
    "finish_alpaca_connect": KEY_KEEPER,
    "revoketoken": KEY_KEEPER,
    # the outside world: webhooks and mail
    "notificationcreated": OUTSIDE,
    "delivernotification": OUTSIDE,
    "save_notification_settings": OUTSIDE,
    "rotate_webhook_secret": OUTSIDE,
    "send_test_notification": OUTSIDE,
    # Firestore only
    "set_trading_enabled": APP,
    "mark_trade_closed": APP,
    "save_strategy": APP,
    "set_strategy_status": APP,
    "delete_strategy": APP,
    "save_risk_limits": APP,
    "delete_backtest": APP,
    "stop_live_trading": APP,
    "start_alpaca_connect": APP,
    "admin_set_global_trading": APP,
    "admin_get_last_pulse": APP,
    "admin_disable_user_trading": APP,
    "admin_unlock_user_trading": APP,
    "admin_list_people": APP,
    "backupcheck": APP,
}
"""Every deployed function and the account it runs as."""


def runs_as(function: str) -> str:
    """The service account a function names in its decorator: `name@`, which the deploy
    completes with the project (`name@{project}.iam.gserviceaccount.com`)."""
    return f"{FUNCTIONS[function]}@"


def email(account: str, project: str) -> str:
    return f"{account}@{project}.iam.gserviceaccount.com"


@dataclass(frozen=True)
class Grant:
    """One role for one account, on the project (optionally only on secrets whose name starts
    with `prefix`), or on one secret (`secret`), or on the account itself (`on_self`)."""

    account: str
    role: str
    prefix: str = ""
    secret: str = ""
    on_self: bool = False


FIRESTORE = "roles/datastore.user"
LOGS = "roles/logging.logWriter"
ENQUEUE = ("roles/cloudtasks.enqueuer", "roles/cloudfunctions.viewer")
"""Enqueuing a task for a function (the Admin SDK looks the function's address up)."""
SECRET_READER = "roles/secretmanager.secretAccessor"


def grants(
    project_number: str, *, oauth_secret: str, webhook_secret: str, clock_secret: str = ""
) -> list[Grant]:
    """Everything the deploy grants, account by account."""
    keys = f"projects/{project_number}/secrets/{KEYS_PREFIX}"
    out = [Grant(account, role) for account in ACCOUNTS for role in (FIRESTORE, LOGS)]
    out.append(Grant(APP, "roles/datastore.viewer"))  # backupcheck lists the backups
    out += [
        Grant(KEY_READER, SECRET_READER, prefix=keys),
        Grant(KEY_KEEPER, f"projects/{{project}}/roles/{KEEPER_ROLE}", prefix=keys),
        Grant(KEY_KEEPER, f"projects/{{project}}/roles/{CREATOR_ROLE}"),
        Grant(KEY_KEEPER, "roles/firebaseauth.admin"),  # deleting an account deletes its user
        Grant(KEY_KEEPER, SECRET_READER, secret=oauth_secret),
        Grant(OUTSIDE, SECRET_READER, secret=webhook_secret),
    ]
    # the pulse fans out to sync tasks, a removal to revocation tasks, a new notification to
    # delivery tasks: each enqueues with its own identity, so it acts as itself
    for account in (KEY_READER, KEY_KEEPER, OUTSIDE):
        out += [Grant(account, role) for role in ENQUEUE]
        out.append(Grant(account, "roles/iam.serviceAccountUser", on_self=True))
    if clock_secret:
        out.append(Grant(KEY_READER, SECRET_READER, secret=clock_secret))
    return out
