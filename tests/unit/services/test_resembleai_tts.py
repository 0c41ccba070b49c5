"""ResembleAITTSService against FakeResembleServer: a request per sentence, played in order,
word timing from the characters' timing, barge-in, voice changes, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    FatalErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.resembleai.tts import ResembleAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.resembleai import FakeResembleServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import (
    PHONE,
    WIDE,
    after_barge_in,
    audio_secs,
    emitted,
    of,
    reply,
    run_then,
)

WORD = 0.05
VOICE = "55592656"
Settings = ResembleAITTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeResembleServer]:
    async with FakeResembleServer(secs_per_word=WORD, chunk_secs=0.02) as fake:
        yield fake


def make_tts(server: FakeResembleServer, **kwargs: Any) -> ResembleAITTSService:
    kwargs.setdefault("settings", Settings(voice=VOICE))
    return ResembleAITTSService(api_key="test-key", url=server.url + "/stream", **kwargs)


async def test_a_phone_reply_asks_for_mulaw_at_8_khz_and_plays_in_order(
    server: FakeResembleServer,
) -> None:
    # The second sentence is generated while the first one is: its audio waits its turn.
    server.chunk_delay = 0.005
    frames = reply("One two three four.", " Five six.")
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.requests == [
        {
            "voice_uuid": VOICE,
            "data": text,
            "binary_response": False,
            "request_id": i,
            "output_format": "wav",
            "sample_rate": 8000,
            "precision": "MULAW",
            "no_audio_header": True,
        }
        for i, text in enumerate(["One two three four.", "Five six."])
    ]
    assert server.auth_used == ["header:Authorization"]
    assert abs(audio_secs(down) - 6 * WORD) < 0.002
    words = [f.text for f in of(down, TTSTextFrame)]
    assert words == ["One", "two", "three", "four.", "Five", "six."]
    # Word timing: the words are released along the audio, not after all of it.
    audio_at = [i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame)]
    first_word = down.index(of(down, TTSTextFrame)[0])
    assert audio_at[0] < first_word < audio_at[-1]
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    # The fake speaks odd requests at half the amplitude: all of the first sentence's audio
    # (loud) comes before any of the second's (quiet), though they were generated at once.
    loud = [_peak(f.audio) > 6000 for f in of(down, TTSAudioRawFrame) if _peak(f.audio) > 100]
    assert loud == sorted(loud, reverse=True) and loud[0] and not loud[-1]


async def test_wideband_asks_for_pcm_16_at_the_pipeline_rate(server: FakeResembleServer) -> None:
    down, up = await run_test(make_tts(server), reply("Hello there."), params=WIDE)
    assert not of(up, ErrorFrame)
    assert server.requests[0]["precision"] == "PCM_16"
    assert server.requests[0]["sample_rate"] == 16000
    assert {f.sample_rate for f in of(down, TTSAudioRawFrame)} == {16000}
    assert abs(audio_secs(down) - 2 * WORD) < 0.002


async def test_a_wav_header_in_the_first_frame_is_not_played(server: FakeResembleServer) -> None:
    tts = make_tts(server)
    original = tts.request_message

    def with_header(text: str, request_id: int) -> str:
        return original(text, request_id).replace(
            '"no_audio_header": true', '"no_audio_header": false'
        )

    tts.request_message = with_header  # type: ignore[method-assign]
    down, up = await run_test(tts, reply("Hello there."), params=WIDE)
    assert not of(up, ErrorFrame)
    assert server.requests[0]["no_audio_header"] is False
    assert abs(audio_secs(down) - 2 * WORD) < 0.002  # 44 header bytes would add 1.4 ms


async def test_a_barge_in_drops_the_old_audio_by_request_id(server: FakeResembleServer) -> None:
    server.chunk_delay = 0.01
    long_reply = reply(" ".join(["word"] * 30) + ".")
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server), long_reply, after, when=emitted(TTSAudioRawFrame), params=PHONE
    )
    rest = after_barge_in(down)
    assert abs(audio_secs(rest) - 2 * WORD) < 0.002
    assert [f.text for f in of(rest, TTSTextFrame)] == ["Fresh", "start."]
    assert len(of(rest, TTSStoppedFrame)) == 1


async def test_a_new_voice_applies_from_the_next_sentence_without_a_reconnect(
    server: FakeResembleServer,
) -> None:
    frames = [
        *reply("One."),
        SleepFrame(0.1),
        TTSUpdateSettingsFrame(delta=Settings(voice="other-voice")),
        *reply("Two."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.spoken == [(VOICE, "One."), ("other-voice", "Two.")]
    assert len(server.paths) == 1


@pytest.mark.parametrize(("status", "fatal"), [(500, False), (401, True)])
async def test_an_error_answer_ends_its_request(
    server: FakeResembleServer, status: int, fatal: bool
) -> None:
    server.error_next, server.error_status = "synthesis failed", status
    down, up = await run_test(make_tts(server), reply("Hello.", " Bye."), params=PHONE)
    [error] = of(up, ErrorFrame)
    assert isinstance(error, FatalErrorFrame) is fatal
    assert "synthesis failed" in error.error
    assert ("RESEMBLE_API_KEY" in error.error) is fatal
    if not fatal:
        assert of(down, TTSStoppedFrame)
        assert abs(audio_secs(down) - WORD) < 0.002  # "Bye." was spoken


async def test_a_rejected_key_at_the_handshake_is_fatal(server: FakeResembleServer) -> None:
    tts = ResembleAITTSService(
        api_key="wrong", url=server.url + "/stream", settings=Settings(voice=VOICE)
    )
    down, up = await run_test(tts, [SleepFrame(0.2)], params=PHONE)
    fatal = of(up, FatalErrorFrame)
    assert fatal and "RESEMBLE_API_KEY" in fatal[0].error


async def test_configuration(server: FakeResembleServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError):
        ResembleAITTSService(api_key="k")  # no voice
    with pytest.raises(ConfigurationError):
        ResembleAITTSService(api_key="k", voice_id=VOICE, precision="PCM_32")
    with pytest.raises(ConfigurationError):
        ResembleAITTSService(api_key="k", voice_id=VOICE, output_format="mp3")
    monkeypatch.setenv("CALLPIPE_RESEMBLE_URL", server.url)
    monkeypatch.setenv("RESEMBLE_API_KEY", "test-key")
    tts = ResembleAITTSService(voice_id=VOICE)  # the deprecated argument still works
    down, up = await run_test(tts, reply("Hi."), params=PHONE)
    assert not of(up, ErrorFrame)
    assert server.spoken == [(VOICE, "Hi.")]


def _peak(pcm: bytes) -> int:
    return int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max(initial=0))
