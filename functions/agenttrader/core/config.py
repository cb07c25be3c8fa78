"""Configuration: every variable the product reads, declared once.

Values are read only inside handlers (`.value`), never at import, so deploys and tests can set
them per run.
"""

from __future__ import annotations

from firebase_functions import params

REGION = "us-central1"
"""Where the functions run (and where the page calls them)."""

ALPACA_API_BASE_URL = params.StringParam(
    "ALPACA_API_BASE_URL",
    default="",
    description="Alpaca trading API base URL for every user (empty: by the keys' paper flag)",
)
ALPACA_DATA_BASE_URL = params.StringParam(
    "ALPACA_DATA_BASE_URL",
    default="https://data.alpaca.markets",
    description="Alpaca market-data API base URL",
)
ALPACA_CLOCK_KEYS_SECRET = params.StringParam(
    "ALPACA_CLOCK_KEYS_SECRET",
    default="",
    description="The Secret Manager secret holding the operator's own Alpaca key pair, with "
    "which the pulse reads the market clock (empty: the keys of people being synced, then the "
    "NYSE calendar)",
)
PULSE_CONCURRENCY = params.IntParam(
    "PULSE_CONCURRENCY", default=32, description="Users synced at once by one pulse instance"
)
PULSE_FANOUT_THRESHOLD = params.IntParam(
    "PULSE_FANOUT_THRESHOLD",
    default=2000,
    description="Above this many users the pulse fans out through Cloud Tasks",
)
PULSE_FANOUT_BATCH = params.IntParam(
    "PULSE_FANOUT_BATCH", default=100, description="Users per Cloud Tasks sync task"
)
PULSE_TASKS_AT_ONCE = params.IntParam(
    "PULSE_TASKS_AT_ONCE",
    default=20,
    description="Sync tasks the queue runs at once (max_concurrent_dispatches)",
)
PULSE_TASKS_PER_SECOND = params.IntParam(
    "PULSE_TASKS_PER_SECOND",
    default=50,
    description="Sync tasks the queue starts a second (max_dispatches_per_second): the ramp-up",
)
SIGNAL_BUYING_POWER_FRACTION = params.StringParam(
    "SIGNAL_BUYING_POWER_FRACTION",
    default="0.10",
    description="Largest share of buying power one signal may commit (0-1)",
)

ALPACA_OAUTH_CLIENT_ID = params.StringParam(
    "ALPACA_OAUTH_CLIENT_ID",
    default="",
    description="Connect with Alpaca: the app's OAuth client id (empty: the button is refused)",
)
ALPACA_OAUTH_REDIRECT_URL = params.StringParam(
    "ALPACA_OAUTH_REDIRECT_URL",
    default="",
    description="Connect with Alpaca: the page Alpaca sends people back to (the web client's URL)",
)
ALPACA_OAUTH_AUTHORIZE_URL = params.StringParam(
    "ALPACA_OAUTH_AUTHORIZE_URL",
    default="https://app.alpaca.markets/oauth/authorize",
    description="Alpaca's OAuth authorize page",
)
ALPACA_OAUTH_TOKEN_URL = params.StringParam(
    "ALPACA_OAUTH_TOKEN_URL",
    default="https://api.alpaca.markets/oauth/token",
    description="Alpaca's OAuth token endpoint",
)
ALPACA_OAUTH_REVOKE_URL = params.StringParam(
    "ALPACA_OAUTH_REVOKE_URL",
    default="https://api.alpaca.markets/oauth/revoke",
    description="Alpaca's OAuth token revocation endpoint (RFC 7009)",
)
ALPACA_OAUTH_CLIENT_SECRET = params.SecretParam(
    "ALPACA_OAUTH_CLIENT_SECRET",
    description="Connect with Alpaca: the app's OAuth client secret (in Secret Manager)",
)

WEBHOOK_SIGNING_KEY = params.SecretParam(
    "WEBHOOK_SIGNING_KEY",
    description="Notifications: the app key each person's webhook signing secret is derived from",
)
MAIL_PER_DAY = params.IntParam(
    "MAIL_PER_DAY",
    default=20,
    description="Notifications: the most mails one person is sent a day (the rest stay in the "
    "feed, and one mail says so)",
)
NOTIFY_ATTEMPTS = params.IntParam(
    "NOTIFY_ATTEMPTS",
    default=10,
    description="Notifications: webhook attempts for one event before the webhook is switched "
    "off (the person is told in the feed)",
)
NOTIFY_RETRY_FIRST_S = params.IntParam(
    "NOTIFY_RETRY_FIRST_S",
    default=300,
    description="Notifications: seconds before a failed webhook attempt is tried again the "
    "first time",
)
NOTIFY_RETRY_DOUBLINGS = params.IntParam(
    "NOTIFY_RETRY_DOUBLINGS",
    default=5,
    description="Notifications: how many times the wait doubles; after that it grows by the "
    "last doubled step each attempt",
)
NOTIFY_RETRY_MAX_S = params.IntParam(
    "NOTIFY_RETRY_MAX_S",
    default=6 * 3600,
    description="Notifications: the longest wait between two webhook attempts, in seconds",
)
LIVE_TRADING = params.BoolParam(
    "LIVE_TRADING",
    default=False,
    description="Offer live trading: people may consent to real orders in their live Alpaca "
    "account (off: no consent is taken)",
)
LIVE_FIRST_DAYS_PERCENT = params.IntParam(
    "LIVE_FIRST_DAYS_PERCENT",
    default=25,
    description="Live trading: the percent of a live strategy's allocation its entries use in "
    "a person's first five trading days of live trading (1 to 100)",
)
BACKUP_PITR = params.BoolParam(
    "BACKUP_PITR",
    default=True,
    description="Backups: point-in-time recovery (7 days) on the database, set by make deploy",
)
BACKUP_RETENTION_DAYS = params.IntParam(
    "BACKUP_RETENTION_DAYS",
    default=14,
    description="Backups: how many days each daily backup is kept (1 to 98), set by make deploy",
)
ALERT_EMAIL = params.StringParam(
    "ALERT_EMAIL",
    default="",
    description="Alerts: the address the operators' alerts are sent to (make deploy)",
)
ALERT_FAILING_SHARE = params.StringParam(
    "ALERT_FAILING_SHARE",
    default="0.2",
    description="Alerts: the share of a run's people failing (3 runs in a row) that alerts",
)
ALERT_DELIVERY_AGE_S = params.IntParam(
    "ALERT_DELIVERY_AGE_S",
    default=3600,
    description="Alerts: a webhook still failing this many seconds after its event alerts",
)
ALERT_SYNC_QUEUE_AGE_S = params.IntParam(
    "ALERT_SYNC_QUEUE_AGE_S",
    default=120,
    description="Alerts: a sync task waiting this many seconds in the queue alerts",
)
NOTIFY_LOOPBACK_HTTP = params.BoolParam(
    "NOTIFY_LOOPBACK_HTTP",
    default=False,
    description="Let webhooks use plain http to a loopback address (the local demo only)",
)

ENFORCE_APP_CHECK = params.BoolParam(
    "ENFORCE_APP_CHECK",
    default=True,
    description="Refuse every callable request without a valid App Check token (the page's)",
)
APP_CHECK_SITE_KEY = params.StringParam(
    "APP_CHECK_SITE_KEY",
    default="",
    description="The reCAPTCHA Enterprise site key the page's App Check uses (public)",
)

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
