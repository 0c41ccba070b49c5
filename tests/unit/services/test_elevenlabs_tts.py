"""ElevenLabsTTSService against FakeElevenLabsServer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService, PronunciationDictionaryLocator
from callpipe.services.tts_service import TTSContext
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS
from .helpers import assert_reply_framed, audio_secs, emitted, interruption_at, reply, run_then


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
    assert_reply_framed(down)
    assert abs(audio_secs(down) - len(spoken) * 0.01) < 1e-6


async def test_interruption_closes_the_context(server: FakeElevenLabsServer) -> None:
    server.chunk_delay = 0.02
    before: list[Frame] = [LLMFullResponseStartFrame(), LLMTextFrame("word " * 80 + "end.")]
    after: list[Frame] = [InterruptionFrame(), SleepFrame(0.2), *reply("New one.")]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=emitted(TTSAudioRawFrame),
        params=PARAMS,
    )
    cut = interruption_at(down)
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


async def test_pipecat_socket_options_reach_the_url_and_the_context(
    server: FakeElevenLabsServer,
) -> None:
    dictionary = PronunciationDictionaryLocator(pronunciation_dictionary_id="d1", version_id="7")
    tts = make_tts(
        server,
        auto_mode=False,
        enable_ssml_parsing=True,
        enable_logging=False,
        pronunciation_dictionary_locators=[dictionary],
    )
    down, up = await run_test(tts, reply("Hello there.", " Bye now!"), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    query = server.queries[0]
    assert query["auto_mode"] == ["false"]
    assert query["enable_ssml_parsing"] == ["true"] and query["enable_logging"] == ["false"]
    init = server.messages[0]
    assert init["text"] == " "
    assert init["pronunciation_dictionary_locators"] == [
        {"pronunciation_dictionary_id": "d1", "version_id": "7"}
    ]
    # Without auto mode each whole sentence is flushed, so it is generated at once.
    texts = [m for m in server.messages if m.get("text", "").strip()]
    assert [m["text"] for m in texts] == ["Hello there. ", "Bye now! "]
    assert all(m.get("flush") is True for m in texts)
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "Hello",
        "there.",
        "Bye",
        "now!",
    ]


async def test_options_in_params_and_arguments_winning_over_them(
    server: FakeElevenLabsServer,
) -> None:
    params = ElevenLabsTTSService.InputParams(
        auto_mode=False,
        enable_ssml_parsing=True,
        apply_text_normalization="off",
        pronunciation_dictionary_locators=[
            PronunciationDictionaryLocator(pronunciation_dictionary_id="p", version_id="1")
        ],
    )
    tts = make_tts(
        server,
        params=params,
        auto_mode=True,
        pronunciation_dictionary_locators=[{"pronunciation_dictionary_id": "a", "version_id": "2"}],
    )
    _, up = await run_test(tts, reply("Hi."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    query = server.queries[0]
    assert query["auto_mode"] == ["true"] and query["enable_ssml_parsing"] == ["true"]
    assert query["apply_text_normalization"] == ["off"]
    assert "enable_logging" not in query  # not given: ElevenLabs' default
    assert server.messages[0]["pronunciation_dictionary_locators"] == [
        {"pronunciation_dictionary_id": "a", "version_id": "2"}
    ]


async def test_token_streaming_leaves_auto_mode_off_and_flushes_at_the_end(
    server: FakeElevenLabsServer,
) -> None:
    tts = make_tts(server, aggregate_sentences=False)
    down, up = await run_test(tts, reply("Hello", " there", " caller."), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert server.queries[0]["auto_mode"] == ["false"]
    texts = [m for m in server.messages if m.get("text", "").strip()]
    assert [m["text"] for m in texts] == ["Hello ", "there ", "caller. "]
    assert not any("flush" in m for m in texts)
    flushes = [m for m in server.messages if m.get("flush")]
    assert len(flushes) == 1 and "text" not in flushes[0]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hello", "there", "caller."]


async def test_words_follow_the_normalized_alignment_with_dictionaries() -> None:
    def message(context_id: str) -> str:
        def alignment(text: str) -> dict[str, list[object]]:
            return {
                "chars": list(text),
                "charStartTimesMs": [10 * i for i in range(len(text))],
                "charDurationsMs": [10] * len(text),
            }

        return json.dumps(
            {
                "contextId": context_id,
                "alignment": alignment("Dr Who "),
                "normalizedAlignment": alignment("Doctor Who "),
            }
        )

    plain = ElevenLabsTTSService(api_key="k", voice_id="v")
    with_dictionary = ElevenLabsTTSService(
        api_key="k",
        voice_id="v",
        pronunciation_dictionary_locators=[{"pronunciation_dictionary_id": "d", "version_id": "1"}],
    )
    for tts in (plain, with_dictionary):
        tts._contexts["c"] = TTSContext(id="c")
        await tts._on_message(message("c"))
    assert [w for w, _ in plain._contexts["c"].words] == ["Dr", "Who"]
    assert [w for w, _ in with_dictionary._contexts["c"].words] == ["Doctor", "Who"]
