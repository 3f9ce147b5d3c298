"""Real notification receivers on loopback, for the notification tests: an HTTP server that records
what Slack's incoming webhooks and a generic webhook receive (or answers 500, or never answers),
an SMTP server (aiosmtpd) that records the mail it accepts, and a port where nothing listens."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class HttpReceiver:
    """``mode``: "ok" (200), "error" (500) or "hang" (reads the request, never answers)."""

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.posts: list[Post] = []
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(Post(self.path, dict(self.headers), body))
                if receiver.mode == "hang":
                    receiver._release.wait(60)
                    return
                status = 200 if receiver.mode == "ok" else 500
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"internal error")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate, timeout: float = 30) -> list[Post]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [p for p in list(self.posts) if predicate(p)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such post within {timeout}s; got {[p.body[:200] for p in self.posts]}")


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes
    login: bytes | None = None

    @property
    def subject(self) -> str:
        return str(message_from_bytes(self.data, policy=policy.default)["Subject"])

    @property
    def body(self) -> str:
        msg = message_from_bytes(self.data, policy=policy.default)
        part = msg.get_body(preferencelist=("html", "plain"))
        return part.get_content() if part is not None else ""


@dataclass
class SmtpReceiver:
    """aiosmtpd on loopback, plain SMTP (no TLS) with AUTH LOGIN/PLAIN accepted for ``login`` and
    ``password`` only."""

    login: str = "bluegreen"
    password: str = "smtp-pass-S3CR3T"
    mails: list[Mail] = field(default_factory=list)
    logins: list[bytes] = field(default_factory=list)

    def __enter__(self) -> SmtpReceiver:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.mails.append(
                    Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
                )
                return "250 OK"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == receiver.login
                and auth_data.password.decode() == receiver.password
            )
            if ok:
                receiver.logins.append(auth_data.login)
            return AuthResult(success=ok, handled=False)

        self.port = free_port()
        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=False,
        )
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    def connection(self, **extra) -> dict:
        return {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": self.port,
            "login": self.login,
            "password": self.password,
            "extra": {
                "disable_ssl": True,
                "disable_tls": True,
                "from_email": "releases@example.com",
                "retry_limit": 0,
                "timeout": 5,
                **extra,
            },
        }

    def wait_for(self, predicate, timeout: float = 30) -> list[Mail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in list(self.mails) if predicate(m)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no such mail within {timeout}s; got {[m.subject for m in self.mails]}")


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection_env(conn_id: str, conn: dict) -> tuple[str, str]:
    """The environment variable that defines an Airflow connection."""
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn)
