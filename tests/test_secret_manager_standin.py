"""The Secret Manager stand-in, driven by google-cloud-secret-manager's own client."""

from __future__ import annotations

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions as gexc
from google.cloud.secretmanager_v1 import SecretManagerServiceClient, types
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from localdev.secret_manager_standin import SecretManagerServer

PARENT = "projects/demo-agenttrader"


@pytest.fixture
def client(secrets: SecretManagerServer) -> SecretManagerServiceClient:
    channel = grpc.insecure_channel(secrets.host)
    return SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))


def create(client: SecretManagerServiceClient, secret_id: str) -> str:
    secret = client.create_secret(
        request={
            "parent": PARENT,
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}},
        }
    )
    return secret.name


def add(client: SecretManagerServiceClient, name: str, data: bytes) -> types.SecretVersion:
    payload = {"data": data, "data_crc32c": google_crc32c.value(data)}
    return client.add_secret_version(request={"parent": name, "payload": payload})


def test_versions_and_latest(client: SecretManagerServiceClient) -> None:
    name = create(client, "alpaca-keys-u1")
    assert name == f"{PARENT}/secrets/alpaca-keys-u1"
    assert add(client, name, b"one").name.endswith("/versions/1")
    assert add(client, name, b"two").name.endswith("/versions/2")
    latest = client.access_secret_version(request={"name": f"{name}/versions/latest"})
    assert latest.payload.data == b"two"
    assert latest.payload.data_crc32c == google_crc32c.value(b"two")
    assert latest.name.endswith("/versions/2")
    first = client.access_secret_version(request={"name": f"{name}/versions/1"})
    assert first.payload.data == b"one"


def test_status_codes(client: SecretManagerServiceClient) -> None:
    name = create(client, "alpaca-keys-u1")
    with pytest.raises(gexc.AlreadyExists):
        create(client, "alpaca-keys-u1")
    with pytest.raises(gexc.NotFound):
        client.access_secret_version(request={"name": f"{name}/versions/latest"})
    with pytest.raises(gexc.NotFound):
        client.access_secret_version(request={"name": f"{PARENT}/secrets/nope/versions/latest"})
    with pytest.raises(gexc.InvalidArgument):
        create(client, "not/a/valid/id")


def test_checksum_mismatch_is_refused(client: SecretManagerServiceClient) -> None:
    name = create(client, "alpaca-keys-u1")
    payload = {"data": b"payload", "data_crc32c": google_crc32c.value(b"other")}
    with pytest.raises(gexc.DataLoss):
        client.add_secret_version(request={"parent": name, "payload": payload})
    with pytest.raises(gexc.NotFound):
        client.access_secret_version(request={"name": f"{name}/versions/latest"})


def test_delete_and_destroyed_versions(client: SecretManagerServiceClient) -> None:
    name = create(client, "alpaca-keys-u1")
    add(client, name, b"one")
    client.destroy_secret_version(request={"name": f"{name}/versions/1"})
    with pytest.raises(gexc.FailedPrecondition):
        client.access_secret_version(request={"name": f"{name}/versions/1"})
    listed = [s.name for s in client.list_secrets(request={"parent": PARENT})]
    assert listed == [name]
    client.delete_secret(request={"name": name})
    with pytest.raises(gexc.NotFound):
        client.delete_secret(request={"name": name})
    assert list(client.list_secrets(request={"parent": PARENT})) == []
