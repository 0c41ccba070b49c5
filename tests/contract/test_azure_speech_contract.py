"""FakeAzureSpeechServer and the Azure speech services against Azure's documented REST APIs.

The only official Python client of Azure Speech is the native Speech SDK
(``azure-cognitiveservices-speech``), which speaks its own WebSocket protocol (over ``wss://``,
even where a path matches) and never makes these REST requests, so it cannot exercise them.
The shapes below are transcribed, strictly, from Microsoft's REST references:

- https://learn.microsoft.com/azure/ai-services/speech-service/rest-text-to-speech (headers,
  status codes, the ``Audio outputs`` list, the sample request)
- https://learn.microsoft.com/azure/ai-services/speech-service/rest-speech-to-text-short
  (query parameters, headers, the ``RecognitionStatus`` values, the ``simple`` and ``detailed``
  sample responses, the 60-second limit)
- https://learn.microsoft.com/azure/ai-services/speech-service/speech-services-private-link
  (the ``/tts`` and ``/stt`` paths of a custom domain)

Every request our services send must be one the docs describe, and every answer the fake sends
must validate as a documented response; the documented samples are replayed through the fake
(the request) and through the service (the responses).
"""

from __future__ import annotations

import io
import wave
from collections.abc import AsyncIterator
from typing import Any, Literal
from xml.etree import ElementTree

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.azure.stt import AzureSTTService
from callpipe.services.azure.tts import AzureHttpTTSService, AzureTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes._server import LocalASGIServer, fake_app
from callpipe.testing.fakes.azure import FakeAzureSpeechServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

from .replay import reply

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- text to speech

STREAMING_FORMATS = set(
    """amr-wb-16000hz audio-16khz-16bit-32kbps-mono-opus audio-16khz-32kbitrate-mono-mp3
    audio-16khz-64kbitrate-mono-mp3 audio-16khz-128kbitrate-mono-mp3
    audio-24khz-16bit-24kbps-mono-opus audio-24khz-16bit-48kbps-mono-opus
    audio-24khz-48kbitrate-mono-mp3 audio-24khz-96kbitrate-mono-mp3
    audio-24khz-160kbitrate-mono-mp3 audio-48khz-96kbitrate-mono-mp3
    audio-48khz-192kbitrate-mono-mp3 ogg-16khz-16bit-mono-opus ogg-24khz-16bit-mono-opus
    ogg-48khz-16bit-mono-opus raw-8khz-8bit-mono-alaw raw-8khz-8bit-mono-mulaw
    raw-8khz-16bit-mono-pcm raw-16khz-16bit-mono-pcm raw-16khz-16bit-mono-truesilk
    raw-22050hz-16bit-mono-pcm raw-24khz-16bit-mono-pcm raw-24khz-16bit-mono-truesilk
    raw-44100hz-16bit-mono-pcm raw-48khz-16bit-mono-pcm webm-16khz-16bit-mono-opus
    webm-24khz-16bit-24kbps-mono-opus webm-24khz-16bit-mono-opus""".split()
)
"""The documented streaming ``X-Microsoft-OutputFormat`` values."""

SAMPLE_SSML = (
    "<speak version='1.0' xml:lang='en-US'><voice xml:lang='en-US' xml:gender='Male'\n"
    "    name='en-US-ChristopherNeural'>\n"
    "        I'm excited to try text to speech!\n"
    "</voice></speak>"
)
"""The documented sample request's body."""

SSML_NS = "{http://www.w3.org/2001/10/synthesis}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def assert_documented_tts_request(headers: dict[str, str], ssml: str) -> None:
    assert "ocp-apim-subscription-key" in headers or "authorization" in headers
    assert headers["content-type"] == "application/ssml+xml"
    assert headers["x-microsoft-outputformat"] in STREAMING_FORMATS
    assert 0 < len(headers["user-agent"]) < 255
    root = ElementTree.fromstring(ssml)
    assert root.tag == f"{SSML_NS}speak" and root.get("version") == "1.0" and root.get(XML_LANG)
    voices = root.findall(f"{SSML_NS}voice")
    assert len(voices) == 1 and voices[0].get("name")


@pytest.fixture
async def server() -> AsyncIterator[FakeAzureSpeechServer]:
    async with FakeAzureSpeechServer(secs_per_word=0.05) as fake:
        yield fake


