"""Imports point downward only: the folder tree is the architecture, and this keeps it so.

Each top-level part of callpipe has a rank; a module may import callpipe modules of its own part
or of lower ranks, never higher. Imports inside functions count too (they are still coupling).
"""

from __future__ import annotations

import ast
from pathlib import Path

import callpipe

ROOT = Path(callpipe.__file__).parent

RANKS = {
    "errors": 0,
    "clock": 0,
    "clocks": 0,
    "log": 0,
    "frames": 1,
    "metrics": 1,
    "utils": 1,
    "adapters": 1,
    "audio": 2,
    "telephony": 3,
    "serializers": 4,
    "processors": 5,
    "pipeline": 5,
    "extensions": 5,
    "observers": 5,
    "workers": 5,
    "transcriptions": 1,
    "turns": 5,
    "transports": 6,
    "services": 7,
    "providers": 7,
    "runner": 8,
    "flows": 8,
    "testing": 9,
    "demo": 10,
    "cli": 11,
    "__init__": 11,
}


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in found if name.split(".")[0] == "callpipe"]


def test_every_part_has_a_rank() -> None:
    entries = [p for p in ROOT.iterdir() if not p.name.startswith("_")]
    parts = {p.stem if p.is_file() else p.name for p in entries}
    parts |= {"__init__"}
    parts -= {"py", "static"}
    unranked = {p for p in parts if p not in RANKS and not p.endswith(".typed")}
    assert unranked == set()


def test_imports_point_downward() -> None:
    violations = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        module = ".".join(rel.parts)
        own = RANKS[part_of(module)]
        for line, name in imports_of(path):
            target = part_of(name)
            if target in RANKS and RANKS[target] > own:
                violations.append(f"{rel}.py:{line} imports {name} (rank {RANKS[target]} > {own})")
    assert violations == []
