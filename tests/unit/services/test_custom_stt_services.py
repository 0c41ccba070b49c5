"""Custom STT services written the way a Pipecat 1.14 user writes them run on callpipe.

Each service below follows Pipecat's subclass contract (``run_stt`` as an async generator,
``push_frame`` of transcripts from a receive loop, ``request_finalize``/``confirm_finalize``,
``_handle_transcription``, processing metrics, ``language_to_service_language``), with the
word ``pipecat`` replaced by ``callpipe`` in its imports. The providers are small websocket
servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websocket_connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.protocol import State

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    MetricsFrame,
    StartFrame,
    STTMuteFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import (
    ProcessingMetricsData,
    STTUsageMetricsData,
    TTFBMetricsData,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import LLMUserAggregator
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.settings import STTSettings
from callpipe.services.stt_service import SegmentedSTTService, STTService, WebsocketSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.transcriptions.language import Language
from callpipe.utils.time import time_now_iso8601
from callpipe.utils.tracing.service_decorators import traced_stt

from .helpers import ConnectionEvents, of, until

RATE = 8000
PARAMS = PipelineParams(
    audio_in_sample_rate=RATE,
    audio_out_sample_rate=RATE,
    enable_metrics=True,
    enable_usage_metrics=True,
)


def speech(secs: float, *, user_id: str = "caller-1") -> list[Frame]:
    """The caller's audio as a transport tagging its speaker sends it (Daily, LiveKit)."""
    pcm = tone_pcm(secs, RATE)
    step = RATE // 50 * 2
    return [
        UserAudioRawFrame(pcm[i : i + step], RATE, user_id=user_id)
        for i in range(0, len(pcm), step)
    ]


def turn(secs: float = 0.3) -> list[Frame]:
    """One turn of the caller, framed as the input transport frames it."""
    return [
        VADUserStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        *speech(secs),
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        UserStoppedSpeakingFrame(),
    ]


def metrics(frames: list[Frame], kind: type[Any]) -> list[Any]:
    return [d for f in of(frames, MetricsFrame) for d in f.data if isinstance(d, kind)]


# ---------------------------------------------------------------------- segmented (a)


class WhisperLikeSTTService(SegmentedSTTService):
    """A segmented STT in Pipecat's style: ``run_stt`` gets the utterance as a WAV file and
    yields one ``TranscriptionFrame``."""

    def __init__(self, *, fail: bool = False, raise_error: bool = False, **kwargs: Any) -> None:
        super().__init__(settings=STTSettings(model="local-1", language=Language.EN_US), **kwargs)
        self.fail = fail
        self.raise_error = raise_error
        self.segments: list[bytes] = []
        self.transcribed = 0

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: str) -> str | None:
        return {Language.EN_US: "en", Language.DE: "de"}.get(Language(language))

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        self.segments.append(audio)
        if self.raise_error:
            raise RuntimeError("model crashed")
        if self.fail:
            yield ErrorFrame(error="model refused the audio")
            return
        await self.start_processing_metrics()
        await asyncio.sleep(0.01)
        await self.stop_processing_metrics()
        language = self._settings.language
        assert isinstance(language, str)
        text = f"utterance {len(self.segments)}"
        yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), language)
        self.transcribed += 1  # runs once the frame above was pushed


async def test_a_segmented_run_stt_generator_pushes_its_transcripts() -> None:
    stt = WhisperLikeSTTService()
    frames = [*turn(), until(lambda: stt.transcribed == 1), *turn()]
    down, up = await run_test(stt, frames, params=PARAMS)
    finals = of(down, TranscriptionFrame)
    assert [f.text for f in finals] == ["utterance 1", "utterance 2"]
    # Converted at construction by the service's own language_to_service_language.
    assert all(f.language == "en" and f.user_id == "caller-1" for f in finals)
    assert all(f.finalized for f in finals)  # segmented: every transcript is final
    assert all(segment.startswith(b"RIFF") for segment in stt.segments)
    # The caller's audio passed on, untouched.
    assert len(of(down, UserAudioRawFrame)) == 2 * len(speech(0.3))
    assert len(metrics(down, TTFBMetricsData)) == 2
    assert len(metrics(down, ProcessingMetricsData)) == 2
    assert metrics(down, STTUsageMetricsData)
    assert not of(up, ErrorFrame)