@pytest.mark.parametrize("cls", [AzureHttpTTSService, AzureTTSService])
@pytest.mark.parametrize("rate", [8000, 16000, 24000, 32000])
async def test_our_speech_requests_are_documented(
    server: FakeAzureSpeechServer, cls: type[AzureHttpTTSService], rate: int
) -> None:
    settings = cls.Settings(style="cheerful", role="Girl", rate="+10%", emphasis="moderate")
    tts = cls(api_key="test-key", private_endpoint=server.base_url, settings=settings)
    params = PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)
    await run_test(tts, reply("Fish & chips < 5 'quid'."), params=params)
    [request] = server.speech_requests
    assert request["path"] == "/tts/cognitiveservices/v1"
    assert_documented_tts_request(request["headers"], request["ssml"])


async def test_the_documented_sample_request_is_served(server: FakeAzureSpeechServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/cognitiveservices/v1",
            content=SAMPLE_SSML,
            headers={
                "Ocp-Apim-Subscription-Key": "test-key",
                "Content-Type": "application/ssml+xml",
                "X-Microsoft-OutputFormat": "raw-16khz-16bit-mono-pcm",
                "User-Agent": "contract-test",
            },
        )
    assert response.status_code == 200
    words = len("I'm excited to try text to speech!".split())
    assert len(response.content) == int(words * 0.05 * 16000) * 2


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Ocp-Apim-Subscription-Key": "wrong"}, 401),
        ({"Content-Type": "text/plain"}, 415),
        ({"X-Microsoft-OutputFormat": ""}, 400),
    ],
)
async def test_the_fake_answers_the_documented_statuses(
    server: FakeAzureSpeechServer, headers: dict[str, str], status: int
) -> None:
    sent = {
        "Ocp-Apim-Subscription-Key": "test-key",
        "Content-Type": "application/ssml+xml",
        "X-Microsoft-OutputFormat": "raw-8khz-8bit-mono-mulaw",
        "User-Agent": "contract-test",
    } | headers
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post("/cognitiveservices/v1", content=SAMPLE_SSML, headers=sent)
    assert response.status_code == status


# ---------------------------------------------------------------------- speech to text

QUERY = {"language", "format", "profanity", "cid"}
CONTENT_TYPES = {"audio/wav; codecs=audio/pcm; samplerate=16000", "audio/ogg; codecs=opus"}
Status = Literal["Success", "NoMatch", "InitialSilenceTimeout", "BabbleTimeout", "Error"]


class SimpleSuccess(_Strict):
    RecognitionStatus: Literal["Success"]
    DisplayText: str
    Offset: int | str
    Duration: int | str


class SimpleOther(_Strict):
    """``DisplayText`` is present only on success."""

    RecognitionStatus: Literal["NoMatch", "InitialSilenceTimeout", "BabbleTimeout", "Error"]
    Offset: int | str
    Duration: int | str


class NBestEntry(_Strict):
    Confidence: float
    Lexical: str
    ITN: str
    MaskedITN: str
    Display: str


class Detailed(_Strict):
    RecognitionStatus: Status
    Offset: int | str
    Duration: int | str
    NBest: list[NBestEntry] = []


SIMPLE: TypeAdapter[Any] = TypeAdapter(SimpleSuccess | SimpleOther)
DETAILED: TypeAdapter[Any] = TypeAdapter(Detailed)

SAMPLE_SIMPLE = {
    "RecognitionStatus": "Success",
    "DisplayText": "Remind me to buy 5 pencils.",
    "Offset": "1236645672289",
    "Duration": "1236645672289",
}
SAMPLE_DETAILED = {
    "RecognitionStatus": "Success",
    "Offset": "1236645672289",
    "Duration": "1236645672289",
    "NBest": [
        {
            "Confidence": 0.9052885,
            "Display": "What's the weather like?",
            "ITN": "what's the weather like",
            "Lexical": "what's the weather like",
            "MaskedITN": "what's the weather like",
        },
        {
            "Confidence": 0.92459863,
            "Display": "what is the weather like",
            "ITN": "what is the weather like",
            "Lexical": "what is the weather like",
            "MaskedITN": "what is the weather like",
        },
    ],
}


