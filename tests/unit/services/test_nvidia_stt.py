"""NvidiaSTTService and NvidiaSegmentedSTTService (Riva over gRPC) against FakeRivaServer."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("riva.client")

from callpipe.frames.frames import (
    CancelFrame,
    ErrorFrame,
    FatalErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.nvidia.stt import NvidiaSegmentedSTTService, NvidiaSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.nvidia_riva import FakeRivaServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE, ConnectionEvents, caller_audio, of, until

RATE = 8000
KEY = "nvapi-test"
FUNCTION = "fn-asr"
MODELS = {"function_id": FUNCTION, "model_name": "parakeet-test"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeRivaServer]:
    async with FakeRivaServer(api_key=KEY, function_ids=(FUNCTION,)) as server:
        server.drain_secs = 0.1
        yield server


def make_stt(fake: FakeRivaServer, **kwargs: Any) -> NvidiaSTTService:
    kwargs.setdefault("api_key", KEY)
    return NvidiaSTTService(server=fake.target, use_ssl=False, model_function_map=MODELS, **kwargs)


def streams(fake: FakeRivaServer, count: int = 1) -> SleepFrame:
    return until(lambda: len(fake.first_requests) >= count)


def utterance(secs: float = 1.0) -> list[Any]:
    return [*caller_audio(secs, loud=True), *caller_audio(0.6, loud=False)]


async def test_interim_then_final_transcript_and_the_first_request(fake: FakeRivaServer) -> None:
    fake.transcripts.append("I would like to book a table")
    frames = [
        streams(fake),
        UserStartedSpeakingFrame(),
        *caller_audio(1.5, loud=True),
        UserStoppedSpeakingFrame(),
        *caller_audio(0.6, loud=False),
        until(lambda: bool(fake.finals())),
    ]
    down, up = await run_test(make_stt(fake), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    [final] = of(down, TranscriptionFrame)
    assert final.text == "I would like to book a table"
    assert final.finalized and final.language == "en-US" and final.result.is_final
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims and all(final.text.startswith(i) for i in interims)
    # The first request is the configuration alone, in the line's format.
    [first] = fake.first_requests
    assert not first.audio_content
    config = first.streaming_config.config
    assert (config.encoding, config.sample_rate_hertz, config.audio_channel_count) == (1, RATE, 1)
    assert config.language_code == "en-US" and config.enable_automatic_punctuation
    assert config.verbatim_transcripts and not config.profanity_filter
    assert config.endpointing_config.stop_history == 320
    assert first.streaming_config.interim_results
    assert fake.metadata[0]["authorization"] == f"Bearer {KEY}"
    assert fake.metadata[0]["function-id"] == FUNCTION
    # All the caller's PCM as it is, in 100 ms requests; the stream half-closed at the end.
    assert bytes(fake.audio) == b"".join(
        f.audio for f in frames if isinstance(f, InputAudioRawFrame)
    )
    assert fake.ended == ["half-closed"]


async def test_settings_update_opens_a_stream_with_them(fake: FakeRivaServer) -> None:
    fake.transcripts.extend(["first words", "deuxième phrase"])
    settings = NvidiaSTTService.Settings(
        interim_results=False, boosted_lm_words=["callpipe"], boosted_lm_score=8.0
    )
    update = STTUpdateSettingsFrame(
        delta=NvidiaSTTService.Settings(language=Language.FR, profanity_filter=True)
    )
    frames = [
        streams(fake),
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        update,
        streams(fake, 2),
        *utterance(),
        until(lambda: len(fake.finals()) == 2),
    ]
    down, up = await run_test(make_stt(fake, settings=settings), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [(f.text, f.language) for f in of(down, TranscriptionFrame)] == [
        ("first words", "en-US"),
        ("deuxième phrase", "fr"),
    ]
    assert not of(down, InterimTranscriptionFrame)
    old, new = (r.streaming_config.config for r in fake.first_requests)
    assert list(old.speech_contexts[0].phrases) == ["callpipe"]
    assert old.speech_contexts[0].boost == 8.0
    assert (old.language_code, old.profanity_filter) == ("en-US", False)
    assert (new.language_code, new.profanity_filter) == ("fr-FR", True)
    assert sorted(fake.ended) == ["half-closed", "half-closed"]


async def test_a_local_setting_opens_no_stream(fake: FakeRivaServer) -> None:
    update = STTUpdateSettingsFrame(delta=NvidiaSTTService.Settings(speaker_format="{text}"))
    frames = [streams(fake), update, *utterance(), until(lambda: bool(fake.finals()))]
    await run_test(make_stt(fake), frames, params=PHONE)
    assert len(fake.first_requests) == 1


async def test_a_refused_key_is_fatal_and_not_retried(fake: FakeRivaServer) -> None:
    frames = [streams(fake), *caller_audio(0.5, loud=True), SleepFrame(0.3)]
    _, up = await run_test(make_stt(fake, api_key="wrong"), frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert isinstance(error, FatalErrorFrame)
    assert "UNAUTHENTICATED" in error.error
    assert fake.ended == ["refused"]


async def test_unavailable_is_retried_then_reported(fake: FakeRivaServer) -> None:
    fake.fail_next.extend([("UNAVAILABLE", "Service unavailable.")] * 2)
    stt = make_stt(fake)
    stt.reconnect_delay_secs = 0.01
    frames = [*utterance(), until(lambda: bool(fake.finals()))]
    down, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    # The audio the failed streams got went to the next one: the utterance was heard once.
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]
    assert fake.ended == ["refused", "refused", "half-closed"]

    fake.fail_next.extend([("UNAVAILABLE", "Service unavailable.")] * 9)
    stt = make_stt(fake)
    stt.reconnect_delay_secs = 0.01
    frames = [*utterance(), until(lambda: len(fake.ended) >= 7), SleepFrame(0.1), CancelFrame()]
    _, up = await run_test(stt, frames, params=PHONE, send_end_frame=False)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame)
    assert "4 times in a row" in error.error


async def test_a_refused_configuration_is_reported_once(fake: FakeRivaServer) -> None:
    fake.fail_next.append(("INVALID_ARGUMENT", "Unsupported language_code xx-XX."))
    frames = [streams(fake), *utterance(), SleepFrame(0.1)]
    _, up = await run_test(make_stt(fake), frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame)
    assert "INVALID_ARGUMENT" in error.error
    assert len(fake.first_requests) == 1


async def test_segmented_sends_each_utterance_to_recognize(fake: FakeRivaServer) -> None:
    fake.transcripts.append("one utterance")
    stt = NvidiaSegmentedSTTService(
        api_key=KEY,
        server=fake.target,
        use_ssl=False,
        model_function_map=MODELS,
        custom_configuration="enable_vad_endpointing:true",
    )
    frames = [
        *caller_audio(0.2, loud=False),
        UserStartedSpeakingFrame(),
        *caller_audio(1.0, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: bool(fake.recognize_requests)),
    ]
    down, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["one utterance"]
    [request] = fake.recognize_requests
    config = request.config
    assert (config.encoding, config.sample_rate_hertz, config.language_code) == (1, RATE, "en-US")
    assert not config.verbatim_transcripts
    assert dict(config.custom_configuration) == {"enable_vad_endpointing": "true"}
    assert not request.audio.startswith(b"RIFF")  # raw PCM, its format in the config
    assert len(request.audio) >= RATE * 2  # the utterance and the audio before the VAD start


async def test_segmented_refused_key_is_fatal(fake: FakeRivaServer) -> None:
    stt = NvidiaSegmentedSTTService(
        api_key="wrong", server=fake.target, use_ssl=False, model_function_map=MODELS
    )
    frames = [
        UserStartedSpeakingFrame(),
        *caller_audio(0.5, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: bool(fake.recognize_requests)),
        SleepFrame(0.1),
    ]
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert isinstance(error, FatalErrorFrame)


def test_pipecat_defaults() -> None:
    stt = NvidiaSTTService(api_key="k")
    assert stt.settings.model == "nemotron-asr-streaming"
    assert stt.settings.language == "en-US"
    segmented = NvidiaSegmentedSTTService(
        api_key="k", params=NvidiaSegmentedSTTService.InputParams(language=Language.ES)
    )
    assert segmented.settings.model == "canary-1b-asr"
    assert segmented.recognition_config(16000).language_code == "es-ES"


async def test_the_end_of_the_call_waits_for_the_last_result(fake: FakeRivaServer) -> None:
    fake.transcripts.append("goodbye then")
    frames = [streams(fake), *caller_audio(1.0, loud=True)]  # no quiet: Riva has not ended it
    down, up = await run_test(make_stt(fake), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["goodbye then"]
    assert fake.ended == ["half-closed"]


async def test_cancel_cancels_the_call(fake: FakeRivaServer) -> None:
    frames = [streams(fake), *caller_audio(0.5, loud=True), CancelFrame()]
    await run_test(make_stt(fake), frames, params=PHONE, send_end_frame=False)
    for _ in range(100):
        if fake.ended:
            break
        await SleepFrame(0.01).wait()
    assert fake.ended == ["cancelled"]


# ---------------------------------------------------------------------- connection events


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_connected_while_streaming_and_disconnected_at_the_end(fake: FakeRivaServer) -> None:
    fake.transcripts.extend(["first", "second"])
    stt = make_stt(fake)
    events = ConnectionEvents(stt)
    update = STTUpdateSettingsFrame(delta=NvidiaSTTService.Settings(language=Language.ES))
    frames = [
        until(lambda: events.names() == ["on_connected"]),
        events.snapshot(),  # up before any audio went out
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        update,
        streams(fake, 2),
        *utterance(),
        until(lambda: len(fake.finals()) == 2 and fake.ended == ["half-closed"]),
        events.snapshot(),  # the replaced stream has ended: the new one is up
    ]
    _, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert events.snapshots == [["on_connected"], ["on_connected"]]
    assert events.seen == [("on_connected", ()), ("on_disconnected", ())]
    assert fake.ended == ["half-closed", "half-closed"]


async def test_a_cancelled_call_is_disconnected(fake: FakeRivaServer) -> None:
    stt = make_stt(fake)
    events = ConnectionEvents(stt)
    frames = [
        until(lambda: bool(events.seen)),
        *caller_audio(0.5, loud=True),
        CancelFrame(),
    ]
    await run_test(stt, frames, params=PHONE, send_end_frame=False)
    assert events.seen == [("on_connected", ()), ("on_disconnected", ())]


async def test_a_refused_key_is_a_connection_error(fake: FakeRivaServer) -> None:
    stt = make_stt(fake, api_key="wrong")
    events = ConnectionEvents(stt)
    frames = [streams(fake), *caller_audio(0.5, loud=True), until(lambda: bool(events.errors()))]
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, FatalErrorFrame)
    # The call was established on the channel, then the server refused it with its status.
    assert events.names() == ["on_connected", "on_disconnected", "on_connection_error"]
    assert events.errors() == [error.error] and "UNAUTHENTICATED" in error.error


async def test_each_refused_stream_is_a_connection_error(fake: FakeRivaServer) -> None:
    fake.fail_next.extend([("UNAVAILABLE", "Service unavailable.")] * 2)
    stt = make_stt(fake)
    stt.reconnect_delay_secs = 0.01
    events = ConnectionEvents(stt)
    frames = [*utterance(), until(lambda: bool(fake.finals()))]
    _, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert fake.ended == ["refused", "refused", "half-closed"]
    refused = ["on_connected", "on_disconnected", "on_connection_error"]
    assert events.names() == refused * 2 + ["on_connected", "on_disconnected"]
    assert (
        events.errors()
        == [f"{stt}: could not open a stream: UNAVAILABLE: Service unavailable."] * 2
    )


async def test_an_unreachable_server_is_a_connection_error_each_time() -> None:
    stt = NvidiaSTTService(server=f"127.0.0.1:{closed_port()}", use_ssl=False, api_key=KEY)
    stt.reconnect_delay_secs = 0.01
    events = ConnectionEvents(stt)
    frames = [*caller_audio(1.0, loud=True), until(lambda: len(events.errors()) >= 4)]
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert "4 times in a row" in error.error
    # Never connected: one error per attempt (the first and three reopens), no disconnection.
    assert events.names() == ["on_connection_error"] * 4
    errors = events.errors()
    assert all("UNAVAILABLE" in e for e in errors)
    assert all("could not open a stream" in e for e in errors[:3])
    assert errors[3] == error.error


async def test_segmented_recognition_fires_no_connection_events(fake: FakeRivaServer) -> None:
    """One call per utterance, as an HTTP service: no connection to report."""
    stt = NvidiaSegmentedSTTService(
        api_key=KEY, server=fake.target, use_ssl=False, model_function_map=MODELS
    )
    seen: list[str] = []
    for name in ("on_connected", "on_disconnected", "on_connection_error"):
        stt.add_event_handler(name, lambda service, *args, name=name: seen.append(name))
    frames = [
        UserStartedSpeakingFrame(),
        *caller_audio(0.5, loud=True),
        UserStoppedSpeakingFrame(),
        until(lambda: bool(fake.recognize_requests)),
    ]
    await run_test(stt, frames, params=PHONE)
    assert fake.recognize_requests and seen == []
