"""The caller's audio steps over processors that only pass it on (``passes_input_audio``).

The skip is an optimisation: every test here checks that what each processor sees is what it
would see without it, in the cases where the long way must still be taken.
"""

from __future__ import annotations

from callpipe.audio.vad.vad_analyzer import VADAnalyzer
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    UserAudioRawFrame,
    UserStartedSpeakingFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response import (
    LLMAssistantContextAggregator,
    LLMUserContextAggregator,
)
from callpipe.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.base_output import BaseOutputTransport


class Seen(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.seen.append(frame)
        await self.push_frame(frame, direction)


class PassesAudio(FrameProcessor):
    passes_input_audio = True

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.calls.append(frame)
        await self.push_frame(frame, direction)


class OverridesWithoutDeclaring(PassesAudio):
    """Swallows the caller's audio: the inherited declaration must not hold for it."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await FrameProcessor.process_frame(self, frame, direction)
        self.calls.append(frame)
        if not isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)


class Observer:
    def __init__(self) -> None:
        self.hops: list[tuple[str, str]] = []

    def on_push_frame(
        self, src: FrameProcessor, dst: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None:
        if isinstance(frame, InputAudioRawFrame):
            self.hops.append((src.name, dst.name))


def audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(bytes(320), 8000)


def set_up(*processors: FrameProcessor) -> None:
    """Link in a line and set (no) observers, as a pipeline's setup does."""
    for first, second in zip(processors, processors[1:], strict=False):
        first.link(second)
    for processor in processors:
        processor.set_observers(())


async def test_audio_steps_over_pass_through_processors_and_arrives_in_order() -> None:
    source, a, b, end = Seen(), PassesAudio(), PassesAudio(), Seen()
    set_up(source, a, b, end)
    frames = [audio() for _ in range(3)]
    for frame in frames:
        await source.push_frame(frame)
    assert end.seen == frames
    assert a.calls == [] and b.calls == []


async def test_other_frames_and_subclassed_audio_still_visit_every_processor() -> None:
    source, a, end = Seen(), PassesAudio(), Seen()
    set_up(source, a, end)
    started = UserStartedSpeakingFrame()
    user_audio = UserAudioRawFrame(bytes(320), 8000)
    await source.push_frame(started)
    await source.push_frame(user_audio)
    assert a.calls == [started, user_audio]
    assert end.seen == [started, user_audio]


async def test_upstream_audio_is_not_skipped() -> None:
    start, a, end = Seen(), PassesAudio(), Seen()
    set_up(start, a, end)
    frame = audio()
    await end.push_frame(frame, FrameDirection.UPSTREAM)
    assert a.calls == [frame]
    assert start.seen == [frame]


async def test_a_subclass_that_overrides_process_frame_without_declaring_is_called() -> None:
    source, sub, end = Seen(), OverridesWithoutDeclaring(), Seen()
    set_up(source, sub, end)
    await source.push_frame(audio())
    assert len(sub.calls) == 1
    assert end.seen == []  # this subclass swallows it, and the skip must not go around that


async def test_with_observers_every_hop_is_taken_and_observed() -> None:
    source, a, end = Seen(), PassesAudio(), Seen()
    set_up(source, a, end)
    observer = Observer()
    for processor in (source, a, end):
        processor.set_observers([observer])
    await source.push_frame(audio())
    assert len(a.calls) == 1
    assert observer.hops == [(source.name, a.name), (a.name, end.name)]


async def test_a_paused_pass_through_processor_holds_the_audio() -> None:
    source, a, end = Seen(), PassesAudio(), Seen()
    set_up(source, a, end)
    frame = audio()
    await a.pause_processing_system_frames()
    await source.push_frame(frame)
    assert end.seen == []
    await a.resume_processing_system_frames()
    assert a.calls == [frame] and end.seen == [frame]


async def test_an_event_handler_on_the_processor_turns_the_skip_off() -> None:
    source, a, end = Seen(), PassesAudio(), Seen()
    set_up(source, a, end)
    pushed: list[Frame] = []

    async def before_push(processor: FrameProcessor, frame: Frame) -> None:
        pushed.append(frame)

    a.add_event_handler("on_before_push_frame", before_push)
    frame = audio()
    await source.push_frame(frame)
    await a.wait_for_event_handlers(timeout=1.0)
    assert a.calls == [frame] and pushed == [frame]


async def test_the_end_of_the_line_drops_it_quietly() -> None:
    source, a = Seen(), PassesAudio()
    set_up(source, a)
    await source.push_frame(audio())
    assert a.calls == []


async def test_before_setup_nothing_is_skipped() -> None:
    source, a, end = Seen(), PassesAudio(), Seen()
    source.link(a)
    a.link(end)
    await source.push_frame(audio())
    assert len(a.calls) == 1 and len(end.seen) == 1


def test_the_pipeline_stages_that_only_pass_audio_declare_it() -> None:
    context = OpenAILLMContext([])
    llm = OpenAILLMService(api_key="k", base_url="http://127.0.0.1:9", model="m")
    tts = CartesiaTTSService(api_key="k", voice_id="v", url="ws://127.0.0.1:9")
    output = BaseOutputTransport.__new__(BaseOutputTransport)
    for processor_type in (
        type(LLMUserContextAggregator(context)),
        type(LLMAssistantContextAggregator(context)),
        type(llm),
        type(tts),
        type(output),
    ):
        assert processor_type._input_audio_bypass, processor_type


class NoVAD(VADAnalyzer):
    def num_frames_required(self) -> int:
        return 256

    def voice_confidence(self, buffer: bytes) -> float:
        return 0.0


def test_the_universal_user_aggregator_keeps_audio_it_analyses() -> None:
    plain = LLMUserAggregator(LLMContext())
    plain.set_observers(())
    assert plain._skip_input_audio
    with_vad = LLMUserAggregator(LLMContext(), params=LLMUserAggregatorParams(vad_analyzer=NoVAD()))
    with_vad.set_observers(())
    assert not with_vad._skip_input_audio
