"""SarvamSTTService against FakeSarvamServer."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    InterimTranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    STTMetadataFrame,
    STTMuteFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.sarvam.stt import SarvamSTTService, language_to_sarvam_language
from callpipe.services.websocket_service import ProviderWebsocket
from callpipe.testing import run_test
from callpipe.testing.fakes.sarvam import FakeSarvamServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, of, until

RATE = 8000
Settings = SarvamSTTService.Settings


@pytest.fixture
async def server() -> AsyncIterator[FakeSarvamServer]:
    async with FakeSarvamServer() as fake:
        yield fake


def make_stt(server: FakeSarvamServer, **kwargs: Any) -> SarvamSTTService:
    return SarvamSTTService(api_key="test-key", url=server.url, **kwargs)


def connected(server: FakeSarvamServer, count: int = 1) -> SleepFrame:
    return until(lambda: len(server.stt_queries) >= count)


def flushes(server: FakeSarvamServer) -> int:
    return sum(1 for m in server.stt_messages if m.get("type") == "flush")


async def test_a_turn_that_ends_before_the_socket_opens_is_flushed_once_it_does(
    server: FakeSarvamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.transcripts.append("क्या कोई है")
    gate = asyncio.Event()
    connect = ProviderWebsocket.connect

    async def held_connect(self: ProviderWebsocket) -> None:
        await gate.wait()  # the handshake held until the caller's turn is over
        await connect(self)

    def open_gate() -> bool:
        gate.set()
        return True

    monkeypatch.setattr(ProviderWebsocket, "connect", held_connect)
    frames = [
        UserStartedSpeakingFrame(),
        *caller_audio(0.26, loud=True),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.2),  # the turn's end reaches the STT while its socket is still opening
        SleepFrame(0.0, until=open_gate),
        until(lambda: any(m["type"] == "data" for m in server.sent)),
        SleepFrame(0.3),
        CancelFrame(),  # not an EndFrame: the transcript must come from the turn's flush
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not of(up, ErrorFrame)
    assert flushes(server) == 1
    [final] = of(down, TranscriptionFrame)
    assert final.text == "क्या कोई है"


async def test_turn_end_sends_the_audio_then_a_flush(server: FakeSarvamServer) -> None:
    server.transcripts.append("मुझे टेबल बुक करनी है")
    frames = [
        connected(server),
        UserStartedSpeakingFrame(),
        *caller_audio(0.26, loud=True),  # 60 ms of it wait in the queue for a full batch
        UserStoppedSpeakingFrame(),
        until(lambda: any(m["type"] == "data" for m in server.sent)),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the transcript must come from the turn's flush
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "मुझे टेबल बुक करनी है"
    assert final.finalized and final.language == "en-IN"  # what Sarvam detected
    assert final.result["type"] == "data"
    assert not of(down, InterimTranscriptionFrame)  # Sarvam sends none
    assert not of(down, ProposedUserStartedSpeakingFrame)  # callpipe's VAD decides the turns
    assert server.stt_queries[0] == {
        "language-code": "unknown",
        "model": "saaras:v4",
        "mode": "transcribe",
        "sample_rate": "8000",
        "flush_signal": "true",
        "input_audio_codec": "pcm_s16le",
    }
    assert server.headers[0]["api-subscription-key"] == "test-key"
    audio = [m["audio"] for m in server.stt_messages if "audio" in m]
    assert {(a["sample_rate"], a["encoding"]) for a in audio} == {(8000, "audio/wav")}
    # 100 ms batches, and the whole turn (16-bit PCM at 8 kHz) went out before the flush.
    assert len(base64.b64decode(audio[0]["data"])) == 1600
    assert server.stt_messages[-1] == {"type": "flush"}
    assert len(server.audio) == int(0.26 * RATE) * 2


async def test_end_of_call_flushes_and_pushes_the_last_words_first(
    server: FakeSarvamServer,
) -> None:
    server.transcripts.append("goodbye then")
    # The call ends mid-turn: the flush at the end brings the words said so far.
    frames = [connected(server), UserStartedSpeakingFrame(), *caller_audio(0.3, loud=True)]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert flushes(server) == 1


async def test_end_of_call_waits_for_the_transcript_of_the_last_turns_flush() -> None:
    async with FakeSarvamServer(flush_delay=0.3) as server:
        server.transcripts.append("that is all")
        frames = [
            connected(server),
            UserStartedSpeakingFrame(),
            *caller_audio(0.3, loud=True),
            UserStoppedSpeakingFrame(),  # its flush is answered after the EndFrame arrives
        ]
        down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["that is all"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]


async def test_keepalive_sends_silence_while_no_audio_goes_out(server: FakeSarvamServer) -> None:
    stt = make_stt(server, keepalive_timeout=0.05, keepalive_interval=0.02)
    frames = [connected(server), STTMuteFrame(mute=True), SleepFrame(0.3)]
    await run_test(stt, frames, params=PARAMS)
    silence = [base64.b64decode(m["audio"]["data"]) for m in server.stt_messages if "audio" in m]
    assert len(silence) >= 2
    assert set(silence) == {bytes(1600)}  # 100 ms of 16-bit silence at 8 kHz


async def test_an_idle_end_of_call_closes_without_a_flush(server: FakeSarvamServer) -> None:
    server.transcripts.append("done")
    frames = [
        connected(server),
        *caller_audio(0.4, loud=True),
        *caller_audio(0.6, loud=False),  # Sarvam's VAD ends the utterance on the quiet
        until(lambda: any(m["type"] == "data" for m in server.sent)),
    ]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["done"]
    assert flushes(server) == 0  # nothing was waiting for a transcript


async def test_sarvam_vad_signals_propose_the_turns(server: FakeSarvamServer) -> None:
    server.transcripts.append("hello there")
    settings = Settings(vad_signals=True, high_vad_sensitivity=True, min_speech_frames=3)
    stt = make_stt(server, settings=settings)
    frames = [
        connected(server),
        *caller_audio(0.4, loud=True),
        *caller_audio(0.6, loud=False),
        until(lambda: any(m["type"] == "data" for m in server.sent)),
        SleepFrame(0.05),
        UserStoppedSpeakingFrame(),  # no flush in this mode
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    [meta] = of(down, STTMetadataFrame)
    assert isinstance(meta.user_turn_strategies, ExternalUserTurnStrategies)
    assert meta.ttfs_p99_latency == 1.17
    names = [type(f).__name__ for f in down if "Proposed" in type(f).__name__]
    names += [type(f).__name__ for f in down if isinstance(f, TranscriptionFrame)]
    assert names[:2] == ["ProposedUserStartedSpeakingFrame", "ProposedUserStoppedSpeakingFrame"]
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello there"]
    assert of(up, ProposedUserStartedSpeakingFrame)
    query = server.stt_queries[0]
    assert query["vad_signals"] == "true" and "flush_signal" not in query
    assert query["high_vad_sensitivity"] == "true" and query["min_speech_frames"] == "3"
    assert flushes(server) == 0


async def test_language_update_reopens_the_socket(server: FakeSarvamServer) -> None:
    server.transcripts.extend(["pehla", "irandu"])
    stt = make_stt(server, settings=Settings(language=Language.HI), mode="codemix")
    frames = [
        connected(server),
        *caller_audio(0.3, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: any(m["type"] == "data" for m in server.sent)),
        STTUpdateSettingsFrame(delta=Settings(language=Language.TA_IN)),
        connected(server, 2),
        SleepFrame(0.1),
        *caller_audio(0.3, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: sum(m["type"] == "data" for m in server.sent) >= 2),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not of(up, ErrorFrame)
    assert [q["language-code"] for q in server.stt_queries] == ["hi-IN", "ta-IN"]
    assert {q["mode"] for q in server.stt_queries} == {"codemix"}
    finals = of(down, TranscriptionFrame)
    assert [f.text for f in finals] == ["pehla", "irandu"]
    assert [f.language for f in finals] == ["hi-IN", "ta-IN"]


async def test_a_rejected_key_is_fatal(server: FakeSarvamServer) -> None:
    stt = SarvamSTTService(api_key="wrong", url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert errors and errors[0].fatal
    assert "SARVAM_API_KEY" in errors[0].error


async def test_a_provider_error_is_reported_and_transcription_goes_on(
    server: FakeSarvamServer,
) -> None:
    server.error_next = "audio decode failed"
    server.transcripts.append("still here")
    frames = [
        connected(server),
        *caller_audio(0.3, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: any(m["type"] == "data" for m in server.sent)),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    [error] = of(up, ErrorFrame)
    assert not error.fatal and "audio decode failed" in error.error
    assert [f.text for f in of(down, TranscriptionFrame)] == ["still here"]


def test_keyterms_and_vad_knobs_go_in_the_query() -> None:
    stt = SarvamSTTService(
        api_key="k",
        sample_rate=16000,
        keyterms=["Sarvam", "New Delhi"],
        settings=Settings(positive_speech_threshold=0.6, vad_signals=False),
    )
    query = stt.query()
    assert json.loads(query["keyterms"]) == ["Sarvam", "New Delhi"]
    assert query["positive_speech_threshold"] == "0.6"
    assert query["vad_signals"] == "false" and query["flush_signal"] == "true"
    assert query["sample_rate"] == "16000"


def test_languages_map_to_sarvam_codes() -> None:
    assert language_to_sarvam_language(Language.HI) == "hi-IN"
    assert language_to_sarvam_language(Language.OR) == "od-IN"
    assert language_to_sarvam_language(Language.EN_US) == "en-IN"


def test_bad_options_are_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="model"):
        SarvamSTTService(api_key="k", settings=Settings(model="saarika:v1"))
    with pytest.raises(ConfigurationError, match="mode"):
        SarvamSTTService(api_key="k", mode="summarize")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="input_audio_codec"):
        SarvamSTTService(api_key="k", input_audio_codec="mulaw")
