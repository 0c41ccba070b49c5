"""FakeSpeechmaticsTTSServer and SpeechmaticsTTSService against Speechmatics' documented
text-to-speech preview API.

Speechmatics' Python SDKs on PyPI (``speechmatics-rt``, ``speechmatics-batch``, ...) cover
speech-to-text only, so the contract is transcribed here from the quickstart
(https://docs.speechmatics.com/text-to-speech/quickstart): ``POST /generate/<voice>`` on
``https://preview.tts.speechmatics.com`` with ``Authorization: Bearer <key>``, a JSON body
``{"text": ...}``; the answer is a 16 kHz mono WAV, or raw 16-bit PCM when the query asks for
``output_format=pcm_16000``. The documented request is replayed against the fake as the
quickstart's ``requests`` example sends it, and our service's requests may use only what the
quickstart shows.
"""

from __future__ import annotations

import io
import wave
from typing import Literal

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.frames.frames import ErrorFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.speechmatics.tts import SPEECHMATICS_TTS_URL, SpeechmaticsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.speechmatics import TTS_VOICES, FakeSpeechmaticsTTSServer

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


class GenerateBody(BaseModel):
    """The documented body: the text only."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str


class GenerateQuery(BaseModel):
    """The query: the output format (``pcm_16000`` or the default WAV) and the client's name,
    which Speechmatics' integrations (Pipecat's among them) send as ``sm-app``."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    output_format: Literal["pcm_16000", "wav_16000"] | None = None
    sm_app: str | None = None


async def test_the_quickstart_request_gets_a_16khz_wav() -> None:
    async with FakeSpeechmaticsTTSServer(api_key="YOUR_API_KEY") as fake:
        async with httpx.AsyncClient(base_url=fake.base_url) as client:
            response = await client.post(
                "/generate/sarah",
                headers={"Authorization": "Bearer YOUR_API_KEY"},
                json={"text": "Welcome to the future of speech technology!"},
            )
            assert response.status_code == 200
            with wave.open(io.BytesIO(response.content)) as wav:
                assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
                assert wav.getnframes() > 0
            raw = await client.post(
                "/generate/sarah",
                params={"output_format": "pcm_16000"},
                headers={"Authorization": "Bearer YOUR_API_KEY"},
                json={"text": "Raw audio."},
            )
            assert raw.status_code == 200 and not raw.content.startswith(b"RIFF")
            assert len(raw.content) % 2 == 0
            refused = await client.post("/generate/sarah", json={"text": "No key."})
            assert refused.status_code == 401


async def test_our_requests_use_only_the_documented_parts() -> None:
    assert SPEECHMATICS_TTS_URL == "https://preview.tts.speechmatics.com"
    async with FakeSpeechmaticsTTSServer() as fake:
        settings = SpeechmaticsTTSService.Settings(voice="megan")
        tts = SpeechmaticsTTSService(api_key="test-key", base_url=fake.base_url, settings=settings)
        _, up = await run_test(tts, [TTSSpeakFrame("Hello there.")], params=PARAMS)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert fake.requests and fake.voices == ["megan"]
        for body, query, voice, headers in zip(
            fake.requests, fake.queries, fake.voices, fake.headers, strict=True
        ):
            GenerateBody.model_validate(body)
            GenerateQuery.model_validate(
                {k.replace("-", "_"): v for k, v in query.items()}, strict=True
            )
            assert voice in TTS_VOICES
            assert headers["authorization"] == "Bearer test-key"
            assert headers["content-type"] == "application/json"
