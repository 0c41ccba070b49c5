"""The LICENSE file is the license pyproject.toml declares, for the authors it names."""

from __future__ import annotations

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
