"""Pipecat 1.x path; the runner lives with the engine in :mod:`callpipe.pipeline.runner`."""

from callpipe.pipeline.runner import PipelineRunner, WorkerRunner

__all__ = ["PipelineRunner", "WorkerRunner"]
