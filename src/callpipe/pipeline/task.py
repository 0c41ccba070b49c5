"""The spec's names for the pipeline worker: ``PipelineTask`` and ``PipelineParams``.

Pipecat 1.x renamed the task to :class:`~callpipe.pipeline.worker.PipelineWorker`; both names
are public contracts here, so ``PipelineTask`` is the worker under its older name (same
constructor, same events, plus ``on_pipeline_ended``/``on_pipeline_cancelled``).
"""

from __future__ import annotations

from callpipe.pipeline.worker import (
    DEFAULT_IDLE_FRAMES,
    PipelineParams,
    PipelineTaskParams,
    PipelineWorker,
    ProcessorUnusablePolicy,
)

__all__ = [
    "DEFAULT_IDLE_FRAMES",
    "PipelineParams",
    "PipelineTask",
    "PipelineTaskParams",
    "PipelineWorker",
    "ProcessorUnusablePolicy",
]


class PipelineTask(PipelineWorker):
    """The spec's name for :class:`PipelineWorker` (kept, not deprecated: spec code uses it)."""
