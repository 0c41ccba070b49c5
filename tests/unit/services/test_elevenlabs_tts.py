"""ElevenLabsTTSService against FakeElevenLabsServer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import audio_secs, reply, run_then

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


@pytest.fixture
async def server() -> AsyncIterator[FakeElevenLabsServer]:
    async with FakeElevenLabsServer(secs_per_char=0.01, chunk_secs=0.05) as fake:
        yield fake


def make_tts(server: FakeElevenLabsServer, **kwargs: object) -> ElevenLabsTTSService:
    return ElevenLabsTTSService(api_key="test-key", voice_id="voice-9", url=server.url, **kwargs)  # type: ignore[arg-type]


async def test_reply_streams_with_aligned_words(server: FakeElevenLabsServer) -> None:
    params = ElevenLabsTTSService.InputParams(stability=0.5, speed=1.1)
    down, up = await run_test(
        make_tts(server, params=params),
        reply("Hello there,", " caller. Bye", " now!"),
        params=PARAMS,
    )
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    query = server.queries[0]
    # Phone rate: native 8 kHz u-law; whole sentences, so auto_mode generates each at once.
    assert query["output_format"] == ["ulaw_8000"] and query["model_id"] == ["eleven_flash_v2_5"]
    assert query["auto_mode"] == ["true"]
    init = server.messages[0]
    assert init == {
        "text": " ",
        "context_id": init["context_id"],
        "voice_settings": {"stability": 0.5, "speed": 1.1},
    }
    texts = [m for m in server.messages if m.get("text", "").strip()]
    assert [m["text"] for m in texts] == ["Hello there, caller. ", "Bye now! "]
    assert not any("flush" in m or "voice_settings" in m for m in texts)
    assert server.closed_contexts == [init["context_id"]]

    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["Hello", "there,", "caller.", "Bye", "now!"]
    # Each word comes after the audio up to its last character.
    spoken = "Hello there, caller. Bye now! "
    for i, frame in enumerate(down):
        if isinstance(frame, TTSTextFrame):
            end_chars = spoken.index(frame.text) + len(frame.text)
            assert audio_secs(down[:i]) >= end_chars * 0.01 - 1e-6
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert abs(audio_secs(down) - len(spoken) * 0.01) < 1e-6


async def test_interruption_closes_the_context(server: FakeElevenLabsServer) -> None:
    server.chunk_delay = 0.02
    before: list[Frame] = [LLMFullResponseStartFrame(), LLMTextFrame("word " * 80 + "end.")]
    after: list[Frame] = [InterruptionFrame(), SleepFrame(0.2), *reply("New one.")]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=lambda out: any(isinstance(f, TTSAudioRawFrame) for f in out),
        params=PARAMS,
    )
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    old = {f.context_id for f in down[:cut] if isinstance(f, TTSAudioRawFrame)}
    assert len(old) == 1 and server.closed_contexts[0] in old
    after_frames = down[cut:]
    assert not [f for f in after_frames if isinstance(f, TTSAudioRawFrame) and f.context_id in old]
    assert [f.text for f in after_frames if isinstance(f, TTSTextFrame)] == ["New", "one."]


async def test_rejected_key_and_missing_key(
    server: FakeElevenLabsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tts = ElevenLabsTTSService(api_key="nope", voice_id="v", url=server.url)
    _, up = await run_test(tts, [SleepFrame(0.2)], params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "ELEVENLABS_API_KEY" in errors[0].error
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ELEVENLABS_API_KEY"):
        ElevenLabsTTSService(voice_id="v")


async def test_dropped_socket_reconnects_once(server: FakeElevenLabsServer) -> None:
    server.drop_after_chunks = 1
    frames: list[Frame] = [
        *reply("One two three four five six."),
        SleepFrame(0.3),
        *reply("Again."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert server.connections == 2
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 2
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][-1] == "Again."
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]
