"""VADProcessor makes the same turn decisions and barge-ins as VAD in the transport."""

from __future__ import annotations

import asyncio

from callpipe.audio.vad.vad_analyzer import VADParams, VADState
from callpipe.audio.vad.vad_controller import SpeechChange, VADController
from callpipe.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    SpeechControlParamsFrame,
    UserSpeakingFrame,
    VADParamsUpdateFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.audio.vad_processor import VADProcessor
from callpipe.testing import run_test
from callpipe.transports.base_input import BaseInputTransport
from callpipe.transports.base_transport import TransportParams

from ..pipeline.helpers import Recorder
from ..transports.test_input_vad import ScriptedVAD, names, packets

Q, ST, SP, SO = VADState.QUIET, VADState.STARTING, VADState.SPEAKING, VADState.STOPPING
SCRIPT = [Q, ST, SP, SP, SO, SP, SO, Q, Q, ST, Q, ST, SP, Q]


def turn_frames(frames: list[Frame]) -> list[str]:
    return [n for n in names(frames) if n != "UserSpeakingFrame"]


async def run_both(allow: bool) -> tuple[list[Frame], list[Frame]]:
    params = PipelineParams(allow_interruptions=allow, audio_in_sample_rate=8000)
    in_transport = BaseInputTransport(
        TransportParams(audio_in_enabled=True, vad_analyzer=ScriptedVAD(list(SCRIPT)))
    )
    by_transport, _ = await run_test(in_transport, packets(len(SCRIPT)), params=params)
    as_processor = Pipeline(
        [
            BaseInputTransport(TransportParams(audio_in_enabled=True)),
            VADProcessor(vad_analyzer=ScriptedVAD(list(SCRIPT))),
        ]
    )
    by_processor, _ = await run_test(as_processor, packets(len(SCRIPT)), params=params)
    return by_transport, by_processor


async def test_same_frames_as_the_transport_with_interruptions() -> None:
    by_transport, by_processor = await run_both(allow=True)
    assert turn_frames(by_processor) == turn_frames(by_transport)
    assert turn_frames(by_processor).count("InterruptionFrame") == 2
    assert turn_frames(by_processor).count("UserStoppedSpeakingFrame") == 2


async def test_same_frames_without_interruptions() -> None:
    by_transport, by_processor = await run_both(allow=False)
    assert turn_frames(by_processor) == turn_frames(by_transport)
    assert "InterruptionFrame" not in turn_frames(by_processor)


async def test_turn_frames_come_before_the_audio_that_caused_them() -> None:
    _, by_processor = await run_both(allow=True)
    kinds = [type(f).__name__ for f in by_processor]
    first_start = kinds.index("UserStartedSpeakingFrame")
    assert kinds[first_start + 2] == "InputAudioRawFrame"  # start, interruption, then audio 3
    assert kinds[:first_start].count("InputAudioRawFrame") == 2


async def test_a_stream_that_goes_quiet_mid_speech_ends_the_turn() -> None:
    vad = ScriptedVAD([ST, SP])
    rec = Recorder()
    processor = VADProcessor(vad_analyzer=vad, audio_idle_timeout=0.1)
    worker = PipelineWorker(
        Pipeline([processor, rec]),
        params=PipelineParams(audio_in_sample_rate=8000),
        idle_timeout_secs=None,
    )
    run = asyncio.create_task(worker.run())
    for frame in packets(2):
        await worker.queue_frame(frame)
    await asyncio.sleep(0.4)  # no more audio while "speaking"
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(run, 5)
    stop = ["VADUserStoppedSpeakingFrame", "UserStoppedSpeakingFrame", "StopInterruptionFrame"]
    assert turn_frames(rec.seen)[-4:] == [*stop, "EndFrame"]


async def test_speaking_frames_while_the_caller_speaks() -> None:
    vad = ScriptedVAD([SP] * 30)
    processor = VADProcessor(vad_analyzer=vad, speech_activity_period=0.0)
    down, _ = await run_test(
        processor, packets(30), params=PipelineParams(audio_in_sample_rate=8000)
    )
    assert sum(isinstance(f, UserSpeakingFrame) for f in down) == 29


async def test_controller_events_and_decisions() -> None:
    events: list[str] = []
    controller = VADController(ScriptedVAD([ST, SP, SO, SP, Q]))

    @controller.event_handler("on_speech_started")
    async def started(c: VADController) -> None:
        events.append("started")

    @controller.event_handler("on_speech_stopped")
    def stopped(c: VADController) -> None:
        events.append("stopped")

    changes = [await controller.process_audio(bytes(320)) for _ in range(5)]
    assert changes == [
        SpeechChange.NONE,
        SpeechChange.STARTED,
        SpeechChange.NONE,
        SpeechChange.NONE,
        SpeechChange.STOPPED,
    ]
    assert events == ["started", "stopped"]
    assert isinstance(InputAudioRawFrame(bytes(2), 8000), InputAudioRawFrame)


class RecordingVAD(ScriptedVAD):
    def __init__(self) -> None:
        super().__init__([])
        self.updates: list[VADParams] = []

    def set_params(self, params: VADParams) -> None:
        self.updates.append(params)


async def test_vad_params_update_reaches_the_analyzer_both_ways() -> None:
    new = VADParams(stop_secs=0.3)
    for make in (
        lambda vad: VADProcessor(vad_analyzer=vad),
        lambda vad: BaseInputTransport(TransportParams(audio_in_enabled=True, vad_analyzer=vad)),
    ):
        vad = RecordingVAD()
        down, _ = await run_test(make(vad), [VADParamsUpdateFrame(params=new)])
        assert vad.updates == [new]
        [announced] = [f for f in down if isinstance(f, SpeechControlParamsFrame)]
        assert announced.vad_params == new
