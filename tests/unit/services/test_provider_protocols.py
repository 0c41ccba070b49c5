"""The protocol mistakes found against the providers' docs and SDKs, one test each.

Each test failed on the services as they were before: they only met fakes written with the same
misunderstanding. The fakes now follow the documented contract (see their module docstrings).
"""

from __future__ import annotations

import logging

import pytest

from callpipe.frames.frames import (
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeElevenLabsServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_calls import virtual_time

from .helpers import PHONE as PARAMS
from .helpers import audio_secs, caller_audio, errors, reply

RATE = 8000


# ---------------------------------------------------------------------- Cartesia


@virtual_time
async def test_cartesia_authenticates_like_its_sdk() -> None:
    async with FakeCartesiaServer() as fake:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=fake.url)
        _, up = await run_test(tts, reply("Hello."), params=PARAMS)
    assert not errors(up)
    assert fake.auth_used == ["header:Authorization"]  # Bearer, not X-API-Key
    assert fake.versions and fake.versions[0]


async def test_cartesia_takes_the_socket_s_whole_url_as_pipecat_does() -> None:
    # Pipecat 1.14's default is url="wss://api.cartesia.ai/tts/websocket": the path included.
    async with FakeCartesiaServer() as fake:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=f"{fake.url}/tts/websocket")
        down, up = await run_test(tts, reply("Hello."), params=PARAMS)
    assert not errors(up)
    assert [p.split("?")[0] for p in fake.paths] == ["/tts/websocket"]
    assert any(isinstance(f, TTSAudioRawFrame) for f in down)


@virtual_time
async def test_cartesia_sentences_are_not_held_in_the_server_buffer() -> None:
    # A sentence too long for one chunk is cut at a comma; the rest comes a second later.
    first = "one, " * 60
    async with FakeCartesiaServer() as fake:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=fake.url)
        frames: list[Frame] = [
            LLMFullResponseStartFrame(),
            LLMTextFrame(first),
            SleepFrame(1.0),
            LLMTextFrame("done."),
            LLMFullResponseEndFrame(),
        ]
        _, up = await run_test(tts, frames, params=PARAMS)
    assert not errors(up)
    # Without max_buffer_delay_ms the unpunctuated chunk waited for the next input (~1 s).
    assert fake.buffered_secs and fake.buffered_secs[0] < 0.3


@virtual_time
async def test_cartesia_reply_survives_a_pause_longer_than_context_expiry() -> None:
    async with FakeCartesiaServer(secs_per_word=0.05, context_expiry_secs=0.5) as fake:
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=fake.url)
        frames: list[Frame] = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("First part here. And"),
            SleepFrame(1.2),  # e.g. a slow LLM in the middle of the reply
            LLMTextFrame(" the rest of it."),
            LLMFullResponseEndFrame(),
        ]
        down, up = await run_test(tts, frames, params=PARAMS)
    assert not errors(up)
    assert fake.expired == []
    words = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert words == ["First", "part", "here.", "And", "the", "rest", "of", "it."]
    assert abs(audio_secs(down) - 8 * 0.05) < 1e-6
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1


async def test_cartesia_expired_error_resends_on_a_new_context() -> None:
    # The client's own guard is set past the server's expiry: the server's error must be handled.
    async with FakeCartesiaServer(secs_per_word=0.05, context_expiry_secs=0.3) as fake:
        tts = CartesiaTTSService(
            api_key="test-key", voice_id="v", url=fake.url, context_expiry_secs=30.0
        )
        frames: list[Frame] = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("First part. Second"),
            SleepFrame(0.8),
            LLMTextFrame(" part."),
            LLMFullResponseEndFrame(),
        ]
        down, up = await run_test(tts, frames, params=PARAMS)
    assert fake.expired  # the server refused the late input ...
    assert not errors(up)  # ... and the reply went on regardless
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "First",
        "part.",
        "Second",
        "part.",
    ]


