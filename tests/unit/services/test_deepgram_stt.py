"""DeepgramSTTService against FakeDeepgramServer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from enum import Enum

import pytest

from callpipe.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import caller_audio

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeDeepgramServer]:
    async with FakeDeepgramServer() as fake:
        yield fake


def make_stt(server: FakeDeepgramServer, **kwargs: object) -> DeepgramSTTService:
    return DeepgramSTTService(api_key="test-key", url=server.url, **kwargs)  # type: ignore[arg-type]


def final_sent(server: FakeDeepgramServer) -> bool:
    return any(result["is_final"] for result in server.results)


def finals(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TranscriptionFrame)]


async def test_streams_audio_and_returns_interim_and_final(server: FakeDeepgramServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        *caller_audio(1.0, loud=True),
        *caller_audio(0.5, loud=False),
        SleepFrame(5.0, until=lambda: final_sent(server) and server.audio_bytes >= 12000),
        SleepFrame(0.1),
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert finals(down) == ["I would like to book a table"]
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    assert interims and "I would like to book a table".startswith(interims[0])
    query = server.queries[0]
    assert query["encoding"] == "mulaw" and query["sample_rate"] == "8000"  # a phone call
    assert query["model"] == "nova-3" and query["interim_results"] == "true"
    assert query["channels"] == "1"
    # All audio reached the provider (1.5 s of 8-bit μ-law), and was passed on downstream.
    assert server.audio_bytes == int(1.5 * RATE)
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) == 75
    # Graceful close: CloseStream at the end.
    for _ in range(50):
        if server.close_streams:
            break
        await asyncio.sleep(0.01)
    assert server.close_streams == 1


async def test_mulaw_halves_the_bytes_sent(server: FakeDeepgramServer) -> None:
    server.transcripts.append("yes")
    frames = [
        *caller_audio(0.6, loud=True),
        *caller_audio(0.4, loud=False),
        SleepFrame(5.0, until=lambda: final_sent(server) and server.audio_bytes >= 8000),
        SleepFrame(0.1),
    ]
    down, _ = await run_test(make_stt(server, encoding="mulaw"), frames, params=PARAMS)
    assert server.queries[0]["encoding"] == "mulaw"
    assert server.audio_bytes == int(1.0 * RATE)
    assert finals(down) == ["yes"]


async def test_deepgram_hears_the_callers_own_mulaw_bytes(server: FakeDeepgramServer) -> None:
    """The serializer decoded the caller's μ-law; Deepgram gets those very bytes back."""
    caller = pcm_to_ulaw(tone_pcm(0.4, RATE, freq=310.0, amplitude=12000))
    frames: list[Frame] = [
        InputAudioRawFrame(ulaw_to_pcm(caller[i : i + 160]), RATE)
        for i in range(0, len(caller), 160)
    ]
    await run_test(make_stt(server), [*frames, SleepFrame(0.2)], params=PARAMS)
    assert bytes(server.audio) == caller


async def test_linear16_at_wideband_rates(server: FakeDeepgramServer) -> None:
    params = PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000)
    pcm = tone_pcm(0.2, 16000)
    await run_test(
        make_stt(server), [InputAudioRawFrame(pcm, 16000), SleepFrame(0.2)], params=params
    )
    assert server.queries[0]["encoding"] == "linear16"
    assert bytes(server.audio) == pcm


async def test_vad_stop_finalizes_at_once(server: FakeDeepgramServer) -> None:
    server.transcripts.append("stop right there")
    options = LiveOptions(endpointing=5000, interim_results=False)
    frames = [
        UserStartedSpeakingFrame(),
        *caller_audio(0.8, loud=True),
        SleepFrame(5, until=lambda: len(server.audio) > 0),  # connected, on a loaded host too
        UserStoppedSpeakingFrame(),
        SleepFrame(0.2),
    ]
    down, _ = await run_test(make_stt(server, live_options=options), frames, params=PARAMS)
    assert server.finalizes == 1
    assert finals(down) == ["stop right there"]
    assert server.results[-1]["from_finalize"] is True


