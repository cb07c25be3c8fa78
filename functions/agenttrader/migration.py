"""Move legacy data into the canonical layout without losing a document or a key.

Plan first (reads only), then apply in batches of at most 500 writes. Target documents keep
their source's id, so a run that was killed is finished by the next one, and a second run
finds everything unchanged. A target that exists with other content is a conflict: reported,
and only overwritten when the operator says so. Malformed sources are reported one by one and
left where they are. Keys move into Secret Manager before their Firestore copy is deleted.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from google.cloud import firestore
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agenttrader import paths
from agenttrader.keystore import UID, AlpacaKeys, KeyStore
from agenttrader.models import keys_version
from agenttrader.money import decimal

Kind = Literal["snapshot", "signal", "trade"]
OnConflict = Literal["skip", "overwrite", "fail"]
BATCH_LIMIT = 500
READ_CHUNK = 300


class Malformed(Exception):
    """A legacy document that cannot be mapped; the message names the field."""


# -- mapping legacy documents to canonical ones -------------------------------------------------


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _money(value: Any) -> str:
    return str(decimal(value))


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    raise ValueError("not a timestamp")


class _Legacy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_floats_lost(cls, value: Any) -> Any:
        return str(decimal(value)) if isinstance(value, float) else value


class LegacyTrade(_Legacy):
    symbol: str = Field(min_length=1, max_length=12, pattern=r"^[A-Za-z.]+$")
    side: Literal["BUY", "SELL"]
    quantity: Decimal = Field(gt=0)
    entry_price: Decimal = Field(gt=0)
    status: Literal["OPEN", "CLOSED"]


class LegacySignal(_Legacy):
    symbol: str = Field(min_length=1, max_length=12, pattern=r"^[A-Za-z.]+$")
    action: Literal["BUY", "SELL", "HOLD"]


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def canonical_trade(data: dict[str, Any]) -> dict[str, Any]:
    side = _upper(_first(data, "side", "action", "direction"))
    side = {"LONG": "BUY", "SHORT": "SELL"}.get(side, side)
    trade = LegacyTrade.model_validate(
        {
            "symbol": _upper(_first(data, "symbol", "ticker")),
            "side": side,
            "quantity": _first(data, "quantity", "qty", "shares"),
            "entry_price": _first(data, "entry_price", "entryPrice", "price"),
            "status": _upper(_first(data, "status")) or "OPEN",
        }
    )
    doc: dict[str, Any] = {
        "symbol": trade.symbol,
        "side": trade.side,
        "quantity": str(trade.quantity),
        "entry_price": str(trade.entry_price),
        "status": trade.status,
        "created_at": _time(_first(data, "created_at", "createdAt", "timestamp", "opened_at")),
    }
    for name, aliases in {
        "exit_price": ("exit_price", "exitPrice"),
        "realized_pnl": ("realized_pnl", "realizedPnl", "pnl"),
    }.items():
        value = _first(data, *aliases)
        if value is not None:
            doc[name] = _money(value)
    closed = _first(data, "closed_at", "closedAt")
    if closed is not None:
        doc["closed_at"] = _time(closed)
    return doc


def canonical_signal(data: dict[str, Any]) -> dict[str, Any]:
    signal = LegacySignal.model_validate(
        {
            "symbol": _upper(_first(data, "symbol", "ticker")),
            "action": _upper(_first(data, "action", "signal", "side")),
        }
    )
    doc: dict[str, Any] = {
        "symbol": signal.symbol,
        "action": signal.action,
        "reason": str(_first(data, "reason", "rationale") or "migrated from the single-user bot"),
        "strategy_id": str(_first(data, "strategy_id", "strategy") or "legacy"),
        "status": str(_first(data, "status") or "NEW"),
        "created_at": _time(_first(data, "created_at", "createdAt", "timestamp")),
    }
    notional = _first(data, "notional_usd", "notional", "amount")
    if notional is not None:
        doc["notional_usd"] = _money(notional)
    for name in ("quantity", "price"):
        if data.get(name) is not None:
            doc[name] = _money(data[name])
    return doc


SNAPSHOT_MONEY = ("equity", "cash", "buying_power", "portfolio_value", "last_equity")


def canonical_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for name in SNAPSHOT_MONEY:
        value = _first(
            data, name, "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))
        )
        if value is None and name in ("equity", "cash", "buying_power"):
            raise ValueError(f"{name}: missing")
        if value is not None:
            doc[name] = _money(value)
    for name in ("status", "currency", "account_number"):
        if data.get(name) is not None:
            doc[name] = str(data[name])
    for name in ("trading_blocked", "pattern_day_trader", "account_blocked"):
        if isinstance(data.get(name), bool):
            doc[name] = data[name]
    synced = _first(data, "synced_at", "updated_at", "updatedAt", "timestamp")
    doc["synced_at"] = _time(synced) if synced is not None else datetime(1970, 1, 1, tzinfo=UTC)
    return doc


CANONICAL = {"snapshot": canonical_snapshot, "signal": canonical_signal, "trade": canonical_trade}


def expected_target(kind: Kind, source_path: str, data: dict[str, Any]) -> dict[str, Any]:
    """The canonical document a legacy one becomes; Malformed names what is wrong."""
    try:
        doc = CANONICAL[kind](data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Malformed(f"{where}: {first['msg']}") from None
    except (ValueError, TypeError) as error:
        raise Malformed(str(error)) from None
    doc["migrated_from"] = source_path
    return doc


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """One legacy document and where it goes."""

    family: str
    kind: Kind
    source: firestore.DocumentSnapshot[Any]
    target: firestore.DocumentReference


@dataclass(frozen=True)
class KeyMove:
    """Keys for a user, from a Firestore document or from the environment."""

    uid: str
    keys: AlpacaKeys | None
    source: firestore.DocumentReference | None
    problem: str | None = None


@dataclass
class Report:
    """What a run found and did, per legacy family."""

    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    problems: list[str] = field(default_factory=list)
    verified: dict[str, tuple[int, str, int, str]] = field(default_factory=dict)
    profiles_created: int = 0

    def add(self, family: str, outcome: str, problem: str | None = None) -> None:
        self.counts[family][outcome] += 1
        if problem:
            self.problems.append(problem)

    @property
    def conflicts(self) -> int:
        return sum(c["conflict"] for c in self.counts.values())

    @property
    def verify_ok(self) -> bool:
        return all(v[0] == v[2] and v[1] == v[3] for v in self.verified.values())


def plan(
    db: firestore.Client, uid: str | None, tenants: dict[str, str]
) -> tuple[list[Move], list[str]]:
    """Every legacy document and its target; and the documents nobody was named for."""
    moves: list[Move] = []
    unmapped: list[str] = []

    def add(
        family: str,
        kind: Kind,
        doc: firestore.DocumentSnapshot[Any],
        owner: str | None,
        target: str,
    ) -> None:
        if owner is None:
            unmapped.append(doc.reference.path)
            return
        moves.append(Move(family, kind, doc, db.document(f"users/{owner}/{target}")))

    snapshot = db.document("alpacaAccounts/snapshot").get()
    if snapshot.exists:
        add("alpacaAccounts/snapshot", "snapshot", snapshot, uid, "alpacaAccounts/snapshot")
    for doc in db.collection("tradingSignals").stream():
        add("tradingSignals", "signal", doc, uid, f"signals/{doc.id}")
    for doc in db.collection("shadowTradeHistory").stream():
        add("shadowTradeHistory", "trade", doc, uid, f"shadowTradeHistory/{doc.id}")
    for doc in db.collection_group("accounts").stream():
        parts = doc.reference.path.split("/")
        if len(parts) == 4 and parts[0] == "tenants" and parts[3] == "primary":
            owner = tenants.get(parts[1])  # never guessed: it may collide with --uid's snapshot
            add("tenants/*/accounts/primary", "snapshot", doc, owner, "alpacaAccounts/snapshot")
    for doc in db.collection_group("data").stream():
        parts = doc.reference.path.split("/")
        if len(parts) == 4 and parts[0] == "users" and parts[3] == "snapshot":
            add("users/*/data/snapshot", "snapshot", doc, parts[1], "alpacaAccounts/snapshot")
    for doc in db.collection_group("tradingSignals").stream():
        parts = doc.reference.path.split("/")
        if len(parts) == 4 and parts[0] == "users":
            add("users/*/tradingSignals", "signal", doc, parts[1], f"signals/{doc.id}")
    return moves, unmapped


def plan_keys(db: firestore.Client, env_keys: AlpacaKeys | None, uid: str | None) -> list[KeyMove]:
    found: list[KeyMove] = []
    for doc in db.collection_group("secrets").stream():
        parts = doc.reference.path.split("/")
        if not (len(parts) == 4 and parts[0] == "users" and parts[3] == "alpaca"):
            continue
        data = doc.to_dict() or {}
        try:
            keys = AlpacaKeys(
                key_id=_first(data, "key_id", "keyId", "api_key_id", "APCA_API_KEY_ID"),
                secret_key=_first(
                    data, "secret_key", "secretKey", "api_secret_key", "APCA_API_SECRET_KEY"
                ),
                paper=bool(data.get("paper", True)),
            )
            found.append(KeyMove(parts[1], keys, doc.reference))
        except ValidationError as error:
            where = ".".join(str(p) for p in error.errors()[0]["loc"])
            found.append(
                KeyMove(
                    parts[1], None, doc.reference, f"{doc.reference.path}: {where} is not valid"
                )
            )
    if env_keys is not None:
        if uid is None:
            found.append(
                KeyMove("", None, None, "APCA_API_KEY_ID is set but no --uid names its owner")
            )
        else:
            found.append(KeyMove(uid, env_keys, None))
    return found


# -- running -----------------------------------------------------------------------------------


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Writer:
    """Commits writes in batches of at most BATCH_LIMIT."""

    def __init__(self, db: firestore.Client) -> None:
        self._db = db
        self._batch = db.batch()
        self._pending = 0

    def set(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> None:
        self._batch.set(ref, data)
        self._bump()

    def delete(self, ref: firestore.DocumentReference) -> None:
        self._batch.delete(ref)
        self._bump()

    def _bump(self) -> None:
        self._pending += 1
        if self._pending >= BATCH_LIMIT:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._batch.commit()
            self._batch = self._db.batch()
            self._pending = 0


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def same(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    return a is not None and b is not None and _comparable(a) == _comparable(b)


def _digest(pairs: Iterable[tuple[str, dict[str, Any]]]) -> str:
    h = hashlib.sha256()
    for path, doc in sorted(pairs, key=lambda p: p[0]):
        h.update(path.encode())
        h.update(json.dumps(_comparable(doc), sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def migrate(
    db: firestore.Client,
    keystore: KeyStore,
    *,
    uid: str | None = None,
    tenants: dict[str, str] | None = None,
    env_keys: AlpacaKeys | None = None,
    apply: bool = False,
    on_conflict: OnConflict = "skip",
    delete_legacy: bool = False,
) -> Report:
    """Plan, and with `apply` carry out, verify and optionally clean up the migration."""
    if uid is not None and not UID.match(uid):
        raise ValueError(f"not a valid uid: {uid!r}")
    report = Report()
    moves, unmapped = plan(db, uid, tenants or {})
    for path in unmapped:
        if path.startswith("tenants/"):
            tenant = path.split("/")[1]
            report.add(
                "unmapped", "needs --tenant", f"{path}: name its owner with --tenant {tenant}=UID"
            )
        else:
            report.add(
                "unmapped", "needs --uid", f"{path}: single-user data; name its owner with --uid"
            )
    decided = _decide(db, moves, report, on_conflict)
    keys = plan_keys(db, env_keys, uid)
    if on_conflict == "fail" and report.conflicts:
        report.problems.append(
            f"{report.conflicts} conflicts and --on-conflict fail: nothing written"
        )
        return report
    if not apply:
        _plan_keys_report(keystore, keys, report)
        return report
    writer = _Writer(db)
    owners = {m.target.parent.parent.id for m, _ in decided} | {k.uid for k in keys if k.keys}
    report.profiles_created = _ensure_profiles(db, writer, owners)
    for move, doc in decided:
        writer.set(move.target, doc)
    writer.flush()
    _move_keys(db, keystore, keys, report)
    _verify(db, moves, report)
    if delete_legacy:
        if report.verify_ok:
            _delete_legacy(db, moves, report)
        else:
            report.problems.append("verification failed: legacy documents kept")
    return report


def _decide(
    db: firestore.Client, moves: list[Move], report: Report, on_conflict: OnConflict
) -> list[tuple[Move, dict[str, Any]]]:
    """Which moves write what: new targets, and conflicts only when overwriting."""
    decided = []
    for chunk in _chunks(moves, READ_CHUNK):
        targets = {d.reference.path: d for d in db.get_all([m.target for m in chunk])}
        for move in chunk:
            try:
                doc = expected_target(
                    move.kind, move.source.reference.path, move.source.to_dict() or {}
                )
            except Malformed as bad:
                report.add(move.family, "malformed", f"{move.source.reference.path}: {bad}")
                continue
            existing = targets[move.target.path]
            current = existing.to_dict() if existing.exists else None
            if current is None:
                report.add(move.family, "copy")
                decided.append((move, doc))
            elif same(current, doc):
                report.add(move.family, "unchanged")
            elif on_conflict == "overwrite":
                report.add(move.family, "overwrite")
                decided.append((move, doc))
            else:
                report.add(
                    move.family,
                    "conflict",
                    f"{move.target.path} exists with other content than "
                    f"{move.source.reference.path}",
                )
    return decided


def _ensure_profiles(db: firestore.Client, writer: _Writer, uids: set[str]) -> int:
    created = 0
    refs = [paths.user(db, uid) for uid in sorted(uids) if uid]
    for chunk in _chunks(refs, READ_CHUNK):
        for doc in db.get_all(chunk):
            if not doc.exists:
                writer.set(doc.reference, {"created_at": datetime.now(UTC), "migrated": True})
                created += 1
    return created


def _plan_keys_report(keystore: KeyStore, keys: list[KeyMove], report: Report) -> None:
    for move in keys:
        family = "keys (firestore)" if move.source is not None else "keys (environment)"
        if move.problem or move.keys is None:
            report.add(family, "malformed", move.problem)
        elif _stored_equal(keystore, move):
            report.add(family, "unchanged" if move.source is None else "delete firestore copy")
        else:
            report.add(family, "copy")


def _stored_equal(keystore: KeyStore, move: KeyMove) -> bool:
    keystore.forget(move.uid)
    stored = keystore.load(move.uid, None)
    return stored is not None and move.keys is not None and stored.payload() == move.keys.payload()


def _move_keys(
    db: firestore.Client, keystore: KeyStore, keys: list[KeyMove], report: Report
) -> None:
    for move in keys:
        family = "keys (firestore)" if move.source is not None else "keys (environment)"
        if move.problem or move.keys is None:
            report.add(family, "malformed", move.problem)
            continue
        user_ref = paths.user(db, move.uid)
        if _stored_equal(keystore, move):
            outcome = "unchanged"
            if keys_version(user_ref.get().to_dict()) is None:
                user_ref.set({"keys_version": 1}, merge=True)
        else:
            keystore.save(move.uid, move.keys)
            user_ref.set({"keys_version": firestore.Increment(1)}, merge=True)
            outcome = "copy"
        if move.source is not None:
            if not _stored_equal(keystore, move):
                report.add(
                    family, "failed", f"{move.source.path}: the secret does not hold these keys"
                )
                continue
            move.source.delete()
            outcome = "moved"
        report.add(family, outcome)


def _verify(db: firestore.Client, moves: list[Move], report: Report) -> None:
    """Per family: count and digest of what the sources say the targets should be, and of
    what the targets are. Malformed sources are not expected anywhere."""
    by_family: dict[str, list[Move]] = defaultdict(list)
    for move in moves:
        by_family[move.family].append(move)
    for family, family_moves in by_family.items():
        expected: list[tuple[str, dict[str, Any]]] = []
        actual: list[tuple[str, dict[str, Any]]] = []
        for chunk in _chunks(family_moves, READ_CHUNK):
            sources = {d.reference.path: d for d in db.get_all([m.source.reference for m in chunk])}
            targets = {d.reference.path: d for d in db.get_all([m.target for m in chunk])}
            for move in chunk:
                source = sources[move.source.reference.path]
                try:
                    doc = expected_target(move.kind, source.reference.path, source.to_dict() or {})
                except Malformed:
                    continue
                expected.append((move.target.path, doc))
                target = targets[move.target.path]
                if target.exists:
                    actual.append((move.target.path, target.to_dict() or {}))
        report.verified[family] = (len(expected), _digest(expected), len(actual), _digest(actual))


def _delete_legacy(db: firestore.Client, moves: list[Move], report: Report) -> None:
    writer = _Writer(db)
    for chunk in _chunks(moves, READ_CHUNK):
        targets = {d.reference.path: d for d in db.get_all([m.target for m in chunk])}
        for move in chunk:
            target = targets[move.target.path]
            try:
                doc = expected_target(
                    move.kind, move.source.reference.path, move.source.to_dict() or {}
                )
            except Malformed:
                continue
            if target.exists and same(target.to_dict(), doc):
                writer.delete(move.source.reference)
                report.add(move.family, "legacy deleted")
    writer.flush()


def rollback(
    db: firestore.Client, uid: str | None, tenants: dict[str, str] | None = None
) -> Report:
    """Remove migrated copies whose legacy source is still there (so nothing is lost)."""
    report = Report()
    moves, _ = plan(db, uid, tenants or {})
    writer = _Writer(db)
    for chunk in _chunks(moves, READ_CHUNK):
        targets = {d.reference.path: d for d in db.get_all([m.target for m in chunk])}
        for move in chunk:
            target = targets[move.target.path]
            if (
                target.exists
                and (target.to_dict() or {}).get("migrated_from") == move.source.reference.path
            ):
                writer.delete(move.target)
                report.add(move.family, "copy removed")
            else:
                report.add(move.family, "kept")
    writer.flush()
    return report
