"""Public test kit: virtual clock, pipeline test helpers, call simulator, provider fakes and
in-memory WebSockets for driving a transport without a server."""

from callpipe.testing.memory_socket import MemoryWebSocket, TwilioCallerSocket
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
    "MemoryWebSocket",
    "NetworkFaults",
    "SimulatedCall",
    "TwilioCallerSocket",
    "VirtualTimeLoop",
    "run_calls",
    "run_script",
    "run_test",
    "run_virtual",
]
