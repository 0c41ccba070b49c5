"""SarvamTTSService against FakeSarvamServer: config, flushes, sentence text after its audio,
interruption, errors and settings updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.sarvam.tts import (
    SarvamTTSModel,
    SarvamTTSService,
    SarvamTTSSpeakerV3,
    get_speakers_for_model,
    language_to_sarvam_language,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.sarvam import FakeSarvamServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import (
    WIDE,
    after_barge_in,
    audio_secs,
    barge_in,
    emitted,
    errors,
    interruption_at,
    reply,
    run_then,
    until,
)

Settings = SarvamTTSService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeSarvamServer]:
    async with FakeSarvamServer(secs_per_word=0.1, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeSarvamServer, **kwargs: Any) -> SarvamTTSService:
    return SarvamTTSService(api_key="test-key", url=server.url, **kwargs)


def sent(server: FakeSarvamServer) -> list[str]:
    """The client's messages, a text as its text, others as their type."""
    return [
        m["data"]["text"] if m["type"] == "text" else str(m["type"]) for m in server.tts_messages
    ]


async def test_a_phone_call_gets_mulaw_at_8k_and_each_sentence_is_flushed(
    server: FakeSarvamServer,
) -> None:
    down, up = await run_test(
        make_tts(server), reply("Hi there.", " How are", " you?"), params=PARAMS
    )
    assert not errors(up)
    assert server.tts_queries == [{"model": "bulbul:v3", "send_completion_event": "true"}]
    assert server.headers[0]["api-subscription-key"] == "test-key"
    assert server.tts_messages[0] == {
        "type": "config",
        "data": {
            "model": "bulbul:v3",
            "language_code": "en-IN",
            "speaker": "shubh",
            "speech_sample_rate": 8000,
            "enable_preprocessing": True,
            "output_audio_codec": "mulaw",
            "output_audio_bitrate": "128k",
            "pace": 1.0,
            "min_buffer_size": 50,
            "max_chunk_length": 150,
        },
    }
    assert sent(server)[1:] == ["Hi there. ", "flush", "How are you? ", "flush"]
    kinds = [type(f) for f in down]
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert sum(k is TTSStartedFrame for k in kinds) == 1
    assert abs(audio_secs(down) - 5 * 0.1) < 1e-6
    assert {f.sample_rate for f in down if isinstance(f, TTSAudioRawFrame)} == {8000}
    # Each sentence's text follows its own audio.
    texts = [(i, f.text) for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
    assert [t for _, t in texts] == ["Hi there.", "How are you?"]
    assert audio_secs(down[: texts[0][0]]) == pytest.approx(0.2)
    assert audio_secs(down[: texts[1][0]]) == pytest.approx(0.5)


async def test_wideband_output_asks_for_linear16_at_the_output_rate(
    server: FakeSarvamServer,
) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    settings = Settings(language=Language.HI, voice=SarvamTTSSpeakerV3.PRIYA, temperature=0.4)
    down, up = await run_test(
        make_tts(server, settings=settings), reply("Namaste ji."), params=params
    )
    assert not errors(up)
    config = server.tts_messages[0]["data"]
    assert config["output_audio_codec"] == "linear16" and config["speech_sample_rate"] == 16000
    assert config["language_code"] == "hi-IN" and config["speaker"] == "priya"
    assert config["temperature"] == 0.4
    assert abs(audio_secs(down) - 0.2) < 1e-6


@pytest.mark.parametrize("params", [PARAMS, WIDE], ids=["mulaw", "linear16"])
async def test_audio_sent_as_wav_files_loses_only_their_headers(params: PipelineParams) -> None:
    """Each chunk a WAV file whose header is longer than 44 bytes (a LIST chunk, mu-law's
    fact chunk): the samples come out exactly, no header bytes played as sound."""
    rate = params.audio_out_sample_rate
    async with FakeSarvamServer(secs_per_word=0.1, chunk_secs=0.04, wav_chunks=True) as fake:
        down, up = await run_test(make_tts(fake), reply("Namaste ji."), params=params)
    assert not errors(up)
    assert fake.tts_messages[0]["data"]["output_audio_codec"] == (
        "mulaw" if rate == 8000 else "linear16"
    )
    expected = tone_pcm(0.2, rate)
    if rate == 8000:
        expected = ulaw_to_pcm(pcm_to_ulaw(expected))
    assert b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame)) == expected


