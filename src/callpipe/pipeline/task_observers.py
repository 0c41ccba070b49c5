"""Observers that every :class:`~callpipe.pipeline.task.PipelineTask` built in a context adds.

Lets whoever serves a call (the runner keeping a call record, a tracer) watch the call's
pipeline without the bot's code passing anything: set :data:`TASK_OBSERVERS` around ``bot()``.
Empty by default, so a task adds nothing and the per-frame path is unchanged.
"""

from __future__ import annotations

from contextvars import ContextVar

from callpipe.processors.frame_processor import FrameObserver

TASK_OBSERVERS: ContextVar[tuple[FrameObserver, ...]] = ContextVar(
    "callpipe_task_observers", default=()
)
