"""The call simulator: test a phone bot without a phone, a provider account or the internet.

:class:`SimulatedCall` impersonates a provider's media stream on the bot's WebSocket in real
time; :func:`run_script` and :func:`run_calls` drive scripted calls (the ``callpipe call`` CLI);
:class:`CallResult` holds both recorded sides, the event timeline and per-turn latency.
"""

from callpipe.testing.simulator.call import CallEnded, NetworkFaults, SimulatedCall
from callpipe.testing.simulator.dialects import (
    DIALECTS,
    CallIdentity,
    Dialect,
    ServerEvent,
    make_dialect,
)
from callpipe.testing.simulator.result import CallEvent, CallResult, Turn, summarize_latencies
from callpipe.testing.simulator.script import CallScript, run_calls, run_script
from callpipe.testing.simulator.sources import AudioSource, load_audio, read_wav

__all__ = [
    "DIALECTS",
    "AudioSource",
    "CallEnded",
    "CallEvent",
    "CallIdentity",
    "CallResult",
    "CallScript",
    "Dialect",
    "NetworkFaults",
    "ServerEvent",
    "SimulatedCall",
    "Turn",
    "load_audio",
    "make_dialect",
    "read_wav",
    "run_calls",
    "run_script",
    "summarize_latencies",
]
