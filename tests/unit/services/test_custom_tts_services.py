"""Custom TTS services written the way a Pipecat 1.14 user writes them, run on callpipe.

An HTTP-style service whose ``run_tts`` is an async generator yielding its audio (at another
rate than the call's), one that yields an ``ErrorFrame``, and WebSocket services on Pipecat's
bases (``InterruptibleTTSService``, ``AudioContextWordTTSService``, ``WebsocketTTSService``)
talking to a small local server: text in, PCM and word timings out. Plus Pipecat's tracing
decorators, which must leave the functions they decorate as they are.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import io
import json
import logging
import wave
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    LLMFullResponseEndFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.services.settings import TTSSettings
from callpipe.services.tts_service import (
    AudioContextWordTTSService,
    InterruptibleTTSService,
    TTSService,
    WebsocketTTSService,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame
from callpipe.utils.tracing.service_decorators import (
    traced_gemini_live,
    traced_llm,
    traced_openai_realtime,
    traced_stt,
    traced_tts,
)

from .helpers import (
    PHONE,
    after_barge_in,
    assert_reply_framed,
    audio_secs,
    barge_in,
    errors,
    interruption_at,
    of,
    reply,
    spoken,
)

SOURCE_RATE = 24000
"""The custom services' own audio rate (the call runs at 8 kHz: their audio is resampled)."""
SECS_PER_WORD = 0.05


def words_secs(text: str) -> float:
    return len(text.split()) * SECS_PER_WORD


def assert_one_reply(frames: Sequence[Frame]) -> str:
    """Check one reply bracketed by one TTSStartedFrame and one TTSStoppedFrame, its audio
    (at the call's rate) between them and tagged with its context id; returns the id."""
    [started] = of(frames, TTSStartedFrame)
    [stopped] = of(frames, TTSStoppedFrame)
    audio = of(frames, TTSAudioRawFrame)
    assert audio, "no audio"
    assert {f.context_id for f in audio} == {started.context_id} == {stopped.context_id}
    assert {f.sample_rate for f in audio} == {PHONE.audio_out_sample_rate}
    first, last = list(frames).index(audio[0]), list(frames).index(audio[-1])
    assert list(frames).index(started) < first and last < list(frames).index(stopped)
    assert started.context_id is not None
    return started.context_id


# ---------------------------------------------------------------------- an HTTP-style service


