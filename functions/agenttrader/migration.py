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
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.field_path import FieldPath
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agenttrader.broker.keystore import UID, AlpacaKeys, KeyStore
from agenttrader.core.money import decimal, plain
from agenttrader.store import paths
from agenttrader.store.firestore_io import get_by_path
from agenttrader.store.models import keys_version

Kind = Literal["snapshot", "signal", "trade"]
OnConflict = Literal["skip", "overwrite", "fail"]
BATCH_LIMIT = 500
FAMILIES = (
    "alpacaAccounts/snapshot",
    "tradingSignals",
    "shadowTradeHistory",
    "tenants/*/accounts/primary",
    "users/*/data/snapshot",
    "users/*/tradingSignals",
)
"""The legacy source families, as the report names them."""


class Malformed(Exception):
    """A legacy document that cannot be mapped; the message names the field."""


# -- mapping legacy documents to canonical ones -------------------------------------------------


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) is not None:
            return data[name]
    return None


def _time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    raise ValueError("not a timestamp")


_SENSITIVE = re.compile(r"secret|password|token|api_?key|key_?id", re.IGNORECASE)
"""Fields never carried into a migrated document, whatever they hold."""


class _Source:
    """A legacy document's fields, read by canonical name through the names the old layouts
    used; remembers which name each came from, so a problem names the field as written."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.read_as: dict[str, str] = {}
        self.consumed: set[str] = set()

    def get(self, canonical: str, *aliases: str) -> Any:
        names = aliases or (canonical,)
        self.consumed.update(names)
        for name in names:
            if self.data.get(name) is not None:
                self.read_as[canonical] = name
                return self.data[name]
        return None

    def where(self, canonical: str) -> str:
        """`quantity`, or `quantity (qty)` when the source called it something else."""
        written = self.read_as.get(canonical, canonical)
        return canonical if written == canonical else f"{canonical} ({written})"

    def money(self, doc: dict[str, Any], canonical: str, *aliases: str) -> None:
        """Set doc[canonical] to the exact decimal string of the source's value, if any."""
        value = self.get(canonical, *aliases)
        if value is not None:
            try:
                doc[canonical] = plain(decimal(value))
            except ValueError as error:
                raise Malformed(f"{self.where(canonical)}: {error}") from None

    def time(
        self, doc: dict[str, Any], canonical: str, *aliases: str, required: bool = False
    ) -> None:
        value = self.get(canonical, *aliases)
        if value is None:
            if required:
                raise Malformed(f"{canonical}: missing")
            return
        try:
            doc[canonical] = _time(value)
        except (ValueError, TypeError, OverflowError, OSError):
            raise Malformed(f"{self.where(canonical)}: not a timestamp: {value!r}") from None

    def validated(self, model: type[_LegacyModel], fields: dict[str, Any]) -> _LegacyModel:
        try:
            return model.model_validate(fields)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(self.where(str(p)) for p in first["loc"])
            raise Malformed(f"{where}: {first['msg']}") from None

    def extras(self) -> dict[str, Any]:
        """What the source had beyond the fields the layout names, kept as it was (minus
        anything that looks like a credential)."""
        return {
            k: v
            for k, v in self.data.items()
            if k not in self.consumed and not _SENSITIVE.search(k)
        }


class _Legacy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_floats_lost(cls, value: Any) -> Any:
        return plain(decimal(value)) if isinstance(value, float) else value


_LegacyModel = TypeVar("_LegacyModel", bound=_Legacy)


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
    source = _Source(data)
    side = _upper(source.get("side", "side", "action", "direction"))
    trade = source.validated(
        LegacyTrade,
        {
            "symbol": _upper(source.get("symbol", "symbol", "ticker")),
            "side": {"LONG": "BUY", "SHORT": "SELL"}.get(side, side),
            "quantity": source.get("quantity", "quantity", "qty", "shares"),
            "entry_price": source.get("entry_price", "entry_price", "entryPrice", "price"),
            "status": _upper(source.get("status")) or "OPEN",
        },
    )
    doc: dict[str, Any] = {
        "symbol": trade.symbol,
        "side": trade.side,
        "quantity": plain(trade.quantity),
        "entry_price": plain(trade.entry_price),
        "status": trade.status,
    }
    source.time(
        doc, "created_at", "created_at", "createdAt", "timestamp", "opened_at", required=True
    )
    source.money(doc, "current_price", "current_price", "currentPrice", "last_price")
    source.money(doc, "unrealized_pnl", "unrealized_pnl", "unrealizedPnl", "unrealized_pl")
    source.money(doc, "pnl_percent", "pnl_percent", "pnlPercent", "unrealized_plpc")
    source.time(doc, "last_priced_at", "last_priced_at", "lastPricedAt", "priced_at")
    source.money(doc, "exit_price", "exit_price", "exitPrice")
    source.money(doc, "realized_pnl", "realized_pnl", "realizedPnl", "pnl")
    source.time(doc, "closed_at", "closed_at", "closedAt")
    return {**source.extras(), **doc}


