"""``LocalSmartTurnAnalyzerV3``: the smart-turn v3 ONNX model, run locally with onnxruntime.

The model takes Whisper log-mel features of the last 8 s of the turn at 16 kHz
(:mod:`callpipe.audio.turn.smart_turn.whisper_features`) and returns the probability that the
speaker finished; above 0.5 is COMPLETE. Telephone audio (8 kHz) is resampled to 16 kHz first.

One ONNX session per (model file, ``cpu_count``) is shared by every analyzer in the process: the
first analyzer loads it (about 70 ms of CPU, 0.2 s), the hundredth just takes it. Sessions are
thread-safe. Loading inside the first call would stall every call on the event loop, so importing
this module starts loading the default model (as resolved then, one CPU) on a background thread:
a bot that imports at the top and constructs the analyzer per call finds it ready.
Where the weights come from: :mod:`callpipe.audio.turn.smart_turn.model_file`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr

from callpipe.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
from callpipe.audio.turn.smart_turn.model_file import resolve_model_path
from callpipe.audio.turn.smart_turn.whisper_features import SAMPLE_RATE, smart_turn_features
from callpipe.errors import MissingDependencyError

__all__ = ["LocalSmartTurnAnalyzerV3", "load_session"]

logger = logging.getLogger(__name__)

_sessions: dict[tuple[Path, int], Any] = {}
_sessions_lock = threading.Lock()


def load_session(path: Path, cpu_count: int = 1) -> Any:
    """The process-wide ONNX session for ``path`` (loaded on first request)."""
    key = (path.resolve(), cpu_count)
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise MissingDependencyError("onnxruntime (smart-turn)", "smart-turn") from exc
            options = ort.SessionOptions()
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            options.inter_op_num_threads = 1
            options.intra_op_num_threads = cpu_count
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(
                str(key[0]), sess_options=options, providers=["CPUExecutionProvider"]
            )
            _sessions[key] = session
            logger.debug("smart-turn model loaded from %s", key[0])
        return session


def _preload_default() -> None:
    try:
        load_session(resolve_model_path())
    except Exception as exc:  # absent or unloadable: the constructor will say why, loudly
        logger.debug("smart-turn model not preloaded: %s", exc)


threading.Thread(target=_preload_default, name="smart-turn-preload", daemon=True).start()


class LocalSmartTurnAnalyzerV3(BaseSmartTurn):
    """Pipecat-compatible constructor: ``smart_turn_model_path``, ``cpu_count``, ``sample_rate``,
    ``params`` (:class:`~callpipe.audio.turn.smart_turn.base_smart_turn.SmartTurnParams`).

    Without ``smart_turn_model_path`` the model is looked up as
    :func:`~callpipe.audio.turn.smart_turn.model_file.resolve_model_path` says; a missing file
    raises an error naming the fetch command.
    """

    def __init__(
        self,
        *,
        smart_turn_model_path: str | os.PathLike[str] | None = None,
        cpu_count: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._session = load_session(resolve_model_path(smart_turn_model_path), cpu_count)

    def _predict_endpoint(self, audio_array: npt.NDArray[np.float32], rate: int) -> dict[str, Any]:
        if rate != SAMPLE_RATE:
            audio_array = np.asarray(
                soxr.resample(audio_array, rate, SAMPLE_RATE, quality="HQ"), dtype=np.float32
            )
        features = smart_turn_features(audio_array)
        outputs = self._session.run(None, {"input_features": features})
        probability = float(np.asarray(outputs[0]).reshape(-1)[0])
        return {"prediction": 1 if probability > 0.5 else 0, "probability": probability}
