"""FakeMiniMaxServer and MiniMaxHttpTTSService against MiniMax's documented T2A v2 HTTP API.

MiniMax publishes no official Python SDK for T2A (the PyPI ``minimax`` package is an unrelated
game-search library; ``minimax-client`` and ``minimax-python`` are unofficial), so the shapes
are transcribed below, strictly, from MiniMax's API reference:

- https://platform.minimax.io/docs/api-reference/speech-t2a-http
- https://platform.minimax.io/docs/api-reference/speech/t2a/api/openapi.json (``T2aV2Req``,
  ``T2aV2Resp``, ``T2AVoiceSetting``, ``T2AAudioSetting``, ``T2AStreamOption``)

Every answer and event the fake sends must validate as a ``T2aV2Resp``, every request our
service makes as a ``T2aV2Req`` (with a Bearer key); the documented example answers are
replayed through the service too.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from callpipe.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.minimax.tts import MiniMaxHttpTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes._server import LocalASGIServer, fake_app
from callpipe.testing.fakes.minimax import FakeMiniMaxServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.transcriptions.language import Language

from .replay import reply

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- request (T2aV2Req)

Model = Literal[
    "speech-2.8-hd",
    "speech-2.8-turbo",
    "speech-2.6-hd",
    "speech-2.6-turbo",
    "speech-02-hd",
    "speech-02-turbo",
    "speech-01-hd",
    "speech-01-turbo",
]
Emotion = Literal[
    "happy", "sad", "angry", "fearful", "disgusted", "surprised", "calm", "fluent", "whisper"
]
LanguageBoost = Literal[
    "Chinese",
    "Chinese,Yue",
    "English",
    "Arabic",
    "Russian",
    "Spanish",
    "French",
    "Portuguese",
    "German",
    "Turkish",
    "Dutch",
    "Ukrainian",
    "Vietnamese",
    "Indonesian",
    "Japanese",
    "Italian",
    "Korean",
    "Thai",
    "Polish",
    "Romanian",
    "Greek",
    "Czech",
    "Finnish",
    "Hindi",
    "Bulgarian",
    "Danish",
    "Hebrew",
    "Malay",
    "Persian",
    "Slovak",
    "Swedish",
    "Croatian",
    "Filipino",
    "Hungarian",
    "Norwegian",
    "Slovenian",
    "Catalan",
    "Nynorsk",
    "Tamil",
    "Afrikaans",
    "auto",
]


class StreamOption(_Strict):
    exclude_aggregated_audio: bool | None = None


class VoiceSetting(_Strict):
    voice_id: str
    speed: float | int | None = Field(default=None, ge=0.5, le=2)
    vol: float | int | None = Field(default=None, gt=0, le=10)
    pitch: int | None = Field(default=None, ge=-12, le=12)
    emotion: Emotion | None = None
    text_normalization: bool | None = None
    latex_read: bool | None = None


class AudioSetting(_Strict):
    sample_rate: Literal[8000, 16000, 22050, 24000, 32000, 44100] | None = None
    bitrate: Literal[32000, 64000, 128000, 256000] | None = None
    format: Literal["mp3", "pcm", "flac", "wav", "pcmu_raw", "pcmu_wav", "opus"] | None = None
    channel: Literal[1, 2] | None = None
    force_cbr: bool | None = None


class PronunciationDict(_Strict):
    tone: list[str] | None = None


class TimbreWeight(_Strict):
    voice_id: str
    weight: int = Field(ge=1, le=100)


class VoiceModify(_Strict):
    pitch: int | None = Field(default=None, ge=-100, le=100)
    intensity: int | None = Field(default=None, ge=-100, le=100)
    timbre: int | None = Field(default=None, ge=-100, le=100)
    sound_effects: (
        Literal["spacious_echo", "auditorium_echo", "lofi_telephone", "robotic"] | None
    ) = None


class T2aV2Req(_Strict):
    model: Model
    text: str = Field(max_length=9999)
    stream: bool | None = None
    stream_options: StreamOption | None = None
    voice_setting: VoiceSetting | None = None
    audio_setting: AudioSetting | None = None
    pronunciation_dict: PronunciationDict | None = None
    timbre_weights: list[TimbreWeight] | None = None
    language_boost: LanguageBoost | None = None
    voice_modify: VoiceModify | None = None
    subtitle_enable: bool | None = None
    subtitle_type: Literal["sentence", "word", "word_streaming"] | None = None
    output_format: Literal["url", "hex"] | None = None


# ---------------------------------------------------------------------- answer (T2aV2Resp)


class RespData(_Strict):
    audio: str | None = None
    subtitle_file: str | None = None
    status: Literal[1, 2] | None = None


class ExtraInfo(_Strict):
    audio_length: int | None = None
    audio_sample_rate: int | None = None
    audio_size: int | None = None
    bitrate: int | None = None
    audio_format: Literal["mp3", "pcm", "flac"] | None = None
    audio_channel: int | None = None
    invisible_character_ratio: float | int | None = None
    usage_characters: int | None = None
    word_count: int | None = None


class BaseResp(_Strict):
    status_code: int
    status_msg: str


class T2aV2Resp(_Strict):
    data: RespData | None = None
    trace_id: str | None = None
    extra_info: ExtraInfo | None = None
    base_resp: BaseResp


RESPONSE = TypeAdapter(T2aV2Resp)

# The documented examples (hex placeholders made real hex).
DOC_REQUEST = {
    "model": "speech-2.8-hd",
    "text": "Omg(sighs), the real danger is not that computers start thinking like people.",
    "stream": True,
    "language_boost": "auto",
    "output_format": "hex",
    "voice_setting": {"voice_id": "English_expressive_narrator", "speed": 1, "vol": 1, "pitch": 0},
    "pronunciation_dict": {"tone": ["Omg/Oh my god"]},
    "audio_setting": {"sample_rate": 32000, "bitrate": 128000, "format": "mp3", "channel": 1},
    "voice_modify": {"pitch": 0, "intensity": 0, "timbre": 0, "sound_effects": "spacious_echo"},
}
DOC_FINAL = {
    "data": {"audio": "00", "status": 2},
    "extra_info": {
        "audio_length": 12910,
        "audio_sample_rate": 32000,
        "audio_size": 205677,
        "bitrate": 128000,
        "word_count": 163,
        "invisible_character_ratio": 0,
        "usage_characters": 163,
        "audio_format": "mp3",
        "audio_channel": 1,
    },
    "trace_id": "04ece790375f3ca2edbb44e8c4c200bf",
    "base_resp": {"status_code": 0, "status_msg": "success"},
}


def doc_chunk(audio: bytes) -> dict[str, Any]:
    return {
        "data": {"audio": audio.hex(), "status": 1},
        "trace_id": "01b8bf9bb7433cc75c18eee6cfa8fe21",
        "base_resp": {"status_code": 0, "status_msg": ""},
    }


def test_the_documented_examples_fit_the_transcribed_models() -> None:
    T2aV2Req.model_validate(DOC_REQUEST)
    RESPONSE.validate_python(DOC_FINAL)
    RESPONSE.validate_python(doc_chunk(b"\x00\x01"))
    with pytest.raises(ValueError):
        T2aV2Req.model_validate({**DOC_REQUEST, "audio_setting": {"sample_rate": 48000}})


def _events(text: str) -> list[dict[str, Any]]:
    """The ``data:`` events of a streamed answer, read as MiniMax's own example reads them."""
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


