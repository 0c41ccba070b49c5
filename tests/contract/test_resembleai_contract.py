"""FakeResembleServer and ResembleAITTSService against Resemble's documented streaming socket.

Resemble's Python SDK (``resemble`` 1.9) has no client for the WebSocket, so the message
shapes are transcribed below, strictly, from Resemble's reference
(https://docs.resemble.ai/voice-generation/text-to-speech/streaming-websocket): the request
payload, the JSON audio frame, the ``audio_end`` terminal message; the error message's fields
are the ones Pipecat 1.14 reads (``error_name``, ``message``, ``status_code``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter
from websockets.asyncio.client import connect

from callpipe.frames.frames import ErrorFrame, InterruptionFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.resembleai.tts import ResembleAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.resembleai import FakeResembleServer
from callpipe.testing.pipeline import SleepFrame

from .replay import reply


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SynthesisRequest(_Strict):
    voice_uuid: str
    project_uuid: str | None = None
    data: str
    binary_response: bool | None = None
    request_id: int | None = None
    output_format: Literal["wav", "mp3"] | None = None
    sample_rate: Literal[8000, 16000, 22050, 32000, 44100] | None = None
    precision: Literal["PCM_32", "PCM_24", "PCM_16", "MULAW"] | None = None
    no_audio_header: bool | None = None


class Timestamps(_Strict):
    graph_chars: list[str]
    graph_times: list[list[float]]
    phon_chars: list[str]
    phon_times: list[list[float]]


class AudioFrame(_Strict):
    type: Literal["audio"]
    audio_content: str
    audio_timestamps: Timestamps
    sample_rate: int
    request_id: int


class AudioEnd(_Strict):
    type: Literal["audio_end"]
    request_id: int


class ErrorMessage(_Strict):
    type: Literal["error"]
    error_name: str
    message: str
    status_code: int
    request_id: int | None = None


SERVER = TypeAdapter(AudioFrame | AudioEnd | ErrorMessage)
DOC_REQUEST = {
    "voice_uuid": "<voice_uuid>",
    "project_uuid": "<project_uuid>",
    "data": "<text or SSML>",
    "binary_response": False,
    "request_id": 0,
    "output_format": "wav",
    "sample_rate": 32000,
    "precision": "PCM_32",
    "no_audio_header": False,
}
DOC_FRAME = {
    "type": "audio",
    "audio_content": "<base64>",
    "audio_timestamps": {
        "graph_chars": ["H", "e"],
        "graph_times": [[0.0374, 0.1247], [0.0873, 0.1746]],
        "phon_chars": ["h", "ˈe"],
        "phon_times": [[0.0374, 0.1247], [0.0873, 0.1746]],
    },
    "sample_rate": 32000,
    "request_id": 0,
}


def test_the_documented_examples_fit_the_transcribed_models() -> None:
    SynthesisRequest.model_validate(DOC_REQUEST)
    SERVER.validate_python(DOC_FRAME)
    SERVER.validate_python({"type": "audio_end", "request_id": 0})


async def test_a_documented_request_against_the_fake() -> None:
    async with FakeResembleServer() as fake:
        request = DOC_REQUEST | {"data": "Hello there.", "precision": "PCM_16"}
        headers = {"Authorization": "Bearer test-key"}
        async with connect(fake.url + "/stream", additional_headers=headers) as ws:
            await ws.send(json.dumps(request))
            while True:
                event = json.loads(await ws.recv())
                SERVER.validate_python(event)
                if event["type"] == "audio_end":
                    break
    chars = [
        c for e in fake.sent if e["type"] == "audio" for c in e["audio_timestamps"]["graph_chars"]
    ]
    assert "".join(chars) == "Hello there."


async def test_every_fake_answer_and_every_service_request_is_documented() -> None:
    async with FakeResembleServer(chunk_delay=0.005) as fake:
        settings = ResembleAITTSService.Settings(voice="voice-uuid")
        frames: list[Any] = [
            *reply("Hello there.", " How are you?"),
            *reply(" ".join(["word"] * 30) + "."),
            SleepFrame(0.05),
            InterruptionFrame(),
            *reply("Again."),
        ]
        for rate in (8000, 16000, 24000):
            tts = ResembleAITTSService(
                api_key="test-key", url=fake.url + "/stream", settings=settings
            )
            params = PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)
            _, up = await run_test(tts, frames, params=params)
            assert not [f for f in up if isinstance(f, ErrorFrame)]
        fake.error_next = "overloaded"
        tts = ResembleAITTSService(api_key="test-key", url=fake.url + "/stream", settings=settings)
        await run_test(tts, reply("Oops."), params=params)
    assert {e["type"] for e in fake.sent} == {"audio", "audio_end", "error"}
    for event in fake.sent:
        SERVER.validate_python(event)
    for request in fake.requests:
        SynthesisRequest.model_validate(request)
    assert {r["sample_rate"] for r in fake.requests} == {8000, 16000, 22050}
