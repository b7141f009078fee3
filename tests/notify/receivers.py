"""Real counterparts for delivery tests: an SMTP server (aiosmtpd), an HTTP receiver checking signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler keeping what it receives; addresses starting with `bounce` are refused (550)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[list[str]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("bounce"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append(list(envelope.rcpt_tos))
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def signature_ok(secret: str, headers: dict[str, str], body: bytes, now: float) -> str | None:
    """The receiver's side of webhook signing, written from the documentation; None if good, else why not."""
    ts = headers.get("x-tocsin-timestamp", "")
    sent = headers.get("x-tocsin-signature", "")
    expected = "sha256=" + hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sent):
        return "bad signature"
    if abs(now - int(ts)) > 300:
        return "stale timestamp"
    return None


@dataclass
class HttpReceiver:
    """Accepts POSTs on 127.0.0.1; answers from `script` first (status, headers), then 200.

    Paths listed in `secrets` must carry a valid, fresh signature or get 401.
    """

    port: int = 0
    received: list[Received] = field(default_factory=list)  # accepted requests only
    attempts: int = 0
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def fail_next(self, count: int, status: int = 500, headers: dict[str, str] | None = None) -> None:
        self.script.extend([(status, headers or {})] * count)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        with self.lock:
            self.attempts += 1
            if self.script:
                return self.script.pop(0)
            secret = self.secrets.get(path)
            problem = signature_ok(secret, headers, body, time.time()) if secret else None
            if problem:
                self.rejected.append(problem)
                return 401, {}
            self.received.append(Received(path, headers, body, time.time()))
            return 200, {}


def serve(receiver: HttpReceiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra = receiver.answer(self.path, headers, body)
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server