def test_the_documented_samples_fit_the_models() -> None:
    SIMPLE.validate_python(SAMPLE_SIMPLE)
    DETAILED.validate_python(SAMPLE_DETAILED)


def utterance(secs: float, answered: list[Any]) -> list[Frame]:
    pcm = tone_pcm(secs, 8000)
    return [
        UserStartedSpeakingFrame(),
        *[InputAudioRawFrame(pcm[i : i + 8000], 8000) for i in range(0, len(pcm), 8000)],
        UserStoppedSpeakingFrame(),
        SleepFrame(3.0, until=lambda: bool(answered)),
        SleepFrame(0.05),
    ]


async def test_our_recognition_requests_are_documented() -> None:
    seen: list[tuple[dict[str, str], dict[str, str], bytes]] = []

    async def recognize(request: Request) -> JSONResponse:
        headers = {k.lower(): v for k, v in request.headers.items()}
        seen.append((dict(request.query_params), headers, await request.body()))
        return JSONResponse(SAMPLE_DETAILED)

    path = "/stt/speech/recognition/conversation/cognitiveservices/v1"
    server = LocalASGIServer(fake_app([Route(path, recognize, methods=["POST"])]))
    await server.start()
    try:
        settings = AzureSTTService.Settings(language="fr", profanity="raw")
        stt = AzureSTTService(
            api_key="k",
            private_endpoint=f"http://127.0.0.1:{server.port}",
            endpoint_id="e1",
            settings=settings,
        )
        down, _ = await run_test(stt, utterance(61.0, seen), params=PHONE)
    finally:
        await server.stop()
    [(query, headers, body)] = seen
    assert set(query) <= QUERY and query["language"] == "fr-FR"
    assert query["format"] in {"simple", "detailed"}
    assert query["profanity"] in {"masked", "removed", "raw"}
    assert headers["content-type"] in CONTENT_TYPES
    assert headers["accept"] == "application/json"
    assert "ocp-apim-subscription-key" in headers
    with wave.open(io.BytesIO(body)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() <= 60 * 16000  # at most 60 s
    # The documented detailed sample, through the service: the best entry's display form.
    [final] = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "What's the weather like?"


async def test_the_documented_simple_sample_through_the_service() -> None:
    seen: list[bool] = []

    async def recognize(request: Request) -> JSONResponse:
        seen.append(True)
        return JSONResponse(SAMPLE_SIMPLE)

    path = "/stt/speech/recognition/conversation/cognitiveservices/v1"
    server = LocalASGIServer(fake_app([Route(path, recognize, methods=["POST"])]))
    await server.start()
    try:
        stt = AzureSTTService(api_key="k", private_endpoint=f"http://127.0.0.1:{server.port}")
        down, _ = await run_test(stt, utterance(0.4, seen), params=PHONE)
    finally:
        await server.stop()
    [final] = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert final.text == "Remind me to buy 5 pencils."


@pytest.mark.parametrize("fmt", ["simple", "detailed"])
@pytest.mark.parametrize("loud", [True, False])
async def test_the_fakes_answers_are_documented(
    server: FakeAzureSpeechServer, fmt: str, loud: bool
) -> None:
    pcm = tone_pcm(0.5, 16000) if loud else bytes(16000)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/speech/recognition/conversation/cognitiveservices/v1",
            params={"language": "en-US", "format": fmt},
            content=buffer.getvalue(),
            headers={
                "Ocp-Apim-Subscription-Key": "test-key",
                "Content-Type": "audio/wav; codecs=audio/pcm; samplerate=16000",
                "Accept": "application/json",
            },
        )
    assert response.status_code == 200
    answer = response.json()
    (SIMPLE if fmt == "simple" else DETAILED).validate_python(answer)
    assert (answer["RecognitionStatus"] == "Success") is loud


async def test_a_missing_language_is_a_400(server: FakeAzureSpeechServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        response = await client.post(
            "/speech/recognition/conversation/cognitiveservices/v1",
            content=b"",
            headers={
                "Ocp-Apim-Subscription-Key": "test-key",
                "Content-Type": "audio/wav; codecs=audio/pcm; samplerate=16000",
            },
        )
    assert response.status_code == 400
