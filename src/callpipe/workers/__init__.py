"""Pipecat 1.x path for the runner (``callpipe.workers.runner.WorkerRunner``)."""
