"""DeepgramTTSService against FakeDeepgramTTSServer: Speak/Flush per reply, Clear on barge-in,
the audio between a Clear and its Cleared dropped, settings reconnects, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.deepgram.tts import DeepgramTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram_tts import FakeDeepgramTTSServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS
from .helpers import assert_reply_framed, audio_secs, emitted, interruption_at, reply, run_then

WORD = 0.05  # seconds of audio per word in the fake


@pytest.fixture
async def server() -> AsyncIterator[FakeDeepgramTTSServer]:
    async with FakeDeepgramTTSServer(secs_per_word=WORD, chunk_secs=0.02) as fake:
        yield fake


def make_tts(server: FakeDeepgramTTSServer, **kwargs: Any) -> DeepgramTTSService:
    return DeepgramTTSService(api_key="test-key", base_url=server.url, **kwargs)


def sent_types(server: FakeDeepgramTTSServer) -> list[str]:
    return [m["type"] for m in server.messages]


async def test_a_reply_is_spoken_sentence_by_sentence_and_flushed_once(
    server: FakeDeepgramTTSServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PARAMS
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # Native phone audio: 8 kHz mu-law from Deepgram, the default voice, the key as a Token.
    assert server.queries == [
        {"model": "aura-2-helena-en", "encoding": "mulaw", "sample_rate": "8000"}
    ]
    assert server.auth_used == ["header:Authorization"]
    speaks = [m["text"] for m in server.messages if m["type"] == "Speak"]
    assert speaks == ["Hi there. ", "How are you? "]
    # One Flush, at the end of the reply; Close when the pipeline ends.
    assert sent_types(server) == ["Speak", "Speak", "Flush", "Close"]
    assert server.spoken == ["Hi there. How are you? "]

    assert_reply_framed(down)
    assert abs(audio_secs(down) - 5 * WORD) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    # No word timing from Deepgram: the reply's text follows all of its audio.
    texts = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [down[i].text for i in texts] == ["Hi there. How are you?"]  # type: ignore[attr-defined]
    last_audio = max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))
    assert texts[0] > last_audio


async def test_wideband_pipelines_get_linear16_at_their_rate(
    server: FakeDeepgramTTSServer,
) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    tts = make_tts(server, mip_opt_out=True, settings=DeepgramTTSService.Settings(speed=1.2))
    down, _ = await run_test(tts, [TTSSpeakFrame("One two three.")], params=params)
    assert server.queries[0] == {
        "model": "aura-2-helena-en",
        "encoding": "linear16",
        "sample_rate": "16000",
        "speed": "1.2",
        "mip_opt_out": "true",
    }
    assert abs(audio_secs(down) - 3 * WORD) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {16000}


async def test_alaw_is_decoded(server: FakeDeepgramTTSServer) -> None:
    tts = make_tts(server, encoding="alaw")
    down, _ = await run_test(tts, [TTSSpeakFrame("Two words.")], params=PARAMS)
    assert server.queries[0]["encoding"] == "alaw"
    pcm = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    assert len(pcm) == int(2 * WORD * 8000) * 2
    # The fake's tone (amplitude 8000) comes back as PCM, not as A-law bytes read as PCM.
    peak = int(np.abs(np.frombuffer(pcm, dtype="<i2")).max())
    assert 7000 < peak <= 8192


async def test_barge_in_clears_and_drops_the_audio_in_flight(
    server: FakeDeepgramTTSServer,
) -> None:
    # Deepgram acts on the Clear late: the interrupted reply's audio (and its Flushed) keep
    # arriving after the new reply's text went out. None of it may be heard.
    server.chunk_delay = 0.01
    server.clear_delay = 0.4  # longer than the rest of the reply: its Flushed comes too
    long_reply = reply(" ".join(["word"] * 12) + ".")
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server),
        long_reply,
        after,
        when=emitted(TTSAudioRawFrame),
        params=PARAMS,
    )
    assert sent_types(server)[:4] == ["Speak", "Flush", "Clear", "Speak"]
    assert any(m["type"] == "Cleared" for m in server.sent)
    cut = interruption_at(down)
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    later = down[cut:]
    assert not [f for f in later if isinstance(f, TTSAudioRawFrame) and f.context_id in old]
    # Exactly the new reply's audio, then its end and its text.
    assert abs(audio_secs(later) - 2 * WORD) < 1e-6
    assert [f.text for f in later if isinstance(f, TTSTextFrame)] == ["Fresh start."]
    assert sum(isinstance(f, TTSStoppedFrame) for f in later) == 1


async def test_an_interruption_after_the_audio_arrived_sends_no_clear(
    server: FakeDeepgramTTSServer,
) -> None:
    frames: list[Frame] = [*reply("Short."), SleepFrame(0.2), InterruptionFrame(), *reply("Next.")]
    down, _ = await run_test(make_tts(server), frames, params=PARAMS)
    assert "Clear" not in sent_types(server)
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Short.", "Next."]


async def test_voice_change_reconnects_between_replies(server: FakeDeepgramTTSServer) -> None:
    frames: list[Frame] = [
        *reply("First reply."),
        TTSUpdateSettingsFrame(delta=DeepgramTTSService.Settings(voice="aura-2-thalia-en")),
        *reply("Second reply."),
    ]
    tts = make_tts(server)
    down, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [q["model"] for q in server.queries] == ["aura-2-helena-en", "aura-2-thalia-en"]
    assert server.spoken_voices == ["aura-2-helena-en", "aura-2-thalia-en"]
    assert tts.model_name == "aura-2-thalia-en"
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "First reply.",
        "Second reply.",
    ]
    # The old socket was closed with Close after the first reply.
    assert sent_types(server) == ["Speak", "Flush", "Close", "Speak", "Flush", "Close"]


async def test_a_refused_new_voice_keeps_the_old_socket(server: FakeDeepgramTTSServer) -> None:
    frames: list[Frame] = [
        SleepFrame(0.1),  # connected first
        TTSUpdateSettingsFrame(delta=DeepgramTTSService.Settings(voice="nonsense")),
        SleepFrame(0.2),
        *reply("Still speaking."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not errors[0].fatal and "nonsense" in errors[0].error
    assert server.spoken_voices == ["aura-2-helena-en"]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Still speaking."]


async def test_the_flush_limit_warning_is_logged(
    server: FakeDeepgramTTSServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.flush_limit = 1
    frames: list[Frame] = [TTSSpeakFrame("One."), SleepFrame(0.1), TTSSpeakFrame("Two.")]
    with caplog.at_level(logging.WARNING, logger="callpipe.services.deepgram.tts"):
        await run_test(make_tts(server, context_timeout_secs=0.3), frames, params=PARAMS)
    assert any("EXCESSIVE_FLUSH" in r.getMessage() for r in caplog.records)


async def test_rejected_key_is_fatal_at_start(server: FakeDeepgramTTSServer) -> None:
    tts = DeepgramTTSService(api_key="wrong", base_url=server.url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal
    assert "401" in errors[0].error and "DEEPGRAM_API_KEY" in errors[0].error


async def test_a_dropped_socket_closes_its_reply_and_the_next_one_is_spoken(
    server: FakeDeepgramTTSServer,
) -> None:
    server.close_next(1011, "NET-0001")
    frames: list[Frame] = [*reply("Lost words."), SleepFrame(0.5), *reply("After drop.")]
    down, up = await run_test(make_tts(server, context_timeout_secs=1.0), frames, params=PARAMS)
    assert server.connections == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    # No audio of the first reply came: its text is not recorded as spoken.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["After drop."]
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]


async def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="encoding"):
        DeepgramTTSService(api_key="k", encoding="mp3")
    tts = DeepgramTTSService(api_key="k", encoding="mulaw")
    params = PipelineParams(audio_in_sample_rate=24000, audio_out_sample_rate=24000)
    _, up = await run_test(tts, [SleepFrame(0.05)], params=params)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "24000" in errors[0].error


async def test_voice_argument_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="DEEPGRAM_API_KEY"):
        DeepgramTTSService()
    assert DeepgramTTSService(api_key="k", voice="aura-2-zeus-en").model_name == "aura-2-zeus-en"
    tts = DeepgramTTSService(
        api_key="k",
        voice="aura-2-zeus-en",
        settings=DeepgramTTSService.Settings(voice="aura-2-luna-en"),
    )
    assert tts.model_name == "aura-2-luna-en" and tts.settings.voice == "aura-2-luna-en"


async def test_the_fakes_environment_reaches_the_tts_socket(
    server: FakeDeepgramTTSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `callpipe fakes` serves Deepgram's listen and speak sockets on two ports.
    monkeypatch.setenv("CALLPIPE_DEEPGRAM_URL", "ws://127.0.0.1:9")
    monkeypatch.setenv("CALLPIPE_DEEPGRAM_TTS_URL", server.url)
    down, _ = await run_test(
        DeepgramTTSService(api_key="test-key"), [TTSSpeakFrame("Hello.")], params=PARAMS
    )
    assert server.spoken == ["Hello. "]
    assert audio_secs(down) > 0
