"""FakeAsyncAIServer, FakeAsyncAIHTTPServer and the Async services against Async's documented
text-to-speech messages.

Async publishes no Python SDK (the PyPI ``asyncai`` package is an unrelated 2023 project), so
the shapes below are transcribed, strictly, from Async's API reference as Pipecat 1.14 speaks
it (docs.async.com: the ``/text_to_speech/websocket/ws`` socket and ``POST
/text_to_speech/streaming``):

- the socket's query: ``api_key`` and ``version``;
- client messages: the session's init ``{model_id, voice: {mode: "id", id}, output_format:
  {container, encoding, sample_rate}, language}``, then ``{transcript, context_id, force}``,
  ``{context_id, close_context: true, transcript}``, the keepalive ``{transcript}`` and
  ``{terminate: true}``;
- server messages: ``{audio, context_id}`` (base64) and ``{final: true, context_id}``;
- the HTTP request: ``x-api-key`` and ``version`` headers and the init's fields plus
  ``transcript``; the answer is the raw audio.

Every message the fake sends must validate as a documented server message, every message our
services send as a documented client message; a documented exchange is replayed through the
socket service too.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter
from websockets.asyncio.client import connect

from callpipe.frames.frames import ErrorFrame, InterruptionFrame, TTSAudioRawFrame, TTSTextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.asyncai.tts import AsyncAIHttpTTSService, AsyncAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.asyncai import FakeAsyncAIHTTPServer, FakeAsyncAIServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

from .replay import ReplayServer, reply

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
VOICE = "e0f39dc4-f691-4e78-bba5-5c636692cc04"
WS_PATH = "/text_to_speech/websocket/ws"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- client → server


class Voice(_Strict):
    mode: Literal["id"]
    id: str


class OutputFormat(_Strict):
    container: Literal["raw"]
    encoding: Literal["pcm_s16le", "pcm_f32le", "pcm_mulaw", "pcm_alaw"]
    sample_rate: int


class InitMessage(_Strict):
    model_id: str
    voice: Voice
    output_format: OutputFormat
    language: str | None


class TranscriptMessage(_Strict):
    transcript: str
    context_id: str
    force: bool


class CloseContextMessage(_Strict):
    context_id: str
    close_context: Literal[True]
    transcript: Literal[""]


class KeepaliveMessage(_Strict):
    transcript: Literal[" "]


class TerminateMessage(_Strict):
    terminate: Literal[True]


CLIENT = TypeAdapter(TranscriptMessage | CloseContextMessage | KeepaliveMessage | TerminateMessage)


class HttpRequest(InitMessage):
    transcript: str


# ---------------------------------------------------------------------- server → client


class AudioMessage(_Strict):
    audio: str
    context_id: str


class FinalMessage(_Strict):
    final: Literal[True]
    context_id: str


SERVER = TypeAdapter(AudioMessage | FinalMessage)


def init(rate: int = 8000) -> dict[str, Any]:
    return {
        "model_id": "async_flash_v1.5",
        "voice": {"mode": "id", "id": VOICE},
        "output_format": {"container": "raw", "encoding": "pcm_s16le", "sample_rate": rate},
        "language": "en",
    }


async def test_the_fake_answers_documented_messages_with_documented_ones() -> None:
    async with FakeAsyncAIServer(secs_per_word=0.1) as fake:
        url = f"{fake.url}{WS_PATH}?api_key=test-key&version=v1"
        received: list[dict[str, Any]] = []
        async with connect(url) as ws:
            await ws.send(json.dumps(init(16000)))
            await ws.send(json.dumps({"transcript": " "}))  # a keepalive: no answer
            say = {"transcript": "Hello there.", "context_id": "ctx-1", "force": True}
            await ws.send(json.dumps(say))
            while sum(len(base64.b64decode(m.get("audio", ""))) for m in received) < 6400:
                received.append(json.loads(await ws.recv()))
            close = {"context_id": "ctx-1", "close_context": True, "transcript": ""}
            await ws.send(json.dumps(close))
            received.append(json.loads(await ws.recv()))
            await ws.send(json.dumps({"terminate": True}))
    for message in received:
        SERVER.validate_python(message)
    assert received[-1] == {"final": True, "context_id": "ctx-1"}
    audio = b"".join(base64.b64decode(m["audio"]) for m in received[:-1])
    assert audio == tone_pcm(0.2, 16000)  # two words at the session's rate


async def test_the_fake_refuses_a_bad_key_and_a_missing_version() -> None:
    async with FakeAsyncAIServer() as fake:
        for query in ("api_key=wrong&version=v1", "api_key=test-key"):
            try:
                async with connect(f"{fake.url}{WS_PATH}?{query}"):
                    raise AssertionError("the handshake should be refused")
            except Exception as exc:  # websockets' InvalidStatus
                assert "HTTP 40" in str(exc)


async def test_our_socket_service_sends_only_documented_messages() -> None:
    async with FakeAsyncAIServer(secs_per_word=0.05, chunk_delay=0.005) as fake:
        tts = AsyncAITTSService(api_key="test-key", url=fake.url + WS_PATH, voice_id=VOICE)
        tts.keepalive_secs = 0.1
        tts.quiet_secs = 0.1
        frames = [
            *reply("Hello there.", " Second sentence here."),
            SleepFrame(0.4),
            *reply(" ".join(["word"] * 20) + "."),
            SleepFrame(0.05),
            InterruptionFrame(),
            SleepFrame(0.2),
        ]
        _, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert set(fake.queries[0]) == {"api_key", "version"}
    for message in fake.inits:
        InitMessage.model_validate(message)
    for message in fake.messages:
        CLIENT.validate_python(message)
    kinds = {type(CLIENT.validate_python(m)).__name__ for m in fake.messages}
    assert kinds >= {"TranscriptMessage", "CloseContextMessage", "KeepaliveMessage"}
    for message in fake.sent:
        SERVER.validate_python(message)


async def test_a_documented_exchange_replayed_through_the_service() -> None:
    pcm = tone_pcm(0.3, 8000)

    async def script(message: dict[str, Any]) -> list[dict[str, Any]]:
        context = message.get("context_id")
        if message.get("close_context"):
            return [{"final": True, "context_id": context}]
        if message.get("force") and str(message.get("transcript", "")).strip():
            half = len(pcm) // 2
            return [
                {"audio": base64.b64encode(part).decode(), "context_id": context}
                for part in (pcm[:half], pcm[half:])
            ]
        return []

    async with ReplayServer(script) as server:
        tts = AsyncAITTSService(api_key="k", url=server.url + WS_PATH, voice_id=VOICE)
        tts.quiet_secs = 0.1
        down, up = await run_test(tts, reply("Hello from a replay."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    InitMessage.model_validate(server.received[0])
    assert b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame)) == pcm
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hello from a replay."]


async def test_our_http_request_is_the_documented_one() -> None:
    async with FakeAsyncAIHTTPServer(secs_per_word=0.1) as fake:
        tts = AsyncAIHttpTTSService(api_key="test-key", url=fake.base_url, voice_id=VOICE)
        down, up = await run_test(tts, reply("One two three."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    [body] = fake.requests
    HttpRequest.model_validate(body)
    headers = fake.headers[0]
    assert headers["x-api-key"] == "test-key" and headers["version"] == "v1"
    assert headers["content-type"] == "application/json"
    played = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert played == tone_pcm(0.3, 8000)