@pytest.mark.parametrize(
    ("model", "in_config", "in_voice"),
    [
        ("sonic-3", {"speed": 1.2, "emotion": "positivity"}, None),
        ("sonic-2", None, {"speed": "fast", "emotion": ["positivity:high"]}),
    ],
)
@virtual_time
async def test_cartesia_speed_and_emotion_per_model(
    model: str, in_config: dict[str, object] | None, in_voice: dict[str, object] | None
) -> None:
    speed: str | float = 1.2 if model == "sonic-3" else "fast"
    emotion = ["positivity"] if model == "sonic-3" else ["positivity:high"]
    params = CartesiaTTSService.InputParams(speed=speed, emotion=emotion)
    async with FakeCartesiaServer() as fake:
        tts = CartesiaTTSService(
            api_key="test-key", voice_id="v", url=fake.url, model=model, params=params
        )
        await run_test(tts, reply("Hi."), params=PARAMS)
    request = fake.messages[0]
    assert request.get("generation_config") == in_config
    assert request["voice"].get("__experimental_controls") == in_voice


@virtual_time
async def test_cartesia_error_message_uses_title_and_message() -> None:
    async with FakeCartesiaServer() as fake:
        fake.error_next = "Voice not found"
        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=fake.url)
        _, up = await run_test(tts, reply("Hi."), params=PARAMS)
    assert "Invalid request: Voice not found" in errors(up)[0].error


# ---------------------------------------------------------------------- Deepgram


@virtual_time
async def test_deepgram_keyterms_repeat_the_parameter() -> None:
    async with FakeDeepgramServer() as fake:
        options = LiveOptions(keyterm=["Acme Corp", "refund"])
        stt = DeepgramSTTService(api_key="test-key", url=fake.url, live_options=options)
        _, up = await run_test(stt, [SleepFrame(0.3)], params=PARAMS)
    assert not errors(up)
    assert fake.query_lists[0]["keyterm"] == ["Acme Corp", "refund"]


@virtual_time
async def test_deepgram_handshake_refusal_keeps_the_reason() -> None:
    async with FakeDeepgramServer() as fake:
        options = LiveOptions(model="nova-2", keyterm=["Acme"])
        stt = DeepgramSTTService(api_key="test-key", url=fake.url, live_options=options)
        _, up = await run_test(stt, [SleepFrame(0.5)], params=PARAMS)
    [error] = errors(up)
    assert "HTTP 400" in error.error and "only available for Nova-3" in error.error
    assert fake.rejected == 1  # a bad option is not retried


@virtual_time
async def test_deepgram_data_error_close_is_reported_once_and_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeDeepgramServer() as fake:
        fake.close_next(1008, "DATA-0000")
        stt = DeepgramSTTService(api_key="test-key", url=fake.url)
        with caplog.at_level(logging.WARNING):
            _, up = await run_test(
                stt, [*caller_audio(0.2, loud=True), SleepFrame(0.6)], params=PARAMS
            )
    [error] = errors(up)
    assert not error.fatal and "1008" in error.error and "DATA-0000" in error.error
    assert fake.connections == 1
    # Reported once: one ERROR line naming the close code and reason.
    lines = [r for r in caplog.records if "DATA-0000" in r.getMessage()]
    assert [r.levelno for r in lines] == [logging.ERROR]