@pytest.mark.parametrize("how", ["yielded", "raised"])
async def test_a_segmented_error_goes_upstream_and_the_call_goes_on(how: str) -> None:
    stt = WhisperLikeSTTService(fail=how == "yielded", raise_error=how == "raised")
    down, up = await run_test(stt, [*turn(), *turn()], params=PARAMS)
    errors = of(up, ErrorFrame)
    assert len(errors) == 2 and not any(e.fatal for e in errors)
    expected = "model refused the audio" if how == "yielded" else "model crashed"
    assert all(expected in e.error for e in errors)
    assert not of(down, TranscriptionFrame)
    assert isinstance(down[-1], EndFrame)
    assert len(stt.segments) == 2


async def test_the_language_of_a_settings_update_is_converted_too() -> None:
    stt = WhisperLikeSTTService()
    await stt.update_settings(STTSettings(language=Language.DE))
    assert stt._settings.language == "de"
    await stt.update_settings(STTSettings(language="klingon"))  # not a tag: kept as given
    assert stt._settings.language == "klingon"


# ---------------------------------------------------------------------- a local provider


class LocalProvider:
    """A streaming STT provider on 127.0.0.1: binary messages are audio; after
    ``interim_after`` bytes it sends an interim result, and it answers ``"finalize"`` with the
    final one. ``drop_after`` bytes on the first connection: it drops that connection."""

    def __init__(self, *, interim_after: int = 1600, drop_after: int | None = None) -> None:
        self.interim_after = interim_after
        self.drop_after = drop_after
        self.connections = 0
        self.paths: list[str] = []
        self.audio_bytes = 0
        self.silent_messages = 0
        self.finalizes = 0
        self.url = ""
        self._server: Server | None = None

    async def __aenter__(self) -> LocalProvider:
        self._server = await serve(self._session, "127.0.0.1", 0)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        self.paths.append(ws.request.path)
        first = self.connections == 1
        heard = 0
        async for message in ws:
            if isinstance(message, bytes) and message == bytes(len(message)):
                self.silent_messages += 1  # a keep-alive
            elif isinstance(message, bytes):
                before = heard
                heard += len(message)
                self.audio_bytes += len(message)
                if first and self.drop_after is not None and heard >= self.drop_after:
                    ws.transport.abort()  # no close frame: a dropped connection
                    return
                if before < self.interim_after <= heard:
                    await ws.send(json.dumps({"type": "interim", "text": "hello"}))
            elif message == "finalize":
                await asyncio.sleep(0.03)  # a provider takes a moment to finalize
                self.finalizes += 1
                answer = {"type": "final", "text": "hello world", "language": "en"}
                await ws.send(json.dumps(answer | {"from_finalize": True}))


@pytest.fixture
async def provider() -> AsyncIterator[LocalProvider]:
    async with LocalProvider() as server:
        yield server


# ---------------------------------------------------------------------- streaming (b)


class SocketSTTService(STTService):
    """A streaming STT in Pipecat's style on the plain ``STTService`` base: ``run_stt`` sends
    each chunk and yields None; a receive task pushes the transcripts."""

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(settings=STTSettings(model="live-1", language="en"), **kwargs)
        self._url = url
        self._websocket: ClientConnection | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self.transcriptions: list[tuple[str, bool, str | None]] = []

    def can_generate_metrics(self) -> bool:
        return True

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        self._websocket = await websocket_connect(f"{self._url}?rate={self.sample_rate}")
        self._receive_task = self.create_task(self._receive_messages(), name="receive")

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._close()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._close()

    async def _close(self) -> None:
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        if self._websocket is not None:
            await self._websocket.close()
            self._websocket = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame) and self._websocket is not None:
            self.request_finalize()
            await self._websocket.send("finalize")

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        if self._websocket is not None:
            await self._websocket.send(audio)
        yield None

    async def _receive_messages(self) -> None:
        assert self._websocket is not None
        async for message in self._websocket:
            data = json.loads(message)
            if data["type"] == "interim":
                await self.push_frame(
                    InterimTranscriptionFrame(data["text"], self._user_id, time_now_iso8601())
                )
            elif data["type"] == "final":
                if data.get("from_finalize"):
                    self.confirm_finalize()
                frame = TranscriptionFrame(
                    data["text"], self._user_id, time_now_iso8601(), data["language"]
                )
                await self.push_frame(frame)
                await self._handle_transcription(data["text"], True, data["language"])

    @traced_stt
    async def _handle_transcription(
        self, transcript: str, is_final: bool, language: str | None = None
    ) -> None:
        self.transcriptions.append((transcript, is_final, language))


