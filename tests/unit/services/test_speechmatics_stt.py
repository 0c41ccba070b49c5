"""SpeechmaticsSTTService against FakeSpeechmaticsServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.speechmatics.stt import (
    AdditionalVocabEntry,
    AudioEncoding,
    SpeechmaticsSTTService,
    TurnDetectionMode,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.speechmatics import FakeSpeechmaticsServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import WIDE, assert_provider_turn, caller_audio, of, until

RATE = 8000
Settings = SpeechmaticsSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeSpeechmaticsServer]:
    async with FakeSpeechmaticsServer() as fake:
        yield fake


def make_stt(server: FakeSpeechmaticsServer, **kwargs: Any) -> SpeechmaticsSTTService:
    return SpeechmaticsSTTService(api_key="test-key", base_url=server.url + "/v2", **kwargs)


def started(server: FakeSpeechmaticsServer, count: int = 1) -> SleepFrame:
    return until(lambda: len(server.of("RecognitionStarted")) >= count)


async def test_turn_end_flushes_audio_then_forces_the_end_of_utterance(
    server: FakeSpeechmaticsServer,
) -> None:
    server.transcripts.append("I would like to book a table.")
    frames = [
        started(server),
        UserStartedSpeakingFrame(),
        *caller_audio(1.26, loud=True),  # 60 ms less than a batch (100 ms) wait in the queue
        UserStoppedSpeakingFrame(),
        until(lambda: server.of("EndOfUtterance") != []),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the final must come from the forced end
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like to book a table."
    assert final.finalized and final.language == "en"
    assert final.result["message"] == "AddTranscript"
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims and all(final.text.startswith(i) for i in interims)
    # The whole turn (µ-law, one byte a sample) reached Speechmatics before the forced end,
    # whose timestamp is the audio sent so far.
    assert server.audio_at_force_end == [int(1.26 * RATE)]
    [force] = [m for m in server.received if m["message"] == "ForceEndOfUtterance"]
    assert force == {"message": "ForceEndOfUtterance", "timestamp": 1.26}
    assert server.starts[0] == {
        "message": "StartRecognition",
        "audio_format": {"type": "raw", "encoding": "mulaw", "sample_rate": 8000},
        "transcription_config": {"language": "en", "model": "enhanced", "enable_partials": True},
    }
    assert server.headers[0]["authorization"] == "Bearer test-key"


async def test_audio_waits_for_recognition_started(server: FakeSpeechmaticsServer) -> None:
    server.transcripts.append("goodbye then")
    # From the first packet, before the socket is open and the session began; the call ends
    # as soon as the session begins.
    frames = [*caller_audio(0.6, loud=True), started(server)]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert server.audio_before_start == 0
    assert len(server.audio) == int(0.6 * RATE)
    # The end of the call: EndOfStream names the last audio message, and the last words
    # come before the EndFrame.
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    [end] = [m for m in server.received if m["message"] == "EndOfStream"]
    assert end["last_seq_no"] == len(server.of("AudioAdded")) == server.seq_nos[0] > 1
    assert server.of("EndOfTranscript")


async def test_wideband_pcm_and_settings_reach_start_recognition(
    server: FakeSpeechmaticsServer,
) -> None:
    server.transcripts.append("hello there.")
    settings = Settings(
        language=Language.EN_GB,
        domain="finance",
        additional_vocab=[AdditionalVocabEntry("Callpipe", sounds_like=["call pipe"])],
        enable_diarization=True,
        max_speakers=2,
        speaker_active_format="{speaker_id}: {text}",
        transcript_filtering_config={"remove_disfluencies": True},
    )
    frames = [started(server), *caller_audio(0.6, loud=True, rate=16000)]
    down, _ = await run_test(make_stt(server, settings=settings), frames, params=WIDE)
    start = server.starts[0]
    assert start["audio_format"]["encoding"] == "pcm_s16le"
    assert start["audio_format"]["sample_rate"] == 16000
    assert start["transcription_config"] == {
        "language": "en",
        "output_locale": "en-GB",
        "model": "enhanced",
        "domain": "finance",
        "enable_partials": True,
        "transcript_filtering_config": {"remove_disfluencies": True},
        "additional_vocab": [{"content": "Callpipe", "sounds_like": ["call pipe"]}],
        "diarization": "speaker",
        "speaker_diarization_config": {"max_speakers": 2},
    }
    assert len(server.audio) == int(0.6 * 16000) * 2
    assert [f.text for f in of(down, TranscriptionFrame)] == ["S1: hello there."]


async def test_speechmatics_turn_mode_proposes_the_turns(server: FakeSpeechmaticsServer) -> None:
    settings = Settings(
        turn_detection_mode=TurnDetectionMode.VAD, end_of_utterance_silence_trigger=0.4
    )
    stt = make_stt(server, should_interrupt=False, settings=settings)
    frames = [
        started(server),
        *caller_audio(0.6, loud=True),
        *caller_audio(0.6, loud=False),
        until(lambda: server.of("EndOfUtterance") != []),
        SleepFrame(0.05),
        UserStoppedSpeakingFrame(),  # the VAD does not force the end in this mode
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    meta = assert_provider_turn(down, up)
    assert meta.ttfs_p99_latency == 0.74
    config = server.starts[0]["transcription_config"]
    assert config["conversation_config"] == {"end_of_utterance_silence_trigger": 0.4}
    assert not [m for m in server.received if m["message"] == "ForceEndOfUtterance"]


async def test_a_rejected_key_is_fatal(server: FakeSpeechmaticsServer) -> None:
    stt = SpeechmaticsSTTService(api_key="wrong", base_url=server.url + "/v2")
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal and "SPEECHMATICS_API_KEY" in errors[0].error


async def test_a_refused_session_is_reported_and_not_reopened(
    server: FakeSpeechmaticsServer,
) -> None:
    server.error_next = ("insufficient_funds", "Not enough credits")
    frames = [started(server), *caller_audio(0.2, loud=True), SleepFrame(0.5)]
    _, up = await run_test(make_stt(server), frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal
    assert "insufficient_funds" in errors[0].error and "Not enough credits" in errors[0].error
    assert server.connections == 1


async def test_a_dropped_socket_starts_a_new_session_numbered_from_one(
    server: FakeSpeechmaticsServer,
) -> None:
    server.transcripts.extend(["first part", "second part"])
    frames = [
        started(server),
        *caller_audio(0.4, loud=True),
        until(lambda: len(server.of("AudioAdded")) >= 3),
    ]

    def drop() -> bool:
        server.drop_on_next_audio()
        return True

    frames += [
        until(drop),
        *caller_audio(0.2, loud=True),
        started(server, 2),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert len(server.starts) == 2 and server.starts[1] == server.starts[0]
    assert server.audio_before_start == 0
    # EndOfStream counted only the new session's audio (the fake refuses a wrong count).
    assert server.of("EndOfTranscript") and server.seq_nos[0] > 0
    assert [f.text for f in of(down, TranscriptionFrame)][-1] == "second part"


async def test_settings_update_opens_a_new_session(server: FakeSpeechmaticsServer) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        started(server),
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=Settings(speaker_active_format="> {text}")),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),
        until(lambda: len(server.seq_nos) == 1 and len(server.starts) == 2),
        started(server, 2),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    languages = [s["transcription_config"]["language"] for s in server.starts]
    assert languages == ["en", "fr"]  # the format alone opened no session
    assert [f.text for f in of(down, TranscriptionFrame)] == ["> first words", "> deuxième"]


async def test_a_refused_new_session_keeps_the_old_one_and_its_settings(
    server: FakeSpeechmaticsServer,
) -> None:
    server.transcripts.extend(["still here"])
    stt = make_stt(server)
    frames = [
        started(server),
        STTUpdateSettingsFrame(delta=Settings(model="no-such-model")),
        until(lambda: len(server.starts) == 2),
        SleepFrame(0.2),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and not errors[0].fatal
    assert "could not open a socket" in errors[0].error and "invalid_model" in errors[0].error
    assert stt.settings.model == "enhanced"
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still here"]


async def test_a_refused_operating_point_puts_the_model_back(
    server: FakeSpeechmaticsServer,
) -> None:
    server.transcripts.extend(["still here"])
    stt = make_stt(server)
    frames = [
        started(server),
        STTUpdateSettingsFrame(delta=Settings(operating_point="no-such-model")),
        until(lambda: len(server.starts) == 2),
        SleepFrame(0.2),
        *caller_audio(0.6, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 1 and "invalid_model" in errors[0].error
    assert stt.settings.model == "enhanced" and stt.model_name == "enhanced"
    assert stt.settings.operating_point is None
    assert stt.transcription_config()["model"] == "enhanced"  # what the next session asks for
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still here"]


def test_constructor_checks_and_the_older_spellings() -> None:
    with pytest.raises(ConfigurationError):
        SpeechmaticsSTTService(api_key="k", encoding=AudioEncoding.PCM_F32LE)
    with pytest.raises(ConfigurationError):
        SpeechmaticsSTTService(
            api_key="k", settings=Settings(model="standard", operating_point="melia-1")
        )
    params = SpeechmaticsSTTService.InputParams(
        language=Language.DE, operating_point="standard", enable_diarization=True
    )
    stt = SpeechmaticsSTTService(api_key="k", params=params, sample_rate=16000)
    config = stt.transcription_config()
    assert config["language"] == "de" and config["model"] == "standard"
    assert config["diarization"] == "speaker"
    assert stt.settings.speaker_active_format == "@{speaker_id}: {text}"
    assert stt.socket_url() == "wss://eu2.rt.speechmatics.com/v2"
    # Pipecat's older keyword arguments still work (or are ignored, as there).
    stt = SpeechmaticsSTTService(api_key="k", language=Language.FR, max_delay=1.0)
    assert stt.transcription_config()["language"] == "fr"


async def test_pipecat_s_emit_sentences_is_accepted_said_and_not_sent(
    server: FakeSpeechmaticsServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A 1.14 bot's Agent STT option: the real-time API has no such field, so it must not reach
    # StartRecognition (Speechmatics refuses unknown fields), and the bot is told once.
    with caplog.at_level("WARNING"):
        stt = make_stt(server, settings=Settings(emit_sentences=True))
        down, up = await run_test(stt, [started(server)], params=PARAMS)
    assert not of(up, ErrorFrame)
    [start] = server.starts
    assert "emit_sentences" not in start["transcription_config"]
    assert stt.settings.emit_sentences is True
    said = [r for r in caplog.records if "emit_sentences" in r.getMessage()]
    assert len(said) == 1
