"""A real uvicorn server running a callpipe bot, and a minimal Twilio media-stream client.

The client speaks Twilio's protocol exactly as Twilio does (``connected``, ``start``, 20 ms
``media`` messages, ``dtmf``, ``mark`` acknowledgements after the audio before them has
"played", ``stop``) and records every message it receives with its arrival time.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import websockets
from fastapi import FastAPI, Request, WebSocket

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import Frame, StartFrame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

STREAM_SID = "MZ00000000000000000000000000000001"
CALL_SID = "CA00000000000000000000000000000001"
ACCOUNT_SID = "AC00000000000000000000000000000001"


class FrameLog(FrameProcessor):
    """Records (time, frame) for every frame passing in ``direction`` (None: both)."""

    def __init__(self, direction: FrameDirection | None = FrameDirection.DOWNSTREAM) -> None:
        super().__init__()
        self.direction = direction
        self.frames: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        wanted = self.direction is None or direction is self.direction
        if wanted and not isinstance(frame, StartFrame):
            self.frames.append((asyncio.get_running_loop().time(), frame))
        await self.push_frame(frame, direction)

    def of(self, cls: type[Frame]) -> list[Frame]:
        return [f for _, f in self.frames if isinstance(f, cls)]

    def times(self, cls: type[Frame]) -> list[float]:
        return [t for t, f in self.frames if isinstance(f, cls)]


Scenario = Callable[[WebSocket, dict[str, Any]], Awaitable[None]]


def manual_twilio_app(scenario: Scenario) -> FastAPI:
    """The spec's manual FastAPI recipe: accept, read ``connected`` and ``start``, run the bot."""
    app = FastAPI()

    @app.websocket("/ws")
    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        start_data = websocket.iter_text()
        await start_data.__anext__()
        call_data = json.loads(await start_data.__anext__())
        await scenario(websocket, call_data)

    return app


@dataclass
class RestLog:
    requests: list[dict[str, Any]] = field(default_factory=list)


def fake_twilio_rest(log: RestLog) -> FastAPI:
    """Records hang-up requests; answers like Twilio's Calls API."""
    app = FastAPI()

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def update_call(account: str, call: str, request: Request) -> dict[str, str]:
        body = (await request.body()).decode()
        log.requests.append(
            {
                "time": asyncio.get_running_loop().time(),
                "path": request.url.path,
                "auth": request.headers.get("authorization"),
                "content_type": request.headers.get("content-type"),
                "body": body,
            }
        )
        return {"sid": call, "status": "completed"}

    return app


@dataclass
class Received:
    t: float
    msg: dict[str, Any]


class TwilioClient:
    """Impersonates Twilio's side of one media stream."""

    def __init__(self, url: str, *, ack_marks: bool = True, mark_delay: float = 0.0) -> None:
        self.url = url
        self.ack_marks = ack_marks
        self.mark_delay = mark_delay
        self.received: list[Received] = []
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._ws: Any = None
        self._seq = 0
        self._chunk = 0
        self._reader: asyncio.Task[None] | None = None
        self._audio_secs = 0.0
        self._first_audio: float | None = None
        self._ack_tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> TwilioClient:
        # Twilio does not compress; neither does its impersonation (compression hides backpressure).
        self._ws = await websockets.connect(self.url, max_size=None, compression=None)
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self.send(
            {
                "event": "start",
                "sequenceNumber": self._next_seq(),
                "start": {
                    "accountSid": ACCOUNT_SID,
                    "streamSid": STREAM_SID,
                    "callSid": CALL_SID,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {},
                },
                "streamSid": STREAM_SID,
            }
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        if self._reader:
            await asyncio.wait_for(self._reader, 5)
        for task in list(self._ack_tasks):
            task.cancel()

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def send(self, msg: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(msg, separators=(",", ":")))

    async def send_raw(self, data: str | bytes) -> None:
        await self._ws.send(data)

    async def send_media(self, pcm8k: bytes) -> None:
        """Send PCM16 8 kHz audio as 20 ms µ-law media messages, in real time."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, offset in enumerate(range(0, len(pcm8k), 320)):
            chunk = pcm8k[offset : offset + 320]
            if len(chunk) < 320:
                chunk += bytes(320 - len(chunk))
            self._chunk += 1
            payload = base64.b64encode(pcm_to_ulaw(chunk)).decode()
            await self.send(
                {
                    "event": "media",
                    "sequenceNumber": self._next_seq(),
                    "media": {
                        "track": "inbound",
                        "chunk": str(self._chunk),
                        "timestamp": str(self._chunk * 20),
                        "payload": payload,
                    },
                    "streamSid": STREAM_SID,
                }
            )
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))

    async def send_silence(self, seconds: float) -> None:
        await self.send_media(bytes(int(seconds * 8000) * 2))

    async def press(self, digit: str) -> None:
        await self.send(
            {
                "event": "dtmf",
                "streamSid": STREAM_SID,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "streamSid": STREAM_SID,
                "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
            }
        )

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                now = asyncio.get_running_loop().time()
                msg = json.loads(raw)
                self.received.append(Received(now, msg))
                event = msg.get("event")
                if event == "media":
                    if self._first_audio is None or now > self._first_audio + self._audio_secs:
                        self._first_audio = now - self._audio_secs  # playback restarts now
                    self._audio_secs += len(base64.b64decode(msg["media"]["payload"])) / 8000
                elif event == "clear":
                    self._audio_secs = 0.0
                    self._first_audio = None
                elif event == "mark" and self.ack_marks:
                    self._schedule_ack(msg["mark"]["name"], now)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            self.closed.set()

    def _schedule_ack(self, name: str, now: float) -> None:
        played_at = (self._first_audio or now) + self._audio_secs + self.mark_delay
        delay = max(0.0, played_at - now)

        async def ack() -> None:
            await asyncio.sleep(delay)
            msg = {
                "event": "mark",
                "sequenceNumber": self._next_seq(),
                "streamSid": STREAM_SID,
                "mark": {"name": name},
            }
            try:
                await self.send(msg)
            except websockets.ConnectionClosed:
                pass

        task = asyncio.create_task(ack())
        self._ack_tasks.add(task)
        task.add_done_callback(self._ack_tasks.discard)

    # ------------------------------------------------------------------ views

    def events(self, name: str) -> list[Received]:
        return [r for r in self.received if r.msg.get("event") == name]

    def audio(self) -> bytes:
        return b"".join(base64.b64decode(r.msg["media"]["payload"]) for r in self.events("media"))
