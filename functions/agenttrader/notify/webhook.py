"""Sending a notification to a person's webhook without letting the URL reach anything it
should not: `https` only (plain `http` only to a loopback address, and only when the caller
allows it, as the demo does), and never to an address that is not public. The host is resolved
here and the connection made to the address that was checked (so a DNS answer that changes
between a check and the connection cannot redirect it); an IPv4 address written as IPv6
(`::ffff:10.0.0.1`) is judged as the IPv4 address it is. No redirect is followed, connecting
and each read time out after 5 s, and no more than 1 KiB of the answer is read, never shown.

The body is signed: `X-AgentTrader-Signature: t=<unix seconds>,v1=<hex>`, the hex being
HMAC-SHA256 over `<t>.<body>` with the person's signing secret (`signing_secret`), which is
derived from an app secret and their uid (no secret stored per person), and changes when they
rotate it (their `webhook_secret_version`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_S = 5.0
ANSWER_BYTES = 1024
SIGNATURE_HEADER = "X-AgentTrader-Signature"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class Refused(Exception):
    """The URL may not be sent to; the message says why, in words."""


@dataclass(frozen=True)
class Delivery:
    """What the receiver answered: its status, and whether that counts as delivered (2xx)."""

    status: int

    @property
    def delivered(self) -> bool:
        return 200 <= self.status < 300


def signing_secret(app_secret: str, uid: str, version: int = 0) -> str:
    """The person's signing secret: derived, never stored; a new `version` rotates it."""
    message = f"webhook:{uid}:{version}".encode()
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


def secret_version(settings: Mapping[str, Any]) -> int:
    """The version of the person's signing secret in their notification settings (0: never
    rotated)."""
    version = settings.get("webhook_secret_version")
    return version if isinstance(version, int) else 0


def signature(secret: str, body: bytes, at: int) -> str:
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def unmapped(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: Address) -> bool:
    """Reachable on the public internet: not private, loopback, link-local (169.254.169.254
    included), unique-local, shared, reserved, unspecified or multicast."""
    plain = unmapped(address)
    return plain.is_global and not plain.is_multicast


def resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def check_url(url: str, *, allow_loopback_http: bool = False) -> None:
    """What can be said of a URL before it is used: its shape (for a settings form)."""
    parts = urlsplit(url)
    if allow_loopback_http and parts.scheme == "http" and parts.hostname:
        try:
            if unmapped(ipaddress.ip_address(parts.hostname)).is_loopback:
                return
        except ValueError:
            pass
    if parts.scheme != "https":
        raise Refused("a webhook URL must start with https://")
    if not parts.hostname or parts.username or parts.password:
        raise Refused("a webhook URL needs a host name and no user name or password")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return  # a name: judged by the address it resolves to, when sent to
    if not is_public(address):
        raise Refused("a webhook URL must point to a public internet address")


def send(
    url: str,
    body: bytes,
    secret: str,
    *,
    allow_loopback_http: bool = False,
    resolver: Resolver = resolve,
    timeout_s: float = TIMEOUT_S,
    now: Callable[[], float] = time.time,
) -> Delivery:
    """POST `body` (JSON) to `url`, signed with `secret`. Refused raises `Refused`; a receiver
    that cannot be reached raises `OSError` (both say nothing of its answer)."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        raise Refused("a webhook URL must start with https:// and name a host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        candidates = [ipaddress.ip_address(host)]
    except ValueError:
        candidates = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
    if parts.scheme == "http":
        allowed = [a for a in candidates if allow_loopback_http and unmapped(a).is_loopback]
        if not allowed:
            raise Refused("a webhook URL must start with https://")
    else:
        allowed = [a for a in candidates if is_public(a)]
        if not allowed:
            raise Refused("a webhook URL must point to a public internet address")
    address = str(allowed[0])
    at = int(now())
    headers = {
        "Host": host if parts.port is None else f"{host}:{parts.port}",
        "Content-Type": "application/json",
        "User-Agent": "AgentTrader-Webhook/1",
        SIGNATURE_HEADER: signature(secret, body, at),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _connection(parts.scheme, host, address, port, timeout_s)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read(ANSWER_BYTES)  # never more, never shown
        return Delivery(answer.status)  # a redirect (3xx) is not followed: not delivered
    finally:
        connection.close()


@dataclass(frozen=True)
class Attempt:
    """One send as the person is told of it: delivered, or why not and what they can do."""

    status: int | None
    """What the receiver answered; None when nothing was sent or it could not be reached."""
    problem: str | None = None
    """Why it was not delivered, in words (None: delivered)."""
    advice: str = ""
    """What the person can do about it."""
    unreachable: bool = False
    """The receiver could not be reached (worth trying later, unlike a refusal)."""

    @property
    def delivered(self) -> bool:
        return self.problem is None


def attempt(
    url: str,
    body: bytes,
    secret: str,
    *,
    allow_loopback_http: bool = False,
    resolver: Resolver = resolve,
) -> Attempt:
    """`send`, its outcome sorted the one way both a test send and a delivery tell it: refused,
    unreachable, a redirect, or an answer that did not take it (the answer never shown)."""
    try:
        delivery = send(
            url, body, secret, allow_loopback_http=allow_loopback_http, resolver=resolver
        )
    except Refused as refused:
        return Attempt(None, f"not sent: {refused}")
    except OSError:
        return Attempt(
            None,
            "your webhook could not be reached within 5 seconds",
            "check the URL and that it accepts POST requests",
            unreachable=True,
        )
    if delivery.delivered:
        return Attempt(delivery.status)
    if 300 <= delivery.status < 400:
        return Attempt(
            delivery.status,
            "your webhook answered with a redirect, which is never followed",
            "use the address it redirects to",
        )
    return Attempt(
        delivery.status,
        "your webhook answered that it did not take the notification",
        "check the URL and the receiving service",
    )


def _connection(
    scheme: str, host: str, address: str, port: int, timeout_s: float
) -> http.client.HTTPConnection:
    """A connection to the checked `address`, its TLS checked against the URL's host name."""
    if scheme == "http":
        return http.client.HTTPConnection(address, port, timeout=timeout_s)
    context = ssl.create_default_context()

    class Pinned(http.client.HTTPSConnection):
        def connect(self) -> None:
            raw = socket.create_connection((address, port), timeout=timeout_s)
            self.sock = context.wrap_socket(raw, server_hostname=host)

    return Pinned(host, port, timeout=timeout_s, context=context)