async def test_keepalive_is_sent_while_idle(server: FakeDeepgramServer) -> None:
    await run_test(make_stt(server, keepalive_secs=0.05), [SleepFrame(0.3)], params=PARAMS)
    assert server.keepalives >= 2


async def test_rejected_and_missing_keys(
    server: FakeDeepgramServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stt = DeepgramSTTService(api_key="wrong", url=server.url)
    _, up = await run_test(stt, [SleepFrame(0.2)], params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and errors[0].fatal and "DEEPGRAM_API_KEY" in errors[0].error
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="DEEPGRAM_API_KEY"):
        DeepgramSTTService()


async def test_dropped_socket_reconnects_once_and_keeps_transcribing(
    server: FakeDeepgramServer,
) -> None:
    server.transcripts.extend(["first", "second", "third"])
    server.drop_after_results = 1  # the socket dies when the second result would be sent
    utterance = [*caller_audio(0.3, loud=True), *caller_audio(0.5, loud=False), SleepFrame(0.3)]
    down, up = await run_test(
        make_stt(server, live_options=LiveOptions(interim_results=False)),
        utterance * 3,
        params=PARAMS,
    )
    assert server.connections == 2
    assert finals(down) == ["first", "third"]
    assert not [f for f in up if isinstance(f, ErrorFrame) and f.fatal]


async def test_socket_that_cannot_come_back_is_reported(server: FakeDeepgramServer) -> None:
    server.drop_after_results = 0
    server.transcripts.append("lost")
    server.max_connections = 1  # the reconnect is refused
    stt = make_stt(server, live_options=LiveOptions(interim_results=False))
    frames = [*caller_audio(0.3, loud=True), *caller_audio(0.5, loud=False), SleepFrame(2.2)]
    _, up = await run_test(stt, frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "reconnecting failed" in errors[0].error and not errors[0].fatal
    # Three attempts with backoff, then one report (not a reconnect storm).
    assert server.rejected == 3


async def test_audio_goes_out_in_80_ms_batches_and_is_flushed_before_finalize(
    server: FakeDeepgramServer,
) -> None:
    server.transcripts.append("one two three")
    stt = make_stt(server, encoding="mulaw")
    speech = caller_audio(1.0, loud=True)  # 50 packets of 20 ms
    frames: list[Frame] = [SleepFrame(0.3), UserStartedSpeakingFrame()]
    for packet in speech:
        frames += [packet, SleepFrame(0.004)]
    frames += [*caller_audio(0.03, loud=False), UserStoppedSpeakingFrame(), SleepFrame(0.3)]
    down, _ = await run_test(stt, frames, params=PARAMS)
    sent = int(1.03 * RATE)  # mu-law: a byte per sample
    # Everything the caller said reached Deepgram before it was asked to finalize the turn,
    # although 30 ms of it had not filled a batch yet.
    assert server.audio_at_finalize and server.audio_at_finalize[0] == sent
    # 1.03 s in 100 ms messages: 11, not 52 packets' worth of messages.
    assert stt.messages_sent == 11
    assert finals(down) == ["one two three"]


@pytest.mark.parametrize("scheme", ["ws", "http"])
async def test_pipecat_s_base_url_reaches_the_socket(
    server: FakeDeepgramServer, scheme: str
) -> None:
    # Pipecat 1.14: ``base_url`` is a host with an optional scheme; ws:// or http:// mean an
    # unencrypted socket (a private deployment), and the path is the service's.
    server.transcripts.append("hello there")
    host = server.url.split("://", 1)[1]
    stt = DeepgramSTTService(api_key="test-key", base_url=f"{scheme}://{host}")
    frames = [
        *caller_audio(1.0, loud=True),
        *caller_audio(0.5, loud=False),
        SleepFrame(5.0, until=lambda: final_sent(server) and server.audio_bytes >= 12000),
        SleepFrame(0.1),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert finals(down) == ["hello there"]
    assert server.paths[0].startswith("/v1/listen?")


def test_a_bare_host_or_a_secure_scheme_means_wss() -> None:
    from callpipe.services._env import websocket_origin

    assert websocket_origin("api.deepgram.com") == "wss://api.deepgram.com"
    assert websocket_origin("https://dg.example:8443/") == "wss://dg.example:8443"
    assert websocket_origin("wss://dg.example") == "wss://dg.example"
    assert websocket_origin("HTTP://10.0.0.5:8080") == "ws://10.0.0.5:8080"


async def handshake_query(
    server: FakeDeepgramServer, stt: DeepgramSTTService
) -> dict[str, list[str]]:
    """Run ``stt`` briefly; the query (every value of each key) its socket was opened with."""
    await run_test(stt, [*caller_audio(0.1, loud=False), SleepFrame(0.1)], params=PARAMS)
    assert server.query_lists, "the socket was not opened"
    return server.query_lists[0]


async def test_pipecat_s_connection_options_reach_the_query(server: FakeDeepgramServer) -> None:
    # Pipecat 1.14 takes these as constructor arguments and sends them as query parameters.
    stt = make_stt(
        server,
        live_options=LiveOptions(mip_opt_out=False, tag="from-live-options"),
        callback="https://hooks.example/dg",
        callback_method="POST",
        tag=["team-a", "campaign-7"],
        mip_opt_out=True,
    )
    query = await handshake_query(server, stt)
    assert query["callback"] == ["https://hooks.example/dg"]
    assert query["callback_method"] == ["POST"]
    assert query["tag"] == ["team-a", "campaign-7"]  # a list repeats the key
    assert query["mip_opt_out"] == ["true"]  # the argument wins over live_options
    # A phone call is mono: one channel, not transcribed per channel.
    assert query["channels"] == ["1"] and query["multichannel"] == ["false"]


async def test_channels_and_multichannel_are_sent_as_given(server: FakeDeepgramServer) -> None:
    query = await handshake_query(server, make_stt(server, channels=2, multichannel=True))
    assert query["channels"] == ["2"] and query["multichannel"] == ["true"]
    with pytest.raises(ConfigurationError, match="channels"):
        make_stt(server, channels=0)


async def test_addons_are_extra_query_parameters(server: FakeDeepgramServer) -> None:
    stt = make_stt(
        server,
        addons={"diarize": True, "redact": ["pci", "ssn"], "extra": "call:42", "punctuate": False},
    )
    query = await handshake_query(server, stt)
    assert query["diarize"] == ["true"]
    assert query["redact"] == ["pci", "ssn"]
    assert query["extra"] == ["call:42"]
    assert query["punctuate"] == ["false"]  # an addon overrides the option, as in Pipecat
    assert query["encoding"] == ["mulaw"]


def test_addons_cannot_change_the_audio_format_sent(server: FakeDeepgramServer) -> None:
    with pytest.raises(ConfigurationError, match="encoding"):
        make_stt(server, addons={"encoding": "linear16"})
    with pytest.raises(ConfigurationError, match="sample_rate"):
        make_stt(server, addons={"sample_rate": 16000})


def test_ttfs_p99_latency_is_accepted_and_kept(server: FakeDeepgramServer) -> None:
    assert make_stt(server, ttfs_p99_latency=0.45).ttfs_p99_latency == 0.45
    assert make_stt(server).ttfs_p99_latency == 0.35  # Pipecat 1.14's Deepgram default


async def test_pipecat_s_other_settings_fields_reach_the_query(server: FakeDeepgramServer) -> None:
    # Pipecat 1.14's DeepgramSTTService.Settings fields, each the query parameter of its name.
    settings = DeepgramSTTService.Settings(
        detect_entities=True,
        dictation=True,
        keywords=["Acme:2"],
        redact=["pci", "ssn"],
        replace=["acme:Acme"],
        search=["refund", "cancel"],
        version="2021-03-17.0",
        numerals=True,
        diarize=False,
    )
    query = await handshake_query(server, make_stt(server, settings=settings))
    assert query["detect_entities"] == ["true"] and query["dictation"] == ["true"]
    assert query["keywords"] == ["Acme:2"]
    assert query["redact"] == ["pci", "ssn"]  # a list repeats the key
    assert query["replace"] == ["acme:Acme"]
    assert query["search"] == ["refund", "cancel"]
    assert query["version"] == ["2021-03-17.0"]
    assert query["numerals"] == ["true"] and query["diarize"] == ["false"]


async def test_an_update_of_the_other_settings_fields_changes_the_query(
    server: FakeDeepgramServer,
) -> None:
    stt = make_stt(server, settings=DeepgramSTTService.Settings(redact=["pci"]))
    delta = DeepgramSTTService.Settings(redact=None, dictation=True, version="latest")
    await run_test(stt, [STTUpdateSettingsFrame(delta=delta)], params=PARAMS)
    query = stt._query()  # the query of the current (or next) socket
    assert "redact" not in query
    assert query["dictation"] is True and query["version"] == "latest"


# ---------------------------------------------------------------------- settings mid-call


def update(**fields: object) -> STTUpdateSettingsFrame:
    return STTUpdateSettingsFrame(delta=DeepgramSTTService.Settings(**fields))  # type: ignore[arg-type]


def switched(server: FakeDeepgramServer) -> bool:
    """A second socket is open and the first one was closed with CloseStream."""
    return server.connections == 2 and server.close_streams == 1


def utterance(server: FakeDeepgramServer, results: int) -> list[Frame]:
    """0.3 s of speech and 0.5 s of quiet, then a wait for the ``results``-th final result."""
    done = lambda: sum(r["is_final"] for r in server.results) >= results  # noqa: E731
    return [
        *caller_audio(0.3, loud=True),
        *caller_audio(0.5, loud=False),
        SleepFrame(5.0, until=done),
    ]


def warnings_and_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_language_change_mid_call_reopens_the_socket_with_it(
    server: FakeDeepgramServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.transcripts.extend(["good morning", "buenos dias"])
    stt = make_stt(server, live_options=LiveOptions(interim_results=False))
    frames = [
        *utterance(server, 1),
        update(language="es"),
        SleepFrame(5.0, until=lambda: switched(server)),
        *utterance(server, 2),
    ]
    with caplog.at_level(logging.INFO):
        down, up = await run_test(stt, frames, params=PARAMS)
    assert [q["language"] for q in server.queries] == ["en", "es"]
    assert server.queries[1]["model"] == "nova-3"  # the rest of the query is as it was
    transcripts = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [(f.text, f.language) for f in transcripts] == [
        ("good morning", "en"),
        ("buenos dias", "es"),
    ]
    # The second transcript came from the second socket.
    first, second = (r["metadata"]["request_id"] for r in server.results)
    assert first != second
    assert stt.settings.language == "es"
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert not warnings_and_errors(caplog)


async def test_speech_across_a_switch_is_all_sent_and_transcribed(
    server: FakeDeepgramServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The update lands mid-utterance, with audio arriving every 20 ms: the old socket is
    # finalized by CloseStream (its half of the utterance comes back), the new socket gets
    # the audio from the switch on, and no audio is lost on the way.
    server.transcripts.extend(["before the switch", "after it"])
    stt = make_stt(server, live_options=LiveOptions(interim_results=False))
    speech = caller_audio(1.2, loud=True)
    frames: list[Frame] = []
    for i, packet in enumerate(speech):
        if i == 20:  # once the old socket has heard some of it
            frames += [
                SleepFrame(5.0, until=lambda: server.audio_bytes >= 1600),
                update(model="nova-2"),
            ]
        frames += [packet, SleepFrame(0.01)]
    frames += [
        *caller_audio(0.5, loud=False),
        SleepFrame(5.0, until=lambda: len(server.results) >= 2),
    ]
    with caplog.at_level(logging.INFO):
        down, up = await run_test(stt, frames, params=PARAMS)
    assert [q["model"] for q in server.queries] == ["nova-3", "nova-2"]
    assert finals(down) == ["before the switch", "after it"]
    assert server.results[0]["from_finalize"] is True  # CloseStream's answer, not dropped
    assert server.audio_bytes == int(1.7 * RATE)  # μ-law: every sample sent, once
    assert stt.model_name == "nova-2"
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert not warnings_and_errors(caplog)


async def test_an_update_that_leaves_the_query_as_it_was_keeps_the_socket(
    server: FakeDeepgramServer,
) -> None:
    stt = make_stt(server, addons={"punctuate": False})
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 1),
        update(punctuate=True),  # the addon overrides it: the query does not change
        update(profanity_filter=None),  # None is not sent, as before
        SleepFrame(0.3),
    ]
    await run_test(stt, frames, params=PARAMS)
    assert server.connections == 1
    assert stt.settings.punctuate is True  # type: ignore[attr-defined]
    # An update that does change the query still opens a new socket.
    server.queries.clear()
    stt = make_stt(server, addons={"punctuate": False})
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 2),
        update(punctuate=True, language="fr"),
        SleepFrame(5.0, until=lambda: server.connections == 3),
    ]
    await run_test(stt, frames, params=PARAMS)
    assert [q["language"] for q in server.queries] == ["en", "fr"]
    assert server.queries[1]["punctuate"] == "false"


class OldStyleLanguage(str, Enum):  # noqa: UP042 - the old style is the point
    """A ``(str, Enum)`` class: its ``str()`` is ``OldStyleLanguage.EN_US``, not the tag."""

    EN_US = "en-US"


@pytest.mark.parametrize(
    ("language", "sent"),
    [
        (Language.EN_US, "en-US"),
        (OldStyleLanguage.EN_US, "en-US"),
        (Language.ES_419, "es-419"),
    ],
)
async def test_a_language_is_sent_as_its_tag(
    server: FakeDeepgramServer, language: str, sent: str
) -> None:
    stt = make_stt(server, settings=DeepgramSTTService.Settings(language=language))
    query = stt._query()
    assert type(query["language"]) is str and query["language"] == sent
    assert (await handshake_query(server, stt))["language"] == [sent]


async def test_a_language_member_given_mid_call_is_sent_as_its_tag(
    server: FakeDeepgramServer,
) -> None:
    # From Deepgram's multilingual mode ("multi", not a Language member) to one language.
    stt = make_stt(server, settings=DeepgramSTTService.Settings(language="multi"))
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 1),
        update(language=OldStyleLanguage.EN_US),
        SleepFrame(5.0, until=lambda: switched(server)),
    ]
    await run_test(stt, frames, params=PARAMS)
    assert [q["language"] for q in server.queries] == ["multi", "en-US"]


async def test_a_refused_switch_keeps_the_old_socket_and_settings(
    server: FakeDeepgramServer,
) -> None:
    # Deepgram refuses keyterm with a model other than Nova-3 (HTTP 400, reason in dg-error).
    server.transcripts.append("still here")
    options = LiveOptions(keyterm=["Acme"], interim_results=False)
    stt = make_stt(server, live_options=options)
    frames = [
        SleepFrame(5.0, until=lambda: server.connections == 1),
        update(model="nova-2"),
        SleepFrame(5.0, until=lambda: server.rejected == 1),
        SleepFrame(0.1),
        *utterance(server, 1),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not errors[0].fatal
    assert "Keyterm" in errors[0].error and "previous" in errors[0].error
    assert server.connections == 1
    assert finals(down) == ["still here"]  # the old socket carried on
    assert stt.settings.model == "nova-3" and stt.model_name == "nova-3"
    assert stt._query()["model"] == "nova-3"
