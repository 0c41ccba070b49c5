"""CambTTSService against FakeCambServer: the ``/tts-stream`` body, the model's rate resampled
to the call's, settings, the older arguments and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    ErrorFrame,
    FatalErrorFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.camb.tts import CambTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.camb import FakeCambServer
from callpipe.transcriptions.language import Language

from .helpers import PHONE, audio_secs, of, reply

WORD = 0.05
Settings = CambTTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeCambServer]:
    async with FakeCambServer(secs_per_word=WORD, chunk_secs=0.02) as fake:
        yield fake


def make_tts(server: FakeCambServer, **kwargs: Any) -> CambTTSService:
    return CambTTSService(api_key="test-key", base_url=server.base_url, **kwargs)


async def test_each_sentence_is_posted_and_its_audio_resampled_to_the_call(
    server: FakeCambServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hello there.", " How are you?"), params=PHONE
    )
    assert not of(up, ErrorFrame)
    assert server.requests == [
        {
            "text": text,
            "language": "en-us",
            "voice_id": 147320,
            "speech_model": "mars-flash",
            "output_configuration": {"format": "pcm_s16le"},
        }
        for text in ("Hello there.", "How are you?")
    ]
    assert server.headers[0]["x-api-key"] == "test-key"
    # 22050 Hz from mars-flash, played at the call's 8 kHz.
    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {8000}
    assert abs(audio_secs(down) - 5 * WORD) < 0.01
    assert [f.text for f in of(down, TTSTextFrame)] == ["Hello there.", "How are you?"]


async def test_mars_pro_audio_is_taken_at_48_khz(server: FakeCambServer) -> None:
    tts = make_tts(server, settings=Settings(model="mars-pro", voice=42, language=Language.ES_MX))
    down, up = await run_test(tts, reply("Hola a todos."), params=PHONE)
    assert not of(up, ErrorFrame)
    [body] = server.requests
    assert (body["speech_model"], body["voice_id"], body["language"]) == ("mars-pro", 42, "es-mx")
    # Read at any other rate than 48 kHz, the length would be off.
    assert abs(audio_secs(down) - 3 * WORD) < 0.01


async def test_user_instructions_go_to_mars_instruct_only(server: FakeCambServer) -> None:
    settings = Settings(model="mars-instruct", user_instructions="Warm and slow.")
    frames = [
        *reply("First one."),
        TTSUpdateSettingsFrame(delta=Settings(model="mars-flash")),
        *reply("Second one."),
    ]
    down, up = await run_test(make_tts(server, settings=settings), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    first, second = server.requests
    assert first["speech_model"] == "mars-instruct"
    assert first["user_instructions"] == "Warm and slow."
    assert second["speech_model"] == "mars-flash" and "user_instructions" not in second


async def test_the_older_arguments_still_apply(server: FakeCambServer) -> None:
    params = CambTTSService.InputParams(language="fr")
    tts = make_tts(server, voice_id=7, model="mars-pro", params=params)
    down, up = await run_test(tts, reply("Bonjour tout le monde."), params=PHONE)
    assert not of(up, ErrorFrame)
    [body] = server.requests
    assert (body["voice_id"], body["speech_model"], body["language"]) == (7, "mars-pro", "fr-fr")


async def test_a_refused_body_is_a_non_fatal_error(server: FakeCambServer) -> None:
    down, up = await run_test(make_tts(server), reply("Ok"), params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame) and "422" in error.error


async def test_a_rejected_key_is_fatal(server: FakeCambServer) -> None:
    tts = CambTTSService(api_key="wrong", base_url=server.base_url)
    down, up = await run_test(tts, reply("Hello there."), params=PHONE)
    fatal = of(up, FatalErrorFrame)
    assert fatal and "CAMB_API_KEY" in fatal[0].error


def test_overlong_text_is_cut_to_camb_s_limit() -> None:
    tts = CambTTSService(api_key="k")
    assert len(tts.request_body("word " * 1000)["text"]) == 3000


async def test_the_fakes_environment_reaches_the_service(
    server: FakeCambServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_CAMB_URL", server.base_url)
    monkeypatch.setenv("CAMB_API_KEY", "test-key")
    down, up = await run_test(CambTTSService(), reply("Hello there."), params=PHONE)
    assert not of(up, ErrorFrame)
    assert [r["text"] for r in server.requests] == ["Hello there."]
