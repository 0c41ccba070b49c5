"""CartesiaSTTService against FakeCartesiaSTTServer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.cartesia.stt import CartesiaSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaSTTServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, finals

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeCartesiaSTTServer]:
    async with FakeCartesiaSTTServer() as fake:
        yield fake


def make_stt(server: FakeCartesiaSTTServer, **kwargs: object) -> CartesiaSTTService:
    return CartesiaSTTService(api_key="test-key", base_url=server.url, **kwargs)  # type: ignore[arg-type]


def sent_final(server: FakeCartesiaSTTServer) -> bool:
    return any(m.get("is_final") for m in server.sent)


async def test_turn_end_flushes_audio_then_finalizes(server: FakeCartesiaSTTServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        SleepFrame(0.1),  # the socket is up
        UserStartedSpeakingFrame(),
        *caller_audio(1.06, loud=True),  # 60 ms less than a batch (100 ms) wait in the queue
        UserStoppedSpeakingFrame(),
        SleepFrame(3.0, until=lambda: sent_final(server)),
        SleepFrame(0.05),
        CancelFrame(),  # not an EndFrame: the final must come from the turn's finalize
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    [final] = finals(down)
    assert final.text == "I would like to book a table"
    assert final.finalized and final.language == "en"
    assert final.result["type"] == "transcript"
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    assert interims and final.text.startswith(interims[0])
    # The whole turn reached Cartesia before ``finalize``.
    assert server.audio_at_finalize == [int(1.06 * RATE) * 2]
    assert server.commands == ["finalize"]
    query = server.queries[0]
    assert query["model"] == ["ink-whisper"] and query["language"] == ["en"]
    assert query["encoding"] == ["pcm_s16le"] and query["sample_rate"] == ["8000"]
    headers = server.headers[0]
    assert headers["authorization"] == "Bearer test-key"
    assert headers["cartesia-version"] == "2026-03-01"


async def test_end_of_call_pushes_last_words_before_end_frame(
    server: FakeCartesiaSTTServer,
) -> None:
    server.transcripts.append("goodbye then")
    frames = [SleepFrame(0.1), *caller_audio(0.6, loud=True)]
    down, _ = await run_test(make_stt(server), frames, params=PARAMS)
    assert [f.text for f in finals(down)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert server.commands == ["close"]
    assert len(server.audio) == int(0.6 * RATE) * 2


async def test_mulaw_sends_half_the_bytes(server: FakeCartesiaSTTServer) -> None:
    stt = make_stt(server, encoding="pcm_mulaw")
    down, _ = await run_test(stt, [SleepFrame(0.1), *caller_audio(0.6, loud=True)], params=PARAMS)
    assert server.queries[0]["encoding"] == ["pcm_mulaw"]
    assert len(server.audio) == int(0.6 * RATE)
    assert [f.text for f in finals(down)] == ["hello"]


async def test_language_and_keyterms_in_the_query(server: FakeCartesiaSTTServer) -> None:
    settings = CartesiaSTTService.Settings(
        model="ink-2", language=Language.ES_MX, keyterm=["New York", " ", "Callpipe"]
    )
    await run_test(make_stt(server, settings=settings), [SleepFrame(0.05)], params=PARAMS)
    assert server.queries[0]["language"] == ["es"]
    assert server.queries[0]["keyterm"] == ["New York", "Callpipe"]
    assert "keyterm=New%20York" in server.raw_queries[0]  # a space as %20, as Cartesia expects


async def test_keyterms_left_out_for_models_without_them(server: FakeCartesiaSTTServer) -> None:
    settings = CartesiaSTTService.Settings(keyterm=["Callpipe"])
    await run_test(make_stt(server, settings=settings), [SleepFrame(0.05)], params=PARAMS)
    assert "keyterm" not in server.queries[0]


async def test_settings_update_opens_a_socket_with_the_new_query(
    server: FakeCartesiaSTTServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=CartesiaSTTService.Settings(language=Language.FR)),
        SleepFrame(3.0, until=lambda: server.connections == 2 and "close" in server.commands),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [q["language"] for q in server.queries] == [["en"], ["fr"]]
    # The old socket returned what it held; the new one heard the rest.
    assert [f.text for f in finals(down)] == ["first words", "deuxième"]
    assert stt.settings.language == Language.FR


async def test_refused_settings_keep_the_old_socket(server: FakeCartesiaSTTServer) -> None:
    stt = make_stt(server)

    def refuse_next() -> bool:
        server.fail_handshakes.append(400)
        return True

    frames = [
        SleepFrame(0.1),
        SleepFrame(0.0, until=refuse_next),
        STTUpdateSettingsFrame(delta=CartesiaSTTService.Settings(model="ink-2")),
        SleepFrame(3.0, until=lambda: server.rejected == 1),
        SleepFrame(0.1),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not isinstance(errors[0], FatalErrorFrame)
    assert stt.settings.model == "ink-whisper"
    assert [f.text for f in finals(down)] == ["hello"]


async def test_provider_error_is_reported(server: FakeCartesiaSTTServer) -> None:
    server.error_next = "audio could not be decoded"
    frames = [*caller_audio(0.2, loud=True), SleepFrame(2.0, until=lambda: bool(server.sent))]
    _, up = await run_test(make_stt(server), frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "audio could not be decoded" in errors[0].error
    assert not isinstance(errors[0], FatalErrorFrame)


async def test_rejected_key_is_fatal(server: FakeCartesiaSTTServer) -> None:
    stt = CartesiaSTTService(api_key="wrong", base_url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    assert any(isinstance(f, FatalErrorFrame) for f in up)


async def test_keepalive_sends_silence_only_while_no_audio_flows(
    server: FakeCartesiaSTTServer,
) -> None:
    await run_test(make_stt(server, keepalive_secs=0.05), [SleepFrame(0.3)], params=PARAMS)
    assert server.audio and not any(server.audio)


def test_only_pcm_encodings_are_accepted() -> None:
    with pytest.raises(ConfigurationError):
        CartesiaSTTService(api_key="k", encoding="pcm_f32le")  # type: ignore[arg-type]


def test_socket_url_from_a_bare_host() -> None:
    stt = CartesiaSTTService(api_key="k", base_url="api.example.com", sample_rate=16000)
    url = stt.socket_url()
    assert url.startswith("wss://api.example.com/stt/websocket?")
    assert parse_qs(url.split("?", 1)[1])["sample_rate"] == ["16000"]