class ChunkedHttpTTSService(TTSService):
    """A custom HTTP TTS, Pipecat 1.14 style: ``run_tts`` yields the response's audio."""

    def __init__(self, *, broken_word: str | None = None, wav: bool = False, **kwargs: Any) -> None:
        super().__init__(push_start_frame=True, push_stop_frames=True, **kwargs)
        self._broken_word = broken_word
        self._wav = wav
        self.requests: list[tuple[str, str]] = []
        self.changed: list[dict[str, Any]] = []

    def can_generate_metrics(self) -> bool:
        return True

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        self.changed.append(changed)
        return changed

    async def _response(self, text: str) -> AsyncIterator[bytes]:
        """The provider's response body: PCM at its own rate (or a WAV file of it), in
        odd-sized chunks."""
        pcm = tone_pcm(words_secs(text), SOURCE_RATE)
        if self._wav:
            body = io.BytesIO()
            with wave.open(body, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(SOURCE_RATE)
                wav.writeframes(pcm)
            pcm = body.getvalue()
        for i in range(0, len(pcm), 1001):
            await asyncio.sleep(0)
            yield pcm[i : i + 1001]

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        self.requests.append((text, context_id))
        await self.start_ttfb_metrics()  # a coroutine in Pipecat: awaited as its services do
        if self._broken_word and self._broken_word in text:
            yield ErrorFrame(error=f"{self}: the provider answered HTTP 500")
            return
        yield TTSStartedFrame(context_id=context_id)  # older services bracket themselves
        rate = None if self._wav else SOURCE_RATE  # a WAV file says its rate
        async for frame in self._stream_audio_frames_from_iterator(
            self._response(text),
            strip_wav_header=self._wav,
            in_sample_rate=rate,
            context_id=context_id,
        ):
            await self.stop_ttfb_metrics()
            yield frame
        yield TTSStoppedFrame(context_id=context_id)


@pytest.mark.parametrize("wav", [False, True], ids=["pcm", "wav"])
async def test_an_http_service_s_yielded_audio_is_resampled_framed_and_followed_by_text(
    wav: bool,
) -> None:
    tts = ChunkedHttpTTSService(wav=wav)
    down, up = await run_test(tts, reply("Hello there my friend. ", "How are you?"), params=PHONE)
    assert not errors(up)
    context_id = assert_one_reply(down)
    assert_reply_framed(down)
    # Resampled from 24 kHz to the call's 8 kHz, nothing lost (the odd chunk bytes joined).
    assert audio_secs(down) == pytest.approx(words_secs("Hello there my friend. How are you?"))
    # Each sentence's text follows its own audio.
    assert spoken(down) == ["Hello there my friend.", "How are you?"]
    first_text = list(down).index(of(down, TTSTextFrame)[0])
    assert audio_secs(down[:first_text]) == pytest.approx(words_secs("Hello there my friend."))
    assert [ctx for _, ctx in tts.requests] == [context_id, context_id]


async def test_awaited_ttfb_marks_report_one_measurement_per_sentence() -> None:
    params = PipelineParams(
        audio_in_sample_rate=8000, audio_out_sample_rate=8000, enable_metrics=True
    )
    down, _ = await run_test(ChunkedHttpTTSService(), reply("One. ", "Two."), params=params)
    ttfb = [d for f in of(down, MetricsFrame) for d in f.data if isinstance(d, TTFBMetricsData)]
    assert len(ttfb) == 2 and all(d.value >= 0 for d in ttfb)


async def test_an_http_service_s_error_frame_is_reported_and_its_sentence_not_spoken() -> None:
    tts = ChunkedHttpTTSService(broken_word="broken")
    frames = reply("Fine words here. ", "A broken one. ", "More words.")
    down, up = await run_test(tts, frames, params=PHONE)
    [error] = errors(up)
    assert "HTTP 500" in error.error
    assert_one_reply(down)
    assert spoken(down) == ["Fine words here.", "More words."]
    assert audio_secs(down) == pytest.approx(words_secs("Fine words here. More words."))


async def test_a_pipecat_style_update_settings_override_sees_each_update() -> None:
    tts = ChunkedHttpTTSService()
    update = TTSUpdateSettingsFrame(delta=TTSSettings(voice="voice-2"))
    await run_test(tts, [update, TTSSpeakFrame("Hello.")], params=PHONE)
    assert tts.changed == [{"voice": None}]
    assert tts.settings.voice == "voice-2"


# ---------------------------------------------------------------------- a WebSocket provider


class EchoServer:
    """A provider on 127.0.0.1: for each word of a ``text`` message, its start time and
    ``SECS_PER_WORD`` of PCM at ``SOURCE_RATE``; ``done`` once a ``flush`` came."""

    def __init__(
        self, *, pace: float = 0.0, drop_first_connection: bool = False, refuse: bool = False
    ) -> None:
        self.pace = pace
        self.drop_first_connection = drop_first_connection
        self.refuse = refuse  # accept the handshake, then close at once (a rejected key)
        self.connections = 0
        self.texts: list[str] = []
        self.url = ""

    async def __aenter__(self) -> EchoServer:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        if self.refuse:
            await ws.close(1008, "invalid api key")
            return
        spoken: dict[str, float] = {}
        try:
            async for raw in ws:
                message = json.loads(raw)
                context_id = message["context_id"]
                if message["type"] == "text":
                    self.texts.append(message["text"])
                    if number == 1 and self.drop_first_connection:
                        await ws.close(1011, "internal error")
                        return
                    for word in message["text"].split():
                        start = spoken.get(context_id, 0.0)
                        spoken[context_id] = start + SECS_PER_WORD
                        timing = {"words": [word], "starts": [start]}
                        await ws.send(
                            json.dumps({"type": "words", "context_id": context_id, **timing})
                        )
                        audio = base64.b64encode(tone_pcm(SECS_PER_WORD, SOURCE_RATE)).decode()
                        await ws.send(
                            json.dumps({"type": "audio", "context_id": context_id, "audio": audio})
                        )
                        if self.pace:
                            await asyncio.sleep(self.pace)
                elif message["type"] == "flush":
                    await ws.send(json.dumps({"type": "done", "context_id": context_id}))
        except ConnectionClosed:
            pass


class EchoTTSService(WebsocketTTSService):
    """A custom WebSocket TTS, Pipecat 1.14 style, for :class:`EchoServer`.

    ``echo_ids=False``: it ignores the ids the server echoes and labels what comes with the
    active context, as Pipecat services for providers without context ids do.
    ``push_audio``: its receive loop pushes the audio frames itself (older services did)."""

    def __init__(
        self,
        *,
        url: str,
        echo_ids: bool = True,
        push_audio: bool = False,
        yield_none: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(push_text_frames=False, push_stop_frames=True, **kwargs)
        self._url = url
        self._yield_none = yield_none  # False: run_tts sends and returns, yielding nothing
        self._echo_ids = echo_ids
        self._push_audio = push_audio
        self._receive_task: asyncio.Task[None] | None = None

    async def start(self, frame: Any) -> None:
        await super().start(frame)
        await self._connect()

    async def stop(self, frame: Any) -> None:
        await super().stop(frame)
        await self._disconnect()

    async def cancel(self, frame: Any) -> None:
        await super().cancel(frame)
        await self._disconnect()

    async def _connect(self) -> None:
        await super()._connect()
        await self._connect_websocket()
        if self._websocket and not self._receive_task:
            self._receive_task = self.create_task(self._receive_task_handler(self._report_error))

    async def _disconnect(self) -> None:
        await super()._disconnect()
        if self._receive_task:
            await self.cancel_task(self._receive_task)
            self._receive_task = None
        await self._disconnect_websocket()

    async def _connect_websocket(self) -> None:
        try:
            if self._websocket and self._websocket.state is State.OPEN:
                return
            self._websocket = await self._websocket_connect(self._url)
            await self._call_event_handler("on_connected")
        except Exception as e:
            self._websocket = None
            await self.push_error(error_msg=f"{self}: could not connect: {e}", exception=e)

    async def _disconnect_websocket(self) -> None:
        try:
            if self._websocket:
                await self._websocket.close()
        finally:
            self._websocket = None
            await self._call_event_handler("on_disconnected")

    def _get_websocket(self) -> Any:
        if self._websocket:
            return self._websocket
        raise Exception("Websocket not connected")

    async def flush_audio(self, context_id: str | None = None) -> None:
        if not self._websocket or self._websocket.state is not State.OPEN:
            return
        await self._websocket.send(json.dumps({"type": "flush", "context_id": context_id}))

    async def _receive_messages(self) -> None:
        async for raw in self._get_websocket():
            message = json.loads(raw)
            context_id = message["context_id"] if self._echo_ids else None
            context_id = context_id or self.get_active_audio_context_id()
            if message["type"] == "audio":
                audio = base64.b64decode(message["audio"])
                frame = TTSAudioRawFrame(audio, SOURCE_RATE, 1, context_id=context_id)
                if self._push_audio:
                    await self.push_frame(frame)
                else:
                    await self.append_to_audio_context(context_id, frame)
                await self.stop_ttfb_metrics()
            elif message["type"] == "words":
                timing = list(zip(message["words"], message["starts"], strict=True))
                await self.add_word_timestamps(timing, context_id)
            elif message["type"] == "done":
                if self._push_audio:
                    await self.push_frame(TTSStoppedFrame(context_id=context_id))
                await self.remove_audio_context(context_id)

    @traced_tts
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        try:
            if not self._websocket or self._websocket.state is State.CLOSED:
                await self._connect()
            message = {"type": "text", "text": text, "context_id": context_id}
            await self._get_websocket().send(json.dumps(message))
        except Exception as e:
            yield ErrorFrame(error=f"{self}: {e}")
            return
        if self._yield_none:
            yield None


class EchoInterruptibleTTSService(EchoTTSService, InterruptibleTTSService):
    """The same service on ``InterruptibleTTSService`` (reconnects on a barge-in).

    ``stop_secs``: how long telling the provider to stop takes when disconnecting (the old
    socket's audio keeps coming meanwhile)."""

    def __init__(self, *, stop_secs: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stop_secs = stop_secs

    async def _disconnect(self) -> None:
        await asyncio.sleep(self._stop_secs)
        await super()._disconnect()


class EchoWordTTSService(EchoTTSService, AudioContextWordTTSService):
    """The same service on the deprecated ``AudioContextWordTTSService``."""


def assert_words_as_spoken(frames: Sequence[Frame], text: str) -> None:
    """One TTSTextFrame per word of ``text``, each after the audio up to its start (the
    first after the first audio)."""
    words = of(frames, TTSTextFrame)
    assert [f.text for f in words] == text.split()
    for n, word in enumerate(words):
        heard = audio_secs(frames[: list(frames).index(word)])
        assert heard > 0 and heard >= n * SECS_PER_WORD - 0.001, word.text


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (EchoWordTTSService, {}),
        (EchoInterruptibleTTSService, {"echo_ids": False}),
        (EchoTTSService, {"push_audio": True}),
        (EchoTTSService, {"yield_none": False}),
    ],
    ids=["audio-context-word", "interruptible-without-ids", "pushing-audio", "yielding-nothing"],
)
async def test_a_websocket_service_s_audio_and_word_timing_make_one_framed_reply(
    cls: type[EchoTTSService], options: dict[str, Any]
) -> None:
    text = "Hello there my friend. How are you today?"
    async with EchoServer() as server:
        deprecated = cls is EchoWordTTSService
        with pytest.warns(DeprecationWarning) if deprecated else contextlib.nullcontext():
            tts = cls(url=server.url, **options)
        frames = reply("Hello there my friend. ", "How are you today?")
        down, up = await run_test(tts, frames, params=PHONE)
        assert not errors(up)
        context_id = assert_one_reply(down)
        assert_reply_framed(down)
        assert audio_secs(down) == pytest.approx(words_secs(text))
        assert_words_as_spoken(down, text)
        assert {f.context_id for f in of(down, TTSTextFrame)} == {context_id}
        assert server.texts == ["Hello there my friend.", "How are you today?"]
        assert server.connections == 1


async def test_replies_play_in_order_each_in_its_own_context() -> None:
    async with EchoServer() as server:
        tts = EchoTTSService(url=server.url)
        frames = [TTSSpeakFrame("First one here."), TTSSpeakFrame("And the second.")]
        down, _ = await run_test(tts, frames, params=PHONE)
    started = of(down, TTSStartedFrame)
    assert len(started) == 2 and len(of(down, TTSStoppedFrame)) == 2
    first, second = (f.context_id for f in started)
    assert first != second
    ids = [f.context_id for f in down if isinstance(f, TTSAudioRawFrame | TTSTextFrame)]
    assert ids == sorted(ids, key=[first, second].index)  # all of the first, then the second
    assert spoken(down) == ["First", "one", "here.", "And", "the", "second."]


async def test_a_barge_in_drops_the_rest_of_the_reply_and_reconnects_the_socket() -> None:
    async with EchoServer(pace=0.005) as server:
        tts = EchoInterruptibleTTSService(url=server.url, echo_ids=False, stop_secs=0.1)
        down = await barge_in(
            tts, params=PHONE, words=40, tail=" Then more.", next_reply="Fresh start."
        )
        assert server.connections == 2
    rest = after_barge_in(down)
    cut_off = of(down[: interruption_at(down)], TTSAudioRawFrame)
    assert audio_secs(cut_off) < words_secs(" ".join(["word"] * 40))
    # Nothing of the old reply's audio came after the cut, not even under the new reply's id
    # (this provider echoes no ids): the new reply has exactly its own audio and words.
    assert audio_secs(rest) == pytest.approx(words_secs("Fresh start."))
    assert spoken(rest) == ["Fresh", "start."]
    assert_one_reply(rest)


async def test_the_socket_dropped_by_the_provider_is_reconnected_and_the_reply_ended() -> None:
    async with EchoServer(drop_first_connection=True) as server:
        tts = EchoTTSService(url=server.url)
        frames: list[Frame] = [
            *reply("Lost words."),
            SleepFrame(5.0, until=lambda: server.connections == 2),
        ]
        frames += reply("Spoken words.")
        down, up = await run_test(tts, frames, params=PHONE)
    assert server.connections == 2
    assert not errors(up)  # the reconnect worked: nothing to report
    assert len(of(down, TTSStartedFrame)) == 2 and len(of(down, TTSStoppedFrame)) == 2
    assert spoken(down) == ["Spoken", "words."]
    assert audio_secs(down) == pytest.approx(words_secs("Spoken words."))
    ends = [i for i, f in enumerate(down) if isinstance(f, LLMFullResponseEndFrame)]
    assert len(ends) == 2


async def test_a_connection_refused_is_reported_upstream(caplog: pytest.LogCaptureFixture) -> None:
    async with EchoServer() as server:
        url = server.url
    tts = EchoTTSService(url=url)  # the server is gone: its port refuses
    with caplog.at_level(logging.ERROR):
        down, up = await run_test(tts, [TTSSpeakFrame("Hello.")], params=PHONE)
    first = errors(up)[0]
    assert "could not connect" in first.error and isinstance(first.exception, OSError)
    assert not of(down, TTSAudioRawFrame)


async def test_a_socket_closed_at_each_opening_is_given_up_after_three_reconnects() -> None:
    async with EchoServer(refuse=True) as server:
        tts = EchoTTSService(url=server.url)
        frames = [SleepFrame(10.0, until=lambda: not tts.is_usable)]
        _, up = await run_test(tts, frames, params=PHONE)
    # The first socket, then three reconnects whose new socket closes before it answers a
    # ping; then one error says the service gave up, and it takes no more work.
    assert server.connections == 4
    assert not tts.is_usable
    assert [e.error for e in errors(up) if "could not reconnect after 3 attempts" in e.error]


# ---------------------------------------------------------------------- tracing decorators


async def test_the_tracing_decorators_leave_each_kind_of_function_as_it_is() -> None:
    async def coroutine(x: int) -> int:
        return x + 1

    async def generator(n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    def plain(x: int) -> int:
        return x * 2

    decorators = [
        traced_tts,
        traced_stt,
        traced_llm,
        traced_tts(name="my-tts"),
        traced_stt(name="my-stt"),
        traced_llm(name="my-llm"),
        traced_gemini_live("llm_setup"),
        traced_openai_realtime("llm_response"),
    ]
    for decorate in decorators:
        assert inspect.iscoroutinefunction(decorate(coroutine))
        assert await decorate(coroutine)(1) == 2
        assert inspect.isasyncgenfunction(decorate(generator))
        assert [i async for i in decorate(generator)(3)] == [0, 1, 2]
        assert decorate(plain)(3) == 6
        assert decorate(plain).__name__ == "plain"


def test_a_decorated_run_tts_is_still_told_apart_by_what_it_returns() -> None:
    tts = ChunkedHttpTTSService()
    assert inspect.isasyncgenfunction(type(tts).run_tts)
    assert inspect.isasyncgen(tts.run_tts("Hi.", "ctx"))
