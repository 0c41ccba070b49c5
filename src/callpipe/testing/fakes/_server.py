"""Run an ASGI app on 127.0.0.1 on a free port inside the current event loop (for fakes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

T = TypeVar("T")


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client that hangs up while sending a request body (a bot cancelling a request on
    barge-in, a call ending) is normal traffic for a provider: no traceback in the log."""
    del request, exc
    return Response(status_code=499)


def json_object(raw: str | bytes) -> dict[str, Any] | None:
    """The JSON object a client's message carries (None: not JSON, or JSON but no object)."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def sse(event: dict[str, Any]) -> str:
    """One server-sent event named by its payload's ``type``: ``event:`` + ``data: <json>``."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


def fake_app(routes: Sequence[BaseRoute]) -> Starlette:
    """The Starlette app of an HTTP fake: its routes, and a quiet end for vanished clients."""
    return Starlette(routes=list(routes), exception_handlers={ClientDisconnect: _client_gone})


class LocalASGIServer:
    """``await start()`` → serving on ``127.0.0.1:port``; ``await stop()`` shuts it down."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        self.tls: tuple[str, str] | None = None
        """(certificate file, key file): serve HTTPS instead of HTTP (set before ``start``)."""

    async def start(self) -> None:
        certfile, keyfile = self.tls or (None, None)
        config = uvicorn.Config(
            self._app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            ws="none",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        server = uvicorn.Server(config)
        # The fakes run inside a test's event loop: leave the process's signal handlers alone.
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("fake server failed to start")
            await asyncio.sleep(0.005)
        self.port = server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 3.0)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._server = None
        self._task = None


class Refusal:
    """A handshake refusal as a provider sends it: status, headers (e.g. ``dg-error``), body."""

    def __init__(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class LocalWebsocketServer:
    """A ``websockets`` server on ``127.0.0.1:port`` checking the key the way a provider does.

    ``auth`` lists the accepted ways to present the key: ``("header", name, prefix)`` (e.g.
    ``("header", "Authorization", "Bearer ")``) or ``("query", name, "")``. ``path`` is the
    endpoint's path (other paths get 404); ``validate(request)`` may refuse a handshake with a
    :class:`Refusal` (bad options), and ``unauthorized`` shapes the 401 a provider answers.
    """

    def __init__(
        self,
        handler: Any,
        *,
        api_key: str | None,
        auth: list[tuple[str, str, str]],
        path: str | None = None,
        validate: Any = None,
        unauthorized: Refusal | None = None,
    ) -> None:
        self._handler = handler
        self.api_key = api_key
        self._auth = auth
        self._path = path
        self._validate = validate
        self._unauthorized = unauthorized or Refusal(401, "invalid credentials\n")
        self._server: Any = None
        self.port = 0
        self.paths: list[str] = []
        self.auth_used: list[str] = []
        """How each accepted handshake presented the key (``"header:Authorization"``, ...)."""
        self.rejected = 0
        self.accepted = 0
        self.max_connections: int | None = None
        """Refuse handshakes (HTTP 503) once this many were accepted: a provider outage."""
        self.fail_handshakes: list[int] = []
        """HTTP statuses to answer the next handshakes with (e.g. ``[429]``), one per attempt."""
        self.tls: tuple[str, str] | None = None
        """(certificate file, key file): serve ``wss://``, not ``ws://`` (set before ``start``)."""

    def _authorized(self, request: Any) -> str | None:
        """How the request presented the right key (None: it did not)."""
        from urllib.parse import parse_qs, urlsplit

        if self.api_key is None:
            return "none"
        query = parse_qs(urlsplit(request.path).query)
        for where, name, prefix in self._auth:
            if where == "header":
                values = request.headers.get_all(name)
            else:
                values = query.get(name, [])
            if any(value == f"{prefix}{self.api_key}" for value in values):
                return f"{where}:{name}"
        return None

    @staticmethod
    def _respond(connection: Any, refusal: Refusal) -> Any:
        from http import HTTPStatus

        response = connection.respond(HTTPStatus(refusal.status), refusal.body)
        for name, value in refusal.headers.items():
            response.headers[name] = value
        return response

    async def _process_request(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus
        from urllib.parse import urlsplit

        self.paths.append(request.path)
        if self._path is not None and urlsplit(request.path).path != self._path:
            self.rejected += 1
            return self._respond(connection, Refusal(404, "Not Found\n"))
        how = self._authorized(request)
        if how is None:
            self.rejected += 1
            return self._respond(connection, self._unauthorized)
        if self._validate is not None:
            refusal = self._validate(request)
            if refusal is not None:
                self.rejected += 1
                return self._respond(connection, refusal)
        if self.fail_handshakes:
            self.rejected += 1
            status = HTTPStatus(self.fail_handshakes.pop(0))
            return connection.respond(status, f"{status.phrase}\n")
        if self.max_connections is not None and self.accepted >= self.max_connections:
            self.rejected += 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable\n")
        self.accepted += 1
        self.auth_used.append(how)
        return None

    async def start(self) -> None:
        from websockets.asyncio.server import serve

        context: ssl.SSLContext | None = None
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            max_size=None,
            ssl=context,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), 3.0)
            except TimeoutError:
                pass


