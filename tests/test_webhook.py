"""The webhook sender: signed bodies, https only, never to an address that is not public (each
refused class), checked on the address actually connected to, no redirects, a timeout."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agenttrader.notify import webhook
from agenttrader.notify.webhook import Refused, check_url, send, signing_secret
from localdev.webhook_receiver import Behaviour, WebhookReceiver

SECRET = signing_secret("app-secret", "alice")
BODY = json.dumps({"text": "Your shadow trade bought 3 AAPL at $100.00."}).encode()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    running = WebhookReceiver(SECRET)
    yield running
    running.stop()


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connection attempt is recorded and fails: a refused URL makes none."""
    tried: list[Any] = []

    def refuse(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        tried.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(webhook.socket, "create_connection", refuse)
    return tried


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://10.0.0.1/hook", "private 10/8"),
        ("https://172.16.5.4/hook", "private 172.16/12"),
        ("https://192.168.1.1/hook", "private 192.168/16"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local (cloud metadata)"),
        ("https://100.64.0.1/hook", "shared address space"),
        ("https://0.0.0.0/hook", "unspecified"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://[::1]/hook", "IPv6 loopback"),
        ("https://[fc00::1]/hook", "IPv6 unique-local"),
        ("https://[fe80::1]/hook", "IPv6 link-local"),
        ("https://[::ffff:10.0.0.1]/hook", "IPv4-mapped private"),
        ("https://[::ffff:127.0.0.1]/hook", "IPv4-mapped loopback"),
        ("https://[::ffff:169.254.169.254]/hook", "IPv4-mapped link-local"),
        ("https://[::a9fe:a9fe]/hook", "IPv4-compatible link-local"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "NAT64 of link-local"),
        ("https://[64:ff9b:1::a9fe:a9fe]/hook", "local-use NAT64"),
        ("https://[2002:a9fe:a9fe::]/hook", "6to4 of link-local"),
        ("https://[2002:0a00:0001::1]/hook", "6to4 of private"),
        ("https://[2001:0:4136:e378:8000:63bf:5601:5601]/hook", "Teredo client link-local"),
    ],
)
def test_an_address_that_is_not_public_is_refused_before_any_connection(
    url: str, kind: str, no_connection: list[Any]
) -> None:
    with pytest.raises(Refused, match="public internet address"):
        send(url, BODY, SECRET)
    with pytest.raises(Refused):
        check_url(url)
    assert no_connection == [], kind


def test_a_name_is_judged_by_the_address_it_resolves_to(no_connection: list[Any]) -> None:
    with pytest.raises(Refused):
        send("https://hooks.example.com/x", BODY, SECRET, resolver=lambda h, p: ["10.9.8.7"])
    assert no_connection == []
    # of a mixed answer, only a public address is connected to: the one that was checked
    with pytest.raises(OSError):
        send(
            "https://hooks.example.com/x",
            BODY,
            SECRET,
            resolver=lambda h, p: ["169.254.169.254", "::ffff:10.0.0.1", "93.184.216.34"],
        )
    assert no_connection == [("93.184.216.34", 443)]


def test_plain_http_only_to_loopback_and_only_when_allowed(
    receiver: WebhookReceiver, no_connection: list[Any]
) -> None:
    with pytest.raises(Refused, match="https"):
        send("http://93.184.216.34/hook", BODY, SECRET, allow_loopback_http=True)
    with pytest.raises(Refused, match="https"):
        send(receiver.url, BODY, SECRET)  # the demo's receiver, without the demo's allowance
    with pytest.raises(Refused):
        check_url(receiver.url)
    assert no_connection == []
    assert receiver.state.received == []


def test_a_delivery_is_signed_and_its_body_arrives(receiver: WebhookReceiver) -> None:
    delivery = send(receiver.url, BODY, SECRET, allow_loopback_http=True)
    assert (delivery.status, delivery.delivered) == (200, True)
    [got] = receiver.state.received
    assert got.signature_valid and got.path == "/hook"
    assert got.body == json.loads(BODY)
    # another person's secret (or a rotated one) does not verify
    other = WebhookReceiver(signing_secret("app-secret", "alice", version=1))
    try:
        send(other.url, BODY, SECRET, allow_loopback_http=True)
        assert [r.signature_valid for r in other.state.received] == [False]
    finally:
        other.stop()
    assert signing_secret("app-secret", "alice") != signing_secret("app-secret", "bob")


def test_a_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.state.behaviour = Behaviour(redirect_to="http://169.254.169.254/latest/meta-data/")
    delivery = send(receiver.url, BODY, SECRET, allow_loopback_http=True)
    assert (delivery.status, delivery.delivered) == (302, False)
    assert len(receiver.state.received) == 1


def test_a_receiver_that_does_not_answer_in_time_is_given_up_on(
    receiver: WebhookReceiver,
) -> None:
    receiver.state.behaviour = Behaviour(delay_s=3)
    started = time.monotonic()
    with pytest.raises(OSError):
        send(receiver.url, BODY, SECRET, allow_loopback_http=True, timeout_s=0.5)
    assert time.monotonic() - started < 2


def test_an_answer_is_read_no_further_than_a_kibibyte(receiver: WebhookReceiver) -> None:
    receiver.state.behaviour = Behaviour(status=500, answer=b"x" * 5_000_000)
    delivery = send(receiver.url, BODY, SECRET, allow_loopback_http=True)
    assert (delivery.status, delivery.delivered) == (500, False)


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/x", "https://user:pw@hooks.example.com/x", "https:///x", "ftp://x"],
)
def test_a_url_of_the_wrong_shape_is_refused(url: str) -> None:
    with pytest.raises(Refused):
        check_url(url)


