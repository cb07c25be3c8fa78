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
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import google_crc32c
from firebase_functions import logger
from google.api_core import exceptions as gexc
from google.cloud.secretmanager_v1 import SecretManagerServiceClient, types
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from agenttrader.core.errors import AgentTraderError, ErrorCode

UID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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


KEY_CACHE_S = 3600.0
"""How long an instance keeps a person's keys. A change of keys is seen at once all the same
(the cache is keyed by `keys_version`); this only bounds how long keys live in memory."""


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
        self._loading: dict[str, tuple[int | None, Future[AlpacaKeys | None]]] = {}
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
        now = self._clock()
        with self._lock:
            hit = self._hit(uid, keys_version, now)
            if hit is not None:
                return hit.keys
            loading = self._loading.get(uid)
            mine = loading is None or loading[0] != keys_version
            if mine:
                loading = (keys_version, Future())
                self._loading[uid] = loading
        assert loading is not None
        answer: Future[AlpacaKeys | None] = loading[1]
        if not mine:
            return answer.result()
        try:
            keys = self._access(uid)
        except BaseException as error:
            answer.set_exception(error)
            raise
        else:
            with self._lock:
                self._cache[uid] = _Cached(keys_version, keys, now + self._ttl_s)
            answer.set_result(keys)
            return keys
        finally:
            with self._lock:
                if self._loading.get(uid) is loading:
                    del self._loading[uid]

    def _access(self, uid: str) -> AlpacaKeys | None:
        name = f"{self.secret_name(uid)}/versions/latest"
        with self._lock:
            self.accesses += 1
        try:
            response = self._client.access_secret_version(request={"name": name}, timeout=10)
        except gexc.NotFound:
            return None
        except gexc.GoogleAPICallError as error:
            logger.warn("keystore.unavailable", uid=uid, error=str(error.message))
            raise KeyStoreError(
                ErrorCode.SECRET_UNAVAILABLE, "your keys could not be read right now; try again"
            ) from None
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

    def save(self, uid: str, keys: AlpacaKeys) -> None:
        """Store keys as a new version of the user's secret, creating the secret on first use."""
        name = self.secret_name(uid)
        secret_id = name.rsplit("/", 1)[1]
        try:
            self._client.create_secret(
                request={
                    "parent": f"projects/{self._project}",
                    "secret_id": secret_id,
                    "secret": {
                        "replication": {"automatic": {}},
                        "labels": {"app": "agenttrader", "kind": "alpaca-keys"},
                    },
                },
                timeout=10,
            )
        except gexc.AlreadyExists:
            pass
        data = keys.payload()
        payload = types.SecretPayload(data=data, data_crc32c=google_crc32c.value(data))
        added = self._client.add_secret_version(
            request={"parent": name, "payload": payload}, timeout=10
        )
        self.forget(uid)
        self.retire_older(uid, str(added.name))

    def retire_older(self, uid: str, keep: str, attempts: int = 3) -> int:
        """Destroy every version of the person's secret but `keep` (the one just stored): one
        live credential, and one version billed a month. Tried `attempts` times; a failure is
        logged and left for the next save, and never touches `keep`. Returns how many went."""
        name = self.secret_name(uid)
        for attempt in range(attempts):
            try:
                retired = 0
                listed = self._client.list_secret_versions(
                    request={"parent": name, "filter": "state:ENABLED"}, timeout=10
                )
                for version in listed:
                    if version.name != keep:
                        self._client.destroy_secret_version(
                            request={"name": version.name}, timeout=10
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
            self._client.delete_secret(request={"name": self.secret_name(uid)}, timeout=10)
            return True
        except gexc.NotFound:
            return False
        finally:
            self.forget(uid)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._cache.pop(uid, None)