async def test_a_streaming_run_stt_feeds_the_socket_and_its_receive_loop_pushes(
    provider: LocalProvider,
) -> None:
    stt = SocketSTTService(url=provider.url)
    frames = [
        until(lambda: stt._websocket is not None),
        *turn(0.4),
        until(lambda: stt.transcriptions != []),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert provider.audio_bytes == int(0.4 * RATE) * 2  # every chunk reached the provider
    [interim] = of(down, InterimTranscriptionFrame)
    [final] = of(down, TranscriptionFrame)
    assert (interim.text, final.text) == ("hello", "hello world")
    assert (final.language, final.user_id, final.finalized) == ("en", "caller-1", True)
    assert stt.transcriptions == [("hello world", True, "en")]
    assert len(of(down, UserAudioRawFrame)) == len(speech(0.4))
    # TTFB from the end of speech to the final; the audio sent reported at the final.
    [ttfb] = metrics(down, TTFBMetricsData)
    assert 0 <= ttfb.value < 2.0
    [usage] = metrics(down, STTUsageMetricsData)
    assert usage.value.audio_seconds == pytest.approx(0.4)
    kinds = [type(f) for f in down]
    assert kinds.index(MetricsFrame) < kinds.index(TranscriptionFrame)
    assert not of(up, ErrorFrame)


async def test_the_user_aggregator_gets_the_receive_loops_transcript(
    provider: LocalProvider,
) -> None:
    stt = SocketSTTService(url=provider.url)
    context = LLMContext()
    user = LLMUserAggregator(context)
    frames = [
        until(lambda: stt._websocket is not None),
        *turn(0.3),
        until(lambda: len(context.messages) == 1),
    ]
    await run_test(Pipeline([stt, user]), frames, params=PARAMS)
    assert context.messages == [{"role": "user", "content": "hello world"}]


def test_the_contract_is_decided_once_per_class() -> None:
    class Unfinished(STTService):
        """Overrides neither run_stt nor process_audio."""

    assert not Unfinished._runs_pipecat_stt and SocketSTTService._runs_pipecat_stt
    assert not SegmentedSTTService._runs_pipecat_stt and WhisperLikeSTTService._runs_pipecat_stt
    with pytest.raises(NotImplementedError):
        asyncio.run(Unfinished().process_audio(b"\x00\x00" * 160))


async def test_muted_audio_never_reaches_run_stt_but_passes_on(provider: LocalProvider) -> None:
    stt = SocketSTTService(url=provider.url)
    frames = [until(lambda: stt._websocket is not None), STTMuteFrame(mute=True), *turn(0.2)]
    down, _ = await run_test(stt, frames, params=PARAMS)
    assert provider.audio_bytes == 0
    assert len(of(down, UserAudioRawFrame)) == len(speech(0.2))


async def test_plain_input_audio_gives_an_empty_user_id(provider: LocalProvider) -> None:
    stt = SocketSTTService(url=provider.url)
    pcm = tone_pcm(0.3, RATE)
    plain = [InputAudioRawFrame(pcm[i : i + 320], RATE) for i in range(0, len(pcm), 320)]
    frames = [
        until(lambda: stt._websocket is not None),
        VADUserStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        *plain,
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        UserStoppedSpeakingFrame(),
        until(lambda: stt.transcriptions != []),
    ]
    down, _ = await run_test(stt, frames, params=PARAMS)
    [final] = of(down, TranscriptionFrame)
    assert final.user_id == "" and final.text == "hello world"
    assert len(of(down, InputAudioRawFrame)) == len(plain)


# ---------------------------------------------------------------------- websocket base (c)


class LiveSTTService(WebsocketSTTService):
    """A streaming STT in Pipecat's style on ``WebsocketSTTService``: the base runs the receive
    loop, reconnects a dropped socket and keeps an idle one alive."""

    def __init__(self, *, url: str, **kwargs: Any) -> None:
        super().__init__(settings=STTSettings(model="live-2", language=Language.EN), **kwargs)
        self._url = url
        self._receive_task: asyncio.Task[None] | None = None
        self.finals = 0

    def can_generate_metrics(self) -> bool:
        return True

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self._connect()

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._disconnect()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._disconnect()

    async def _update_settings(self, delta: STTSettings) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        if changed:
            await self._request_reconnect()
        return changed

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            if self._websocket is not None and self._websocket.state is State.OPEN:
                await self._websocket.send("finalize")

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        if self._websocket is None or self._websocket.state is not State.OPEN:
            yield None  # the receive loop reconnects; audio meanwhile is dropped
            return
        try:
            await self._websocket.send(audio)
        except Exception:
            pass
        yield None

    async def _connect(self) -> None:
        await self._connect_websocket()
        await super()._connect()
        if self._receive_task is None:
            self._receive_task = self.create_task(self._receive_task_handler(self._report_error))

    async def _disconnect(self) -> None:
        await super()._disconnect()
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _connect_websocket(self) -> None:
        try:
            if self._websocket is not None and self._websocket.state is State.OPEN:
                return
            url = f"{self._url}/listen?language={self._settings.language}"
            self._websocket = await self._websocket_connect(url)
            await self._call_event_handler("on_connected")
        except Exception as e:
            self._websocket = None
            await self.push_error(error_msg=f"Unable to connect: {e}", exception=e)

    async def _disconnect_websocket(self) -> None:
        ws = self._websocket
        try:
            if ws is not None and ws.state is State.OPEN:
                await ws.close()
        finally:
            if self._websocket is ws:
                self._websocket = None
            await self._call_event_handler("on_disconnected")

    async def _receive_messages(self) -> None:
        assert self._websocket is not None
        async for message in self._websocket:
            data = json.loads(message)
            if data["type"] == "final":
                await self.push_frame(
                    TranscriptionFrame(
                        data["text"], self._user_id, time_now_iso8601(), data["language"]
                    )
                )
                self.finals += 1


def opened(stt: LiveSTTService) -> bool:
    return stt._websocket is not None and stt._websocket.state is State.OPEN


async def test_the_websocket_base_reconnects_a_dropped_socket() -> None:
    async with LocalProvider(drop_after=int(0.2 * RATE) * 2) as provider:
        stt = LiveSTTService(url=provider.url)
        events = ConnectionEvents(stt)
        frames = [
            until(lambda: opened(stt)),
            VADUserStartedSpeakingFrame(),
            UserStartedSpeakingFrame(),
            *speech(0.3),  # the provider drops the socket after 0.2 s of it
            until(lambda: provider.connections == 2 and opened(stt)),
            *speech(0.2),
            VADUserStoppedSpeakingFrame(stop_secs=0.2),
            UserStoppedSpeakingFrame(),
            until(lambda: stt.finals == 1),
        ]
        down, up = await run_test(stt, frames, params=PARAMS)
    assert provider.connections == 2
    [final] = of(down, TranscriptionFrame)
    assert (final.text, final.language, final.user_id) == ("hello world", "en", "caller-1")
    assert provider.audio_bytes >= int(0.4 * RATE) * 2  # the audio after the reconnect went out
    assert len(of(down, UserAudioRawFrame)) == len(speech(0.3)) + len(speech(0.2))
    assert len(metrics(down, TTFBMetricsData)) == 1
    assert not of(up, ErrorFrame)  # reconnected at the first attempt: nothing to report
    assert events.names().count("on_connected") == 2
    assert stt._websocket is None  # disconnected at the end


async def test_the_websocket_base_keeps_an_idle_socket_alive(provider: LocalProvider) -> None:
    stt = LiveSTTService(url=provider.url, keepalive_timeout=0.1, keepalive_interval=0.03)
    frames = [until(lambda: opened(stt)), until(lambda: provider.silent_messages >= 2)]
    await run_test(stt, frames, params=PARAMS)
    assert provider.silent_messages >= 2


async def test_a_settings_update_reopens_the_socket_after_the_turn(
    provider: LocalProvider,
) -> None:
    stt = LiveSTTService(url=provider.url)
    update = STTUpdateSettingsFrame(delta=STTSettings(language=Language.DE))
    frames = [
        until(lambda: opened(stt)),
        VADUserStartedSpeakingFrame(),
        UserStartedSpeakingFrame(),
        update,
        *speech(0.1),
        until(lambda: stt._need_reconnect),  # not while the caller speaks
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        UserStoppedSpeakingFrame(),
        until(lambda: provider.connections == 2 and opened(stt)),
        *turn(0.1),
        until(lambda: stt.finals == 2),
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert provider.paths == ["/listen?language=en", "/listen?language=de"]
    # The turn's final came on the old socket before it was closed; the next on the new one.
    assert [f.text for f in of(down, TranscriptionFrame)] == ["hello world"] * 2
    assert not of(up, ErrorFrame)


async def test_a_socket_that_never_opens_is_reported_and_given_up() -> None:
    stt = LiveSTTService(
        url="ws://127.0.0.1:9", reconnect_backoff_min_wait=0.01, reconnect_backoff_max_wait=0.02
    )
    events = ConnectionEvents(stt)
    _, up = await run_test(stt, [until(lambda: not stt.is_usable)], params=PARAMS)
    errors = [e.error for e in of(up, ErrorFrame)]
    # push_error(error_msg=..., exception=e): the text as given, as in Pipecat.
    first = of(up, ErrorFrame)[0]
    assert first.exception is not None and first.error == f"Unable to connect: {first.exception}"
    assert any("could not reconnect after 3 attempts" in e for e in errors)
    assert not stt.is_usable  # reported as permanent by the base's receive loop
    assert "on_connection_error" in events.names()  # through _report_error