async def test_two_replies_back_to_back_keep_their_own_audio(server: FakeSarvamServer) -> None:
    server.chunk_delay = 0.005
    frames = [*reply("One two three four."), *reply("Five six.")]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    ids = [f.context_id for f in down if isinstance(f, TTSStartedFrame)]
    assert len(ids) == 2
    per_reply = [
        audio_secs([f for f in down if isinstance(f, TTSAudioRawFrame) and f.context_id == i])
        for i in ids
    ]
    assert per_reply == [pytest.approx(0.4), pytest.approx(0.2)]


async def test_interrupting_a_reply_sarvam_still_generates_reopens_the_socket(
    server: FakeSarvamServer,
) -> None:
    server.chunk_delay = 0.02
    down = await barge_in(make_tts(server), params=PARAMS, tail=" More.")
    assert len(server.tts_queries) == 2  # Sarvam cannot cancel: a new socket
    rest = after_barge_in(down)
    assert [f.text for f in rest if isinstance(f, TTSTextFrame)] == ["Fresh start."]
    assert abs(audio_secs(rest) - 0.2) < 1e-6


async def test_interrupting_a_reply_whose_audio_is_all_here_keeps_the_socket(
    server: FakeSarvamServer,
) -> None:
    before: list[Frame] = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("One two."),
        LLMTextFrame(" Three"),  # held by the sentence aggregator: never sent
    ]
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=emitted(TTSTextFrame),
        params=PARAMS,
    )
    assert len(server.tts_queries) == 1
    assert sent(server)[1:] == ["One two. ", "flush", "Fresh start. ", "flush"]
    cut = interruption_at(down)
    assert [f.text for f in down[cut:] if isinstance(f, TTSTextFrame)] == ["Fresh start."]


async def test_a_barge_in_during_uninterruptible_speech_keeps_the_socket(
    server: FakeSarvamServer,
) -> None:
    server.chunk_delay = 0.01
    hold = TTSSpeakFrame("Please hold while I check that for you.")
    hold.interruptible = False
    before: list[Frame] = [
        hold,
        LLMFullResponseStartFrame(),
        LLMTextFrame("Dropped reply."),
        LLMTextFrame(" And"),  # the sentence before it is complete: sent to Sarvam
    ]
    after: list[Frame] = [InterruptionFrame(), *reply("Fresh start.")]
    down = await run_then(
        make_tts(server),
        before,
        after,
        when=emitted(TTSAudioRawFrame),
        params=PARAMS,
    )
    # The hold message is still being generated: no new socket, the cut reply's audio dropped.
    assert len(server.tts_queries) == 1
    assert server.runs == [
        "Please hold while I check that for you. ",
        "Dropped reply. ",
        "Fresh start. ",
    ]
    ids = [f.context_id for f in down if isinstance(f, TTSStartedFrame)]
    kept = [f for f in down if isinstance(f, TTSAudioRawFrame) and f.context_id == ids[0]]
    assert audio_secs(kept) == pytest.approx(0.8)
    texts = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert texts == ["Please hold while I check that for you.", "Fresh start."]
    assert audio_secs(down) == pytest.approx(0.8 + 0.2)


