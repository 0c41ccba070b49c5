"""The benchmark scripts' command lines: ``report.py --help`` writes nothing, ``run.py --out``
takes a path relative to where it was started."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _bench_module(name: str) -> Any:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_report_help_prints_usage_and_leaves_the_report_alone() -> None:
    report, plot = BENCH / "BENCHMARKS.md", BENCH / "benchmarks.png"
    before = (report.read_bytes(), report.stat().st_mtime_ns, plot.stat().st_mtime_ns)
    done = subprocess.run(
        [sys.executable, str(BENCH / "report.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "usage:" in done.stdout and "RESULTS_DIR" in done.stdout
    assert (report.read_bytes(), report.stat().st_mtime_ns, plot.stat().st_mtime_ns) == before


def test_report_refuses_missing_or_non_directory_arguments(tmp_path: Path) -> None:
    report = _bench_module("report")
    for argv in ([], [str(tmp_path / "nope")], ["--help-me"]):
        with pytest.raises(SystemExit) as exited:
            report.main(argv)
        assert exited.value.code == 2


def test_run_out_is_resolved_against_the_starting_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _bench_module("run")
    monkeypatch.chdir(tmp_path)
    assert run.results_dir(Path("results/a")) == tmp_path / "results" / "a"
    assert run.results_dir(tmp_path / "b") == tmp_path / "b"
    default = run.results_dir(None)
    assert default.is_absolute() and default.parent == BENCH / "results"
