"""Every Firestore path the product touches, built in one place."""

from __future__ import annotations

from google.cloud import firestore

USERS = "users"
TRADING = "trading"


def user(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return db.collection(USERS).document(uid)


def users(db: firestore.Client) -> firestore.CollectionReference:
    return db.collection(USERS)


def trading_status(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("status").document("trading")


def last_sync_error(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("status").document("last_sync_error")


def sync_status(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("status").document("sync")


def marks(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """The live marks of a person's open trades, one document for all of them."""
    return user(db, uid).collection("status").document("marks")


def account_snapshot(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("alpacaAccounts").document("snapshot")


def shadow_trades(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    return user(db, uid).collection("shadowTradeHistory")


def signals(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    return user(db, uid).collection("signals")


def audit(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    return user(db, uid).collection("audit")


def rate_limits(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    return db.collection("ops").document("rate_limits").collection(uid)


def rate_limit(db: firestore.Client, uid: str, action: str) -> firestore.DocumentReference:
    return rate_limits(db, uid).document(action)


def deleted_account(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return db.collection("ops").document("accounts").collection("deleted").document(uid)


def global_trading(db: firestore.Client) -> firestore.DocumentReference:
    return db.collection("ops").document(TRADING)


def last_pulse(db: firestore.Client) -> firestore.DocumentReference:
    return db.collection("ops").document("last_pulse")


def pulse_run(db: firestore.Client, run_id: str) -> firestore.DocumentReference:
    return pulse_runs(db).document(run_id)


def pulse_runs(db: firestore.Client) -> firestore.CollectionReference:
    """Every run's summary, by run id (`started_at`: when it began)."""
    return db.collection("ops").document("pulse").collection("runs")


def health_hour(db: firestore.Client, hour: str) -> firestore.DocumentReference:
    """One hour's counters for the operators' health at a glance (`2026-12-03T16`)."""
    return db.collection("ops").document("health").collection("hours").document(hour)


def pulse_batch(db: firestore.Client, run_id: str, batch: int) -> firestore.DocumentReference:
    """A fanned-out run's slice `batch`, claimed by the first task to take it."""
    return pulse_run(db, run_id).collection("batches").document(str(batch))


def pulse_state(db: firestore.Client) -> firestore.DocumentReference:
    """The market clock as last read, the last sync and the run lease."""
    return db.collection("ops").document("pulse_state")


def platform_status(db: firestore.Client) -> firestore.DocumentReference:
    """What every signed-in person may know of the platform: whether trading is halted for
    everyone, and why (`ops/trading` itself stays admin-only)."""
    return db.collection("ops").document("status")


def freshness(db: firestore.Client) -> firestore.DocumentReference:
    """When the last sync finished: written once per run, readable by every signed-in person."""
    return db.collection("ops").document("freshness")


def strategies(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    return user(db, uid).collection("strategies")


def notification_settings(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("settings").document("notifications")


def notifications(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    """The person's feed: one notification per event, by an id derived from the event."""
    return user(db, uid).collection("notifications")


def backtests(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    return user(db, uid).collection("backtests")


def backtest_trades(
    db: firestore.Client, uid: str, backtest_id: str
) -> firestore.CollectionReference:
    """A backtest's trades, in pages (`0000`, `0001`, ...: oldest first)."""
    return backtests(db, uid).document(backtest_id).collection("trades")


def live_settings(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """The person's consent to live orders: account id, last four, consented and revoked at."""
    return user(db, uid).collection("settings").document("live")


def risk_settings(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("settings").document("risk")


def orders(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    """Paper orders, by the client_order_id sent to Alpaca."""
    return user(db, uid).collection("orders")


def mail_count(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """How many mails the person was sent today (`day`, `sent`): the daily cap's counter."""
    return user(db, uid).collection("status").document("mail")


def reconciliation(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    """Differences between the person's paper book and Alpaca's positions."""
    return user(db, uid).collection("status").document("reconciliation")


def closed_totals(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("stats").document("closed")


def stats_summary(db: firestore.Client, uid: str) -> firestore.DocumentReference:
    return user(db, uid).collection("stats").document("summary")


def equity_points(db: firestore.Client, uid: str) -> firestore.CollectionReference:
    """One point per trading day, by its New York date (YYYY-MM-DD)."""
    return user(db, uid).collection("equity")


def oauth_states(db: firestore.Client) -> firestore.CollectionReference:
    """Pending Connect with Alpaca states (a TTL policy on `expires_at` removes old ones)."""
    return db.collection("ops").document("oauth").collection("states")


def oauth_state(db: firestore.Client, state_hash: str) -> firestore.DocumentReference:
    """A pending Connect with Alpaca, by the SHA-256 of its state (never the state itself)."""
    return oauth_states(db).document(state_hash)


def mail(db: firestore.Client) -> firestore.CollectionReference:
    """Emails to send, in the shape the "Trigger Email from Firestore" extension reads."""
    return db.collection("mail")
