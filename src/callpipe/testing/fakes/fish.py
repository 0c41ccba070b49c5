"""FakeFishServer: Fish Audio's live text-to-speech WebSocket (``/v1/tts/live``) on 127.0.0.1.

As Fish documents it, every message a MessagePack map:

- **Handshake.** ``Authorization: Bearer <key>`` (a wrong key: HTTP 401) and a ``model``
  header, one of :data:`MODELS` (missing or unknown: HTTP 400).
- **Session.** The first message must be ``{"event": "start", "request": {...}}``. The request
  is checked as Fish's TTS request: ``text`` a string; ``format`` ``pcm`` (the fake serves
  16-bit PCM only; ``wav``, ``mp3`` and ``opus`` are refused here); ``sample_rate`` one of
  :data:`PCM_RATES` (default 44100); ``latency`` ``normal``/``balanced``; ``prosody.speed``
  0.5 to 2 and ``prosody.volume`` -20 to 20; ``chunk_length`` 100 to 300; ``temperature`` and
  ``top_p`` 0 to 1. Then ``{"event": "text", "text"}`` collects text: once ``chunk_length``
  characters (default 200) wait, they are synthesized; ``{"event": "flush"}`` synthesizes what
  waits; ``{"event": "stop"}`` synthesizes the rest, sends ``{"event": "finish", "reason":
  "stop"}`` and closes the socket.
- **Audio.** Each synthesis run sends ``{"event": "audio", "audio": <bytes>}`` chunks of
  ``chunk_secs``, a tone of ``secs_per_word`` per word at the requested rate.
- **Problems.** A bad message (or ``error_next``) gets ``{"event": "log", "message"}`` then
  ``{"event": "finish", "reason": "error"}``, and the socket closes.

MessagePack comes from ``ormsgpack`` (the ``fish`` extra), imported when a session starts, so
``callpipe fakes`` runs without it for the other providers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake
from callpipe.testing.fakes._tts import speech_chunks

PATH = "/v1/tts/live"
MODELS = ("speech-1.5", "speech-1.6", "agent-x0", "s1", "s1-mini", "s2-pro", "s2.1-pro", "drama-3")
PCM_RATES = (8000, 16000, 24000, 32000, 44100)
DEFAULT_RATE = 44100


def _validate(request: Any) -> Refusal | None:
    model = request.headers.get("model")
    if model not in MODELS:
        return Refusal(400, f"unsupported model {model!r}\n")
    return None


def _between(value: Any, low: float, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


def request_problem(request: Any) -> str | None:
    """Why a ``start`` event's request would be refused (None: accepted)."""
    if not isinstance(request, dict):
        return "start.request must be a map"
    if not isinstance(request.get("text"), str):
        return "request.text must be a string"
    if request.get("format", "mp3") != "pcm":
        return "the fake serves format 'pcm' only"
    if request.get("sample_rate") not in (None, *PCM_RATES):
        return f"sample_rate must be one of {PCM_RATES}"
    if request.get("latency", "balanced") not in ("normal", "balanced"):
        return "latency must be 'normal' or 'balanced'"
    prosody = request.get("prosody")
    if prosody is not None:
        if not isinstance(prosody, dict):
            return "prosody must be a map"
        if not _between(prosody.get("speed", 1.0), 0.5, 2.0):
            return "prosody.speed must be 0.5 to 2"
        if not _between(prosody.get("volume", 0.0), -20.0, 20.0):
            return "prosody.volume must be -20 to 20"
    checks = (("chunk_length", 100, 300), ("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0))
    for name, low, high in checks:
        if name in request and not _between(request[name], low, high):
            return f"{name} must be {low} to {high}"
    reference = request.get("reference_id")
    if reference is not None and not isinstance(reference, str):
        return "reference_id must be a string"
    return None


class FakeFishServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeFishServer() as fake: fake.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        """Seconds between audio chunks (Fish's generation time)."""
        self.headers: list[dict[str, str]] = []
        """Each accepted handshake's headers (names in lower case)."""
        self.messages: list[list[dict[str, Any]]] = []
        """Each session's client events, in order."""
        self.sent: list[dict[str, Any]] = []
        """Every event sent, in order (all sessions)."""
        self.runs: list[str] = []
        """The text of each synthesis run."""
        self.error_next = False
        """Answer the next client event with a log and ``finish`` ``error``."""
        self._open: list[_Session] = []
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer ")],
            path=PATH,
            validate=_validate,
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    @property
    def starts(self) -> list[dict[str, Any]]:
        """The ``start`` event of each session that sent one."""
        return [m[0] for m in self.messages if m and m[0].get("event") == "start"]

    def drop_idle(self) -> int:
        """Abort (no close frame) every open session that got no text yet; how many."""
        idle = [s for s in self._open if not any(e.get("event") == "text" for e in s.events)]
        for session in idle:
            session.ws.transport.abort()
        return len(idle)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        session = _Session(self, ws)
        self._open.append(session)
        try:
            with contextlib.suppress(ConnectionClosed):
                await session.run()
        finally:
            self._open.remove(session)


class _Session:
    """One connection: its request, text buffer and synthesis runs."""

    def __init__(self, fake: FakeFishServer, ws: ServerConnection) -> None:
        import ormsgpack

        self.pack = ormsgpack.packb
        self.unpack = ormsgpack.unpackb
        self.fake = fake
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        fake.messages.append(self.events)
        self.request: dict[str, Any] | None = None
        self.buffer = ""
        self.runs: asyncio.Queue[str | None] = asyncio.Queue()
        self.stopped = False

    async def send(self, event: dict[str, Any]) -> None:
        self.fake.sent.append(event)
        await self.ws.send(self.pack(event))

    async def fail(self, text: str) -> None:
        await self.send({"event": "log", "message": text})
        await self.send({"event": "finish", "reason": "error"})
        await self.ws.close()

    async def run(self) -> None:
        synth = asyncio.get_running_loop().create_task(self._synthesize())
        try:
            async for raw in self.ws:
                if not await self.receive(raw):
                    break
            if self.stopped:
                await synth  # the rest is spoken, then finish
        finally:
            synth.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await synth

    async def receive(self, raw: str | bytes) -> bool:
        """Handle one client event; False once the session is over."""
        try:
            event = self.unpack(raw) if isinstance(raw, bytes) else None
        except Exception:
            event = None
        if not isinstance(event, dict):
            await self.fail("events must be MessagePack maps in binary frames")
            return False
        self.events.append(event)
        if self.fake.error_next:
            self.fake.error_next = False
            await self.fail("scripted error")
            return False
        kind = event.get("event")
        if self.request is None:
            if kind != "start":
                await self.fail("the first event must be start")
                return False
            problem = request_problem(event.get("request"))
            if problem is not None:
                await self.fail(problem)
                return False
            self.request = dict(event["request"])
            self.buffer = str(self.request.get("text") or "")
            return True
        if kind == "text":
            text = event.get("text")
            if not isinstance(text, str):
                await self.fail("text.text must be a string")
                return False
            self.buffer += text
            if len(self.buffer) >= int(self.request.get("chunk_length") or 200):
                self.queue_run()
        elif kind == "flush":
            self.queue_run()
        elif kind == "stop":
            self.queue_run()
            self.runs.put_nowait(None)
            self.stopped = True
            return False
        else:
            await self.fail(f"unknown event {kind!r}")
            return False
        return True

    def queue_run(self) -> None:
        text, self.buffer = self.buffer, ""
        if text.strip():
            self.runs.put_nowait(text)

    async def _synthesize(self) -> None:
        while True:
            text = await self.runs.get()
            if text is None:
                await self.send({"event": "finish", "reason": "stop"})
                await self.ws.close()
                return
            assert self.request is not None
            self.fake.runs.append(text)
            rate = int(self.request.get("sample_rate") or DEFAULT_RATE)
            secs = self.fake.secs_per_word * len(text.split())
            for chunk in speech_chunks(secs, rate, self.fake.chunk_secs):
                if self.fake.chunk_delay:
                    await asyncio.sleep(self.fake.chunk_delay)
                await self.send({"event": "audio", "audio": chunk})
