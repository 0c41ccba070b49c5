"""Public test kit: virtual clock, pipeline test helpers, call simulator and provider fakes."""

from callpipe.testing.pipeline import run_test
from callpipe.testing.simulator import (
    CallResult,
    CallScript,
    NetworkFaults,
    SimulatedCall,
    run_calls,
    run_script,
)
from callpipe.testing.virtual_clock import VirtualTimeLoop, run_virtual

__all__ = [
    "CallResult",
    "CallScript",
    "NetworkFaults",
    "SimulatedCall",
    "VirtualTimeLoop",
    "run_calls",
    "run_script",
    "run_test",
    "run_virtual",
]
