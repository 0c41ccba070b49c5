"""A scripted HTTP server on 127.0.0.1 standing in for a provider's REST API.

Each request is recorded (method, path, headers, body) and answered with the next scripted
response; a response with ``hang=True`` never answers (until the server is stopped), to test
client timeouts.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    hang: bool = False


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The form-encoded body, one value a field (what Twilio and Plivo clients send)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class ProviderServer:
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)


def start_server() -> tuple[ProviderServer, ThreadingHTTPServer]:
    state = ProviderServer()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
            reply = state.replies.popleft() if state.replies else Reply()
            if reply.hang:
                state.release.wait(30)
                return
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = do_PUT = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return state, server


def basic(user: str, password: str) -> str:
    """The ``Authorization`` header value HTTP Basic auth sends for these credentials."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
