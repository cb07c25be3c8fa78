"""Each user's Alpaca keys in Secret Manager: one secret `alpaca-keys-{uid}` per user.

Reads are cached per instance for a bounded time and keyed by the user's `keys_version`, so a
pulse does not touch Secret Manager for every user every minute, and a key change is seen at
once. Keys never leave this module except as `AlpacaKeys`, whose secret does not print.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import google_crc32c
import grpc
from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.api_core import gapic_v1, retry
from google.cloud.secretmanager_v1 import SecretManagerServiceClient, types
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from agenttrader.core.errors import AgentTraderError, ErrorCode

UID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
SECRET_ID = re.compile(r"[A-Za-z0-9_-]{1,255}")
"""What Secret Manager accepts as a secret id."""


class AlpacaKeys(BaseModel):
    """A user's Alpaca credential, of either kind, and which environment it belongs to: an API
    key pair they pasted, or an OAuth token Alpaca gave for them through Connect with Alpaca.
    Whoever uses it need not know which."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str | None = Field(
        default=None, min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$"
    )
    secret_key: SecretStr | None = Field(default=None, min_length=8, max_length=128)
    oauth_token: SecretStr | None = Field(default=None, min_length=8, max_length=512)
    scope: str | None = Field(default=None, max_length=200)
    paper: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> AlpacaKeys:
        pair = self.key_id is not None and self.secret_key is not None
        if pair == (self.oauth_token is not None) or (
            self.oauth_token is None and (self.key_id is None or self.secret_key is None)
        ):
            raise ValueError("either key_id and secret_key, or oauth_token")
        return self

    @property
    def is_oauth(self) -> bool:
        return self.oauth_token is not None

    def payload(self) -> bytes:
        """The JSON stored as a secret version: {"key_id", "secret_key", "paper"} or
        {"oauth_token", "paper", "scope"}."""
        body: dict[str, object]
        if self.oauth_token is not None:
            body = {
                "oauth_token": self.oauth_token.get_secret_value(),
                "paper": self.paper,
                "scope": self.scope or "",
            }
        else:
            assert self.secret_key is not None
            body = {
                "key_id": self.key_id,
                "secret_key": self.secret_key.get_secret_value(),
                "paper": self.paper,
            }
        return json.dumps(body).encode()

    def shown(self) -> dict[str, Any]:
        """What the person's profile shows of this credential (`key_id_masked`, `keys_paper`):
        written by every path that stores one, never the key itself."""
        return {"key_id_masked": self.masked_key_id(), "keys_paper": self.paper}

    @property
    def may_trade(self) -> bool:
        """Orders may be sent with it: keys always; a Connect with Alpaca token only with the
        `trading` scope (or with no scope recorded, as tokens stored before scopes were)."""
        scope = (self.scope or "").split()
        return self.oauth_token is None or not scope or "trading" in scope

    def masked_key_id(self) -> str:
        """What a person is shown of their credential: never the secret part."""
        if self.key_id is None:
            return "connected with Alpaca"
        return f"{self.key_id[:4]}{'*' * max(len(self.key_id) - 8, 4)}{self.key_id[-4:]}"


class KeyStoreError(AgentTraderError):
    """Secret Manager failed or holds something unreadable; `code` says which."""


@dataclass
class _Cached:
    version: int | None
    keys: AlpacaKeys | None
    expires_at: float


class _NotRead(Exception):
    """A read ahead that failed: whoever waited for it reads the keys themselves."""


@dataclass(frozen=True)
class _Loading:
    """A read of one person's keys under way, which loads of the same keys wait for."""

    version: int | None
    future: Future[AlpacaKeys | None]
    started: float
    mine: bool
    """This caller reads them (False: another does, and this one waits)."""


