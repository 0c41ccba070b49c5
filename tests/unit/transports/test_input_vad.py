"""BaseInputTransport: VAD transitions become user turns; a user start interrupts when allowed."""

from __future__ import annotations

from collections.abc import Iterator

from callpipe.audio.vad.vad_analyzer import VADParams, VADState
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    StopInterruptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.testing import run_test
from callpipe.transports.base_input import BaseInputTransport
from callpipe.transports.base_transport import TransportParams


class ScriptedVAD:
    """Returns a scripted state per analysed packet."""

    def __init__(self, states: list[VADState]) -> None:
        self._states: Iterator[VADState] = iter(states)
        self.params = VADParams()
        self.rate = 0

    def set_sample_rate(self, rate: int) -> None:
        self.rate = rate

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return next(self._states, VADState.QUIET)


Q, ST, SP, SO = VADState.QUIET, VADState.STARTING, VADState.SPEAKING, VADState.STOPPING


def packets(n: int) -> list[Frame]:
    return [InputAudioRawFrame(b"\x00\x00" * 160, 8000) for _ in range(n)]


def names(frames: list[Frame]) -> list[str]:
    return [type(f).__name__ for f in frames if not isinstance(f, InputAudioRawFrame)]


async def run_input(states: list[VADState], *, allow: bool = True) -> list[Frame]:
    vad = ScriptedVAD(states)
    transport = BaseInputTransport(TransportParams(audio_in_enabled=True, vad_analyzer=vad))
    params = PipelineParams(allow_interruptions=allow, audio_in_sample_rate=8000)
    down, _ = await run_test(transport, packets(len(states)), params=params)
    assert vad.rate == 8000
    return down


async def test_turn_frames_on_final_transitions_only() -> None:
    down = await run_input([Q, ST, ST, SP, SP, SO, SP, SO, SO, Q, Q])
    assert names(down) == [
        "VADUserStartedSpeakingFrame",
        "UserStartedSpeakingFrame",
        "InterruptionFrame",
        "VADUserStoppedSpeakingFrame",
        "UserStoppedSpeakingFrame",
        "StopInterruptionFrame",
        "EndFrame",
    ]
    # Turn frames come before the audio packet that completed the transition.
    kinds = [type(f) for f in down]
    first_speaking_packet = 3
    audio_before = kinds[: kinds.index(VADUserStartedSpeakingFrame)].count(InputAudioRawFrame)
    assert audio_before == first_speaking_packet


async def test_no_interruption_when_the_pipeline_forbids_it() -> None:
    down = await run_input([SP, Q], allow=False)
    assert not any(isinstance(f, InterruptionFrame | StopInterruptionFrame) for f in down)
    assert [type(f) for f in down if isinstance(f, UserStartedSpeakingFrame)] == [
        UserStartedSpeakingFrame
    ]
    assert any(isinstance(f, UserStoppedSpeakingFrame) for f in down)
    assert any(isinstance(f, VADUserStoppedSpeakingFrame) for f in down)


async def test_audio_is_dropped_when_input_is_disabled() -> None:
    transport = BaseInputTransport(TransportParams(audio_in_enabled=False))
    down, _ = await run_test(transport, packets(3))
    assert not any(isinstance(f, InputAudioRawFrame) for f in down)
