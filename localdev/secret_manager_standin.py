"""A local Secret Manager: a gRPC server for the RPCs the product uses.

It speaks `google.cloud.secretmanager.v1.SecretManagerService` with the client library's own
message types, so `SecretManagerServiceClient` on an insecure channel talks to it unchanged.
Status codes follow the real service: NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, DATA_LOSS
(payload checksum mismatch), FAILED_PRECONDITION (a destroyed version).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import types
from google.protobuf import empty_pb2, timestamp_pb2

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PROJECT = re.compile(r"^projects/([^/]+)$")
_SECRET = re.compile(r"^projects/([^/]+)/secrets/([^/]+)$")
_VERSION = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Version:
    number: int
    data: bytes
    created: timestamp_pb2.Timestamp
    state: types.SecretVersion.State = types.SecretVersion.State.ENABLED


@dataclass
class _Secret:
    name: str
    created: timestamp_pb2.Timestamp
    labels: dict[str, str]
    versions: list[_Version] = field(default_factory=list)


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


class SecretStore:
    """The server's state and the semantics of each RPC, independent of gRPC."""

    def __init__(self, latency_s: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self.latency_s = latency_s
        self.calls: Counter[str] = Counter()
        self.failing: dict[str, grpc.StatusCode] = {}
        """Secrets (by name) every request about which fails with the given code, as Secret
        Manager answers when it is unavailable (UNAVAILABLE) or refuses (PERMISSION_DENIED)."""

    def reset(self) -> None:
        with self._lock:
            self._secrets.clear()
            self.calls.clear()
            self.failing.clear()

    # -- helpers -------------------------------------------------------------------------------
    def _secret(self, name: str) -> _Secret:
        if not _SECRET.match(name):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource field value: {name}")
        secret = self._secrets.get(name)
        if secret is None:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found.")
        return secret

    def _version(self, name: str) -> tuple[_Secret, _Version]:
        match = _VERSION.match(name)
        if not match:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid resource field value: {name}")
        secret = self._secret(name.rsplit("/versions/", 1)[0])
        wanted = match.group(3)
        if wanted == "latest":
            enabled = [v for v in secret.versions if v.state == types.SecretVersion.State.ENABLED]
            if not enabled:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
            return secret, enabled[-1]
        if not wanted.isdigit() or not 1 <= int(wanted) <= len(secret.versions):
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, secret.versions[int(wanted) - 1]

    @staticmethod
    def _secret_message(secret: _Secret) -> types.Secret:
        return types.Secret(
            name=secret.name,
            create_time=secret.created,
            labels=secret.labels,
            replication=types.Replication(automatic=types.Replication.Automatic()),
        )

    @staticmethod
    def _version_message(secret: _Secret, version: _Version) -> types.SecretVersion:
        return types.SecretVersion(
            name=f"{secret.name}/versions/{version.number}",
            create_time=version.created,
            state=version.state,
        )

    # -- RPCs ----------------------------------------------------------------------------------
    def create_secret(self, request: types.CreateSecretRequest) -> types.Secret:
        if not _PROJECT.match(request.parent):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"Invalid parent: {request.parent}")
        if not _SECRET_ID.match(request.secret_id):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"Invalid secret_id: {request.secret_id}"
            )
        name = f"{request.parent}/secrets/{request.secret_id}"
        with self._lock:
            if name in self._secrets:
                raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            secret = _Secret(name=name, created=_now(), labels=dict(request.secret.labels))
            self._secrets[name] = secret
            return self._secret_message(secret)

    def get_secret(self, request: types.GetSecretRequest) -> types.Secret:
        with self._lock:
            return self._secret_message(self._secret(request.name))

    def delete_secret(self, request: types.DeleteSecretRequest) -> empty_pb2.Empty:
        with self._lock:
            self._secret(request.name)
            del self._secrets[request.name]
        return empty_pb2.Empty()

    def list_secrets(self, request: types.ListSecretsRequest) -> types.ListSecretsResponse:
        prefix = f"{request.parent}/secrets/"
        with self._lock:
            found = [
                self._secret_message(s)
                for n, s in sorted(self._secrets.items())
                if n.startswith(prefix)
            ]
        return types.ListSecretsResponse(secrets=found, total_size=len(found))

    def add_secret_version(self, request: types.AddSecretVersionRequest) -> types.SecretVersion:
        data = request.payload.data
        if "data_crc32c" in request.payload and request.payload.data_crc32c != google_crc32c.value(
            data
        ):
            raise _Abort(grpc.StatusCode.DATA_LOSS, "Checksum mismatch: payload.data_crc32c")
        if len(data) > 64 * 1024:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Secret payload data exceeds 65536 bytes."
            )
        with self._lock:
            secret = self._secret(request.parent)
            version = _Version(number=len(secret.versions) + 1, data=data, created=_now())
            secret.versions.append(version)
            return self._version_message(secret, version)

    def access_secret_version(
        self, request: types.AccessSecretVersionRequest
    ) -> types.AccessSecretVersionResponse:
        with self._lock:
            secret, version = self._version(request.name)
            if version.state != types.SecretVersion.State.ENABLED:
                raise _Abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Secret Version [{request.name}] is in {version.state.name} state.",
                )
            return types.AccessSecretVersionResponse(
                name=f"{secret.name}/versions/{version.number}",
                payload=types.SecretPayload(
                    data=version.data, data_crc32c=google_crc32c.value(version.data)
                ),
            )

    def list_secret_versions(
        self, request: types.ListSecretVersionsRequest
    ) -> types.ListSecretVersionsResponse:
        """The secret's versions, newest first; `filter` may be `state:ENABLED` (or another
        state), as Secret Manager's list filter takes it."""
        wanted = request.filter.strip()
        with self._lock:
            secret = self._secret(request.parent)
            found = [
                self._version_message(secret, v)
                for v in reversed(secret.versions)
                if not wanted or wanted.lower() == f"state:{v.state.name}".lower()
            ]
            return types.ListSecretVersionsResponse(versions=found, total_size=len(found))

    def destroy_secret_version(
        self, request: types.DestroySecretVersionRequest
    ) -> types.SecretVersion:
        with self._lock:
            secret, version = self._version(request.name)
            version.state = types.SecretVersion.State.DESTROYED
            version.data = b""
            return self._version_message(secret, version)

    def handlers(self) -> dict[str, tuple[Callable[[Any], Any], Any, Any]]:
        """Method name -> (implementation, request type, response serializer)."""
        return {
            "CreateSecret": (self.create_secret, types.CreateSecretRequest, types.Secret.serialize),
            "GetSecret": (self.get_secret, types.GetSecretRequest, types.Secret.serialize),
            "DeleteSecret": (
                self.delete_secret,
                types.DeleteSecretRequest,
                empty_pb2.Empty.SerializeToString,
            ),
            "ListSecrets": (
                self.list_secrets,
                types.ListSecretsRequest,
                types.ListSecretsResponse.serialize,
            ),
            "AddSecretVersion": (
                self.add_secret_version,
                types.AddSecretVersionRequest,
                types.SecretVersion.serialize,
            ),
            "AccessSecretVersion": (
                self.access_secret_version,
                types.AccessSecretVersionRequest,
                types.AccessSecretVersionResponse.serialize,
            ),
            "ListSecretVersions": (
                self.list_secret_versions,
                types.ListSecretVersionsRequest,
                types.ListSecretVersionsResponse.serialize,
            ),
            "DestroySecretVersion": (
                self.destroy_secret_version,
                types.DestroySecretVersionRequest,
                types.SecretVersion.serialize,
            ),
        }