class ServedFake:
    """``start``/``stop`` and ``async with`` for a fake provider wrapping one local server.

    The ``ws://`` fakes also get ``url``. :meth:`serve_tls` (before ``start``) makes a fake
    serve over TLS, as the provider does, with a certificate the client must be told to trust
    (e.g. ``SSL_CERT_FILE``): its URL is then ``https://`` / ``wss://``.
    """

    _server: LocalASGIServer | LocalWebsocketServer

    def serve_tls(self, certfile: str, keyfile: str) -> None:
        self._server.tls = (certfile, keyfile)

    @property
    def secure(self) -> bool:
        """Served over TLS (:meth:`serve_tls`)."""
        return self._server.tls is not None

    @property
    def _http_origin(self) -> str:
        """``http(s)://127.0.0.1:port``: the server's origin, ``https`` once served over TLS."""
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self._server.port}"

    async def start(self) -> None:
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class ServedHTTPFake(ServedFake):
    _server: LocalASGIServer

    @property
    def base_url(self) -> str:
        """The origin a client's ``base_url`` takes."""
        return self._http_origin


class ServedWebsocketFake(ServedFake):
    _server: LocalWebsocketServer

    @property
    def url(self) -> str:
        return f"{'wss' if self.secure else 'ws'}://127.0.0.1:{self._server.port}"

    @property
    def rejected(self) -> int:
        """Handshakes refused (bad key, bad options, scripted failures)."""
        return self._server.rejected

    @property
    def auth_used(self) -> list[str]:
        """How each accepted handshake presented the key, e.g. ``"header:Authorization"``."""
        return self._server.auth_used

    @property
    def paths(self) -> list[str]:
        """Request paths (with query) of every handshake."""
        return self._server.paths


class CreatesSessionsOverHTTP(ServedWebsocketFake):
    """For a websocket fake whose sessions are first created by an HTTP request: ``_http``
    (set by the fake) serves those requests, starts and stops with the socket, goes over TLS
    with it, and its origin is :attr:`base_url`."""

    _http: LocalASGIServer

    def serve_tls(self, certfile: str, keyfile: str) -> None:
        super().serve_tls(certfile, keyfile)
        self._http.tls = (certfile, keyfile)

    @property
    def base_url(self) -> str:
        """The HTTP origin a client's base URL takes (``https`` once served over TLS)."""
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self._http.port}"

    async def start(self) -> None:
        await self._http.start()
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        await self._http.stop()


class CountsStreams:
    """For a fake whose answers stream: how many were read to their end, how many dropped."""

    completed_streams: int
    cancelled_streams: int

    async def _counted(self, chunks: AsyncGenerator[T, None]) -> AsyncIterator[T]:
        """``chunks`` as they come, counted in ``completed_streams`` once all went out, else
        (the client hung up, a scripted drop) in ``cancelled_streams``."""
        finished = False
        try:
            async with contextlib.aclosing(chunks) as pieces:
                async for piece in pieces:
                    yield piece
            finished = True
        finally:
            if finished:
                self.completed_streams += 1
            else:
                self.cancelled_streams += 1


class DropsMidAudio:
    """For a speech socket fake: abort a connection once ``drop_after_chunks`` audio chunks
    went out (counted in ``_chunks_sent``), one time."""

    drop_after_chunks: int | None
    _chunks_sent: int

    def _drop_due(self, ws: ServerConnection) -> bool:
        """Abort ``ws`` (no close frame) if the scripted drop is due now; True when it was."""
        if self.drop_after_chunks is None or self._chunks_sent < self.drop_after_chunks:
            return False
        self.drop_after_chunks = None
        ws.transport.abort()
        return True