def canonical_signal(data: dict[str, Any]) -> dict[str, Any]:
    source = _Source(data)
    signal = source.validated(
        LegacySignal,
        {
            "symbol": _upper(source.get("symbol", "symbol", "ticker")),
            "action": _upper(source.get("action", "action", "signal", "side")),
        },
    )
    doc: dict[str, Any] = {
        "symbol": signal.symbol,
        "action": signal.action,
        "reason": str(
            source.get("reason", "reason", "rationale") or "migrated from the single-user bot"
        ),
        "strategy_id": str(source.get("strategy_id", "strategy_id", "strategy") or "legacy"),
        "status": str(source.get("status") or "NEW"),
    }
    source.time(doc, "created_at", "created_at", "createdAt", "timestamp", required=True)
    source.money(doc, "notional_usd", "notional_usd", "notional", "amount")
    source.money(doc, "quantity")
    source.money(doc, "price")
    return {**source.extras(), **doc}


SNAPSHOT_MONEY = ("equity", "cash", "buying_power", "portfolio_value", "last_equity")


def _camel(name: str) -> str:
    return "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))


def canonical_snapshot(data: dict[str, Any]) -> dict[str, Any]:
    source = _Source(data)
    doc: dict[str, Any] = {}
    for name in SNAPSHOT_MONEY:
        source.money(doc, name, name, _camel(name))
        if name not in doc and name in ("equity", "cash", "buying_power"):
            raise Malformed(f"{name}: missing")
    for name in ("status", "currency", "account_number"):
        value = source.get(name)
        if value is not None:
            doc[name] = str(value)
    for name in ("trading_blocked", "pattern_day_trader", "account_blocked"):
        value = source.get(name)
        if isinstance(value, bool):
            doc[name] = value
    source.time(doc, "synced_at", "synced_at", "updated_at", "updatedAt", "timestamp")
    doc.setdefault("synced_at", datetime(1970, 1, 1, tzinfo=UTC))
    return {**source.extras(), **doc}


CANONICAL = {"snapshot": canonical_snapshot, "signal": canonical_signal, "trade": canonical_trade}


def expected_target(kind: Kind, source_path: str, data: dict[str, Any]) -> dict[str, Any]:
    """The canonical document a legacy one becomes; Malformed names what is wrong."""
    doc = CANONICAL[kind](data)
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
    notes: list[str] = field(default_factory=list)
    """What the operator should know that needs no action (merged or superseded sources)."""
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
        key_id = _first(data, "key_id", "keyId", "api_key_id", "APCA_API_KEY_ID")
        secret_key = _first(
            data, "secret_key", "secretKey", "api_secret_key", "APCA_API_SECRET_KEY"
        )
        try:
            keys = AlpacaKeys(
                key_id=key_id, secret_key=secret_key, paper=bool(data.get("paper", True))
            )
            found.append(KeyMove(parts[1], keys, doc.reference))
        except ValidationError as error:
            where = ".".join(str(p) for p in error.errors()[0]["loc"])
            if where:
                problem = f"{where} is not valid"
            else:  # the pair as a whole: say which half is missing
                missing = [n for n, v in (("key_id", key_id), ("secret_key", secret_key)) if not v]
                problem = f"{' and '.join(missing) or 'key_id and secret_key'} missing"
            found.append(KeyMove(parts[1], None, doc.reference, f"{doc.reference.path}: {problem}"))
    if env_keys is not None:
        if uid is None:
            found.append(
                KeyMove("", None, None, "APCA_API_KEY_ID is set but no --uid names its owner")
            )
        else:
            found.append(KeyMove(uid, env_keys, None))
    return found


# -- running -----------------------------------------------------------------------------------


Write = Callable[[firestore.WriteBatch], None]