async def test_every_fake_answer_is_a_documented_response() -> None:
    async with FakeMiniMaxServer() as fake:
        url = f"{fake.base_url}/v1/t2a_v2"
        bearer = {"Authorization": "Bearer test-key"}
        async with httpx.AsyncClient(timeout=10) as http:
            streamed = await http.post(url, json=DOC_REQUEST | _pcm(8000), headers=bearer)
            events = _events(streamed.text)
            assert [e["data"]["status"] for e in events][-2:] == [1, 2]
            assert events[-1]["data"]["audio"] == "".join(e["data"]["audio"] for e in events[:-1])
            whole = await http.post(
                url, json=DOC_REQUEST | _pcm(16000) | {"stream": False}, headers=bearer
            )
            bad_key = await http.post(url, json=DOC_REQUEST, headers={"Authorization": "Bearer x"})
            bad_rate = await http.post(
                url, json=DOC_REQUEST | {"audio_setting": {"sample_rate": 48000}}, headers=bearer
            )
            fake.error_after = 1
            failed = await http.post(url, json=DOC_REQUEST | _pcm(8000), headers=bearer)
        assert bad_key.json()["base_resp"]["status_code"] == 1004
        assert bad_rate.json()["base_resp"]["status_code"] == 2013
        assert _events(failed.text)[-1]["base_resp"]["status_code"] == 1000
        for answer in (whole, bad_key, bad_rate):
            assert answer.status_code == 200  # MiniMax reports failures in base_resp
        assert fake.events
        for event in fake.events:
            RESPONSE.validate_python(event)


