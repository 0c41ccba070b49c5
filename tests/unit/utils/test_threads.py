"""``model_threads``: one named pool per process, made on first use."""

from __future__ import annotations

import threading

from callpipe.utils.threads import model_threads


def test_a_name_gives_one_pool_whose_threads_carry_it() -> None:
    pool = model_threads("test-pool", 1)
    assert model_threads("test-pool", 4) is pool  # later sizes do not make a second pool
    assert model_threads("test-pool-2", 1) is not pool
    assert pool.submit(lambda: threading.current_thread().name).result(5).startswith("test-pool")
