"""FastAPIWebsocketTransport over a real uvicorn server with a client speaking Twilio's protocol.

These are real-time tests (a second or two of audio each): pacing, DTMF, session timeout,
graceful end with hang-up and close, remote close, malformed input, marks, WAV headers.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
import statistics
import struct
import wave
from typing import Any

import pytest
from fastapi import WebSocket

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

from .twilio_harness import (
    ACCOUNT_SID,
    CALL_SID,
    STREAM_SID,
    FrameLog,
    RestLog,
    TwilioClient,
    fake_twilio_rest,
    manual_twilio_app,
)

pytestmark = pytest.mark.integration


def tone(seconds: float, rate: int, freq: float = 440.0, amp: int = 8000) -> bytes:
    n = int(seconds * rate)
    return struct.pack(
        f"<{n}h", *(int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    )


class Bot:
    """One configurable test bot; records what its pipeline saw."""

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.rest_url: str | None = None
        self.input_log = FrameLog()
        self.output_log = FrameLog()
        self.events: list[tuple[str, float]] = []
        self.leftover_tasks: list[str] = []
        self.transport: FastAPIWebsocketTransport | None = None
        self.task: PipelineTask | None = None
        self.done = asyncio.Event()
        self.on_connected: list[Frame] = []
        self.on_timeout: list[Frame] = []
        self.serializer_factory: Any = None

    def serializer(self, call_data: dict[str, Any]) -> FrameSerializer:
        if self.serializer_factory is not None:
            return self.serializer_factory(call_data)  # type: ignore[no-any-return]
        start = call_data["start"]
        if self.rest_url:
            return TwilioFrameSerializer(
                stream_sid=start["streamSid"],
                call_sid=start["callSid"],
                account_sid=ACCOUNT_SID,
                auth_token="secret-token",
                base_url=self.rest_url,
            )
        return TwilioFrameSerializer(
            stream_sid=start["streamSid"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )

    async def __call__(self, websocket: WebSocket, call_data: dict[str, Any]) -> None:
        params = FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_out_sample_rate=8000,
            serializer=self.serializer(call_data),
            **self.params,
        )
        transport = FastAPIWebsocketTransport(websocket=websocket, params=params)
        self.transport = transport
        pipeline = Pipeline(
            [transport.input(), self.input_log, transport.output(), self.output_log]
        )
        task = PipelineTask(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=16000),
        )
        self.task = task

        @transport.event_handler("on_client_connected")
        async def on_client_connected(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
            self.events.append(("connected", asyncio.get_running_loop().time()))
            await task.queue_frames(self.on_connected)

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(
            transport: FastAPIWebsocketTransport, ws: WebSocket
        ) -> None:
            self.events.append(("disconnected", asyncio.get_running_loop().time()))
            await task.cancel()

        @transport.event_handler("on_session_timeout")
        async def on_session_timeout(transport: FastAPIWebsocketTransport, ws: WebSocket) -> None:
            self.events.append(("timeout", asyncio.get_running_loop().time()))
            await task.queue_frames(self.on_timeout)

        try:
            await PipelineRunner(handle_sigint=False).run(task)
            await asyncio.sleep(0)
            names = [transport.input().name, transport.output().name, task.name]
            self.leftover_tasks = [
                t.get_name()
                for t in asyncio.all_tasks()
                if not t.done() and any(n in t.get_name() for n in names)
            ]
        finally:
            self.done.set()

    def count(self, event: str) -> int:
        return sum(1 for name, _ in self.events if name == event)


@virtual_time
async def test_greeting_arrives_paced_like_an_audio_device() -> None:
    bot = Bot(audio_out_max_message_ms=0)  # one message per 20 ms packet
    bot.on_connected = [TTSAudioRawFrame(tone(1.0, 16000), 16000), TTSStoppedFrame()]
    async with running_server(manual_twilio_app(bot)) as addr:
        async with TwilioClient(f"ws://{addr}/ws") as client:
            await client.send_silence(1.5)
    media = client.events("media")
    audio = client.audio()
    assert abs(len(audio) / 8000 - 1.0) <= 0.05
    assert all(len(base64.b64decode(r.msg["media"]["payload"])) == 160 for r in media)
    assert all(r.msg["streamSid"] == STREAM_SID for r in media)
    gaps = [b.t - a.t for a, b in zip(media, media[1:], strict=False)]
    paced = gaps[5:]  # the first packets go out together: that is the send-ahead
    assert 0.017 <= statistics.median(paced) <= 0.023
    span = media[-1].t - media[0].t
    assert 0.85 <= span <= 1.0, span  # 1 s of audio minus the send-ahead
    await asyncio.wait_for(bot.done.wait(), 5)
    assert bot.count("connected") == 1
    assert bot.count("disconnected") == 1
    assert len(bot.output_log.of(BotStartedSpeakingFrame)) == 1
    assert len(bot.output_log.of(BotStoppedSpeakingFrame)) == 1
    assert bot.leftover_tasks == []


@virtual_time
async def test_audio_at_hand_arrives_in_80_ms_messages_on_the_same_schedule() -> None:
    bot = Bot()  # default audio_out_max_message_ms=80
    bot.on_connected = [TTSAudioRawFrame(tone(1.0, 16000), 16000), TTSStoppedFrame()]
    async with running_server(manual_twilio_app(bot)) as addr:
        async with TwilioClient(f"ws://{addr}/ws") as client:
            await client.send_silence(1.5)
    media = client.events("media")
    assert abs(len(client.audio()) / 8000 - 1.0) <= 0.05  # all of it
    sizes = [len(base64.b64decode(r.msg["media"]["payload"])) for r in media]
    assert max(sizes) == 640 and all(size % 160 == 0 for size in sizes)  # whole 20 ms packets
    assert len(media) <= 16  # 1 s in 80 ms messages, not 50 packets
    gaps = [b.t - a.t for a, b in zip(media, media[1:], strict=False)]
    assert 0.07 <= statistics.median(gaps[2:]) <= 0.09
    span = media[-1].t - media[0].t
    assert 0.8 <= span <= 1.0, span  # still paced like the audio device, not a burst
    await asyncio.wait_for(bot.done.wait(), 5)
    assert len(bot.output_log.of(BotStoppedSpeakingFrame)) == 1


@virtual_time
async def test_dtmf_becomes_frames_and_bad_messages_are_skipped() -> None:
    bot = Bot()
    bot.on_connected = [TTSAudioRawFrame(tone(0.6, 16000), 16000), TTSStoppedFrame()]
    async with running_server(manual_twilio_app(bot)) as addr:
        async with TwilioClient(f"ws://{addr}/ws") as client:
            await client.send_silence(0.1)
            for garbage in (
                "not json",
                "[]",
                '"x"',
                '{"event": "media", "media": {"payload": "abc"}}',
                '{"event": "media"}',
                '{"event": "unheard-of"}',
                b"\x00\x01binary",
                '{"event": "dtmf", "dtmf": {"digit": "X"}}',
            ):
                await client.send_raw(garbage)
            for digit in "1*#":
                await client.press(digit)
            await client.send_silence(0.8)
    await asyncio.wait_for(bot.done.wait(), 5)
    digits = [f.button.value for f in bot.input_log.of(InputDTMFFrame)]  # type: ignore[attr-defined]
    assert digits == ["1", "*", "#"]
    assert abs(len(client.audio()) / 8000 - 0.6) <= 0.05  # the call kept working
    assert bot.count("disconnected") == 1
    serializer = bot.transport.params.serializer  # type: ignore[union-attr]
    skipped = bot.transport.stats.malformed + sum(serializer.malformed_counts.values())  # type: ignore[union-attr]
    assert skipped >= 7


@virtual_time
async def test_session_timeout_fires_once_then_goodbye_hang_up_and_close() -> None:
    rest = RestLog()
    bot = Bot(session_timeout=0.3)
    bot.on_timeout = [TTSAudioRawFrame(tone(0.5, 16000), 16000), TTSStoppedFrame(), EndFrame()]
    async with running_server(fake_twilio_rest(rest)) as rest_addr:
        bot.rest_url = f"http://{rest_addr}"
        async with running_server(manual_twilio_app(bot)) as addr:
            async with TwilioClient(f"ws://{addr}/ws") as client:
                silence = asyncio.create_task(client.send_silence(3.0))
                await asyncio.wait_for(client.closed.wait(), 5)
                silence.cancel()
    await asyncio.wait_for(bot.done.wait(), 5)
    assert bot.count("timeout") == 1
    assert bot.count("disconnected") == 0  # the bot ended the call, not the caller
    assert client.close_code == 1000
    assert abs(len(client.audio()) / 8000 - 0.5) <= 0.05
    assert len(rest.requests) == 1
    req = rest.requests[0]
    assert req["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
    expected = base64.b64encode(f"{ACCOUNT_SID}:secret-token".encode()).decode()
    assert req["auth"] == f"Basic {expected}"
    assert req["content_type"].startswith("application/x-www-form-urlencoded")
    assert req["body"] == "Status=completed"
    last_audio = client.events("media")[-1].t
    assert req["time"] >= last_audio  # hang-up only after the goodbye was sent...
    played_until = client.events("media")[0].t + 0.5
    assert req["time"] >= played_until - 0.1  # ...and played
    assert bot.leftover_tasks == []


@virtual_time
async def test_remote_stop_fires_disconnected_once_and_leaves_no_tasks() -> None:
    bot = Bot()
    async with running_server(manual_twilio_app(bot)) as addr:
        async with TwilioClient(f"ws://{addr}/ws") as client:
            await client.send_silence(0.2)
            await client.stop()
            await asyncio.wait_for(bot.done.wait(), 5)
    assert bot.count("disconnected") == 1
    assert bot.leftover_tasks == []
    assert bot.task is not None and bot.task.has_finished()


@virtual_time
async def test_marks_round_trip_and_drive_bot_stopped_speaking() -> None:
    bot = Bot()
    bot.on_connected = [
        TTSAudioRawFrame(tone(0.6, 16000), 16000),
        TTSTextFrame("hello"),
        TTSAudioRawFrame(tone(0.4, 16000), 16000),
        TTSTextFrame("world"),
        TTSStoppedFrame(),
    ]
    async with running_server(manual_twilio_app(bot)) as addr:
        async with TwilioClient(f"ws://{addr}/ws", mark_delay=0.4) as client:
            await client.send_silence(2.2)
    await asyncio.wait_for(bot.done.wait(), 5)
    marks = client.events("mark")
    assert marks, "the transport sent no marks"
    first_media = client.events("media")[0].t
    stopped = bot.output_log.times(BotStoppedSpeakingFrame)
    assert len(stopped) == 1
    # Audio plays until first_media + 1.0 s; the client acknowledges marks 0.4 s late, and the
    # bot must wait for that acknowledgement rather than for the last byte to leave.
    assert stopped[0] >= first_media + 1.0 + 0.3
    texts = bot.output_log.frames
    text_times = {f.text: t for t, f in texts if isinstance(f, TTSTextFrame)}  # type: ignore[attr-defined]
    assert set(text_times) == {"hello", "world"}
    assert text_times["hello"] >= first_media + 0.6  # released when heard, not when sent


class RawPCMSerializer(FrameSerializer):
    """Test serializer: binary frames of raw audio bytes (to see WAV headers on the wire)."""

    async def setup(self, frame: Any) -> None:
        pass

    async def serialize(self, frame: Frame) -> bytes | None:
        return frame.audio if isinstance(frame, OutputAudioRawFrame) else None

    async def deserialize(self, data: str | bytes) -> Frame | None:
        return None


async def test_wav_header_chunks_parse_as_wav() -> None:
    bot = Bot(add_wav_header=True)
    bot.serializer_factory = lambda call_data: RawPCMSerializer()
    bot.on_connected = [TTSAudioRawFrame(tone(0.2, 8000), 8000), TTSStoppedFrame()]
    import websockets

    async with running_server(manual_twilio_app(bot)) as addr:
        async with websockets.connect(f"ws://{addr}/ws") as ws:
            await ws.send('{"event": "connected"}')
            await ws.send('{"event": "start", "start": {"streamSid": "MZ1", "callSid": "CA1"}}')
            chunks = [await asyncio.wait_for(ws.recv(), 2) for _ in range(10)]
    for chunk in chunks:
        assert isinstance(chunk, bytes)
        with wave.open(io.BytesIO(chunk)) as wav:
            assert wav.getframerate() == 8000
            assert wav.getnchannels() == 1
            assert wav.getsampwidth() == 2
            assert wav.getnframes() == 160


def test_unknown_params_are_rejected() -> None:
    with pytest.raises(ValueError, match="vad_analyser"):
        FastAPIWebsocketParams(vad_analyser=object())  # type: ignore[call-arg]


def test_output_direction_constant() -> None:
    assert FrameDirection.DOWNSTREAM != FrameDirection.UPSTREAM