class _Writer:
    """Commits writes in batches of at most BATCH_LIMIT. A write with a precondition (a create,
    or a change of a document as it was read) that another writer broke is not made: the batch
    is made again one write at a time, and each refused write is handed to `refused` (the
    rest land)."""

    def __init__(self, db: firestore.Client, refused: Callable[[str], None] | None = None) -> None:
        self._db = db
        self._writes: list[tuple[str, Write]] = []
        self._refused = refused

    def set(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> None:
        self._add(ref.path, lambda b: b.set(ref, data))

    def create(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> None:
        """Only if it still does not exist."""
        self._add(ref.path, lambda b: b.create(ref, data))

    def replace(
        self,
        snapshot: firestore.DocumentSnapshot[Any],
        data: dict[str, Any],
    ) -> None:
        """Make the document `data` exactly, only if it is still as `snapshot` read it."""
        fields: dict[str, Any] = {FieldPath(k).to_api_repr(): v for k, v in data.items()}
        for name in (snapshot.to_dict() or {}).keys() - data.keys():
            fields[FieldPath(name).to_api_repr()] = firestore.DELETE_FIELD
        option = self._db.write_option(last_update_time=snapshot.update_time)
        self._add(snapshot.reference.path, lambda b: b.update(snapshot.reference, fields, option))

    def delete(
        self,
        ref: firestore.DocumentReference,
        as_read: firestore.DocumentSnapshot[Any] | None = None,
    ) -> None:
        """Delete it (with `as_read`: only if it is still as read)."""
        option = None
        if as_read is not None and as_read.update_time is not None:
            option = self._db.write_option(last_update_time=as_read.update_time)
        self._add(ref.path, lambda b: b.delete(ref, option=option))

    def update(self, ref: firestore.DocumentReference, data: dict[str, Any]) -> None:
        self._add(ref.path, lambda b: b.update(ref, data))

    def _add(self, path: str, write: Write) -> None:
        self._writes.append((path, write))
        if len(self._writes) >= BATCH_LIMIT:
            self.flush()

    def flush(self) -> None:
        writes, self._writes = self._writes, []
        if not writes:
            return
        batch = self._db.batch()
        for _, write in writes:
            write(batch)
        try:
            batch.commit()
        except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound):
            for path, write in writes:  # one at a time: what still may be written is
                single = self._db.batch()
                write(single)
                try:
                    single.commit()
                except (gexc.AlreadyExists, gexc.FailedPrecondition, gexc.Conflict, gexc.NotFound):
                    if self._refused is None:
                        raise
                    self._refused(path)


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
    prefer: Prefer = "newest",
) -> Report:
    """Plan, and with `apply` carry out, verify and optionally clean up the migration."""
    if uid is not None and not UID.match(uid):
        raise ValueError(f"not a valid uid: {uid!r}")
    if prefer != "newest" and prefer not in FAMILIES:
        raise ValueError(f"--prefer takes newest or one of {', '.join(FAMILIES)}")
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
    moves, superseded = _resolve_collisions(moves, prefer, report)
    decided = _decide(db, moves, report, on_conflict)
    keys = [_key_decision(keystore, move, on_conflict) for move in plan_keys(db, env_keys, uid)]
    key_conflicts = sum(1 for _, decision, _ in keys if decision == "conflict")
    if on_conflict == "fail" and (report.conflicts or key_conflicts):
        _plan_keys_report(keys, report)
        report.problems.append(
            f"{report.conflicts} conflicts and --on-conflict fail: nothing written"
        )
        return report
    if not apply:
        _plan_keys_report(keys, report)
        return report
    _write(db, decided, keys, report)
    _move_keys(db, keystore, keys, report)
    _verify(db, moves, report)
    if delete_legacy:
        if report.verify_ok:
            _delete_legacy(db, moves, report)
            _delete_superseded(db, superseded, report)
        else:
            report.problems.append("verification failed: legacy documents kept")
    return report


def _write(
    db: firestore.Client, decided: list[Decided], keys: list[KeyPlan], report: Report
) -> None:
    """The documents' moves, each only over what the plan read."""
    refused: list[str] = []
    writer = _Writer(db, refused.append)
    owners = {m.target.parent.parent.id for m, _, _ in decided}
    owners |= {k.uid for k, _, _ in keys if k.keys}
    report.profiles_created = _ensure_profiles(db, writer, owners)
    for move, doc, existing in decided:
        # never over what was written since the plan read it: a copy only where there is
        # still nothing, an overwrite only of the target as read
        if existing.exists:
            writer.replace(existing, doc)
        else:
            writer.create(move.target, doc)
    for owner in sorted({m.target.parent.parent.id for m, _, _ in decided if m.kind == "trade"}):
        # trades arrived behind the profile's count: the pulse counts them afresh
        writer.update(
            paths.user(db, owner),
            {"open_trades": firestore.DELETE_FIELD, "trades_version": firestore.DELETE_FIELD},
        )
    writer.flush()
    families = {m.target.path: m.family for m, _, _ in decided}
    for path in refused:
        if path in families:  # (a profile made meanwhile by the person is theirs: fine)
            report.add(
                families[path],
                "changed since planned",
                f"{path} was written since the plan read it: left as it is; run again",
            )


