"""push_frame delivers system frames inline exactly as queue_frame → _process_safely would.

The hop is shortened (two coroutine calls fewer per processor, for the caller's audio that
crosses every processor 50 times a second), so these tests pin the cases where the long way
must still be taken: an overridden ``queue_frame``, paused system frames, a cancelled
processor, observers and process events, and errors reported upstream.
"""

from __future__ import annotations

from callpipe.frames.frames import (
    CancelFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


class Seen(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Frame, FrameDirection]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.seen.append((frame, direction))
        await self.push_frame(frame, direction)


class Raises(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            raise ValueError("bad audio")
        await self.push_frame(frame, direction)


class CountsQueued(Seen):
    def __init__(self) -> None:
        super().__init__()
        self.queued = 0

    async def queue_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        self.queued += 1
        await super().queue_frame(frame, direction)


def audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(bytes(320), 8000)


def chain(*processors: FrameProcessor) -> None:
    for first, second in zip(processors, processors[1:], strict=False):
        first.link(second)


async def test_system_frame_is_processed_by_every_hop_in_order() -> None:
    source, a, b = Seen(), Seen(), Seen()
    chain(source, a, b)
    frames = [audio() for _ in range(3)]
    for frame in frames:
        await source.push_frame(frame)
    assert [f for f, _ in a.seen] == frames
    assert [f for f, _ in b.seen] == frames


async def test_an_overridden_queue_frame_is_still_called() -> None:
    source, target = Seen(), CountsQueued()
    chain(source, target)
    await source.push_frame(audio())
    assert target.queued == 1
    assert len(target.seen) == 1


async def test_paused_system_frames_are_held_until_resumed() -> None:
    source, target = Seen(), Seen()
    chain(source, target)
    await target.pause_processing_system_frames()
    first = audio()
    await source.push_frame(first)
    assert target.seen == []
    await target.resume_processing_system_frames()
    assert [f for f, _ in target.seen] == [first]


async def test_a_cancelled_processor_drops_what_is_pushed_to_it() -> None:
    source, target = Seen(), Seen()
    chain(source, target)
    await source.push_frame(CancelFrame())
    await source.push_frame(audio())
    assert [type(f) for f, _ in target.seen] == [CancelFrame]


async def test_process_events_and_observers_still_see_inline_frames() -> None:
    source, target = Seen(), Seen()
    chain(source, target)
    before: list[Frame] = []
    observed: list[Frame] = []

    @target.event_handler("on_before_process_frame")
    async def on_before(processor: FrameProcessor, frame: Frame) -> None:
        before.append(frame)

    class Observer:
        def on_process_frame(
            self, processor: FrameProcessor, frame: Frame, direction: FrameDirection
        ) -> None:
            observed.append(frame)

    first = audio()
    await source.push_frame(first)
    assert before == [first]
    target.set_observers((), (Observer(),))
    second = audio()
    await source.push_frame(second)
    assert observed == [second]


async def test_an_exception_is_reported_upstream_by_the_failing_processor() -> None:
    source, failing, after = Seen(), Raises(), Seen()
    chain(source, failing, after)
    await source.push_frame(audio())  # must not raise into the pusher
    assert after.seen == []
    errors = [f for f, d in source.seen if isinstance(f, ErrorFrame)]
    assert len(errors) == 1
    assert errors[0].processor is failing and errors[0].unhandled
    assert "bad audio" in errors[0].error
    # Pipecat 1.14's ErrorFrame.exception: the exception itself, for an error handler
    assert isinstance(errors[0].exception, Exception) and "bad audio" in str(errors[0].exception)


async def test_push_error_keeps_the_exception_it_was_given() -> None:
    source, reporter = Seen(), Seen()
    chain(source, reporter)
    cause = TimeoutError("provider too slow")
    await reporter.push_error("could not reach the provider", exception=cause)
    errors = [f for f, d in source.seen if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and errors[0].exception is cause
