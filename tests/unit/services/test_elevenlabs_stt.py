"""ElevenLabsRealtimeSTTService against FakeElevenLabsSTTServer."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest

from callpipe.audio.g711 import pcm_to_ulaw, ulaw_to_pcm
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    FatalErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.services.elevenlabs.stt import CommitStrategy, ElevenLabsRealtimeSTTService
from callpipe.services.websocket_service import ProviderWebsocket
from callpipe.testing import run_test
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsSTTServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language

from .helpers import PHONE as PARAMS
from .helpers import WIDE, caller_audio, finals

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeElevenLabsSTTServer]:
    async with FakeElevenLabsSTTServer() as fake:
        yield fake


def make_stt(server: FakeElevenLabsSTTServer, **kwargs: object) -> ElevenLabsRealtimeSTTService:
    return ElevenLabsRealtimeSTTService(api_key="test-key", base_url=server.url, **kwargs)  # type: ignore[arg-type]


def started(server: FakeElevenLabsSTTServer) -> bool:
    return any(m["message_type"] == "session_started" for m in server.sent)


def committed(server: FakeElevenLabsSTTServer) -> bool:
    return any(m["message_type"] == "committed_transcript" for m in server.sent)


async def test_turn_end_flushes_audio_then_commits(server: FakeElevenLabsSTTServer) -> None:
    server.transcripts.append("I would like to book a table")
    frames = [
        # The session open before the turn (a loaded host's first connection can take >0.1 s).
        SleepFrame(5.0, until=lambda: started(server)),
        SleepFrame(0.1),
        UserStartedSpeakingFrame(),
        *caller_audio(1.06, loud=True),  # 60 ms less than a batch (100 ms) wait in the queue
        UserStoppedSpeakingFrame(),
        SleepFrame(3.0, until=lambda: committed(server)),
        SleepFrame(0.5),  # the committed transcript on its way through the STT (loaded host)
        CancelFrame(),  # not an EndFrame: the final must come from the turn's commit
    ]
    stt = make_stt(server)
    down, up = await run_test(stt, frames, params=PARAMS, send_end_frame=False)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    kinds = [m["message_type"] for m in server.sent]
    assert len(finals(down)) == 1, (kinds, server.audio_at_commit, len(server.queries))
    [final] = finals(down)
    assert final.text == "I would like to book a table" and final.finalized
    interims = [f.text for f in down if isinstance(f, InterimTranscriptionFrame)]
    assert interims and final.text.startswith(interims[0])
    # The whole turn (as μ-law, the phone line's bytes) reached ElevenLabs before the commit.
    assert server.audio_at_commit == [int(1.06 * RATE)]
    assert server.commits == 1
    query = server.queries[0]
    assert query["model_id"] == ["scribe_v2_realtime"] and query["audio_format"] == ["ulaw_8000"]
    assert query["commit_strategy"] == ["manual"] and "language_code" not in query
    chunk = server.received[0]
    assert chunk["sample_rate"] == RATE and chunk["commit"] is False
    assert stt.session_id == server.sent[0]["session_id"]


async def test_a_turn_that_ends_before_the_socket_opens_is_committed_once_it_does(
    server: FakeElevenLabsSTTServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.transcripts.append("is anyone there")
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
        *caller_audio(1.06, loud=True),
        UserStoppedSpeakingFrame(),
        SleepFrame(0.2),  # the turn's end reaches the STT while its socket is still opening
        SleepFrame(0.0, until=open_gate),
        SleepFrame(5.0, until=lambda: committed(server)),
        SleepFrame(0.5),
        CancelFrame(),  # not an EndFrame: the final must come from the turn's commit
    ]
    down, up = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # The audio queued while the socket opened went out first, then the commit.
    assert server.audio_at_commit == [int(1.06 * RATE)]
    [final] = finals(down)
    assert final.text == "is anyone there" and final.finalized


async def test_wideband_audio_goes_as_pcm(server: FakeElevenLabsSTTServer) -> None:
    pcm = tone_pcm(0.2, 16000)
    frames = [SleepFrame(0.1), InputAudioRawFrame(pcm, 16000)]
    await run_test(make_stt(server), frames, params=WIDE)
    assert server.queries[0]["audio_format"] == ["pcm_16000"]
    assert bytes(server.audio) == pcm


async def test_mulaw_is_the_callers_bytes(server: FakeElevenLabsSTTServer) -> None:
    caller = pcm_to_ulaw(tone_pcm(0.4, RATE, freq=310.0, amplitude=12000))
    frames: list[Frame] = [SleepFrame(0.1)] + [
        InputAudioRawFrame(ulaw_to_pcm(caller[i : i + 160]), RATE)
        for i in range(0, len(caller), 160)
    ]
    await run_test(make_stt(server), frames, params=PARAMS)
    assert bytes(server.audio) == caller


async def test_end_of_call_commits_and_pushes_before_end_frame(
    server: FakeElevenLabsSTTServer,
) -> None:
    server.transcripts.append("goodbye then")
    down, _ = await run_test(make_stt(server), [SleepFrame(0.1), *caller_audio(0.6, loud=True)])
    assert [f.text for f in finals(down)] == ["goodbye then"]
    index = {type(f): i for i, f in enumerate(down)}
    assert index[TranscriptionFrame] < index[EndFrame]
    assert server.commits == 1 and server.received[-1]["commit"] is True


async def test_vad_strategy_leaves_commits_to_elevenlabs(server: FakeElevenLabsSTTServer) -> None:
    settings = ElevenLabsRealtimeSTTService.Settings(vad_silence_threshold_secs=0.5)
    stt = make_stt(server, commit_strategy=CommitStrategy.VAD, settings=settings)
    frames = [
        SleepFrame(0.1),
        *caller_audio(0.5, loud=True),
        UserStoppedSpeakingFrame(),
        *caller_audio(0.6, loud=False),
        SleepFrame(3.0, until=lambda: committed(server)),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert [f.text for f in finals(down)] == ["hello"]
    assert not finals(down)[0].finalized
    assert not any(m["commit"] for m in server.received[:-1])  # none at the VAD stop
    assert server.queries[0]["commit_strategy"] == ["vad"]
    assert server.queries[0]["vad_silence_threshold_secs"] == ["0.5"]


async def test_timestamps_push_one_frame_per_commit_with_language(
    server: FakeElevenLabsSTTServer,
) -> None:
    settings = ElevenLabsRealtimeSTTService.Settings(language=Language.ES_MX)
    stt = make_stt(server, include_timestamps=True, settings=settings)
    server.transcripts.append("hola que tal")
    down, _ = await run_test(stt, [SleepFrame(0.1), *caller_audio(0.6, loud=True)], params=PARAMS)
    [final] = finals(down)
    assert final.text == "hola que tal" and final.language == "es"
    assert final.result["message_type"] == "committed_transcript_with_timestamps"
    assert server.queries[0]["language_code"] == ["es"]
    assert server.queries[0]["include_timestamps"] == ["true"]


async def test_keyterms_and_options_in_the_query(server: FakeElevenLabsSTTServer) -> None:
    settings = ElevenLabsRealtimeSTTService.Settings(
        keyterms=["callpipe", "New York"], no_verbatim=True, filter_background_audio=False
    )
    await run_test(make_stt(server, settings=settings), [SleepFrame(0.1)], params=PARAMS)
    query = server.queries[0]
    assert query["keyterms"] == ["callpipe", "New York"]
    assert query["no_verbatim"] == ["true"] and query["filter_background_audio"] == ["false"]
    assert "vad_threshold" not in query and "enable_logging" not in query


async def test_settings_update_opens_a_socket_and_commits_the_old_one(
    server: FakeElevenLabsSTTServer,
) -> None:
    server.transcripts.extend(["first words", "deuxième"])
    stt = make_stt(server)
    frames = [
        SleepFrame(0.1),
        *caller_audio(0.4, loud=True),
        SleepFrame(0.2),
        STTUpdateSettingsFrame(delta=ElevenLabsRealtimeSTTService.Settings(language="fr")),
        SleepFrame(3.0, until=lambda: server.connections == 2 and server.commits == 1),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [q.get("language_code") for q in server.queries] == [None, ["fr"]]
    assert [f.text for f in finals(down)] == ["first words", "deuxième"]


async def test_refused_settings_keep_the_old_socket(server: FakeElevenLabsSTTServer) -> None:
    stt = make_stt(server)
    bad = ElevenLabsRealtimeSTTService.Settings(keyterms=["a term far longer than twenty"])
    frames = [
        SleepFrame(0.1),
        STTUpdateSettingsFrame(delta=bad),
        SleepFrame(3.0, until=lambda: server.rejected == 1),
        SleepFrame(0.1),
        *caller_audio(0.4, loud=True),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not isinstance(errors[0], FatalErrorFrame)
    assert stt.settings.keyterms is None  # back to what the socket was opened with
    assert [f.text for f in finals(down)] == ["hello"]


async def test_input_error_is_reported(server: FakeElevenLabsSTTServer) -> None:
    server.error_next = "chunk could not be decoded"
    frames = [
        SleepFrame(0.1),
        *caller_audio(0.2, loud=True),
        SleepFrame(2.0, until=lambda: len(server.sent) > 1),
    ]
    _, up = await run_test(make_stt(server), frames, params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "chunk could not be decoded" in errors[0].error
    assert not isinstance(errors[0], FatalErrorFrame)


async def test_rejected_key_is_fatal(server: FakeElevenLabsSTTServer) -> None:
    stt = ElevenLabsRealtimeSTTService(api_key="wrong", base_url=server.url)
    _, up = await run_test(stt, [SleepFrame(10)], params=PARAMS)
    assert any(isinstance(f, FatalErrorFrame) for f in up)


async def test_keepalive_sends_silence_only_while_no_audio_flows(
    server: FakeElevenLabsSTTServer,
) -> None:
    stt = make_stt(server, keepalive_secs=0.05)
    await run_test(stt, [SleepFrame(0.3)], params=WIDE)
    chunks = [base64.b64decode(m["audio_base_64"]) for m in server.received]
    assert chunks and not any(b"".join(chunks))
