"""pytest plugin: YAML conversation scenarios as tests (see :mod:`callpipe.testing.scenarios`).

Installed with callpipe (entry point ``pytest11``), it collects files named
``*.callpipe.yaml``; each scenario becomes one test that places a simulated call. The bot must
be running: pass ``--callpipe-url ws://HOST:PORT/ws`` or put ``url:`` in the file. A failure
shows what was expected and what the caller heard.

pytest loads this module in every test run of a project that has callpipe installed, before
coverage measurement starts. It is a top-level module, not ``callpipe.testing.pytest_plugin``,
because importing anything inside the ``callpipe`` package runs ``callpipe/__init__.py`` (the
flat API), whose module-level code would then escape coverage of the user's own test run. It
imports nothing of callpipe until a scenario file is found.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from callpipe.testing.scenarios import Scenario

SUFFIX = ".callpipe.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--callpipe-url",
        default=None,
        help="WebSocket URL of the bot that *.callpipe.yaml scenarios call",
    )


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.File | None:
    if file_path.name.endswith(SUFFIX):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[ScenarioItem]:
        from callpipe.testing.scenarios import load_scenarios

        url = self.config.getoption("--callpipe-url")
        for scenario in load_scenarios(self.path, url):
            yield ScenarioItem.from_parent(self, name=scenario.name, scenario=scenario)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        from callpipe.testing.scenarios import ScenarioFailed, run_scenario

        result = asyncio.run(run_scenario(self.scenario))
        if not result.passed:
            raise ScenarioFailed("\n".join([*result.failures, "", result.timeline]))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from callpipe.testing.scenarios import ScenarioFailed

        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario: {self.scenario.name}"
