"""The flat public API is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import subprocess
import sys

import callpipe

EXPECTED = {
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
}


def test_all_is_pinned() -> None:
    assert set(callpipe.__all__) == EXPECTED


def test_every_exported_name_resolves() -> None:
    for name in callpipe.__all__:
        assert getattr(callpipe, name) is not None, name


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, sys; import callpipe; "
        "assert not logging.getLogger().handlers, 'root logging configured'; "
        "assert 'fastapi' not in sys.modules, 'heavy import at package import'; "
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
    assert out.stderr == ""
