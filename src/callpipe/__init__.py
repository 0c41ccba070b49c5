"""callpipe: real-time voice-AI phone bots.

The flat API below is the curated entry point: the names most bots need, kept stable.
The Pipecat-compatible module paths (``callpipe.frames.frames``, ``callpipe.pipeline.task``,
``callpipe.transports.network.fastapi_websocket`` ...) are the drop-in contract.
Importing callpipe has no side effects; heavy parts (the FastAPI transport) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from callpipe.errors import (
    CallControlError,
    CallpipeError,
    ConfigurationError,
    InvalidStateError,
    MissingDependencyError,
    ProtocolError,
)
from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    OutputAudioRawFrame,
    StartFrame,
    TextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.parallel_pipeline import ParallelPipeline
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner, WorkerRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor

__version__ = "0.1.0"

_LAZY = {
    "FastAPIWebsocketParams": "callpipe.transports.network.fastapi_websocket",
    "FastAPIWebsocketTransport": "callpipe.transports.network.fastapi_websocket",
}

__all__ = [
    "BotStartedSpeakingFrame",
    "BotStoppedSpeakingFrame",
    "CallControlError",
    "CallpipeError",
    "CancelFrame",
    "ConfigurationError",
    "EndFrame",
    "ErrorFrame",
    "FastAPIWebsocketParams",
    "FastAPIWebsocketTransport",
    "Frame",
    "FrameDirection",
    "FrameProcessor",
    "InputAudioRawFrame",
    "InputDTMFFrame",
    "InterruptionFrame",
    "InvalidStateError",
    "KeypadEntry",
    "MissingDependencyError",
    "OutputAudioRawFrame",
    "ParallelPipeline",
    "Pipeline",
    "PipelineParams",
    "PipelineRunner",
    "PipelineTask",
    "PipelineWorker",
    "WorkerRunner",
    "ProtocolError",
    "StartFrame",
    "TTSSpeakFrame",
    "TextFrame",
    "TranscriptionFrame",
    "UserStartedSpeakingFrame",
    "UserStoppedSpeakingFrame",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'callpipe' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
