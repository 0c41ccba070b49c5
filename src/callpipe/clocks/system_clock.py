"""SystemClock: Pipecat's monotonic clock, usable as callpipe's pipeline clock as well.

``get_time()`` is Pipecat's reading: nanoseconds of the system's monotonic clock since
``start()`` (0 before). The same object is also a :class:`callpipe.clock.Clock` (``now``,
``sleep``, ``sleep_until`` on event-loop time, as the default clock), so
``PipelineWorker(..., clock=SystemClock())`` works as in Pipecat.
"""

from __future__ import annotations

import time

from callpipe.clock import LoopClock
from callpipe.clocks.base_clock import BaseClock


class SystemClock(LoopClock, BaseClock):
    """Nanoseconds since :meth:`start` from ``get_time``; loop time from ``now``."""

    def __init__(self) -> None:
        self._started_ns: int | None = None

    def start(self) -> None:
        self._started_ns = time.monotonic_ns()

    def get_time(self) -> int:
        if self._started_ns is None:
            return 0
        return time.monotonic_ns() - self._started_ns
