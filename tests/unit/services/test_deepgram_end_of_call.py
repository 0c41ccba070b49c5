"""DeepgramSTTService at the end of a call: the caller's last words come back before the
EndFrame; a server that never answers CloseStream does not hold the call; a cancel closes at
once. Also ProviderWebsocket.finish on its own."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import pytest

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
)
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.testing import run_test
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS

RATE = 8000


@pytest.fixture
async def server() -> AsyncIterator[FakeDeepgramServer]:
    async with FakeDeepgramServer() as fake:
        yield fake


def make_stt(server: FakeDeepgramServer) -> DeepgramSTTService:
    return DeepgramSTTService(
        api_key="test-key", url=server.url, live_options=LiveOptions(interim_results=False)
    )


def speech(secs: float, server: FakeDeepgramServer) -> list[Frame]:
    """The caller still speaking when the call ends: loud audio with no pause, so no result is
    final yet (after the socket is up: an EndFrame during the handshake abandons the start)."""
    pcm = tone_pcm(secs, RATE)
    step = RATE // 50 * 2
    return [
        SleepFrame(3.0, until=lambda: server.connections > 0),
        *[InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)],
    ]


async def test_the_last_words_arrive_before_the_end_frame(
    server: FakeDeepgramServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.transcripts.append("thanks, goodbye")
    server.close_stream_delay_secs = 0.3  # Deepgram takes a moment to finish transcribing
    with caplog.at_level(logging.WARNING):
        down, up = await run_test(make_stt(server), speech(0.6, server), params=PARAMS)
    kinds = [type(f) for f in down if isinstance(f, TranscriptionFrame | EndFrame)]
    assert kinds == [TranscriptionFrame, EndFrame]
    last = next(f for f in down if isinstance(f, TranscriptionFrame))
    assert last.text == "thanks, goodbye" and last.finalized
    # All the audio was sent before CloseStream, and the server's close was not a drop.
    assert server.audio_bytes == int(0.6 * RATE) and server.close_streams == 1
    assert server.connections == 1
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert "reconnecting" not in caplog.text


async def test_a_server_that_never_answers_does_not_hold_the_call(
    server: FakeDeepgramServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.answer_close_stream = False
    stt = make_stt(server)
    stt.end_timeout_secs = 0.2
    with caplog.at_level(logging.WARNING):
        down, up = await asyncio.wait_for(run_test(stt, speech(0.3, server), params=PARAMS), 4.0)
    assert server.close_streams == 1
    assert isinstance(down[-1], EndFrame)
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]
    assert "stop timed out" not in caplog.text  # bounded by end_timeout_secs, not the backstop
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_a_cancel_closes_at_once(server: FakeDeepgramServer) -> None:
    server.transcripts.append("never heard")
    server.close_stream_delay_secs = 0.5
    frames = [*speech(0.3, server), SleepFrame(1.0, until=lambda: server.audio_bytes > 0)]
    frames.append(CancelFrame())
    down, _ = await run_test(make_stt(server), frames, params=PARAMS, send_end_frame=False)
    assert isinstance(down[-1], CancelFrame)
    assert not [f for f in down if isinstance(f, TranscriptionFrame)]


async def test_finish_waits_for_the_answer_then_closes(server: FakeDeepgramServer) -> None:
    server.transcripts.append("last words")
    server.close_stream_delay_secs = 0.2
    received: list[str] = []
    failures: list[str] = []

    async def on_message(raw: Message) -> None:
        received.append(json.loads(raw)["type"])

    async def on_failed(message: str) -> None:
        failures.append(message)

    ws = ProviderWebsocket(
        owner="test",
        url=f"{server.url}/v1/listen?encoding=linear16&sample_rate={RATE}",
        headers={"Authorization": "Token test-key"},
        on_message=on_message,
        on_failed=on_failed,
    )
    await ws.connect()
    assert await ws.send(tone_pcm(0.3, RATE))
    answered = await ws.finish(
        json.dumps({"type": "CloseStream"}), until=lambda raw: '"Metadata"' in str(raw)
    )
    assert answered and received == ["Results", "Metadata"]
    assert not ws.connected and not failures and ws.reconnects == 0
    assert server.connections == 1


async def test_finish_gives_up_after_the_timeout(server: FakeDeepgramServer) -> None:
    server.answer_close_stream = False

    async def on_message(raw: Message) -> None:
        pass

    ws = ProviderWebsocket(
        owner="test",
        url=f"{server.url}/v1/listen?encoding=linear16&sample_rate={RATE}",
        headers={"Authorization": "Token test-key"},
        on_message=on_message,
    )
    await ws.connect()
    assert not await ws.finish(json.dumps({"type": "CloseStream"}), timeout=0.1)
    assert not ws.connected and server.close_streams == 1