def _pcm(rate: int) -> dict[str, Any]:
    return {"audio_setting": {"sample_rate": rate, "format": "pcm", "channel": 1}}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stream": False},
        {
            "settings": MiniMaxHttpTTSService.Settings(
                language=Language.ZH_TW, emotion="whisper", latex_read=True, volume=0.5
            )
        },
        {"params": MiniMaxHttpTTSService.InputParams(language="yue", text_normalization=True)},
    ],
)
async def test_every_service_request_is_documented(kwargs: dict[str, Any]) -> None:
    async with FakeMiniMaxServer() as fake:
        tts = MiniMaxHttpTTSService(
            api_key="test-key", base_url=fake.base_url, group_id="g", **kwargs
        )
        _, up = await run_test(tts, reply("Hello there.", " Bye."), params=PHONE)
    assert [f for f in up if isinstance(f, ErrorFrame)] == []
    assert len(fake.requests) == 2
    for body, headers in zip(fake.requests, fake.headers, strict=True):
        T2aV2Req.model_validate(body)
        assert headers["authorization"] == "Bearer test-key"
        assert headers["content-type"].startswith("application/json")


async def test_the_documented_answers_replayed_through_the_service() -> None:
    pcm = tone_pcm(0.2, 8000)
    halves = (pcm[: len(pcm) // 2], pcm[len(pcm) // 2 :])
    # The last event repeats the whole audio, as documented when it is not excluded.
    final = DOC_FINAL | {"data": {"audio": pcm.hex(), "status": 2}}
    answers: list[Response] = []

    async def endpoint(request: Request) -> Response:
        return answers.pop(0)

    def sse(events: list[dict[str, Any]]) -> StreamingResponse:
        async def body() -> Any:
            for event in events:
                yield f"data: {json.dumps(event)}\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    answers.append(sse([doc_chunk(halves[0]), doc_chunk(halves[1]), final]))
    failure = {"base_resp": {"status_code": 1004, "status_msg": "login fail"}}
    answers.append(JSONResponse(failure))
    server = LocalASGIServer(fake_app([Route("/v1/t2a_v2", endpoint, methods=["POST"])]))
    await server.start()
    try:
        tts = MiniMaxHttpTTSService(api_key="k", base_url=f"http://127.0.0.1:{server.port}")
        frames = [TTSSpeakFrame("One."), TTSSpeakFrame("Two.")]
        down, up = await run_test(tts, frames, params=PHONE)
    finally:
        await server.stop()
    played = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert played == pcm  # the chunks once, not the repeat
    [error] = [f for f in up if isinstance(f, ErrorFrame)]
    assert error.fatal and "1004" in error.error
