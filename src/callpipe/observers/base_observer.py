"""Pipecat 1.x observers: ``BaseObserver`` with async hooks fed ``FramePushed``/``FrameProcessed``.

Attach observers to a worker (``PipelineWorker(..., observers=[...])`` or
``worker.add_observer(o)``). The worker hands them events through one proxy with a queue and a
task per observer, so a slow observer never holds up audio; with no observer attached the
pipeline does no observer work at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from callpipe.frames.frames import Frame
from callpipe.processors.base_object import BaseObject

if TYPE_CHECKING:
    from callpipe.processors.frame_processor import FrameDirection, FrameProcessor


@dataclass(slots=True)
class FramePushed:
    """``source`` pushed ``frame`` to ``destination``; ``timestamp`` in ns of the pipeline clock.

    ``first_push`` is True for the first hop of a frame (every processor that passes a frame on
    pushes it again).
    """

    source: FrameProcessor
    destination: FrameProcessor
    frame: Frame
    direction: FrameDirection
    timestamp: int
    first_push: bool = True


@dataclass(slots=True)
class FrameProcessed:
    """``processor`` is about to process ``frame``; ``timestamp`` in ns of the pipeline clock."""

    processor: FrameProcessor
    frame: Frame
    direction: FrameDirection
    timestamp: int


@dataclass(slots=True)
class ProcessorSetUp:
    """The worker set ``processor`` up between ``started_at_ns`` and ``finished_at_ns``
    (pipeline clock, ns since the worker started). Only sent to observers that override
    :meth:`BaseObserver.on_processor_setup`."""

    processor: FrameProcessor
    started_at_ns: int
    finished_at_ns: int


class BaseObserver(BaseObject):
    """Override the hooks you need; each runs in the observer's own task, in event order.

    ``observe_every_push=False``: ``on_push_frame`` sees only a frame's first push (for
    observers reporting the moment a frame happened, not its path).
    """

    def __init__(self, *, observe_every_push: bool = True, name: str | None = None, **kwargs: Any):
        super().__init__(name=name)
        self._observe_every_push = observe_every_push

    @property
    def observe_every_push(self) -> bool:
        return self._observe_every_push

    async def on_push_frame(self, data: FramePushed) -> None:
        """A frame moved from one processor to the next."""

    async def on_process_frame(self, data: FrameProcessed) -> None:
        """A processor is about to process a frame."""

    async def on_processor_setup(self, data: ProcessorSetUp) -> None:
        """The worker finished setting a processor up (before the StartFrame)."""

    async def on_pipeline_started(self) -> None:
        """The StartFrame has gone through every processor."""