ACCESS_RETRY = retry.Retry(
    initial=0.25,
    maximum=2.0,
    multiplier=2.0,
    timeout=5.0,
    predicate=retry.if_exception_type(gexc.ResourceExhausted, gexc.ServiceUnavailable),
)
"""A read of keys tried again for at most 5 s (the client's own default is 60 s, longer than a
person's sync may take); past that the person's sync fails with SECRET_UNAVAILABLE and the
next run reads again."""
CALL_TIMEOUT_S = 10.0
"""One Secret Manager request."""

PREFETCH_AT_ONCE = 64
"""Accesses in flight at once when keys are read ahead of a run."""

KEY_CACHE_S = 3600.0
"""How long an instance keeps a person's keys. A change of keys is seen at once all the same
(the cache is keyed by `keys_version`); this only bounds how long keys live in memory."""


def version_number(name: str) -> int:
    """The number at the end of a secret version's name (`.../versions/7`)."""
    return int(name.rsplit("/", 1)[1])


class KeyStore:
    """Reads, saves and removes users' keys; caches reads for `ttl_s` per keys_version."""

    def __init__(
        self,
        client: SecretManagerServiceClient,
        project: str,
        ttl_s: float = KEY_CACHE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._project = project
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._loading: dict[str, _Loading] = {}
        self.accesses = 0

    def secret_name(self, uid: str) -> str:
        if not UID.match(uid):
            raise ValueError(f"not a valid uid: {uid!r}")
        return f"projects/{self._project}/secrets/alpaca-keys-{uid}"

    def _hit(self, uid: str, keys_version: int | None, now: float) -> _Cached | None:
        """The cached keys of this version, while they last (call with the lock held)."""
        hit = self._cache.get(uid)
        return hit if hit and hit.version == keys_version and hit.expires_at > now else None

    def knows(self, uid: str, keys_version: int | None) -> bool:
        """Whether `load` would answer from the cache."""
        with self._lock:
            return self._hit(uid, keys_version, self._clock()) is not None

    def load(self, uid: str, keys_version: int | None) -> AlpacaKeys | None:
        """The user's keys, or None when they have none. Cached while keys_version is the same;
        loads of the same keys at once (a fetch ahead of a sync, and the sync) share one
        access and its outcome."""
        known, answer = self._claim(uid, keys_version)
        if answer is None:
            return known
        if not answer.mine:
            try:
                return answer.future.result()
            except _NotRead:  # the read ahead failed: read them now, as a load does
                return self.load(uid, keys_version)
        try:
            keys = self._access(uid)
        except BaseException as error:
            self._settle(uid, answer, error=error)
            raise
        self._settle(uid, answer, keys=keys)
        return keys

    def prefetch(self, wanted: Iterable[tuple[str, int | None]]) -> int:
        """Read these people's keys into the cache ahead of their syncs: up to
        `PREFETCH_AT_ONCE` accesses in flight on the client's one channel, where a thread
        each would spend most of a new instance's first run handing the interpreter between
        threads. Keys already cached or being read are skipped; a read that fails is made
        again by the person's own `load`, with its retries. Returns how many were read. Needs
        the client's gRPC transport (a client without it raises here, before anyone's keys
        are claimed, and each sync reads its own)."""
        submit: Any = self._client.transport.access_secret_version.future  # type: ignore[attr-defined]
        in_flight: deque[tuple[str, _Loading, Any]] = deque()
        read = 0
        try:
            for uid, version in wanted:
                _, answer = self._claim(uid, version)
                if answer is None or not answer.mine:
                    continue
                name = self._latest(uid)
                routing = gapic_v1.routing_header.to_grpc_metadata((("name", name),))  # type: ignore[no-untyped-call]
                with self._lock:
                    self.accesses += 1
                read += 1
                try:
                    pending = submit(
                        types.AccessSecretVersionRequest(name=name),
                        timeout=CALL_TIMEOUT_S,
                        metadata=[routing],
                    )
                except Exception:  # noqa: BLE001 - left to the person's own load
                    self._settle(uid, answer, error=_NotRead())
                    continue
                in_flight.append((uid, answer, pending))
                if len(in_flight) >= PREFETCH_AT_ONCE:
                    self._receive(*in_flight.popleft())
        finally:  # every claim settled, so no load waits for one forever
            while in_flight:
                self._receive(*in_flight.popleft())
        return read

    def _receive(self, uid: str, answer: _Loading, pending: Any) -> None:
        """Settle a prefetched access: its keys, None (no secret), or nothing learned, which
        the person's own `load` reads again (never raises)."""
        try:
            keys = self._parsed(uid, pending.result())
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                self._settle(uid, answer, keys=None)
            else:
                self._settle(uid, answer, error=_NotRead())
        except Exception:  # noqa: BLE001 - left to the person's own load
            self._settle(uid, answer, error=_NotRead())
        else:
            self._settle(uid, answer, keys=keys)

    def _claim(
        self, uid: str, keys_version: int | None
    ) -> tuple[AlpacaKeys | None, _Loading | None]:
        """The cached keys (and no claim), or the load of them under way: this caller's to
        do (`mine`) or another's to wait for."""
        now = self._clock()
        with self._lock:
            hit = self._hit(uid, keys_version, now)
            if hit is not None:
                return hit.keys, None
            loading = self._loading.get(uid)
            if loading is not None and loading.version == keys_version:
                return None, _Loading(keys_version, loading.future, now, mine=False)
            loading = _Loading(keys_version, Future(), now, mine=True)
            self._loading[uid] = loading
            return None, loading

    def _settle(
        self,
        uid: str,
        answer: _Loading,
        keys: AlpacaKeys | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Cache what a load found (not an error) and hand it to whoever waits for it."""
        with self._lock:
            if error is None:
                self._cache[uid] = _Cached(answer.version, keys, answer.started + self._ttl_s)
            current = self._loading.get(uid)
            if current is not None and current.future is answer.future:
                del self._loading[uid]
        if error is None:
            answer.future.set_result(keys)
        else:
            answer.future.set_exception(error)

    def _latest(self, uid: str) -> str:
        return f"{self.secret_name(uid)}/versions/latest"

    def _access(self, uid: str, name: str | None = None) -> AlpacaKeys | None:
        with self._lock:
            self.accesses += 1
        try:
            response = self._client.access_secret_version(
                request={"name": name or self._latest(uid)},
                retry=ACCESS_RETRY,
                timeout=CALL_TIMEOUT_S,
            )
        except gexc.NotFound:
            return None
        except (gexc.GoogleAPICallError, gexc.RetryError) as error:
            logger.warn("keystore.unavailable", uid=uid, error=str(error))
            raise KeyStoreError(
                ErrorCode.SECRET_UNAVAILABLE, "your keys could not be read right now; try again"
            ) from None
        return self._parsed(uid, response)

    def load_named(self, secret_id: str) -> AlpacaKeys | None:
        """The keys in the secret `secret_id` (same form as a person's; None when there is no
        such secret): the operator's own key pair, with which what is the same for everyone
        (the market clock) is asked, or a token waiting to be revoked. Not cached."""
        return self._access(f"secret:{secret_id}", f"{self._named(secret_id)}/versions/latest")

    def save_named(self, secret_id: str, keys: AlpacaKeys) -> None:
        """Store keys in a secret of their own (created on first use)."""
        refusal = "Secret Manager did not take them; try again"
        self._add_version(self._named(secret_id), keys, refusal, secret=secret_id)

    def delete_named(self, secret_id: str) -> bool:
        """Delete a secret of its own; False when there was none."""
        return self._delete_secret(self._named(secret_id))

    def _named(self, secret_id: str) -> str:
        if not SECRET_ID.fullmatch(secret_id):
            raise ValueError(f"not a valid secret id: {secret_id!r}")
        return f"projects/{self._project}/secrets/{secret_id}"

    @staticmethod
    def _parsed(uid: str, response: types.AccessSecretVersionResponse) -> AlpacaKeys:
        data = response.payload.data
        if response.payload.data_crc32c != google_crc32c.value(data):
            raise KeyStoreError(
                ErrorCode.SECRET_CORRUPT, "Secret Manager payload failed its checksum"
            )
        try:
            return AlpacaKeys.model_validate_json(data)
        except ValidationError:
            raise KeyStoreError(
                ErrorCode.SECRET_UNREADABLE, "the stored Alpaca keys are not valid; save them again"
            ) from None

    def save(self, uid: str, keys: AlpacaKeys) -> int:
        """Store keys as a new version of the user's secret, creating the secret on first use,
        and return the version's number (a later save has a higher one). When Secret Manager
        does not take them, raises SECRET_UNAVAILABLE and the keys in use stay as they were."""
        name = self.secret_name(uid)
        added = self._add_version(
            name,
            keys,
            "your keys could not be stored right now; nothing changed; try again",
            uid=uid,
        )
        self.forget(uid)
        self.retire_older(uid, added)
        return version_number(added)

    def _add_version(self, name: str, keys: AlpacaKeys, refusal: str, **log: str) -> str:
        """Store `keys` as a new version of the secret `name` (created on first use) and
        return the version's name; SECRET_UNAVAILABLE with `refusal` when Secret Manager does
        not take them (nothing changed)."""
        data = keys.payload()
        payload = types.SecretPayload(data=data, data_crc32c=google_crc32c.value(data))
        try:
            self._create_secret(name)
            added = self._client.add_secret_version(
                request={"parent": name, "payload": payload}, timeout=CALL_TIMEOUT_S
            )
        except gexc.GoogleAPICallError as error:
            logger.warn("keystore.not_saved", error=str(error), **log)
            raise KeyStoreError(ErrorCode.SECRET_UNAVAILABLE, refusal) from None
        return str(added.name)

    def _delete_secret(self, name: str) -> bool:
        """Delete the secret `name` and every version; False when there was none."""
        try:
            self._client.delete_secret(request={"name": name}, timeout=CALL_TIMEOUT_S)
            return True
        except gexc.NotFound:
            return False

    def _create_secret(self, name: str) -> None:
        try:
            self._client.create_secret(
                request={
                    "parent": f"projects/{self._project}",
                    "secret_id": name.rsplit("/", 1)[1],
                    "secret": {
                        "replication": {"automatic": {}},
                        "labels": {"app": "agenttrader", "kind": "alpaca-keys"},
                    },
                },
                timeout=CALL_TIMEOUT_S,
            )
        except gexc.AlreadyExists:
            pass

    def retire_older(self, uid: str, keep: str, attempts: int = 3) -> int:
        """Destroy every version of the person's secret older than `keep` (the one just
        stored): one live credential, and one version billed a month. A newer version (a save
        that overlapped this one) is never touched: of overlapping saves the newest stays.
        Tried `attempts` times; a failure is logged and left for the next save. Returns how
        many went."""
        name = self.secret_name(uid)
        kept = version_number(keep)
        for attempt in range(attempts):
            try:
                retired = 0
                listed = self._client.list_secret_versions(
                    request={"parent": name, "filter": "state:ENABLED"}, timeout=CALL_TIMEOUT_S
                )
                for version in listed:
                    if version_number(version.name) < kept:
                        self._client.destroy_secret_version(
                            request={"name": version.name}, timeout=CALL_TIMEOUT_S
                        )
                        retired += 1
                return retired
            except gexc.GoogleAPICallError as error:
                logger.warn(
                    "keystore.versions_not_retired",
                    uid=uid,
                    attempt=attempt + 1,
                    error=type(error).__name__,
                )
        return 0

    def delete(self, uid: str) -> bool:
        """Delete the user's secret and every version; False when there was none."""
        try:
            return self._delete_secret(self.secret_name(uid))
        finally:
            self.forget(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._cache.pop(uid, None)
