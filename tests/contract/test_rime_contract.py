"""FakeRimeServer and RimeTTSService against Rime's documented JSON WebSocket messages.

Rime publishes no Python SDK (the PyPI ``rime`` package is unrelated), so the message shapes
are transcribed below, strictly, from Rime's API reference:

- https://docs.rime.ai/api-reference/coda/websockets-json (``/ws3``)
- https://docs.rime.ai/api-reference/mistv2/websockets-json (``/ws2``: ``done`` adds
  ``"done": true``)
- https://docs.rime.ai/docs/websockets-segment (``segment``, ``flush``, ``eos``)
- https://docs.rime.ai/api-reference/coda/http and .../mistv2/http (``POST /v1/rime-tts``)

Every event the fake sends must validate as one of the documented server events, every message
our service sends as a documented client message, and its handshake may use only documented
query parameters with documented values. The documented example payloads are replayed through
the service too.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedOK

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import ErrorFrame, InterruptionFrame, TTSAudioRawFrame, TTSTextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.rime.tts import RimeHttpTTSService, RimeTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.rime import FakeRimeServer
from callpipe.testing.pipeline import SleepFrame

from .replay import ReplayServer, reply

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- client → server


class TextMessage(_Strict):
    text: str
    contextId: str | None = None


class OperationMessage(_Strict):
    operation: Literal["clear", "flush", "eos"]


CLIENT = TypeAdapter(TextMessage | OperationMessage)


# ---------------------------------------------------------------------- server → client


class AudioChunkEvent(_Strict):
    type: Literal["chunk"]
    data: str
    contextId: str | None


class WordTimestamps(_Strict):
    words: list[str]
    start: list[float | int]
    end: list[float | int]


class TimestampsEvent(_Strict):
    type: Literal["timestamps"]
    word_timestamps: WordTimestamps
    contextId: str | None


class DoneEvent(_Strict):
    """``/ws3``."""

    type: Literal["done"]
    contextId: str | None


class LegacyDoneEvent(DoneEvent):
    """``/ws2``."""

    done: Literal[True]


class ErrorEvent(_Strict):
    type: Literal["error"]
    message: str


SERVER: dict[str, TypeAdapter[Any]] = {
    "/ws3": TypeAdapter(AudioChunkEvent | TimestampsEvent | DoneEvent | ErrorEvent),
    "/ws2": TypeAdapter(AudioChunkEvent | TimestampsEvent | LegacyDoneEvent | ErrorEvent),
}

# The documented query parameters of the JSON sockets, and the values they list.
QUERY = {
    "speaker",
    "modelId",
    "audioFormat",
    "samplingRate",
    "lang",
    "segment",
    "speedAlpha",
    "pauseBetweenBrackets",
    "phonemizeBetweenBrackets",
    "inlineSpeedAlpha",
    "noTextNormalization",
}
AUDIO_FORMATS = {"mp3", "mulaw", "pcm"}
LANGS = set("en es fr pt de ja ar hi it eng spa fra por ger jpn ara hin ita".split())
SEGMENTS = {"immediate", "never", "bySentence"}

# Documented example payloads (the two timestamps examples of the API reference).
CODA_TIMESTAMPS = {
    "type": "timestamps",
    "word_timestamps": {
        "words": ["Hello", "from", "Coda", "over", "JSON", "websockets."],
        "start": [0, 0.36106, 0.54159, 0.72212, 0.90265, 1.08318],
        "end": [0.36106, 0.54159, 0.72212, 0.90265, 1.08318, 2.88848],
    },
    "contextId": None,
}
MIST_TIMESTAMPS = {
    "type": "timestamps",
    "word_timestamps": {
        "words": ["Hello", "from", "a", "timestamps", "probe", "."],
        "start": [0, 0.35991, 0.51084, 0.59211, 1.10295, 1.41642],
        "end": [0.35991, 0.51084, 0.59211, 1.10295, 1.41642, 1.5093],
    },
    "contextId": None,
}
DOCS_EXAMPLE = [
    {"text": "This "},
    {"text": "is "},
    {"text": "a "},
    {"text": "test "},
    {"operation": "clear"},
    {"text": "This "},
    {"text": "is "},
    {"text": "an "},
    {"text": "incomplete "},
    {"text": "sentence "},
    {"operation": "eos"},
]
"""The message list of the docs' Python example (clear drops the first four, eos speaks the
rest and closes)."""


def test_the_documented_examples_fit_the_transcribed_models() -> None:
    for path in SERVER:
        SERVER[path].validate_python(CODA_TIMESTAMPS)
        SERVER[path].validate_python(MIST_TIMESTAMPS)
    SERVER["/ws3"].validate_python({"type": "done", "contextId": None})
    SERVER["/ws2"].validate_python({"type": "done", "done": True, "contextId": None})
    for message in DOCS_EXAMPLE:
        CLIENT.validate_python(message)


async def test_the_docs_example_client_against_the_fake() -> None:
    async with FakeRimeServer() as fake:
        for path in ("/ws3", "/ws2"):
            url = f"{fake.url}{path}?speaker=astra&modelId=mistv2&audioFormat=pcm"
            events: list[dict[str, Any]] = []
            headers = {"Authorization": "Bearer test-key"}
            async with connect(url, additional_headers=headers) as ws:
                for message in DOCS_EXAMPLE:
                    await ws.send(json.dumps(message))
                try:
                    while True:
                        events.append(json.loads(await ws.recv()))
                except ConnectionClosedOK:
                    pass  # eos: the server closes once the rest is spoken
            for event in events:
                SERVER[path].validate_python(event)
            words = [e for e in events if e["type"] == "timestamps"]
            assert words[0]["word_timestamps"]["words"] == "This is an incomplete sentence".split()
            assert [e["type"] for e in events][-1] == "done"
            audio = b"".join(base64.b64decode(e["data"]) for e in events if e["type"] == "chunk")
            assert len(audio) == 2 * int(5 * fake.secs_per_word * 24000)  # 24 kHz by default


async def test_every_fake_event_and_every_service_message_is_documented() -> None:
    async with FakeRimeServer(split_punctuation=True, chunk_delay=0.01) as fake:
        frames = [
            *reply("Hello there.", " How are you?"),
            *reply(" ".join(["word"] * 30) + ".", " More."),
            SleepFrame(0.05),
            InterruptionFrame(),
            *reply("Again."),
        ]
        tts = RimeTTSService(api_key="test-key", voice_id="astra", url=fake.url)
        _, up = await run_test(tts, frames, params=PARAMS)
        token = RimeTTSService(
            api_key="test-key",
            url=fake.url,
            text_aggregation_mode="token",
            settings=RimeTTSService.Settings(
                voice="cove", model="mistv2", language="es", segment="never", speedAlpha=1.2
            ),
        )
        _, up_token = await run_test(token, reply("Hola", " amigo."), params=PARAMS)
        fake.error_next = "malformed"
        await run_test(
            RimeTTSService(api_key="test-key", voice_id="astra", url=fake.url),
            reply("Oops."),
            params=PARAMS,
        )
    assert not [f for f in up + up_token if isinstance(f, ErrorFrame)]
    kinds = {e["type"] for e in fake.events}
    assert kinds == {"chunk", "timestamps", "done", "error"}
    for event in fake.events:
        SERVER["/ws3"].validate_python(event)
    operations = set()
    for message in fake.messages:
        parsed = CLIENT.validate_python(message)
        if isinstance(parsed, OperationMessage):
            operations.add(parsed.operation)
    assert "flush" in operations and operations <= {"flush", "clear"}
    for query in fake.queries:
        assert set(query) <= QUERY
        assert query["audioFormat"] in AUDIO_FORMATS
        assert query["samplingRate"].isdigit()
        assert query.get("lang", "en") in LANGS
        assert query.get("segment", "bySentence") in SEGMENTS
    assert all(h["authorization"] == "Bearer test-key" for h in fake.headers)


async def test_documented_payloads_replayed_through_the_service() -> None:
    """Rime's Mist v2 timestamps example (the final "." as a word of its own), the audio it
    times and a ``done``, answered to our flush with our contextId."""

    async def script(message: dict[str, Any]) -> list[dict[str, Any]]:
        if message.get("operation") != "flush":
            return []
        context_id = server.received[-2]["contextId"]
        timestamps = {**MIST_TIMESTAMPS, "contextId": context_id}
        pcm = tone_pcm(1.5093, 8000)
        chunk = base64.b64encode(pcm_to_ulaw(pcm)).decode()
        return [
            timestamps,
            {"type": "chunk", "data": chunk, "contextId": context_id},
            {"type": "done", "contextId": context_id},
        ]

    async with ReplayServer(script) as server:
        tts = RimeTTSService(api_key="k", voice_id="astra", url=server.url + "/ws3")
        down, up = await run_test(tts, reply("Hello from a timestamps probe."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["Hello", "from", "a", "timestamps", "probe."]
    audio = sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame))
    assert audio == 2 * int(1.5093 * 8000)


# The streaming HTTP endpoint's documented body fields and Accept types (Coda and Mist v2 pages).
HTTP_BODY = {
    "coda": {"speaker", "text", "modelId", "lang", "samplingRate", "timeScaleFactor"},
    "mistv2": {
        "speaker",
        "text",
        "modelId",
        "lang",
        "samplingRate",
        "speedAlpha",
        "pauseBetweenBrackets",
        "phonemizeBetweenBrackets",
        "inlineSpeedAlpha",
        "noTextNormalization",
        "reduceLatency",
    },
}
HTTP_ACCEPT = {"audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mpeg", "audio/wav"}
HTTP_ACCEPT |= {"audio/L16", "audio/PCMU"}


def test_http_requests_use_documented_fields_and_types() -> None:
    coda = RimeHttpTTSService(
        api_key="k", voice_id="astra", settings=RimeHttpTTSService.Settings(timeScaleFactor=1.1)
    )
    mist = RimeHttpTTSService(
        api_key="k",
        voice_id="cove",
        model="mistv2",
        params=RimeHttpTTSService.InputParams(inline_speed_alpha="0.5, 3"),
    )
    for tts, model in ((coda, "coda"), (mist, "mistv2")):
        body = tts.request_body("Hello [really] [fast].")
        assert body["modelId"] == model
        assert set(body) <= HTTP_BODY[model]
        assert body.get("lang", "en") in LANGS
        assert tts.audio_format in HTTP_ACCEPT
