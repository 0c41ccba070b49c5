"""The caller's audio through an STT service: handed to ``process_audio``, passed on or not.

``STTService.process_frame`` takes ``InputAudioRawFrame`` on a short path (it is neither a
lifecycle nor a settings frame); these tests pin what that path must keep doing.
"""

from __future__ import annotations

import pytest

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    StartFrame,
    TextFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.stt_service import STTService


class Recording(STTService):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.audio: list[bytes] = []

    async def process_audio(self, audio: bytes) -> None:
        self.audio.append(audio)


class Sink(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)


class LoudAudio(InputAudioRawFrame):
    """A subclass takes the ordinary path; it must behave the same."""


@pytest.mark.parametrize("passthrough", [True, False])
@pytest.mark.parametrize("frame_type", [InputAudioRawFrame, LoudAudio])
async def test_audio_reaches_process_audio_and_passes_on_when_asked(
    passthrough: bool, frame_type: type[InputAudioRawFrame]
) -> None:
    source, stt, sink = FrameProcessor(), Recording(audio_passthrough=passthrough), Sink()
    source.link(stt)
    stt.link(sink)
    await source.push_frame(StartFrame(audio_in_sample_rate=8000, audio_out_sample_rate=8000))
    frames = [frame_type(bytes([i]) * 320, 8000) for i in range(3)]
    for frame in frames:
        await source.push_frame(frame)
    await source.push_frame(TextFrame("not audio"))
    assert stt.audio == [f.audio for f in frames]
    audio_out = [f for f in sink.frames if isinstance(f, InputAudioRawFrame)]
    assert audio_out == (frames if passthrough else [])
    assert any(isinstance(f, StartFrame) for f in sink.frames)  # lifecycle still handled
    await stt.cleanup()