async def test_a_sarvam_error_is_reported_and_the_reply_closes(server: FakeSarvamServer) -> None:
    # Once the config is in, the next message (the text) is answered with an error.
    frames = [
        until(lambda: bool(server.tts_messages) and _arm(server)),
        *reply("Lost words."),
        SleepFrame(0.2),
        *reply("Next one."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    # The failed reply's text is not recorded as spoken; the next reply's is.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Next one."]
    [error] = errors(up)
    assert "Sarvam error: synthesis failed" in error.error and not error.fatal
    kinds = [type(f) for f in down]
    assert TTSStoppedFrame in kinds  # the reply did not hang
    assert kinds.index(TTSStoppedFrame) < kinds.index(LLMFullResponseEndFrame)
    assert server.runs == ["Next one. "]


def _arm(server: FakeSarvamServer) -> bool:
    server.error_next = "synthesis failed"
    return True


async def test_rejected_key_is_fatal_at_start(server: FakeSarvamServer) -> None:
    tts = SarvamTTSService(api_key="wrong", url=server.url)
    _, up = await run_test(tts, [SleepFrame(0.1)], params=PARAMS)
    [error] = errors(up)
    assert error.fatal and "SARVAM_API_KEY" in error.error


async def test_a_voice_update_resends_the_config_and_a_model_update_reopens(
    server: FakeSarvamServer,
) -> None:
    frames = [
        *reply("First one."),
        TTSUpdateSettingsFrame(delta=Settings(voice="ritu", pace=1.3)),
        *reply("Second one."),
        # Sarvam is still speaking "Second one.": the new socket waits for its end.
        TTSUpdateSettingsFrame(delta=Settings(model=SarvamTTSModel.BULBUL_V4_FLASH)),
        *reply("Third one."),
    ]
    down, up = await run_test(make_tts(server), frames, params=PARAMS)
    assert not errors(up)
    configs = [m["data"] for m in server.tts_messages if m["type"] == "config"]
    assert [(c["speaker"], c["pace"]) for c in configs[:2]] == [("shubh", 1.0), ("ritu", 1.3)]
    assert [q["model"] for q in server.tts_queries] == ["bulbul:v3", "bulbul:v4-flash"]
    # bulbul:v4-flash: its own default speaker, no temperature.
    assert configs[2]["model"] == "bulbul:v4-flash"
    assert configs[2]["speaker"] == "shubh_en_narration_gentle"
    assert server.runs == ["First one. ", "Second one. ", "Third one. "]
    assert abs(audio_secs(down) - 0.6) < 1e-6


def test_model_rules_apply_at_construction() -> None:
    v4 = SarvamTTSService(
        api_key="k",
        sample_rate=24000,
        settings=Settings(model="bulbul:v4-flash", pitch=0.2, loudness=1.5, temperature=0.9),
    )
    data = v4.config_message()["data"]
    assert data["pitch"] == 0.2 and data["loudness"] == 1.5 and "temperature" not in data
    slow = SarvamTTSService(api_key="k", sample_rate=24000, settings=Settings(pace=0.1))
    assert slow.config_message()["data"]["pace"] == 0.5  # clamped into bulbul:v3's range
    old = SarvamTTSService(
        api_key="k",
        sample_rate=8000,
        params=SarvamTTSService.InputParams(output_audio_codec="linear16", language="ta"),
    )
    assert old.config_message()["data"]["output_audio_codec"] == "linear16"
    assert old.config_message()["data"]["language_code"] == "ta-IN"
    with pytest.raises(ConfigurationError, match="model"):
        SarvamTTSService(api_key="k", model="bulbul:v9")
    with pytest.raises(ConfigurationError, match="output_audio_codec"):
        SarvamTTSService(api_key="k", params=SarvamTTSService.InputParams(output_audio_codec="mp3"))


def test_languages_speakers_and_url() -> None:
    assert language_to_sarvam_language(Language.OR) == "od-IN"
    assert language_to_sarvam_language(Language.KN_IN) == "kn-IN"
    assert "shubh" in get_speakers_for_model("bulbul:v3")
    assert get_speakers_for_model("bulbul:v2")[0] == "anushka"
    tts = SarvamTTSService(api_key="k", url="wss://example.test/text-to-speech/ws")
    assert tts.socket_url() == (
        "wss://example.test/text-to-speech/ws?model=bulbul%3Av3&send_completion_event=true"
    )
