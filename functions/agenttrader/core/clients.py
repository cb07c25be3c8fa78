"""Google clients, created lazily and cached; they work on the emulators with no credentials."""

from __future__ import annotations

import functools
import os

import grpc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.secretmanager_v1 import SecretManagerServiceClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)


def project_id() -> str:
    """The Google Cloud project this instance serves."""
    for name in ("GCLOUD_PROJECT", "GOOGLE_CLOUD_PROJECT"):
        if os.environ.get(name):
            return os.environ[name]
    raise RuntimeError("GCLOUD_PROJECT is not set: export it to the Firebase project id")


@functools.cache
def firestore_client() -> firestore.Client:
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        return firestore.Client(project=project_id(), credentials=credentials)
    return firestore.Client(project=project_id())


@functools.cache
def secret_manager_client() -> SecretManagerServiceClient:
    host = os.environ.get("SECRET_MANAGER_EMULATOR_HOST")
    if host:
        transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(host))
        return SecretManagerServiceClient(transport=transport)
    return SecretManagerServiceClient()
