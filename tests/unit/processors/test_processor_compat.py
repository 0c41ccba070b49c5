"""Pipecat 1.x processor API: broadcast, events, pausing, uninterruptible frames, filters, helpers,
and the engine fixes (ParallelPipeline start order, odd-length PCM)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from callpipe.frames.frames import (
    DataFrame,
    EndFrame,
    Frame,
    FrameProcessorPauseFrame,
    FrameProcessorResumeFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    OutputAudioRawFrame,
    StartFrame,
    TextFrame,
    UninterruptibleFrame,
)
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.consumer_processor import ConsumerProcessor
from callpipe.processors.filters.frame_filter import FrameFilter
from callpipe.processors.filters.function_filter import FunctionFilter
from callpipe.processors.filters.identity_filter import IdentityFilter
from callpipe.processors.filters.null_filter import NullFilter
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.processors.producer_processor import ProducerProcessor
from callpipe.testing import run_test
from callpipe.transcriptions.language import Language, resolve_language
from callpipe.utils.sync.event_notifier import EventNotifier

from ..pipeline.helpers import Recorder, Slow


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TextFrame)]


async def run(processors: list[FrameProcessor], frames: list[Frame]) -> None:
    worker = PipelineWorker(Pipeline(processors), idle_timeout_secs=None)
    await worker.queue_frames([*frames, EndFrame()])
    await asyncio.wait_for(worker.run(), 5)


class OnText(FrameProcessor):
    """Runs ``action(self)`` when it sees TextFrame('go'); passes everything else."""

    def __init__(self, action) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.action = action

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame) and frame.text == "go":
            await self.action(self)
        else:
            await self.push_frame(frame, direction)


# ---------------------------------------------------------------------- broadcasting


async def test_broadcast_frame_sends_twins_both_ways() -> None:
    up, down = Recorder(), Recorder()
    middle = OnText(lambda p: p.broadcast_frame(TextFrame, text="hi"))
    await run([up, middle, down], [TextFrame("go")])
    (sent_down,) = [f for f in down.seen if isinstance(f, TextFrame)]
    (sent_up,) = [f for f in up.seen if isinstance(f, TextFrame) and f.text == "hi"]
    assert sent_down.text == sent_up.text == "hi"
    assert sent_down is not sent_up
    assert sent_down.broadcast_sibling_id == sent_up.id
    assert sent_up.broadcast_sibling_id == sent_down.id


async def test_broadcast_frame_instance_copies_fields_with_fresh_ids() -> None:
    up, down = Recorder(), Recorder()
    original = InputDTMFFrame(KeypadEntry.SEVEN)
    middle = OnText(lambda p: p.broadcast_frame_instance(original))
    await run([up, middle, down], [TextFrame("go")])
    got_down = [f for f in down.seen if isinstance(f, InputDTMFFrame)]
    got_up = [f for f in up.seen if isinstance(f, InputDTMFFrame)]
    assert [f.button for f in got_down + got_up] == [KeypadEntry.SEVEN] * 2
    assert original.id not in {got_down[0].id, got_up[0].id}


async def test_broadcast_interruption_reaches_both_neighbours() -> None:
    up, down = Recorder(), Recorder()
    await run([up, OnText(lambda p: p.broadcast_interruption()), down], [TextFrame("go")])
    assert any(isinstance(f, InterruptionFrame) for f in down.seen)
    assert any(isinstance(f, InterruptionFrame) for f in up.seen)


# ---------------------------------------------------------------------- events


async def test_before_and_after_events_wrap_process_and_push() -> None:
    rec = Recorder()
    order: list[str] = []

    @rec.event_handler("on_before_process_frame")
    async def before_process(p: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            order.append("before_process")

    @rec.event_handler("on_after_process_frame")
    async def after_process(p: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            order.append("after_process")

    @rec.event_handler("on_before_push_frame")
    async def before_push(p: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            order.append("before_push")

    @rec.event_handler("on_after_push_frame")
    async def after_push(p: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            order.append("after_push")

    await run([rec], [TextFrame("x")])
    assert order == ["before_process", "before_push", "after_push", "after_process"]


async def test_on_error_fires_for_reported_errors_and_process_frame_exceptions() -> None:
    from callpipe.frames.frames import ErrorFrame

    class Boom(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame) and frame.text == "boom":
                raise RuntimeError("kaput")
            if isinstance(frame, TextFrame) and frame.text == "report":
                await self.push_error("bad input", exception=ValueError("v"))
                return
            await self.push_frame(frame, direction)

    up = Recorder()
    boom = Boom()
    seen: list[tuple[FrameProcessor, str]] = []

    @boom.event_handler("on_error")
    async def on_error(processor: FrameProcessor, error: ErrorFrame) -> None:
        seen.append((processor, error.error))

    await run([up, boom], [TextFrame("report"), TextFrame("boom"), TextFrame("fine")])
    assert [p for p, _ in seen] == [boom, boom]
    assert "bad input" in seen[0][1] and "kaput" in seen[1][1]
    # The frames still went upstream, as before.
    assert len([f for f in up.seen if isinstance(f, ErrorFrame)]) == 2
    # A processor the error only passes through does not fire it.
    passed: list[ErrorFrame] = []
    up.add_event_handler("on_error", lambda p, e: passed.append(e))
    await run([up, Boom()], [TextFrame("boom")])
    assert passed == []


async def test_push_error_takes_pipecat_s_error_msg_keywords() -> None:
    from callpipe.frames.frames import ErrorFrame
    from callpipe.utils.errors import ErrorCategory

    class Reporter(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TextFrame):
                await self.push_error(
                    error_msg="provider said no",
                    exception=ValueError("429"),
                    category=ErrorCategory.RATE_LIMIT,
                )
                return
            await self.push_frame(frame, direction)

    up = Recorder()
    await run([up, Reporter()], [TextFrame("x")])
    [error] = [f for f in up.seen if isinstance(f, ErrorFrame)]
    # As in Pipecat: the text as given, the exception and the category beside it.
    assert error.error == "provider said no"
    assert isinstance(error.exception, ValueError) and error.category is ErrorCategory.RATE_LIMIT
    with pytest.raises(TypeError, match="error_msg"):
        await Reporter().push_error()


async def test_remove_event_handler() -> None:
    rec = Recorder()
    calls: list[str] = []

    def first(p: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            calls.append("first")
            p.remove_event_handler("on_before_process_frame", first)  # during dispatch

    def second(p: FrameProcessor, frame: Frame) -> None:
        if isinstance(frame, TextFrame):
            calls.append("second")

    rec.add_event_handler("on_before_process_frame", first)
    rec.add_event_handler("on_before_process_frame", second)
    await run([rec], [TextFrame("a"), TextFrame("b")])
    assert calls == ["first", "second", "second"]
    rec.remove_event_handler("on_before_process_frame", second)
    assert not rec.has_event_handlers("on_before_process_frame")
    assert not rec._process_hooks  # back on the fast path
    rec.remove_event_handler("on_before_process_frame", second)  # not there: no-op
    rec.remove_event_handler("on_no_such_event", second)  # unknown event: no-op


# ---------------------------------------------------------------------- uninterruptible


@dataclass(slots=True)
class Keep(DataFrame, UninterruptibleFrame):
    label: str = ""


def test_uninterruptible_mixin_marks_the_class() -> None:
    assert Keep.UNINTERRUPTIBLE and not Keep().interruptible
    assert TextFrame("x").interruptible


async def test_interruption_keeps_uninterruptible_frames_in_the_queue() -> None:
    slow = Slow(delay=0.2)
    rec = Recorder()
    worker = PipelineWorker(Pipeline([slow, rec]), idle_timeout_secs=None)
    task = asyncio.create_task(worker.run())
    await worker.queue_frames([TextFrame("busy"), TextFrame("dropped"), Keep(label="kept")])
    await slow.gate.wait()
    await worker.queue_frame(InterruptionFrame())
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 5)
    assert [f.label for f in rec.seen if isinstance(f, Keep)] == ["kept"]
    assert "dropped" not in texts(rec.seen)


# ---------------------------------------------------------------------- pausing


async def test_pause_frame_holds_the_queue_until_resume() -> None:
    rec = Recorder()
    gate = Recorder()
    worker = PipelineWorker(Pipeline([gate, rec]), idle_timeout_secs=None)
    task = asyncio.create_task(worker.run())
    await worker.queue_frames([FrameProcessorPauseFrame(processor=gate), TextFrame("held")])
    await asyncio.sleep(0.1)
    assert texts(rec.seen) == []
    await worker.queue_frame(FrameProcessorResumeFrame(processor=gate))
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 5)
    assert texts(rec.seen) == ["held"]


async def test_pause_until_ready_holds_system_frames_too_then_releases_in_order() -> None:
    ready = asyncio.Event()

    class Connecting(Recorder):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            if isinstance(frame, StartFrame):
                await super().process_frame(frame, direction)
                await self.pause_processing_all_frames_until(ready.wait, timeout=5)
                return
            await super().process_frame(frame, direction)

    first, rec = Connecting(), Recorder()
    worker = PipelineWorker(Pipeline([first, rec]), idle_timeout_secs=None)
    task = asyncio.create_task(worker.run())
    await worker.queue_frames([TextFrame("a"), InputDTMFFrame(KeypadEntry.ONE), TextFrame("b")])
    await asyncio.sleep(0.1)
    assert not any(isinstance(f, TextFrame | InputDTMFFrame) for f in rec.seen)
    ready.set()
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 5)
    assert texts(rec.seen) == ["a", "b"]
    assert any(isinstance(f, InputDTMFFrame) for f in rec.seen)


async def test_pause_until_ready_lifts_itself_after_the_timeout() -> None:
    class NeverReady(Recorder):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame):
                await self.pause_processing_all_frames_until(asyncio.Event().wait, timeout=0.1)

    rec = Recorder()
    await run([NeverReady(), rec], [TextFrame("late")])
    assert texts(rec.seen) == ["late"]


# ---------------------------------------------------------------------- filters, helpers


async def test_frame_filter_keeps_types_and_lifecycle() -> None:
    audio = OutputAudioRawFrame(b"\0\0", 8000)
    down, _ = await run_test(FrameFilter((TextFrame,)), [TextFrame("t"), audio])
    assert texts(down) == ["t"]
    assert not any(isinstance(f, OutputAudioRawFrame) for f in down)
    assert isinstance(down[-1], EndFrame)


async def test_function_filter_applies_in_its_direction_only() -> None:
    async def only_yes(frame: Frame) -> bool:
        return isinstance(frame, TextFrame) and frame.text in ("yes", "go")

    down, _ = await run_test(FunctionFilter(only_yes), [TextFrame("yes"), TextFrame("no")])
    assert texts(down) == ["yes"]
    rec = Recorder()
    back = OnText(lambda p: p.push_frame(TextFrame("no"), FrameDirection.UPSTREAM))
    await run([rec, FunctionFilter(only_yes), back], [TextFrame("go")])
    assert "no" in texts(rec.seen)  # upstream frames are not filtered by a downstream filter


async def test_identity_and_null_filters() -> None:
    down, _ = await run_test(IdentityFilter(), [TextFrame("a")])
    assert texts(down) == ["a"]
    down, _ = await run_test(NullFilter(), [TextFrame("a")])
    assert texts(down) == [] and isinstance(down[-1], EndFrame)


async def test_producer_feeds_a_consumer_in_another_branch() -> None:
    async def is_text(frame: Frame) -> bool:
        return isinstance(frame, TextFrame)

    async def shout(frame: Frame) -> Frame:
        assert isinstance(frame, TextFrame)
        return TextFrame(frame.text.upper())

    producer = ProducerProcessor(filter=is_text, passthrough=False)
    consumer = ConsumerProcessor(producer=producer, transformer=shout)
    rec = Recorder()
    worker = PipelineWorker(
        Pipeline([ParallelPipeline([producer], [consumer]), rec]), idle_timeout_secs=None
    )
    task = asyncio.create_task(worker.run())
    await worker.queue_frame(TextFrame("hello"))
    for _ in range(50):
        if "HELLO" in texts(rec.seen):
            break
        await asyncio.sleep(0.02)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 5)
    assert texts(rec.seen).count("HELLO") == 1
    assert "hello" in texts(rec.seen)  # the consumer branch passes the original along


async def test_event_notifier_wakes_once_per_notify() -> None:
    notifier = EventNotifier()
    await notifier.notify()
    await asyncio.wait_for(notifier.wait(), 1)  # a notify before the wait is not lost
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(notifier.wait(), 0.05)


def test_language_tags_and_resolution() -> None:
    assert Language.EN_US == "en-US" and Language("es-MX") is Language.ES_MX
    assert resolve_language(Language.EN_GB, {"en": "english"}) == "english"
    assert resolve_language(Language.FR_FR, {"fr-FR": "fr_fr"}) == "fr_fr"
    assert resolve_language(Language.DE_DE, {}, use_base_code=False) == "de-DE"


# ---------------------------------------------------------------------- engine fixes


async def test_parallel_branch_frames_never_overtake_the_start_frame() -> None:
    class GreetOnStart(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, StartFrame):
                await self.push_frame(InputDTMFFrame(KeypadEntry.ONE))  # system: inline
                await self.push_frame(TextFrame("hello"))

    order: list[str] = []

    class Watch(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame | TextFrame | InputDTMFFrame):
                order.append(type(frame).__name__)
            await self.push_frame(frame, direction)

    slow_start = Slow(delay=0)  # a second branch that passes its StartFrame later

    class LateStart(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame):
                await asyncio.sleep(0.05)
            await self.push_frame(frame, direction)

    await run([ParallelPipeline([GreetOnStart()], [LateStart(), slow_start]), Watch()], [])
    assert order == ["StartFrame", "InputDTMFFrame", "TextFrame"]


def test_odd_length_pcm_is_accepted_and_trimmed_to_whole_samples() -> None:
    frame = InputAudioRawFrame(audio=b"\x01\x02\x03", sample_rate=8000)
    assert frame.audio == b"\x01\x02" and frame.num_frames == 1
    stereo = OutputAudioRawFrame(audio=b"\0" * 7, sample_rate=8000, num_channels=2)
    assert len(stereo.audio) == 4 and stereo.num_frames == 1
    with pytest.raises(ValueError):
        InputAudioRawFrame(audio=b"\0\0", sample_rate=0)


def test_time_helpers_and_user_audio() -> None:
    from datetime import datetime

    from callpipe.frames.frames import UserAudioRawFrame
    from callpipe.utils.time import (
        nanoseconds_to_seconds,
        nanoseconds_to_str,
        seconds_to_nanoseconds,
        time_now_iso8601,
    )

    assert datetime.fromisoformat(time_now_iso8601()).tzinfo is not None
    assert seconds_to_nanoseconds(1.5) == 1_500_000_000
    assert nanoseconds_to_seconds(250_000_000) == 0.25
    assert nanoseconds_to_str(3_723_500_000_000) == "1:02:03.500000"
    frame = UserAudioRawFrame(audio=b"\0\0\0", sample_rate=8000, user_id="caller")
    assert isinstance(frame, InputAudioRawFrame) and frame.user_id == "caller"
    assert len(frame.audio) == 2


async def test_enable_direct_mode_processes_inline_in_order() -> None:
    plain = Recorder()
    inline = FrameProcessor(enable_direct_mode=True)
    assert inline.direct and not plain.direct
    down, _ = await run_test(
        IdentityFilter(enable_direct_mode=True), [TextFrame("a"), TextFrame("b")]
    )
    assert texts(down) == ["a", "b"]
