"""SmallestTTSService against FakeSmallestServer: the requests (continue, then flush), word
timing, replies taking turns, interruption, errors and settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.smallest.tts import SmallestTTSService, language_to_smallest_tts_language
from callpipe.testing import run_test
from callpipe.testing.fakes.smallest import FakeSmallestServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import (
    after_barge_in,
    audio_secs,
    barge_in,
    errors,
    reply,
    spoken,
)


@pytest.fixture
async def server() -> AsyncIterator[FakeSmallestServer]:
    async with FakeSmallestServer(tts_secs_per_word=0.1) as fake:
        yield fake


def make_tts(server: FakeSmallestServer, **kwargs: object) -> SmallestTTSService:
    return SmallestTTSService(api_key="test-key", base_url=server.url, **kwargs)  # type: ignore[arg-type]


async def test_a_reply_is_one_generation_continued_then_flushed(
    server: FakeSmallestServer,
) -> None:
    down, up = await run_test(make_tts(server), reply("Hi there.", " How are you?"), params=PARAMS)
    assert not errors(up)
    assert server.paths == ["/waves/v1/tts/live"]
    assert server.headers[0]["authorization"] == "Bearer test-key"
    common = {
        "voice_id": "meher",
        "model": "lightning_v3.1_pro",
        "language": "en",
        "sample_rate": 8000,
        "output_format": "pcm",
        "word_timestamps": True,
    }
    assert server.tts_requests == [
        {**common, "text": "Hi there. ", "continue": True, "flush": False},
        {**common, "text": "How are you? ", "continue": True, "flush": False},
        {**common, "text": "", "continue": False, "flush": True},
    ]
    assert "".join(server.spoken) == "Hi there. How are you? "
    kinds = [type(f) for f in down]
    assert kinds.count(TTSStartedFrame) == 1 and kinds.count(TTSStoppedFrame) == 1
    assert abs(audio_secs(down) - 5 * 0.1) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    # Word timing: each word follows its own audio.
    assert spoken(down) == ["Hi", "there.", "How", "are", "you?"]
    first_text = next(i for i, f in enumerate(down) if isinstance(f, TTSTextFrame))
    assert abs(audio_secs(down[:first_text]) - 0.1) < 1e-6


async def test_options_ulaw_and_resampling(server: FakeSmallestServer) -> None:
    settings = SmallestTTSService.Settings(
        model="lightning_v3.1",
        language=Language.PT_BR,
        speed=1.2,
        math_notation=True,
        content_filter="flag",
    )
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=48000)
    tts = make_tts(
        server,
        settings=settings,
        output_format="ulaw",
        word_timestamps=False,
        max_buffer_delay_ms=200,
    )
    down, up = await run_test(tts, reply("One two three."), params=params)
    assert not errors(up)
    first = server.tts_requests[0]
    assert first["voice_id"] == "sophia"  # the model's default voice
    assert first["language"] == "pt" and first["sample_rate"] == 44100
    assert first["output_format"] == "ulaw" and first["speed"] == 1.2
    assert first["math_notation"] is True
    assert first["content_filter"] == {"enabled": True, "action": "flag"}
    assert first["max_buffer_flush_ms"] == 200 and "word_timestamps" not in first
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {48000}
    assert abs(audio_secs(down) - 0.3) < 0.01
    assert spoken(down) == ["One two three."]


async def test_replies_take_turns(server: FakeSmallestServer) -> None:
    server.chunk_delay = 0.02
    frames = [*reply("One two three."), *reply("Four five.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    # The second reply's text went out after the first one's ``complete``.
    firsts = [i for i, r in enumerate(server.tts_requests) if r["text"] == "Four five. "]
    completes = [i for i, m in enumerate(server.tts_sent) if m["status"] == "complete"]
    assert server.spoken == ["One two three. ", "Four five. "] and len(completes) == 2
    assert firsts == [2]
    contexts = [f.context_id for f in down if isinstance(f, TTSAudioRawFrame)]
    assert len(set(contexts)) == 2 and contexts == sorted(contexts, key=contexts.index)
    assert abs(audio_secs(down) - 0.5) < 1e-6


async def test_interrupting_a_reply_still_generating_replaces_the_socket(
    server: FakeSmallestServer,
) -> None:
    server.chunk_delay = 0.02
    down = await barge_in(make_tts(server), params=PARAMS, tail=" More")
    assert server.tts_connections == 2
    rest = after_barge_in(down)
    assert spoken(rest) == ["Fresh", "start."]
    assert abs(audio_secs(rest) - 0.2) < 1e-6


async def test_a_provider_error_is_reported_and_the_next_reply_plays(
    server: FakeSmallestServer,
) -> None:
    server.tts_error_next = "CONTENT_FILTER_BLOCKED"
    frames = [*reply("Bad words."), SleepFrame(0.1), *reply("Good words.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    [error] = errors(up)
    assert "CONTENT_FILTER_BLOCKED" in error.error and not error.fatal
    assert spoken(down) == ["Good", "words."]  # nothing of the refused reply
    assert abs(audio_secs(down) - 0.2) < 1e-6


async def test_rejected_key_is_fatal_at_start(server: FakeSmallestServer) -> None:
    tts = SmallestTTSService(api_key="wrong", base_url=server.url)
    _, up = await run_test(tts, [SleepFrame(10)], params=PARAMS)
    assert errors(up) and errors(up)[0].fatal
    assert "401" in errors(up)[0].error and "SMALLEST_API_KEY" in errors(up)[0].error


async def test_a_settings_update_applies_to_the_next_request(server: FakeSmallestServer) -> None:
    update = SmallestTTSService.Settings(voice="v-2", speed=0.9)
    frames = [*reply("One."), TTSUpdateSettingsFrame(delta=update), *reply("Two.")]
    _, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    assert server.tts_connections == 1  # every option travels in each request
    assert [(r["voice_id"], r.get("speed")) for r in server.tts_requests] == [
        ("meher", None),
        ("meher", None),
        ("v-2", 0.9),
        ("v-2", 0.9),
    ]


def test_checks_and_language_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMALLEST_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="SMALLEST_API_KEY"):
        SmallestTTSService()
    with pytest.raises(ConfigurationError, match="output_format"):
        SmallestTTSService(api_key="k", output_format="mp3")
    assert language_to_smallest_tts_language(Language.ZH_CN) == "zh"
    assert language_to_smallest_tts_language("hi-IN") == "hi"


async def test_token_mode_streams_the_text_and_flushes_at_the_end(
    server: FakeSmallestServer,
) -> None:
    tts = make_tts(server, text_aggregation_mode="token", word_timestamps=False)
    down, up = await run_test(tts, reply("Hel", "lo the", "re."), params=PARAMS)
    assert not errors(up)
    assert [(r["text"], r["continue"], r["flush"]) for r in server.tts_requests][-1] == (
        "",
        False,
        True,
    )
    assert "".join(r["text"] for r in server.tts_requests) == "Hello there."
    assert "".join(server.spoken) == "Hello there."
    assert abs(audio_secs(down) - 0.2) < 1e-6


async def test_a_dropped_socket_reconnects_and_the_cut_reply_closes(
    server: FakeSmallestServer,
) -> None:
    server.drop_after_chunks = 2
    frames = [*reply("One two three four five six."), SleepFrame(0.3), *reply("After drop.")]
    down, _ = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.tts_connections == 2
    kinds = [type(f) for f in down]
    assert kinds.count(TTSStartedFrame) == 2 and kinds.count(TTSStoppedFrame) == 2
    # Only the words heard before the drop count as spoken.
    assert spoken(down) == ["One", "two", "After", "drop."]
    assert abs(audio_secs(down) - 0.4) < 1e-6  # two words before the drop, two after
