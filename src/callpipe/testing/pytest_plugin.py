"""The pytest plugin for ``*.callpipe.yaml`` scenarios, at its documented path.

The plugin itself is the top-level module :mod:`callpipe_pytest_plugin` (the ``pytest11`` entry
point), so that pytest can load it without importing the ``callpipe`` package before coverage
starts. Use ``-p callpipe_pytest_plugin`` to load it by hand where the entry point is absent.
"""

from __future__ import annotations

from callpipe_pytest_plugin import SUFFIX, ScenarioFile, ScenarioItem

__all__ = ["SUFFIX", "ScenarioFile", "ScenarioItem"]
