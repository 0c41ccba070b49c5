"""The official ``speechmatics-rt`` SDK's ``AsyncClient`` against FakeSpeechmaticsServer, and our
service's messages against the SDK's.

The SDK's client connects to the fake, starts a session, streams audio, forces the end of an
utterance and stops the session; every message the fake sends must be one of the SDK's
``ServerMessageType``\\ s, and each transcript must parse as the SDK's ``TranscriptResult`` with
no field its models lack. Our service's ``StartRecognition`` must be the one the SDK builds for
the same options, and its ``ForceEndOfUtterance`` and ``EndOfStream`` must have the SDK's shape
(``EndOfStream`` naming the last audio message, which the fake checks).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any
from urllib.parse import urlsplit

from speechmatics.rt import (
    AsyncClient,
    AudioEncoding,
    AudioFormat,
    ConversationConfig,
    ServerMessageType,
    SpeakerDiarizationConfig,
    TranscriptionConfig,
    TranscriptResult,
)
from speechmatics.rt._models import RecognitionAlternative, RecognitionResult
from speechmatics.rt._utils.message import build_start_recognition_message

from callpipe.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.speechmatics.stt import (
    AdditionalVocabEntry,
    SpeechmaticsSTTService,
    TurnDetectionMode,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.speechmatics import PATH, FakeSpeechmaticsServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

RATE = 16000
RESULT_FIELDS = {f.name for f in dataclasses.fields(RecognitionResult)}
ALTERNATIVE_FIELDS = {f.name for f in dataclasses.fields(RecognitionAlternative)}


def validate(message: dict[str, Any]) -> None:
    ServerMessageType(message["message"])  # a message type the SDK knows
    if message["message"] in ("AddTranscript", "AddPartialTranscript"):
        parsed = TranscriptResult.from_message(message)
        assert parsed.is_final is (message["message"] == "AddTranscript")
        assert set(message) <= {"message", "format", "metadata", "results", "channel"}
        assert set(message["metadata"]) == {"start_time", "end_time", "transcript"}
        for result in message["results"]:
            assert set(result) <= RESULT_FIELDS, set(result)
            for alternative in result["alternatives"]:
                assert set(alternative) <= ALTERNATIVE_FIELDS, set(alternative)


def chunks(pcm: bytes, secs: float = 0.1) -> list[bytes]:
    step = int(RATE * secs) * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


async def test_sdk_streams_through_the_fake_and_accepts_every_message() -> None:
    async with FakeSpeechmaticsServer() as fake:
        fake.transcripts.extend(["Hello from the SDK.", "Goodbye now."])
        client = AsyncClient(api_key="test-key", url=fake.url + PATH)
        finals: list[str] = []
        partials: list[str] = []
        ended = asyncio.Event()
        client.on(
            ServerMessageType.ADD_TRANSCRIPT,
            lambda m: finals.append(TranscriptResult.from_message(m).metadata.transcript),
        )
        client.on(
            ServerMessageType.ADD_PARTIAL_TRANSCRIPT,
            lambda m: partials.append(TranscriptResult.from_message(m).metadata.transcript),
        )
        client.on(ServerMessageType.END_OF_UTTERANCE, lambda m: ended.set())
        config = TranscriptionConfig(language="en", enable_partials=True, diarization="speaker")
        audio_format = AudioFormat(encoding=AudioEncoding.PCM_S16LE, sample_rate=RATE)
        await client.start_session(transcription_config=config, audio_format=audio_format)
        for chunk in chunks(tone_pcm(0.8, RATE)):
            await client.send_audio(chunk)
        await client.force_end_of_utterance()
        await asyncio.wait_for(ended.wait(), 5)
        for chunk in chunks(tone_pcm(0.4, RATE)):
            await client.send_audio(chunk)
        await asyncio.wait_for(client.stop_session(), 5)
        for message in fake.sent:
            validate(json.loads(json.dumps(message)))
    assert [f.strip() for f in finals] == ["Hello from the SDK.", "Goodbye now."]
    assert partials
    kinds = [m["message"] for m in fake.received]
    assert kinds == ["StartRecognition", "ForceEndOfUtterance", "EndOfStream"]
    assert (
        fake.of("EndOfTranscript") and client.session_id == fake.of("RecognitionStarted")[0]["id"]
    )
    assert fake.headers[0]["authorization"] == "Bearer test-key"


async def test_errors_end_the_sdks_session_with_the_reason() -> None:
    async with FakeSpeechmaticsServer() as fake:
        client = AsyncClient(api_key="test-key", url=fake.url + PATH)
        errors: list[dict[str, Any]] = []
        client.on(ServerMessageType.ERROR, errors.append)
        await client.start_session(
            transcription_config=TranscriptionConfig(language="en"),
            audio_format=AudioFormat(encoding=AudioEncoding.MULAW, sample_rate=8000),
        )
        fake.error_next = ("quota_exceeded", "Too many concurrent sessions")
        await client.send_audio(b"\xff" * 800)
        for _ in range(200):
            if errors:
                break
            await asyncio.sleep(0.01)
        await client.close()
    assert errors[0]["type"] == "quota_exceeded"
    assert errors[0]["reason"] == "Too many concurrent sessions"


async def test_our_messages_are_the_sdks() -> None:
    settings = SpeechmaticsSTTService.Settings(
        language=Language.EN_US,
        domain="finance",
        additional_vocab=[AdditionalVocabEntry("Callpipe", sounds_like=["call pipe"])],
        enable_diarization=True,
        max_speakers=3,
        speaker_sensitivity=0.6,
        prefer_current_speaker=True,
        punctuation_overrides={"permitted_marks": [".", ","]},
    )
    async with FakeSpeechmaticsServer() as fake:
        sdk = AsyncClient(api_key="test-key", url=fake.url + PATH)
        await sdk.start_session(
            transcription_config=TranscriptionConfig(language="en"),
            audio_format=AudioFormat(encoding=AudioEncoding.PCM_S16LE, sample_rate=RATE),
        )
        for chunk in chunks(tone_pcm(0.3, RATE)):
            await sdk.send_audio(chunk)
        await sdk.force_end_of_utterance()
        await asyncio.wait_for(sdk.stop_session(), 5)
        stt = SpeechmaticsSTTService(
            api_key="test-key", base_url=fake.url + PATH, settings=settings
        )
        params = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
        frames = [
            SleepFrame(2.0, until=lambda: len(fake.of("RecognitionStarted")) == 2),
            InputAudioRawFrame(tone_pcm(0.3, RATE), RATE),
            UserStoppedSpeakingFrame(),
            SleepFrame(2.0, until=lambda: len(fake.of("EndOfUtterance")) == 2),
        ]
        _, up = await run_test(stt, frames, params=params)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    theirs = fake.received[:3]
    ours = fake.received[3:]
    assert [m["message"] for m in ours] == [m["message"] for m in theirs]
    expected = TranscriptionConfig(
        language="en",
        model="enhanced",  # type: ignore[arg-type]
        output_locale="en-US",
        domain="finance",
        enable_partials=True,
        punctuation_overrides={"permitted_marks": [".", ","]},
        additional_vocab=[{"content": "Callpipe", "sounds_like": ["call pipe"]}],
        diarization="speaker",
        speaker_diarization_config=SpeakerDiarizationConfig(
            max_speakers=3, speaker_sensitivity=0.6, prefer_current_speaker=True
        ),
    )
    built = build_start_recognition_message(
        expected, AudioFormat(encoding=AudioEncoding.PCM_S16LE, sample_rate=RATE)
    )
    assert ours[0] == json.loads(json.dumps(built))
    for mine, sdks in zip(ours[1:], theirs[1:], strict=True):
        assert set(mine) == set(sdks)  # ForceEndOfUtterance with a timestamp, EndOfStream
    assert ours[1]["timestamp"] == 0.3 and ours[2]["last_seq_no"] == fake.seq_nos[1]
    # The handshake: the same endpoint and key; the SDK adds only its ``sm-sdk`` tag.
    assert {urlsplit(p).path for p in fake.paths} == {PATH}
    assert fake.headers[1]["authorization"] == fake.headers[0]["authorization"]


def test_the_turn_mode_asks_for_the_end_of_utterance_as_the_sdk_does() -> None:
    settings = SpeechmaticsSTTService.Settings(
        turn_detection_mode=TurnDetectionMode.VAD, end_of_utterance_silence_trigger=0.7
    )
    stt = SpeechmaticsSTTService(api_key="k", sample_rate=8000, settings=settings)
    expected = TranscriptionConfig(
        language="en",
        model="enhanced",  # type: ignore[arg-type]
        enable_partials=True,
        conversation_config=ConversationConfig(end_of_utterance_silence_trigger=0.7),
    )
    built = build_start_recognition_message(
        expected, AudioFormat(encoding=AudioEncoding.MULAW, sample_rate=8000)
    )
    assert stt.start_recognition() == json.loads(json.dumps(built))
