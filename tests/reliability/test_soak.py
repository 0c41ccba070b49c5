"""The soak harness (``soak.py``): a small run in the normal suite, the full run behind -m soak.

The small run still proves something: 10 sequential calls ended five different ways and 3 s of
6 concurrent calls leave the server with the file descriptors, tasks and threads it started
with and no live call.
"""

from __future__ import annotations

import pytest

from .soak import main

pytestmark = pytest.mark.integration


def test_a_short_soak_leaves_no_fds_tasks_or_threads_behind() -> None:
    argv = ["--sequential", "10", "--concurrent", "6", "--minutes", "0.05", "--sample-every", "1.5"]
    assert main(argv) == 0


@pytest.mark.soak
def test_full_soak() -> None:
    """1 000 sequential calls, then 10 minutes of 50 concurrent calls."""
    assert main(["--sequential", "1000", "--concurrent", "50", "--minutes", "10"]) == 0
