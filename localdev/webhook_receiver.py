"""A local webhook receiver: records every request it gets and whether its signature is the
one the person's signing secret gives. How it answers can be chosen: a status, a redirect, a
delay (to be timed out)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    signature_valid: bool
    at: float = field(default_factory=time.monotonic)
    """When it arrived (a monotonic clock: the gaps between attempts)."""


@dataclass
class Behaviour:
    status: int = 200
    redirect_to: str | None = None
    delay_s: float = 0.0
    answer: bytes = b"ok"
    drip_s: float = 0.0
    """When set, the answer comes one byte every `drip_s` seconds and never ends (a receiver
    that holds an attempt open), until the sender hangs up."""


@dataclass
class Receiver:
    secret: str
    received: list[Received] = field(default_factory=list)
    behaviour: Behaviour = field(default_factory=Behaviour)

    def verify(self, header: str, body: bytes) -> bool:
        try:
            parts = dict(p.split("=", 1) for p in header.split(","))
            at, mac = parts["t"], parts["v1"]
        except (KeyError, ValueError):
            return False
        expected = hmac.new(self.secret.encode(), f"{at}.".encode() + body, hashlib.sha256)
        fresh = abs(time.time() - int(at)) < 300
        return fresh and hmac.compare_digest(expected.hexdigest(), mac)


class WebhookReceiver:
    """Serves on 127.0.0.1 (0: a free port) in a thread of its own."""

    def __init__(self, secret: str, port: int = 0) -> None:
        self.state = Receiver(secret)
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                valid = state.verify(self.headers.get("X-AgentTrader-Signature", ""), body)
                state.received.append(Received(self.path, json.loads(body or b"{}"), valid))
                behaviour = state.behaviour
                if behaviour.delay_s:
                    time.sleep(behaviour.delay_s)
                if behaviour.drip_s:
                    self._drip(behaviour.drip_s)
                    return
                self.send_response(302 if behaviour.redirect_to else behaviour.status)
                if behaviour.redirect_to:
                    self.send_header("Location", behaviour.redirect_to)
                self.send_header("Content-Length", str(len(behaviour.answer)))
                self.end_headers()
                self.wfile.write(behaviour.answer)

            def _drip(self, every_s: float) -> None:
                self.close_connection = True
                try:
                    for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"x" * 10_000:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(every_s)
                except OSError:
                    pass  # the sender hung up

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