def _unary(
    store: SecretStore, method: str, impl: Callable[[Any], Any], request_type: Any, serializer: Any
) -> grpc.RpcMethodHandler:
    def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
        store.calls[method] += 1
        if store.latency_s:
            time.sleep(store.latency_s)
        failing = store.failing.get(_secret_named(request))
        if failing is not None:
            context.abort(failing, "The service is currently unavailable.")
        try:
            return impl(request)
        except _Abort as abort:
            context.abort(abort.code, abort.message)

    return grpc.unary_unary_rpc_method_handler(
        behaviour, request_deserializer=request_type.deserialize, response_serializer=serializer
    )


def _secret_named(request: Any) -> str:
    """The secret a request is about (`projects/*/secrets/*`), or "" for the project."""
    fields = type(request).pb(request).DESCRIPTOR.fields_by_name
    if "secret_id" in fields:
        return f"{request.parent}/secrets/{request.secret_id}"
    name = request.name if "name" in fields else request.parent
    return str(name).split("/versions/", 1)[0]


class SecretManagerServer:
    """Runs a SecretStore behind a gRPC server on 127.0.0.1:port (0 picks a free port)."""

    def __init__(self, port: int = 0, latency_s: float = 0.0, max_workers: int = 64) -> None:
        self.store = SecretStore(latency_s=latency_s)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
        handlers = {
            name: _unary(self.store, name, impl, req, ser)
            for name, (impl, req, ser) in self.store.handlers().items()
        }
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, handlers),)
        )
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")
        if self.port == 0:
            raise OSError(f"Secret Manager stand-in could not bind 127.0.0.1:{port} (in use?)")

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> SecretManagerServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def wait(self) -> None:
        self._server.wait_for_termination()
