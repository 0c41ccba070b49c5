"""The official ``fish-audio-sdk`` live TTS client against FakeFishServer, and our service's
handshake and events against the SDK's.

The SDK (``fishaudio``) models the client events (``StartEvent`` with its ``TTSRequest``,
``TextEvent``, ``FlushEvent``, ``CloseEvent``) but decodes the server's with plain MessagePack
(``fishaudio.resources.realtime``: ``audio`` bytes, ``finish`` with ``reason`` ``stop`` or
``error``, anything else ignored). So the server events are checked twice: by the SDK's own
decoding (its stream yields exactly the fake's audio and ends at its ``finish``) and, strictly,
against the events Fish's AsyncAPI documents (``audio``, ``finish``, ``log``).

Our ``FishAudioTTSService`` must open the handshake the SDK opens (path, ``Authorization``,
``model``) and send events the SDK's models hold without loss; its ``start`` request, read as
the SDK's ``TTSRequest``, must equal the one the SDK builds for the same options.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from fishaudio import AsyncFishAudio, FlushEvent, TextEvent, TTSConfig, WebSocketError
from fishaudio.resources.realtime import _process_audio_event, _should_stop
from fishaudio.types.tts import CloseEvent, Prosody, StartEvent, TTSRequest
from pydantic import BaseModel, ConfigDict, TypeAdapter

from callpipe.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.fish.tts import FishAudioTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.fish import FakeFishServer

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AudioEvent(_Strict):
    event: Literal["audio"]
    audio: bytes


class FinishEvent(_Strict):
    event: Literal["finish"]
    reason: Literal["stop", "error"]


class LogEvent(_Strict):
    event: Literal["log"]
    message: str


ServerEvent: TypeAdapter[AudioEvent | FinishEvent | LogEvent] = TypeAdapter(
    AudioEvent | FinishEvent | LogEvent
)


def check_server_events(sent: list[dict[str, Any]]) -> None:
    for event in sent:
        ServerEvent.validate_python(event)
        if event["event"] == "audio":
            assert _process_audio_event(event) == event["audio"]
        elif event["event"] == "finish" and event["reason"] == "stop":
            assert _should_stop(event)


async def sdk_session(fake: FakeFishServer, config: TTSConfig) -> bytes:
    """Stream two sentences through the SDK's websocket client; the audio it yields."""

    async def text() -> AsyncIterator[str | TextEvent | FlushEvent]:
        yield "Hello from the SDK. "
        yield FlushEvent()
        yield "Two more words."

    client = AsyncFishAudio(api_key="test-key", base_url=fake.url.replace("ws://", "http://"))
    audio = b""
    async for chunk in client.tts.stream_websocket(text(), config=config, model="s1"):
        audio += chunk
    return audio


OPTIONS: dict[str, Any] = {
    "reference_id": "voice-1",
    "latency": "balanced",
    "temperature": 0.5,
    "top_p": 0.6,
    "chunk_length": 150,
}


async def test_the_sdk_streams_from_the_fake_and_reads_every_event() -> None:
    async with FakeFishServer() as fake:
        config = TTSConfig(format="pcm", sample_rate=8000, prosody=Prosody(speed=1.2), **OPTIONS)
        audio = await sdk_session(fake, config)
    assert fake.runs == ["Hello from the SDK. ", "Two more words."]
    sent_audio = b"".join(e["audio"] for e in fake.sent if e["event"] == "audio")
    assert audio == sent_audio and len(audio) == 2 * (3200 + 2400)
    assert fake.sent[-1] == {"event": "finish", "reason": "stop"}
    check_server_events(fake.sent)
    [session] = fake.messages
    assert [e["event"] for e in session] == ["start", "text", "flush", "text", "stop"]


async def test_a_refused_request_ends_as_the_sdk_expects() -> None:
    async with FakeFishServer() as fake:
        config = TTSConfig(format="mp3", sample_rate=8000)  # the fake serves PCM only
        raised: list[BaseException] = []
        try:
            await sdk_session(fake, config)
        except* WebSocketError as group:  # httpx-ws raises it from a task group
            raised.extend(group.exceptions)
        assert [str(e) for e in raised] == ["WebSocket stream ended with error"]
    assert [e["event"] for e in fake.sent] == ["log", "finish"]
    check_server_events(fake.sent)


async def test_our_handshake_and_events_are_the_sdks() -> None:
    async with FakeFishServer() as fake:
        config = TTSConfig(
            format="pcm", sample_rate=8000, prosody=Prosody(speed=1.2, volume=3), **OPTIONS
        )
        await sdk_session(fake, config)
        settings = FishAudioTTSService.Settings(
            model="s1",
            voice="voice-1",
            temperature=0.5,
            top_p=0.6,
            chunk_length=150,
            prosody_speed=1.2,
            prosody_volume=3,
        )
        tts = FishAudioTTSService(api_key="test-key", url=fake.url, settings=settings)
        frames = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("Hello from callpipe."),
            LLMTextFrame(" Two more words."),
            LLMFullResponseEndFrame(),
        ]
        await run_test(tts, frames, params=PARAMS)
    check_server_events(fake.sent)
    sdk_events, *ours = [s for s in fake.messages if s]  # (one opened ahead may be closed first)
    assert {p.split("?")[0] for p in fake.paths} == {"/v1/tts/live"}
    for name in ("authorization", "model"):
        assert {h[name] for h in fake.headers} == {fake.headers[0][name]}
    # Our start request, read as the SDK's TTSRequest, is the one the SDK sent.
    sdk_start = StartEvent.model_validate(sdk_events[0])
    for session in ours:
        start = session[0]
        assert StartEvent.model_validate(start) == sdk_start
        assert set(start["request"]) <= set(TTSRequest.model_fields)
        assert set(start["request"]["prosody"]) <= set(Prosody.model_fields)
    # Every later event is one of the SDK's, field for field.
    [used] = [s for s in ours if len(s) > 1]
    models: dict[str, type[BaseModel]] = {
        "text": TextEvent,
        "flush": FlushEvent,
        "stop": CloseEvent,
    }
    for event in used[1:]:
        assert models[event["event"]].model_validate(event).model_dump() == event
    assert [e["event"] for e in used] == ["start", "text", "flush", "text", "flush", "stop"]
