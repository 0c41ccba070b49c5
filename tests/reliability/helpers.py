"""Shared pieces of the reliability suite: a configurable bot server and an abusive Twilio client.

The server is a real uvicorn on 127.0.0.1 serving one ``FastAPIWebsocketTransport`` call per
WebSocket, the way the spec's manual FastAPI recipe does. Each call is recorded (``CallRecord``)
so tests can look at what the bot saw. The bot echoes every caller packet back (so one short
exchange proves audio still flows both ways), can play a greeting, can use a tiny energy VAD
(barge-in without a model), and can be told to fail in the ways applications fail.

The client (``Caller``) speaks Twilio Media Streams, and can also misbehave: raw frames of any
kind, an abrupt TCP reset, a receive window that stops opening (``stop_reading``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import (
    EndFrame,
    FatalErrorFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    TransportMessageUrgentFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "reliability-secret-token"
RATE = 8000
PACKET = 160  # samples per 20 ms at 8 kHz


def call_sid(n: int) -> str:
    return f"CA{n:032d}"


def stream_sid(n: int) -> str:
    return f"MZ{n:032d}"


def tone(seconds: float, rate: int = RATE, freq: float = 440.0, amp: int = 8000) -> bytes:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    return (amp * np.sin(2 * math.pi * freq * t)).astype("<i2").tobytes()


# ---------------------------------------------------------------------------------------- VAD


@dataclass
class _VADParams:
    start_secs: float = 0.06
    stop_secs: float = 0.2


class EnergyVAD:
    """A deterministic VAD for tests: speech is any 20 ms packet louder than ``threshold`` RMS.

    Speaking starts after ``start_secs`` of loud packets and stops after ``stop_secs`` of quiet
    ones; enough to drive barge-in without a model.
    """

    def __init__(self, threshold: float = 500.0) -> None:
        self.params = _VADParams()
        self.threshold = threshold
        self.sample_rate = RATE
        self._loud = 0.0
        self._quiet = 0.0
        self._state = 1

    def set_sample_rate(self, rate: int) -> None:
        self.sample_rate = rate

    async def analyze_audio(self, buffer: bytes) -> int:
        samples = np.frombuffer(buffer, dtype="<i2").astype(np.float32)
        secs = len(samples) / self.sample_rate
        rms = float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
        if rms >= self.threshold:
            self._loud += secs
            self._quiet = 0.0
            if self._state != 3 and self._loud >= self.params.start_secs:
                self._state = 3
        else:
            self._quiet += secs
            self._loud = 0.0
            if self._state == 3 and self._quiet >= self.params.stop_secs:
                self._state = 1
        return self._state


# ---------------------------------------------------------------------------------------- bot


class Fault(Exception):
    """The exception injected application faults raise (easy to find in logs)."""


class Probe(FrameProcessor):
    """Records what the bot hears and echoes each caller packet; misbehaves on request.

    DTMF ``7`` makes it raise (an application bug mid-call); DTMF ``6`` reports a fatal error;
    DTMF ``0`` ends the call gracefully
    after a short goodbye; DTMF ``8`` sends a 300 kB application message; DTMF ``9`` makes the
    bot say something (a second turn).
    """

    def __init__(self, record: CallRecord, *, echo: bool, digit_actions: bool = True) -> None:
        super().__init__()
        self.record = record
        self.echo = echo
        self.digit_actions = digit_actions

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        rec = self.record
        if isinstance(frame, InputAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            rec.audio_in.append(time.monotonic())
            await self.push_frame(frame, direction)
            if self.echo:
                await self.push_frame(OutputAudioRawFrame(frame.audio, frame.sample_rate, 1))
            return
        if isinstance(frame, InputDTMFFrame):
            digit = frame.button.value
            rec.digits.append(digit)
            if not self.digit_actions:
                pass
            elif digit == "7":
                raise Fault("injected processor failure")
            elif digit == "0":
                await self.push_frame(TTSAudioRawFrame(tone(0.2), RATE))
                await self.push_frame(TTSStoppedFrame())
                await self.push_frame(EndFrame())
                return
            elif digit == "6":  # an error the bot cannot continue after
                await self.push_error(FatalErrorFrame(error="injected fatal error"))
                return
            elif digit == "8":  # a large app message, sent at once from the receive path
                blob = {"event": "app", "blob": "x" * 300_000}
                await self.push_frame(TransportMessageUrgentFrame(message=blob))
                return
            elif digit == "9":
                await self.push_frame(TTSAudioRawFrame(tone(0.3), RATE))
                await self.push_frame(TTSStoppedFrame())
                return
        if isinstance(frame, InterruptionFrame):
            rec.interruptions.append(time.monotonic())
        await self.push_frame(frame, direction)


@dataclass
class BotConfig:
    """How the bot behaves; one config serves every call of a server."""

    echo: bool = True
    digit_actions: bool = True  # False: keys are only recorded (for fuzzing)
    greeting_secs: float = 0.0
    vad: bool = False
    rest_url: str | None = None
    fail: str | None = None  # "before_pipeline", "in_start", "on_connected", "after_pipeline"
    transport: dict[str, Any] = field(default_factory=dict)
    idle_timeout_secs: float | None = 60.0


@dataclass
class CallRecord:
    """One call as the server saw it."""

    call_data: dict[str, Any]
    transport: FastAPIWebsocketTransport | None = None
    task: PipelineTask | None = None
    audio_in: list[float] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    interruptions: list[float] = field(default_factory=list)
    leftover_tasks: list[str] = field(default_factory=list)
    error: BaseException | None = None
    ended_at: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def stats(self) -> Any:
        assert self.transport is not None
        return self.transport.stats

    @property
    def serializer(self) -> Any:
        assert self.transport is not None
        return self.transport.params.serializer

    def malformed_total(self) -> int:
        return int(self.stats.malformed + sum(self.serializer.malformed_counts.values()))


class BotServer:
    """A FastAPI app running the bot for every connection on ``/ws``; records each call."""

    def __init__(self, config: BotConfig | None = None) -> None:
        self.config = config or BotConfig()
        self.calls: list[CallRecord] = []
        self.handshake_failures = 0
        self.app = FastAPI()
        self.app.add_api_websocket_route("/ws", self._endpoint)

    async def _endpoint(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            call_data = await asyncio.wait_for(_read_start(websocket), 5.0)
        except Exception:  # garbage, a timeout or a disconnect: no call to run
            self.handshake_failures += 1
            with contextlib.suppress(Exception):
                await websocket.close(code=1002)
            return
        record = CallRecord(call_data=call_data)
        self.calls.append(record)
        try:
            await self._run_call(websocket, record)
        except BaseException as exc:
            record.error = exc
            raise
        finally:
            record.ended_at = time.monotonic()
            record.done.set()

    async def _run_call(self, websocket: WebSocket, record: CallRecord) -> None:
        cfg = self.config
        start = record.call_data["start"]
        if cfg.fail == "before_pipeline":
            raise Fault("injected bot failure before the pipeline")
        if cfg.rest_url:
            serializer = TwilioFrameSerializer(
                stream_sid=start["streamSid"],
                call_sid=start["callSid"],
                account_sid=start["accountSid"],
                auth_token=AUTH_TOKEN,
                base_url=cfg.rest_url,
            )
        else:
            serializer = TwilioFrameSerializer(
                stream_sid=start["streamSid"],
                call_sid=start["callSid"],
                params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
            )
        params = FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            serializer=serializer,
            vad_analyzer=EnergyVAD() if cfg.vad else None,
            **cfg.transport,
        )
        transport = FastAPIWebsocketTransport(websocket=websocket, params=params)
        record.transport = transport
        processors: list[FrameProcessor] = [transport.input()]
        if cfg.fail == "in_start":
            processors.append(_FailOnStart())
        processors += [
            Probe(record, echo=cfg.echo, digit_actions=cfg.digit_actions),
            transport.output(),
        ]
        task = PipelineTask(
            Pipeline(processors),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            idle_timeout_secs=cfg.idle_timeout_secs,
        )
        record.task = task

        @transport.event_handler("on_client_connected")
        async def on_connected(t: FastAPIWebsocketTransport, ws: WebSocket) -> None:
            if cfg.fail == "on_connected":
                raise Fault("injected event handler failure")
            if cfg.greeting_secs:
                await task.queue_frames(
                    [TTSAudioRawFrame(tone(cfg.greeting_secs), RATE), TTSStoppedFrame()]
                )

        @transport.event_handler("on_client_disconnected")
        async def on_disconnected(t: FastAPIWebsocketTransport, ws: WebSocket) -> None:
            await task.cancel()

        await PipelineRunner(handle_sigint=False).run(task)
        await asyncio.sleep(0)
        names = [transport.input().name, transport.output().name, task.name]
        record.leftover_tasks = [
            t.get_name()
            for t in asyncio.all_tasks()
            if not t.done() and any(n in t.get_name() for n in names)
        ]
        if cfg.fail == "after_pipeline":
            raise Fault("injected bot failure after the pipeline")

    async def wait_calls(self, n: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until ``n`` calls have started and every started call has ended."""
        deadline = time.monotonic() + timeout
        while len(self.calls) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(self.calls)} of {n} calls started")
            await asyncio.sleep(0.01)
        for rec in self.calls:
            await asyncio.wait_for(rec.done.wait(), max(0.01, deadline - time.monotonic()))


