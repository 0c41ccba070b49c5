"""Repository habits: LICENSE matches pyproject.toml, CI runs the README's test command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_license_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "LICENSE").read_text()
    assert project["license"] == "BSD-2-Clause"
    assert text.startswith("BSD 2-Clause License")
    assert text.count("Redistributions") == 2  # two clauses, no third (no-endorsement) clause
    authors = {a["name"] for a in project["authors"]}
    copyright_line = next(line for line in text.splitlines() if line.startswith("Copyright"))
    assert any(name in copyright_line for name in authors)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    test_command = commands[1]  # Quick start, second command
    assert "pytest" in test_command and "--cov" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_coverage_floor_is_set() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["coverage"]
    assert config["run"]["source"] == ["callpipe"]
    assert 50 < config["report"]["fail_under"] < 100