def test_a_public_name_passes_the_shape_check() -> None:
    check_url("https://hooks.slack.com/services/T000/B000/XXXX")


def test_an_ipv6_address_that_carries_a_public_ipv4_address_passes() -> None:
    check_url("https://[64:ff9b::808:808]/hook")  # 8.8.8.8 through NAT64
    check_url("https://[2606:4700::1111]/hook")


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:99999/x",
        "https://hooks.example.com:0/x",
        "https://hooks.example.com:http/x",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/a\tb",
        "https://hooks.exa mple.com/x",
        "https://[::1/x",
        "https://[hooks.example.com]/x",
        "https://-bad-.example.com/x",
        "https://" + "a" * 64 + ".example.com/x",
        "https://hooks.example.com/\x00",
        "https://xn--/x",
        "https://" + "a" * 3000,
    ],
)
def test_a_malformed_address_is_refused_in_words_everywhere(
    url: str, no_connection: list[Any]
) -> None:
    with pytest.raises(Refused):
        check_url(url)
    with pytest.raises(Refused):
        send(url, BODY, SECRET)
    said = webhook.attempt(url, BODY, SECRET)
    assert said.problem is not None and said.problem.startswith("not sent: ")
    assert not said.unreachable
    assert no_connection == []


def test_an_internationalised_host_is_sent_to_in_its_idna_form() -> None:
    target = webhook.parse("https://bücher.example/hook/ünï?q=ä")
    assert (target.host, target.path) == ("xn--bcher-kva.example", "/hook/%C3%BCn%C3%AF?q=%C3%A4")
    check_url("https://bücher.example/hook")


@given(
    scheme=st.sampled_from(["https", "http", "ftp", "HTTPS", "", "javascript"]),
    host=st.one_of(
        st.text(max_size=40),
        st.from_regex(r"\[[0-9a-fA-F:.]{0,40}\]?", fullmatch=True),
        st.ip_addresses().map(str),
        st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True),
    ),
    port=st.one_of(st.none(), st.integers(-5, 100_000).map(str), st.text(max_size=6)),
    path=st.text(max_size=40),
)
@settings(max_examples=400, deadline=None)
def test_check_url_never_raises_anything_but_a_refusal(
    scheme: str, host: str, port: str | None, path: str
) -> None:
    url = f"{scheme}://{host}" + (f":{port}" if port is not None else "") + "/" + path
    try:
        check_url(url)
    except Refused as refused:
        assert str(refused)  # said in words


def test_a_receiver_that_drips_its_answer_is_cut_at_the_attempts_deadline(
    receiver: WebhookReceiver,
) -> None:
    receiver.state.behaviour = Behaviour(drip_s=0.2)  # each read is quick; the whole never ends
    started = time.monotonic()
    with pytest.raises(OSError):
        send(receiver.url, BODY, SECRET, allow_loopback_http=True, timeout_s=1, deadline_s=1.5)
    assert time.monotonic() - started < 3


def test_a_name_that_takes_too_long_to_resolve_ends_the_attempt(no_connection: list[Any]) -> None:
    def slow(host: str, port: int) -> list[str]:
        time.sleep(3)
        return ["93.184.216.34"]

    started = time.monotonic()
    said = webhook.attempt("https://slow.example.com/x", BODY, SECRET, resolver=slow, deadline_s=1)
    assert said.unreachable and time.monotonic() - started < 2
    assert no_connection == []
