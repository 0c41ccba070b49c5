"""Process-wide worker threads for models, started on first use and shared by every call."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pools: dict[str, ThreadPoolExecutor] = {}


def model_threads(name: str, workers: int) -> ThreadPoolExecutor:
    """The process's pool called ``name`` (its threads are named after it), made on first use.

    ``workers`` counts only when the pool is made; later callers get the same pool.
    """
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        return pool
