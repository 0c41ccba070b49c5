"""RTVI names for multi-transport Pipecat bots: they import, pass frames on unchanged, cost the
caller's audio nothing, and never put anything RTVI on a phone call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    TextFrame,
    UserStartedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.pipeline.worker_observer import WorkerObserver
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.processors.frameworks.rtvi import (
    RTVIConfig,
    RTVIObserver,
    RTVIObserverParams,
    RTVIProcessor,
    RTVIServerMessageFrame,
    RTVIServiceConfig,
    RTVIServiceOptionConfig,
)
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.memory_socket import TwilioCallerSocket
from callpipe.testing.pipeline import run_test
from callpipe.testing.virtual_clock import run_virtual
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

MARKER = "rtvi-marker-4711"


def test_the_quickstart_imports_resolve() -> None:
    from callpipe.processors.frameworks.rtvi.frames import RTVIServerMessageFrame as Frames

    config = RTVIConfig(
        config=[RTVIServiceConfig("llm", [RTVIServiceOptionConfig("model", "gpt-4o")])]
    )
    rtvi = RTVIProcessor(config=config, transport=object())
    assert rtvi.config is config
    assert Frames is RTVIServerMessageFrame
    observer = RTVIObserver(rtvi, params=RTVIObserverParams(bot_llm_enabled=False))
    assert observer.params.bot_llm_enabled is False
    assert isinstance(rtvi.create_rtvi_observer(), RTVIObserver)


async def test_frames_pass_through_unchanged_both_ways() -> None:
    sent: list[Frame] = [
        TextFrame("hello"),
        RTVIServerMessageFrame(data={"note": MARKER}),
        UserStartedSpeakingFrame(),
        InputAudioRawFrame(bytes(320), 8000),
    ]
    down, _ = await run_test(RTVIProcessor(), sent)
    assert down[:-1] == sent and all(a is b for a, b in zip(down, sent, strict=False))


async def test_the_callers_audio_steps_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    rtvi = RTVIProcessor()
    visited: list[Frame] = []
    original = rtvi.process_frame

    async def spy(frame: Frame, direction: FrameDirection) -> None:
        visited.append(frame)
        await original(frame, direction)

    monkeypatch.setattr(rtvi, "process_frame", spy)
    audio, text = InputAudioRawFrame(bytes(320), 8000), TextFrame("hi")
    down, _ = await run_test(rtvi, [audio, text])
    assert down[:2] == [audio, text]
    assert audio not in visited and text in visited


def test_the_observer_asks_for_no_frames() -> None:
    proxy = WorkerObserver([RTVIObserver(RTVIProcessor())])
    assert not proxy.wants_pushes and not proxy.wants_processing
    assert not proxy.wants_setup_timing


async def test_sending_methods_push_nothing() -> None:
    class Send(FrameProcessor):
        """Calls the RTVI send methods on the first text frame, as a bot would."""

        def __init__(self, rtvi: RTVIProcessor) -> None:
            super().__init__()
            self.rtvi = rtvi

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.rtvi.set_bot_ready()
                await self.rtvi.send_server_message({"note": MARKER})
                await self.rtvi.send_error("nope")
                await self.rtvi.push_transport_message({"note": MARKER})

    rtvi = RTVIProcessor()
    down, up = await run_test(Pipeline([rtvi, Send(rtvi)]), [TextFrame("go")])
    assert [type(f).__name__ for f in down] == ["TextFrame", "EndFrame"]
    assert up == []
    assert rtvi.bot_ready


async def test_set_client_ready_runs_the_bots_handler() -> None:
    rtvi = RTVIProcessor()
    seen: list[Any] = []

    @rtvi.event_handler("on_client_ready")
    async def ready(processor: RTVIProcessor) -> None:
        seen.append(processor)

    await rtvi.set_client_ready()
    assert seen == [rtvi] and rtvi.client_ready


class Echo(FrameProcessor):
    """Plays every caller packet back, so the call has bot audio next to the RTVI frames."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(OutputAudioRawFrame(frame.audio, frame.sample_rate, 1))
        else:
            await self.push_frame(frame, direction)


def test_on_a_twilio_call_nothing_rtvi_reaches_the_websocket() -> None:
    socket = TwilioCallerSocket(25)
    serializer = TwilioFrameSerializer(
        "MZ0", "CA0123456789", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    transport = FastAPIWebsocketTransport(
        socket.websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
        ),
    )
    rtvi = RTVIProcessor(config=RTVIConfig(config=[]))
    task = PipelineTask(
        Pipeline([transport.input(), rtvi, Echo(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        observers=[RTVIObserver(rtvi)],
        idle_timeout_secs=None,
    )
    client_ready: list[object] = []

    @rtvi.event_handler("on_client_ready")
    async def ready(processor: RTVIProcessor) -> None:
        client_ready.append(processor)

    @transport.event_handler("on_client_connected")
    async def connected(t: FastAPIWebsocketTransport, ws: object) -> None:
        await rtvi.send_server_message({"note": MARKER})
        await task.queue_frames([RTVIServerMessageFrame(data={"note": MARKER})])

    @transport.event_handler("on_client_disconnected")
    async def gone(t: FastAPIWebsocketTransport, ws: object) -> None:
        await task.cancel()

    run_virtual(PipelineRunner(handle_sigint=False).run(task))
    messages = socket.messages()
    assert any(m["event"] == "media" for m in messages)  # the echo went out
    assert {m["event"] for m in messages} <= {"media", "mark", "clear"}
    assert all(MARKER not in json.dumps(m) for m in messages)
    assert client_ready == []