Prefer = str
"""`newest`, or the name of a source family (`tenants/*/accounts/primary`, ...)."""


def _resolve_collisions(
    moves: list[Move], prefer: Prefer, report: Report
) -> tuple[list[Move], list[tuple[Move, Move]]]:
    """Several sources for one target (the single-user bot wrote `alpacaAccounts/snapshot` and
    `tenants/{t}/accounts/primary` for the same account, say): identical ones are merged, and of
    different ones the preferred family wins, else the newest (`synced_at` / `created_at`).
    Returns the moves to carry out and the (loser, winner) pairs."""
    by_target: dict[str, list[Move]] = defaultdict(list)
    for move in moves:
        by_target[move.target.path].append(move)
    kept: list[Move] = []
    superseded: list[tuple[Move, Move]] = []
    for target, group in by_target.items():
        readable = []
        for move in group:
            try:
                readable.append((move, _content(move)))
            except Malformed:
                kept.append(move)  # reported as malformed by _decide
        if len(readable) < 2:
            kept.extend(m for m, _ in readable)
            continue
        ranked = sorted(
            readable,
            key=lambda pair: (
                pair[0].family == prefer,
                _comparable(pair[1].get("synced_at") or pair[1].get("created_at") or ""),
            ),
            reverse=True,
        )
        winner, winner_doc = ranked[0]
        kept.append(winner)
        for loser, doc in ranked[1:]:
            superseded.append((loser, winner))
            outcome = "merged" if same(doc, winner_doc) else "superseded"
            report.add(loser.family, outcome)
            report.notes.append(
                f"{target}: {loser.source.reference.path} {outcome} into "
                f"{winner.source.reference.path} (--prefer {prefer})"
            )
    return kept, superseded


def _content(move: Move) -> dict[str, Any]:
    """What a source says its target should hold, apart from where it came from."""
    doc = expected_target(move.kind, move.source.reference.path, move.source.to_dict() or {})
    doc.pop("migrated_from")
    return doc


def _delete_superseded(
    db: firestore.Client, superseded: list[tuple[Move, Move]], report: Report
) -> None:
    """A superseded source goes once the winner's target holds exactly what the winner says."""
    writer = _Writer(db)
    for loser, winner in superseded:
        target = winner.target.get()
        expected = expected_target(
            winner.kind, winner.source.reference.path, winner.source.to_dict() or {}
        )
        if target.exists and same(target.to_dict(), expected):
            writer.delete(loser.source.reference)
            report.add(loser.family, "legacy deleted")
    writer.flush()


Decided = tuple[Move, dict[str, Any], firestore.DocumentSnapshot[Any]]
"""A move, what its target is to hold, and the target as the plan read it."""


def _decide(
    db: firestore.Client, moves: list[Move], report: Report, on_conflict: OnConflict
) -> list[Decided]:
    """Which moves write what: new targets, and conflicts only when overwriting."""
    decided = []
    targets = get_by_path(db, [m.target for m in moves])
    for move in moves:
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
            decided.append((move, doc, existing))
        elif same(current, doc):
            report.add(move.family, "unchanged")
        elif on_conflict == "overwrite":
            report.add(move.family, "overwrite")
            decided.append((move, doc, existing))
        else:
            report.add(
                move.family,
                "conflict",
                f"{move.target.path} exists with other content than {move.source.reference.path}",
            )
    return decided


def _ensure_profiles(db: firestore.Client, writer: _Writer, uids: set[str]) -> int:
    created = 0
    refs = [paths.user(db, uid) for uid in sorted(uids) if uid]
    for doc in get_by_path(db, refs).values():
        if not doc.exists:
            writer.create(doc.reference, {"created_at": datetime.now(UTC), "migrated": True})
            created += 1
    return created


KeyDecision = Literal["malformed", "copy", "unchanged", "conflict", "overwrite"]


KeyPlan = tuple[KeyMove, KeyDecision, bytes | None]
"""Keys to move, what to do, and what the person's secret held when that was decided."""


def _stored(keystore: KeyStore, uid: str) -> bytes | None:
    keystore.forget(uid)
    stored = keystore.load(uid, None)
    return None if stored is None else stored.payload()


