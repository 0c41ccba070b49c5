"""Pipecat's ``clocks`` package: :class:`~callpipe.clocks.base_clock.BaseClock` and
:class:`~callpipe.clocks.system_clock.SystemClock`, over callpipe's own :mod:`callpipe.clock`."""
