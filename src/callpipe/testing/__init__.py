"""Public test kit: virtual clock, pipeline test helpers, call simulator and provider fakes."""

from callpipe.testing.pipeline import run_test
from callpipe.testing.virtual_clock import VirtualTimeLoop, run_virtual

__all__ = ["VirtualTimeLoop", "run_test", "run_virtual"]