@virtual_time
async def test_deepgram_timeout_close_is_reconnected(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDeepgramServer() as fake:
        fake.transcripts.extend(["after the drop"])
        fake.close_next(1011, "NET-0001")
        options = LiveOptions(interim_results=False)
        stt = DeepgramSTTService(api_key="test-key", url=fake.url, live_options=options)
        frames = [
            *caller_audio(0.1, loud=False),
            SleepFrame(0.6),
            *caller_audio(0.4, loud=True),
            *caller_audio(0.5, loud=False),
            SleepFrame(0.3),
        ]
        with caplog.at_level(logging.WARNING):
            down, up = await run_test(stt, frames, params=PARAMS)
    assert not errors(up)
    assert fake.connections == 2
    assert [r.levelno for r in caplog.records if "NET-0001" in r.getMessage()] == [logging.WARNING]
    assert "after the drop" in [f.text for f in down if type(f).__name__ == "TranscriptionFrame"]


@virtual_time
async def test_deepgram_results_carry_word_timings_and_speech_final() -> None:
    async with FakeDeepgramServer() as fake:
        fake.transcripts.append("Book a table.")
        options = LiveOptions(interim_results=True, utterance_end_ms=1000, vad_events=True)
        stt = DeepgramSTTService(api_key="test-key", url=fake.url, live_options=options)
        events: list[str] = []

        @stt.event_handler("on_speech_started")
        async def on_started(service: DeepgramSTTService, message: dict[str, object]) -> None:
            events.append(str(message["type"]))

        @stt.event_handler("on_utterance_end")
        async def on_end(service: DeepgramSTTService, message: dict[str, object]) -> None:
            events.append(str(message["type"]))

        frames = [*caller_audio(0.6, loud=True), *caller_audio(1.4, loud=False), SleepFrame(0.3)]
        down, _ = await run_test(stt, frames, params=PARAMS)
    final = next(f for f in down if type(f).__name__ == "TranscriptionFrame")
    assert final.finalized  # type: ignore[attr-defined]
    words = final.result["channel"]["alternatives"][0]["words"]  # type: ignore[attr-defined]
    assert [w["punctuated_word"] for w in words] == ["Book", "a", "table."]
    assert all(w["end"] > w["start"] for w in words)
    assert events == ["SpeechStarted", "UtteranceEnd"]


# ---------------------------------------------------------------------- ElevenLabs


@virtual_time
async def test_elevenlabs_keepalive_keeps_the_open_context_alive() -> None:
    async with FakeElevenLabsServer() as fake:
        params = ElevenLabsTTSService.InputParams(inactivity_timeout=1)
        tts = ElevenLabsTTSService(
            api_key="test-key", voice_id="v", url=fake.url, params=params, keepalive_secs=0.3
        )
        frames: list[Frame] = [
            LLMFullResponseStartFrame(),
            LLMTextFrame("First. Second"),
            SleepFrame(1.6),
            LLMTextFrame(" part."),
            LLMFullResponseEndFrame(),
        ]
        down, up = await run_test(tts, frames, params=PARAMS)
    assert not errors(up)
    assert fake.timed_out_contexts == []
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["First.", "Second", "part."]


@virtual_time
async def test_elevenlabs_stays_within_five_open_contexts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeElevenLabsServer() as fake:
        tts = ElevenLabsTTSService(api_key="test-key", voice_id="v", url=fake.url)

        async def never_closed(context_id: str) -> None:
            await tts.finish_context(context_id)  # replies end locally, stay open upstream

        monkeypatch.setattr(tts, "flush_context", never_closed)
        frames: list[Frame] = []
        for n in range(7):
            frames += [*reply(f"Reply {n}."), SleepFrame(0.05)]
        _, up = await run_test(tts, frames, params=PARAMS)
    assert fake.close_codes == []  # not closed for max_active_conversations
    assert fake.connections == 1 and not errors(up)
    assert len(fake.closed_contexts) >= 3


@virtual_time
async def test_elevenlabs_reads_is_final_too(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeElevenLabsServer(final_key="is_final") as fake:
        tts = ElevenLabsTTSService(api_key="test-key", voice_id="v", url=fake.url)
        with caplog.at_level(logging.WARNING):
            down, _ = await run_test(tts, reply("Hello there."), params=PARAMS)
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1
    assert not [r for r in caplog.records if "no end of audio" in r.getMessage()]


# ---------------------------------------------------------------------- zero retention


@virtual_time
async def test_zero_retention_flags_reach_the_providers() -> None:
    async with FakeDeepgramServer() as deepgram, FakeElevenLabsServer() as elevenlabs:
        stt = DeepgramSTTService(
            api_key="test-key", url=deepgram.url, live_options=LiveOptions(mip_opt_out=True)
        )
        await run_test(stt, [SleepFrame(0.3)], params=PARAMS)
        params = ElevenLabsTTSService.InputParams(enable_logging=False)
        tts = ElevenLabsTTSService(
            api_key="test-key", voice_id="v", url=elevenlabs.url, params=params
        )
        await run_test(tts, [SleepFrame(0.3)], params=PARAMS)
    assert deepgram.queries[0]["mip_opt_out"] == "true"
    assert elevenlabs.queries[0]["enable_logging"] == ["false"]


async def test_elevenlabs_idle_socket_close_is_reconnected() -> None:
    """ElevenLabs closes an idle socket with 1008 and a timeout reason: reconnect, no error."""
    async with FakeElevenLabsServer() as fake:
        params = ElevenLabsTTSService.InputParams(inactivity_timeout=1)
        tts = ElevenLabsTTSService(
            api_key="test-key", voice_id="v", url=fake.url, params=params, keepalive_secs=30
        )
        down, up = await run_test(tts, [SleepFrame(1.6), *reply("Still here.")], params=PARAMS)
    assert fake.close_codes and fake.close_codes[0][0] == 1008
    assert fake.connections == 2 and not errors(up)
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Still", "here."]