def _key_decision(keystore: KeyStore, move: KeyMove, on_conflict: OnConflict) -> KeyPlan:
    """Keys the secret already holds are unchanged; other keys in a secret that has some are a
    conflict (the person saved newer ones since), replaced only with `--on-conflict overwrite`."""
    if move.problem or move.keys is None:
        return move, "malformed", None
    seen = _stored(keystore, move.uid)
    if seen is None:
        return move, "copy", seen
    if seen == move.keys.payload():
        return move, "unchanged", seen
    return move, ("overwrite" if on_conflict == "overwrite" else "conflict"), seen


def _key_family(move: KeyMove) -> str:
    return "keys (firestore)" if move.source is not None else "keys (environment)"


def _key_conflict(move: KeyMove) -> str:
    where = move.source.path if move.source is not None else "APCA_API_KEY_ID"
    return (
        f"{where}: the secret alpaca-keys-{move.uid} already holds other keys (saved since); "
        "the secret is kept and the legacy keys left in place (--on-conflict overwrite "
        "replaces them)"
    )


def _plan_keys_report(keys: list[KeyPlan], report: Report) -> None:
    for move, decision, _ in keys:
        family = _key_family(move)
        if decision == "malformed":
            report.add(family, "malformed", move.problem)
        elif decision == "conflict":
            report.add(family, "conflict", _key_conflict(move))
        elif decision == "unchanged" and move.source is not None:
            report.add(family, "delete firestore copy")
        else:
            report.add(family, decision)


def _stored_equal(keystore: KeyStore, move: KeyMove) -> bool:
    keystore.forget(move.uid)
    stored = keystore.load(move.uid, None)
    return stored is not None and move.keys is not None and stored.payload() == move.keys.payload()


def _move_keys(
    db: firestore.Client,
    keystore: KeyStore,
    keys: list[KeyPlan],
    report: Report,
) -> None:
    for move, decision, seen in keys:
        family = _key_family(move)
        if decision == "malformed" or move.keys is None:
            report.add(family, "malformed", move.problem)
            continue
        if decision == "conflict":
            report.add(family, "conflict", _key_conflict(move))
            continue
        if decision != "unchanged" and _stored(keystore, move.uid) != seen:
            # the person saved keys since the plan: theirs are newer, never replaced
            report.add(
                family,
                "changed since planned",
                f"users/{move.uid}: keys were saved since the plan read them: theirs stay",
            )
            continue
        user_ref = paths.user(db, move.uid)
        shown = move.keys.shown()  # the page's keys line, true to the secret
        if decision == "unchanged":
            if keys_version(user_ref.get().to_dict()) is None:
                user_ref.set({"keys_version": 1, **shown}, merge=True)
            else:
                user_ref.set(shown, merge=True)
        else:
            secret_version = keystore.save(move.uid, move.keys)
            user_ref.set(
                {
                    "keys_version": firestore.Increment(1),
                    "keys_secret_version": secret_version,
                    **shown,
                },
                merge=True,
            )
        outcome: str = decision
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
        sources = get_by_path(db, [m.source.reference for m in family_moves])
        targets = get_by_path(db, [m.target for m in family_moves])
        for move in family_moves:
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
    targets = get_by_path(db, [m.target for m in moves])
    for move in moves:
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
    """Remove migrated copies whose legacy source is still there (so nothing is lost), and only
    while they hold what the migration wrote: a copy the product changed since (a trade the
    bot closed, a snapshot a sync rewrote) is kept and reported, as is one changed between
    this read and the delete."""
    report = Report()
    moves, _ = plan(db, uid, tenants or {})
    families = {m.target.path: m.family for m in moves}
    refused: list[str] = []
    writer = _Writer(db, refused.append)
    targets = get_by_path(db, [m.target for m in moves])
    for move in moves:
        target = targets[move.target.path]
        current = target.to_dict() or {} if target.exists else {}
        if current.get("migrated_from") != move.source.reference.path:
            report.add(move.family, "kept")
            continue
        try:
            migrated = expected_target(
                move.kind, move.source.reference.path, move.source.to_dict() or {}
            )
        except Malformed:
            migrated = None
        if migrated is None or not same(current, migrated):
            report.add(
                move.family,
                "changed since migrated",
                f"{move.target.path} changed since it was migrated: kept",
            )
            continue
        writer.delete(move.target, as_read=target)
        report.add(move.family, "copy removed")
    writer.flush()
    for path in refused:
        report.add(families[path], "changed since migrated", f"{path} changed meanwhile: kept")
        report.counts[families[path]]["copy removed"] -= 1
    return report
