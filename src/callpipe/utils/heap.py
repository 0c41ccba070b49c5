"""Short full garbage collections with many calls in one process: freeze the startup heap.

CPython's cyclic collector stops the whole process while it traverses every tracked object of
the generation it collects, and a full (generation 2) collection traverses them all: the
modules, the app and every live call. At 100 full-pipeline calls on one event loop that is
about 190 000 objects and 60–130 ms (measured here), during which no call sends audio, so
every call that is speaking drops out at the same moment. About 75 000 of those objects were
made at startup (imports, the app, the models) and live as long as the process.

:func:`freeze_startup_heap` collects once and then ``gc.freeze()``\\ s what is left, so later
collections skip it: the full collections of that benchmark became 25–35 ms. Frozen objects are
still freed by reference counting; only a reference cycle among them is never collected, which
is why this runs once, before the calls, and not later. The runner calls it when it creates the
app; a transport calls it when it is constructed (a no-op after the first time), so code written
as the spec shows gets it too. ``CALLPIPE_GC_FREEZE=0`` turns it off.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time

__all__ = ["FREEZE_ENV", "freeze_startup_heap"]

logger = logging.getLogger(__name__)

FREEZE_ENV = "CALLPIPE_GC_FREEZE"

_lock = threading.Lock()
_done = False


def freeze_startup_heap() -> bool:
    """Collect, then freeze the surviving objects (once per process); True if it froze now."""
    global _done
    if _done:
        return False
    with _lock:
        if _done:
            return False
        _done = True
        if os.environ.get(FREEZE_ENV, "1").strip().lower() in {"0", "false", "no", "off"}:
            return False
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        logger.debug(
            "froze %d startup objects out of the garbage collector's scans (%.0f ms)",
            gc.get_freeze_count(),
            (time.perf_counter() - started) * 1000,
        )
        return True