class _FailOnStart(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            raise Fault("injected failure while starting")
        await self.push_frame(frame, direction)


async def _read_start(websocket: WebSocket) -> dict[str, Any]:
    """Twilio's handshake: ``connected`` then ``start`` (text frames, JSON objects)."""
    for _ in range(2):
        raw = await websocket.receive_text()
        message = json.loads(raw)
        if isinstance(message, dict) and message.get("event") == "start":
            start = message["start"]
            if not isinstance(start.get("streamSid"), str):
                raise ValueError("no streamSid")
            return message
    raise ValueError("no start message")


# ------------------------------------------------------------------------------ fake Twilio REST


@dataclass
class RestLog:
    requests: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # "ok", "hang" (never answers), "error" (HTTP 500)


def fake_twilio_rest(log: RestLog) -> FastAPI:
    """Twilio's Calls API, recording requests; can hang or fail on request."""
    app = FastAPI()

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def update_call(account: str, call: str, request: Request) -> Any:
        log.requests.append(
            {"time": time.monotonic(), "call": call, "body": (await request.body()).decode()}
        )
        if log.mode == "hang":
            await asyncio.sleep(3600)
        if log.mode == "error":
            from fastapi.responses import JSONResponse

            return JSONResponse({"message": "internal"}, status_code=500)
        return {"sid": call, "status": "completed"}

    return app


serve = running_server  # binds its own socket; ``sndbuf`` makes stalled peers block quickly


# ---------------------------------------------------------------------------------------- client


@dataclass
class Got:
    t: float
    msg: dict[str, Any]


class Caller:
    """Twilio's side of one media stream, able to misbehave.

    ``rcvbuf`` shrinks the client's socket receive buffer (set before connecting) so that
    ``stop_reading()`` stalls the server's sends quickly.
    """

    def __init__(
        self,
        url: str,
        n: int = 1,
        *,
        custom_parameters: dict[str, str] | None = None,
        rcvbuf: int | None = None,
        handshake: bool = True,
    ) -> None:
        self.url = url
        self.n = n
        self.stream_sid = stream_sid(n)
        self.call_sid = call_sid(n)
        self.custom_parameters = custom_parameters or {}
        self.rcvbuf = rcvbuf
        self.handshake = handshake
        self.received: list[Got] = []
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self.ws: ClientConnection | None = None
        self._seq = 0
        self._chunk = 0
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Caller:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        sock = None
        if self.rcvbuf is not None:
            host, port = self.url.split("//", 1)[1].split("/", 1)[0].split(":")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        # No permessage-deflate, like the carriers: compressed silence would hide backpressure.
        self.ws = await connect(
            self.url,
            max_size=None,
            sock=sock,
            open_timeout=5,
            close_timeout=1,
            ping_interval=None,
            compression=None,
        )
        if self.handshake:
            await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self.send(self.start_message())
        self._reader = asyncio.create_task(self._read())

    def start_message(self, **media_format: Any) -> dict[str, Any]:
        fmt = {"encoding": "audio/x-mulaw", "sampleRate": RATE, "channels": 1, **media_format}
        return {
            "event": "start",
            "sequenceNumber": self._next_seq(),
            "start": {
                "accountSid": ACCOUNT_SID,
                "streamSid": self.stream_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "mediaFormat": fmt,
                "customParameters": self.custom_parameters,
            },
            "streamSid": self.stream_sid,
        }

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 2)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 3)

    def abort(self) -> None:
        """Cut the TCP connection without a closing handshake (RST)."""
        assert self.ws is not None
        transport = self.ws.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def stop_reading(self) -> None:
        """Stop reading from the socket: the receive window closes, the server's sends block."""
        assert self.ws is not None
        self.ws.transport.pause_reading()
        # websockets resumes reading when its queue drains; keep it from doing so.
        self.ws.transport.resume_reading = lambda: None  # type: ignore[method-assign]

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def send(self, msg: dict[str, Any]) -> None:
        await self.send_raw(json.dumps(msg, separators=(",", ":")))

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    def media_message(self, pcm: bytes) -> str:
        self._chunk += 1
        return json.dumps(
            {
                "event": "media",
                "sequenceNumber": self._next_seq(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(self._chunk * 20),
                    "payload": base64.b64encode(pcm_to_ulaw(pcm)).decode(),
                },
                "streamSid": self.stream_sid,
            },
            separators=(",", ":"),
        )

    async def send_audio(
        self, pcm: bytes, *, on_packet: Callable[[int], Any] | None = None
    ) -> None:
        """PCM16 8 kHz as 20 ms media messages, in real time."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, offset in enumerate(range(0, len(pcm), PACKET * 2)):
            chunk = pcm[offset : offset + PACKET * 2].ljust(PACKET * 2, b"\x00")
            if on_packet is not None:
                on_packet(i)
            await self.send_raw(self.media_message(chunk))
            await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))

    async def send_silence(self, seconds: float) -> None:
        await self.send_audio(bytes(int(seconds * RATE) * 2))

    async def press(self, digit: Any) -> None:
        await self.send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_seq(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def stop(self) -> None:
        await self.send(
            {
                "event": "stop",
                "sequenceNumber": self._next_seq(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid},
            }
        )

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now = time.monotonic()
                msg = json.loads(raw)
                self.received.append(Got(now, msg))
                if msg.get("event") == "mark":
                    await self._ack(msg["mark"]["name"])
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    async def _ack(self, name: str) -> None:
        msg = {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
        with contextlib.suppress(ConnectionClosed):
            await self.send(msg)

    # -------------------------------------------------------------------------------- views

    def events(self, name: str, since: float = 0.0) -> list[Got]:
        return [r for r in self.received if r.msg.get("event") == name and r.t >= since]

    def media_times(self, since: float = 0.0) -> list[float]:
        return [r.t for r in self.events("media", since)]

    async def wait_media(self, count: int, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` media messages have come back from the bot."""
        for _ in range(int(timeout / 0.01)):
            if len(self.media_times()) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(self.media_times())} media messages, expected {count}")

    def media_secs(self, since: float = 0.0) -> float:
        """Seconds of bot audio received (a message may carry several 20 ms packets)."""
        payloads = (r.msg.get("media", {}).get("payload", "") for r in self.events("media", since))
        return sum(len(base64.b64decode(p)) for p in payloads) / 8000


