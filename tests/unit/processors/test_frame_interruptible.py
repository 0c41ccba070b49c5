"""Per-frame ``interruptible`` (Pipecat 1.14): set on one frame, read when an interruption
empties a queue; the class-level ``UNINTERRUPTIBLE`` / ``UninterruptibleFrame`` still apply."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from callpipe.frames.frames import (
    DataFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    TextFrame,
    TTSSpeakFrame,
    UninterruptibleFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.worker import PipelineWorker

from ..pipeline.helpers import Recorder, Slow


@dataclass(slots=True)
class Kept(DataFrame, UninterruptibleFrame):
    label: str = ""


@dataclass
class PipecatStyleKept(DataFrame):
    """Declared the way Pipecat 1.14 recommends instead of the mixin."""

    label: str = ""
    interruptible: bool = field(default=False, init=False)


async def interrupt_while_busy(frames: list[Frame]) -> list[Frame]:
    """Queue ``frames`` behind a slow one, interrupt, and return what reached the end."""
    slow = Slow(delay=0.2)
    rec = Recorder()
    worker = PipelineWorker(Pipeline([slow, rec]), idle_timeout_secs=None)
    task = asyncio.create_task(worker.run())
    await worker.queue_frames([TextFrame("busy"), *frames])
    await slow.gate.wait()
    await worker.queue_frame(InterruptionFrame())
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 5)
    return rec.seen


def spoken(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSSpeakFrame)]


def test_interruptible_defaults_follow_the_class_and_can_be_set_per_frame() -> None:
    speak = TTSSpeakFrame("hi")
    assert speak.interruptible
    speak.interruptible = False
    assert not speak.interruptible
    assert TTSSpeakFrame("other").interruptible  # one frame, not the class
    assert not TTSSpeakFrame.UNINTERRUPTIBLE
    end = EndFrame()
    assert not end.interruptible
    end.interruptible = True
    assert end.interruptible and not EndFrame().interruptible
    # Not a dataclass field: the frame's fields and repr are as before.
    assert "interruptible" not in {f.name for f in dataclasses.fields(speak)}
    assert "interruptible" not in repr(speak)


async def test_a_speak_frame_marked_uninterruptible_survives_an_interruption() -> None:
    marked = TTSSpeakFrame("please hold")
    marked.interruptible = False
    seen = await interrupt_while_busy([TTSSpeakFrame("dropped"), marked])
    assert spoken(seen) == ["please hold"]


async def test_a_frame_of_an_uninterruptible_class_can_be_let_go() -> None:
    released = Kept(label="released")
    released.interruptible = True
    seen = await interrupt_while_busy([Kept(label="kept"), released])
    assert [f.label for f in seen if isinstance(f, Kept)] == ["kept"]


async def test_pipecat_s_field_declaration_keeps_the_frame() -> None:
    assert PipecatStyleKept.UNINTERRUPTIBLE and not PipecatStyleKept().interruptible
    seen = await interrupt_while_busy([TextFrame("dropped"), PipecatStyleKept(label="kept")])
    assert [f.label for f in seen if isinstance(f, PipecatStyleKept)] == ["kept"]
    assert "dropped" not in [f.text for f in seen if isinstance(f, TextFrame)]


async def test_the_frame_in_progress_marked_uninterruptible_is_finished() -> None:
    slow = Slow(delay=0.2)
    rec = Recorder()
    worker = PipelineWorker(Pipeline([slow, rec]), idle_timeout_secs=None)
    task = asyncio.create_task(worker.run())
    busy = TextFrame("busy")
    busy.interruptible = False
    await worker.queue_frames([busy, TextFrame("dropped")])
    await slow.gate.wait()
    await worker.queue_frame(InterruptionFrame())
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(task, 5)
    assert slow.finished == ["busy"]
    assert [f.text for f in rec.seen if isinstance(f, TextFrame)] == ["busy"]
