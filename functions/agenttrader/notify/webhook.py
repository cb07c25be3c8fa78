"""Sending a notification to a person's webhook without letting the URL reach anything it
should not: `https` only (plain `http` only to a loopback address, and only when the caller
allows it, as the demo does), and never to an address that is not public. The host is resolved
here and the connection made to the address that was checked (so a DNS answer that changes
between a check and the connection cannot redirect it); an IPv4 address written as IPv6
(`::ffff:10.0.0.1`), or carried inside an IPv6 address (IPv4-compatible, NAT64, 6to4, Teredo),
is judged as the IPv4 address it carries. An address that is not well formed (a port out of
range, whitespace, a bad host name, an unclosed bracket) is refused in words, never an error.
No redirect is followed; an attempt has one deadline (`DEADLINE_S`): name resolution, the
connection and every read share it, so a receiver that answers a byte at a time cannot hold
an attempt longer. No more than 1 KiB of the answer is read, never shown.

The body is signed: `X-AgentTrader-Signature: t=<unix seconds>,v1=<hex>`, the hex being
HMAC-SHA256 over `<t>.<body>` with the person's signing secret (`signing_secret`), which is
derived from an app secret and their uid (no secret stored per person), and changes when they
rotate it (their `webhook_secret_version`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

TIMEOUT_S = 5.0
"""The longest wait for one step (resolving, connecting, a read)."""
DEADLINE_S = 15.0
"""The longest a whole attempt takes, whatever the receiver does."""
ANSWER_BYTES = 1024
MAX_URL = 2048
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


NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
COMPATIBLE = ipaddress.ip_network("::/96")


def carried(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, whatever the form: mapped (`::ffff:a.b.c.d`),
    IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`), 6to4 (`2002:AABB:CCDD::`) and
    Teredo (its server and its client)."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    found = []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in COMPATIBLE or address in NAT64:
        found.append(low32)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def is_public(address: Address) -> bool:
    """Reachable on the public internet: not private, loopback, link-local (169.254.169.254
    included), unique-local, shared, reserved, unspecified or multicast, and carrying no IPv4
    address that is not (a local-use NAT64 prefix is never public)."""
    plain = unmapped(address)
    if not plain.is_global or plain.is_multicast:
        return False
    if isinstance(plain, ipaddress.IPv6Address) and plain in NAT64_LOCAL:
        return False
    return all(v4.is_global and not v4.is_multicast for v4 in carried(plain) if v4 != plain)


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart, every part checked: what is connected to and sent."""

    scheme: str
    host: str
    """The host name in ASCII (an internationalised name in its IDNA form), or an address."""
    port: int
    explicit_port: bool
    path: str
    """The path and query as sent: ASCII, anything else percent-encoded."""

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if not self.explicit_port else f"{host}:{self.port}"


HOST_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def parse(url: str) -> Target:
    """The URL's parts, or `Refused` saying in words what is wrong with it."""
    if len(url) > MAX_URL:
        raise Refused(f"a webhook URL may be at most {MAX_URL} characters long")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise Refused("a webhook URL cannot contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError:
        raise Refused("this is not a valid URL: check its host name and port") from None
    if parts.scheme not in ("https", "http"):
        raise Refused("a webhook URL must start with https://")
    if not hostname or parts.username is not None or parts.password is not None:
        raise Refused("a webhook URL needs a host name and no user name or password")
    if port == 0:
        raise Refused("the port must be a number from 1 to 65535")
    host = _ascii_host(hostname)
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, port or default, port is not None, path)


def _ascii_host(hostname: str) -> str:
    """The host as connected to: an address as written, or a name in its IDNA form."""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        ascii_name = hostname.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise Refused("the webhook URL's host name is not a valid name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(HOST_LABEL.match(label) for label in labels):
        raise Refused("the webhook URL's host name is not a valid name")
    return ascii_name


def resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


_RESOLVING = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webhook-resolve")


def resolve_within(resolver: Resolver, host: str, port: int, timeout_s: float) -> list[str]:
    """`resolver`'s answer, or `TimeoutError` when it takes longer than `timeout_s` (the
    lookup itself cannot be stopped; it is left to end on its own)."""
    future = _RESOLVING.submit(resolver, host, port)
    try:
        return future.result(timeout=max(timeout_s, 0.0))
    except FutureTimeout:
        raise TimeoutError(f"resolving {host} took longer than {timeout_s:.0f} s") from None


def check_url(url: str, *, allow_loopback_http: bool = False) -> None:
    """What can be said of a URL before it is used: its shape (for a settings form)."""
    target = parse(url)
    address: Address | None
    try:
        address = ipaddress.ip_address(target.host)
    except ValueError:
        address = None  # a name: judged by the address it resolves to, when sent to
    if target.scheme == "http":
        if allow_loopback_http and address is not None and unmapped(address).is_loopback:
            return
        raise Refused("a webhook URL must start with https://")
    if address is not None and not is_public(address):
        raise Refused("a webhook URL must point to a public internet address")


def send(
    url: str,
    body: bytes,
    secret: str,
    *,
    allow_loopback_http: bool = False,
    resolver: Resolver = resolve,
    timeout_s: float = TIMEOUT_S,
    deadline_s: float = DEADLINE_S,
    now: Callable[[], float] = time.time,
) -> Delivery:
    """POST `body` (JSON) to `url`, signed with `secret`, within `deadline_s` in all. Refused
    raises `Refused`; a receiver that cannot be reached, or not within the deadline, raises
    `OSError` (both say nothing of its answer)."""
    ends = time.monotonic() + deadline_s
    target = parse(url)
    host, port = target.host, target.port
    try:
        candidates = [ipaddress.ip_address(host)]
    except ValueError:
        left = min(timeout_s, ends - time.monotonic())
        answers = resolve_within(resolver, host, port, left)
        candidates = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
    if target.scheme == "http":
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
        "Host": target.host_header,
        "Content-Type": "application/json",
        "User-Agent": "AgentTrader-Webhook/1",
        SIGNATURE_HEADER: signature(secret, body, at),
    }
    left = ends - time.monotonic()
    if left <= 0:
        raise TimeoutError("the attempt's deadline passed while resolving")
    connection = _connection(target.scheme, host, address, port, min(timeout_s, left))
    # at the deadline the connection is shut, whatever it is waiting for: a receiver that
    # answers a byte at a time ends here, as one that never answers does
    watchdog = threading.Timer(left, _shut, args=(connection,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        answer = connection.getresponse()
        answer.read(ANSWER_BYTES)  # never more, never shown
        return Delivery(answer.status)  # a redirect (3xx) is not followed: not delivered
    except (http.client.HTTPException, ValueError) as broken:  # cut at the deadline, or garbled
        raise ConnectionError(f"the webhook's answer was cut or garbled: {broken}") from None
    finally:
        watchdog.cancel()
        connection.close()


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
    deadline_s: float = DEADLINE_S,
) -> Attempt:
    """`send`, its outcome sorted the one way both a test send and a delivery tell it: refused,
    unreachable, a redirect, or an answer that did not take it (the answer never shown)."""
    try:
        delivery = send(
            url,
            body,
            secret,
            allow_loopback_http=allow_loopback_http,
            resolver=resolver,
            deadline_s=deadline_s,
        )
    except Refused as refused:
        return Attempt(None, f"not sent: {refused}")
    except OSError:
        return Attempt(
            None,
            "your webhook could not be reached, or did not answer in time",
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
