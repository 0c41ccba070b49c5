"""GoogleSTTService (Speech-to-Text v2 over gRPC) against FakeGoogleSpeechServer."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("google.cloud.speech_v2")

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.google.stt import GoogleSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.google_speech import FakeGoogleSpeechServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import (
    PHONE,
    ConnectionEvents,
    caller_audio,
    of,
    run_then,
    service_account_info,
    until,
)

RATE = 8000
Settings = GoogleSTTService.Settings


@pytest.fixture
async def fake() -> AsyncIterator[FakeGoogleSpeechServer]:
    async with FakeGoogleSpeechServer() as server:
        yield server


def make_stt(fake: FakeGoogleSpeechServer, **kwargs: Any) -> GoogleSTTService:
    return GoogleSTTService(url=fake.base_url, **kwargs)


def streams(fake: FakeGoogleSpeechServer, count: int = 1) -> SleepFrame:
    return until(lambda: len(fake.first_requests) >= count)


def utterance(secs: float = 1.0) -> list[Any]:
    return [*caller_audio(secs, loud=True), *caller_audio(0.6, loud=False)]


def audio_bytes(frames: list[Any]) -> int:
    return sum(len(f.audio) for f in frames if isinstance(f, InputAudioRawFrame))


async def test_interim_then_final_transcript_and_the_first_request(
    fake: FakeGoogleSpeechServer,
) -> None:
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
    assert final.finalized and final.language == "en-US"
    assert final.result.is_final and final.result.language_code == "en-us"
    interims = [f.text for f in of(down, InterimTranscriptionFrame)]
    assert interims and all(final.text.startswith(i) for i in interims)
    [first] = fake.first_requests
    assert first.recognizer == "projects/callpipe-fakes/locations/global/recognizers/_"
    config = first.streaming_config.config
    decoding = config.explicit_decoding_config
    assert (decoding.encoding.name, decoding.sample_rate_hertz) == ("LINEAR16", RATE)
    assert decoding.audio_channel_count == 1
    assert list(config.language_codes) == ["en-US"] and config.model == "latest_long"
    assert config.features.enable_automatic_punctuation
    assert not config.features.profanity_filter
    assert first.streaming_config.streaming_features.interim_results
    # The caller's PCM as it is, in 100 ms requests, all of it; the stream half-closed at the end.
    assert bytes(fake.audio) == b"".join(
        f.audio for f in frames if isinstance(f, InputAudioRawFrame)
    )
    assert fake.ended == ["half-closed"]


async def test_the_result_language_is_the_configured_code_it_names(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.language = "es-mx"
    settings = Settings(languages=[Language.EN_US, Language.ES_MX], enable_interim_results=False)
    down, _ = await run_test(make_stt(fake, settings=settings), [streams(fake), *utterance()])
    [final] = of(down, TranscriptionFrame)
    assert final.language == "es-MX"
    assert not of(down, InterimTranscriptionFrame)
    assert list(fake.configs[0].config.language_codes) == ["en-US", "es-MX"]


async def test_a_settings_update_opens_a_stream_with_the_new_configuration(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.transcripts.extend(["first words", "deuxième phrase"])
    update = STTUpdateSettingsFrame(delta=Settings(language=Language.FR, profanity_filter=True))
    frames = [
        streams(fake),
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        update,
        streams(fake, 2),
        *utterance(),
        until(lambda: len(fake.finals()) == 2),
    ]
    stt = make_stt(fake)
    down, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [(f.text, f.language) for f in of(down, TranscriptionFrame)] == [
        ("first words", "en-US"),
        ("deuxième phrase", "fr-FR"),
    ]
    new = fake.configs[1].config
    assert list(new.language_codes) == ["fr-FR"] and new.features.profanity_filter
    assert stt.settings.languages == [Language.FR]
    assert fake.ended == ["half-closed", "half-closed"]
    # Every byte went to one stream or the other, once.
    assert sum(fake.stream_audio) == audio_bytes(frames)


async def test_refused_settings_go_back_and_transcription_goes_on(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.transcripts.extend(["before", "after"])
    frames = [
        streams(fake),
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        STTUpdateSettingsFrame(delta=Settings(model="no-such-model")),
        until(lambda: "refused" in fake.ended or "invalid" in fake.ended),
        *utterance(),
        until(lambda: len(fake.finals()) == 2),
    ]
    stt = make_stt(fake)
    down, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame)
    assert "previous ones" in error.error
    assert stt.settings.model == "latest_long"
    assert [f.text for f in of(down, TranscriptionFrame)] == ["before", "after"]
    assert [c.config.model for c in fake.configs] == ["latest_long", "no-such-model", "latest_long"]


async def test_an_aborted_stream_is_reopened_and_its_unfinished_audio_sent_again(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.stream_limit_secs = 1.5  # Google ends the stream 0.5 s into the second utterance
    fake.transcripts.extend(["first", "a second one that spans the limit"])
    second, quiet = caller_audio(0.8, loud=True), caller_audio(0.6, loud=False)
    frames = [
        streams(fake),
        *caller_audio(0.4, loud=True),
        *caller_audio(0.6, loud=False),
        *second,
        *quiet,
        until(lambda: len(fake.finals()) == 2),
    ]
    down, up = await run_test(make_stt(fake), frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == [
        "first",
        "a second one that spans the limit",
    ]
    assert fake.ended[0] == "aborted"
    # The next stream got the audio after the first final again, so all of the second
    # utterance; the first utterance was not sent twice.
    assert fake.stream_audio[1] >= audio_bytes(second) + audio_bytes(quiet)
    assert fake.stream_audio[1] < audio_bytes(frames)


async def test_an_old_stream_is_replaced_at_a_pause_without_losing_audio(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.transcripts.extend(["one", "two"])
    stt = make_stt(fake)
    stt.stream_limit_secs = 0.3
    frames = [
        streams(fake),
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        SleepFrame(0.35),
        *utterance(),
        until(lambda: len(fake.finals()) == 2),
    ]
    down, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["one", "two"]
    assert len(fake.first_requests) >= 2
    assert set(fake.ended) == {"half-closed"}
    assert sum(fake.stream_audio) == audio_bytes(frames)


async def test_refused_credentials_are_fatal(fake: FakeGoogleSpeechServer) -> None:
    fake.fail_next.append(("UNAUTHENTICATED", "Request had invalid authentication credentials."))
    frames = [streams(fake), *caller_audio(0.5, loud=True), SleepFrame(0.3)]
    _, up = await run_test(make_stt(fake), frames, params=PHONE, send_end_frame=False)
    [error] = of(up, ErrorFrame)
    assert isinstance(error, FatalErrorFrame)
    assert "rejected the credentials" in error.error
    assert len(fake.first_requests) == 1  # not retried


async def test_cancel_cancels_the_call(fake: FakeGoogleSpeechServer) -> None:
    frames = [streams(fake), *caller_audio(0.5, loud=True), CancelFrame()]
    await run_test(make_stt(fake), frames, params=PHONE, send_end_frame=False)
    for _ in range(100):
        if fake.ended:
            break
        await SleepFrame(0.01).wait()
    assert fake.ended == ["cancelled"]


async def test_a_stalled_server_does_not_hold_the_audio_path(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.gate.clear()
    loud = caller_audio(1.0, loud=True)
    seen: dict[str, int] = {}

    def all_audio_out(out: list[Any]) -> bool:
        if len(of(out, InputAudioRawFrame)) < len(loud):
            return False
        seen["requests"] = len(fake.first_requests)
        fake.gate.set()  # Google reads again; the EndFrame comes next
        return True

    down = await run_then(make_stt(fake), loud, [], when=all_audio_out, params=PHONE)
    assert seen == {"requests": 0}  # every packet passed on while Google read nothing
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]
    assert of(down, EndFrame)


def test_params_and_location() -> None:
    params = GoogleSTTService.InputParams(languages=Language.ES, model="chirp_3")
    stt = GoogleSTTService(url="http://127.0.0.1:9", params=params, location="us")
    config = stt.streaming_config().config
    assert list(config.language_codes) == ["es-ES"] and config.model == "chirp_3"
    assert stt.recognizer == "projects/callpipe-fakes/locations/us/recognizers/_"


def test_a_service_account_names_the_project(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("cryptography")
    account = service_account_info("https://oauth2.googleapis.com/token", project="acme-voice")
    monkeypatch.delenv("CALLPIPE_GOOGLE_SPEECH_URL", raising=False)
    stt = GoogleSTTService(credentials=json.dumps(account), location="europe-west4")
    assert stt.recognizer == "projects/acme-voice/locations/europe-west4/recognizers/_"
    with pytest.raises(ConfigurationError):
        GoogleSTTService(credentials="{not json")


async def test_server_errors_are_retried_then_reported(fake: FakeGoogleSpeechServer) -> None:
    fake.fail_next.extend([("UNAVAILABLE", "The service is currently unavailable.")] * 2)
    stt = make_stt(fake)
    stt.reconnect_delay_secs = 0.01
    frames = [*utterance(), until(lambda: bool(fake.finals()))]
    down, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello"]
    assert fake.ended[:2] == ["refused", "refused"]

    fake.fail_next.extend([("UNAVAILABLE", "The service is currently unavailable.")] * 9)
    stt = make_stt(fake)
    stt.reconnect_delay_secs = 0.01
    frames = [*utterance(), until(lambda: len(fake.ended) >= 7), SleepFrame(0.1), CancelFrame()]
    _, up = await run_test(stt, frames, params=PHONE, send_end_frame=False)
    [error] = of(up, ErrorFrame)
    assert not isinstance(error, FatalErrorFrame)
    assert "4 times in a row" in error.error


# ---------------------------------------------------------------------- connection events


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_connected_while_streaming_and_disconnected_at_the_end(
    fake: FakeGoogleSpeechServer,
) -> None:
    """Up as the first stream's call is established (before any audio), through a stream that
    takes over for new settings, down once the call ends."""
    fake.transcripts.extend(["first words", "second words"])
    stt = make_stt(fake)
    events = ConnectionEvents(stt)
    frames = [
        until(lambda: events.names() == ["on_connected"]),
        events.snapshot(),  # before any audio went out
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        STTUpdateSettingsFrame(delta=Settings(language=Language.FR)),
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


async def test_a_stream_google_ends_is_a_disconnection_then_a_connection(
    fake: FakeGoogleSpeechServer,
) -> None:
    fake.stream_limit_secs = 1.5  # ABORTED 0.5 s into the second utterance: reopened, no error
    frames = [
        streams(fake),
        *caller_audio(0.4, loud=True),
        *caller_audio(0.6, loud=False),
        *caller_audio(0.8, loud=True),
        *caller_audio(0.6, loud=False),
        until(lambda: len(fake.finals()) == 2),
    ]
    stt = make_stt(fake)
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, frames, params=PHONE)
    assert not of(up, ErrorFrame)
    assert fake.ended[0] == "aborted" and fake.ended[-1] == "half-closed"
    # Each stream is reopened once the last one ended: down, then up again, never an error.
    assert events.seen == [("on_connected", ()), ("on_disconnected", ())] * len(fake.ended)


async def test_refused_credentials_are_a_connection_error(fake: FakeGoogleSpeechServer) -> None:
    fake.fail_next.append(("UNAUTHENTICATED", "Request had invalid authentication credentials."))
    stt = make_stt(fake)
    events = ConnectionEvents(stt)
    frames = [streams(fake), *caller_audio(0.5, loud=True), until(lambda: bool(events.errors()))]
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, FatalErrorFrame)
    # The call was established on the channel, then Google refused it with its status.
    assert events.names() == ["on_connected", "on_disconnected", "on_connection_error"]
    assert events.errors() == [error.error]
    assert "Unauthenticated" in error.error and "invalid authentication" in error.error


async def test_refused_settings_are_a_connection_error(fake: FakeGoogleSpeechServer) -> None:
    frames = [
        streams(fake),
        *utterance(),
        until(lambda: len(fake.finals()) == 1),
        STTUpdateSettingsFrame(delta=Settings(model="no-such-model")),
        until(lambda: "invalid" in fake.ended),
        *utterance(),
        until(lambda: len(fake.finals()) == 2),
    ]
    stt = make_stt(fake)
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert events.errors() == [error.error] and "no-such-model" in error.error
    # Whether the replaced stream had ended before Google refused the new one (then the
    # service was down until the old settings' stream took over) is a race: either way the
    # events start up, alternate, and end down.
    states = [name for name in events.names() if name != "on_connection_error"]
    assert states[0] == "on_connected" and states[-1] == "on_disconnected"
    assert states == ["on_connected", "on_disconnected"] * (len(states) // 2)


async def test_an_unreachable_server_is_a_connection_error_each_time() -> None:
    stt = GoogleSTTService(url=f"http://127.0.0.1:{closed_port()}")
    stt.reconnect_delay_secs = 0.01
    events = ConnectionEvents(stt)
    frames = [*caller_audio(1.0, loud=True), until(lambda: len(events.errors()) >= 4)]
    _, up = await run_test(stt, frames, params=PHONE)
    [error] = of(up, ErrorFrame)
    assert "4 times in a row" in error.error
    # Never connected: one error per attempt (the first and three reopens), no disconnection.
    assert events.names() == ["on_connection_error"] * 4
    errors = events.errors()
    assert all("ServiceUnavailable" in e for e in errors)
    assert all("could not open a stream" in e for e in errors[:3])
    assert errors[3] == error.error