async def assert_call_alive(caller: Caller, record: CallRecord, secs: float = 0.3) -> None:
    """Audio still flows both ways: the bot hears new packets and the caller hears the echo."""
    mark = time.monotonic()
    await caller.send_silence(secs)
    await asyncio.sleep(0.15)
    heard = sum(1 for t in record.audio_in if t >= mark)
    echoed = caller.media_secs(mark)
    packets = int(secs / 0.02)
    assert heard >= packets - 1, f"bot heard {heard} of {packets} packets"
    assert echoed >= secs / 2, f"caller got {echoed:.2f} s echoed for {secs:.2f} s sent"


# ---------------------------------------------------------------------------------------- logs


class LogCapture(logging.Handler):
    """Collects records from every logger (attach to the root) at ``level`` and above."""

    def __init__(self, level: int = logging.DEBUG) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.INFO) -> list[str]:
        out = []
        for r in self.records:
            if r.levelno >= level:
                text = r.getMessage()
                if r.exc_info:
                    text += "\n" + logging.Formatter().formatException(r.exc_info)
                out.append(text)
        return out

    def call_ends(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == "callpipe.calls" and "call ended" in r.msg]


@contextlib.contextmanager
def capture_logs(level: int = logging.DEBUG) -> Any:
    """Attach a ``LogCapture`` to the root logger (callpipe's loggers propagate to it)."""
    handler = LogCapture(level)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


async def within(coro: Awaitable[Any], secs: float) -> Any:
    return await asyncio.wait_for(coro, secs)
