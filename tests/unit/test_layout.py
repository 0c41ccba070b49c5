"""Unit tests sit in the folder of the code they test: ``tests/unit/<area>/`` mirrors
``src/callpipe/<area>/`` (see docs/architecture.md, "Where tests go")."""

from __future__ import annotations

from pathlib import Path

import callpipe

UNIT = Path(__file__).resolve().parent
PACKAGE = Path(callpipe.__file__).resolve().parent


def test_every_unit_test_folder_mirrors_a_package() -> None:
    folders = [p.name for p in UNIT.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))]
    assert folders, "no unit-test folders found"
    orphans = [name for name in folders if not (PACKAGE / name).is_dir()]
    assert orphans == [], f"unit-test folders without a callpipe package: {orphans}"


def test_helpers_are_not_named_like_tests() -> None:
    tests = UNIT.parent
    for path in tests.rglob("*.py"):
        if path.name.startswith("test_"):
            text = path.read_text(encoding="utf-8")
            assert "def test_" in text or "class Test" in text, f"{path}: test module with no test"
