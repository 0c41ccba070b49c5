"""``callpipe.testing.fakes`` names every fake server, importing each module only when used."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import callpipe.testing.fakes as fakes

FAKES_DIR = Path(fakes.__file__).parent


def _fake_classes() -> dict[str, str]:
    """Every public ``Fake*`` class defined in a fake module, with its module (read, not
    imported: some need optional SDKs)."""
    found: dict[str, str] = {}
    for path in sorted(FAKES_DIR.glob("*.py")):
        if path.name.startswith("_") or path.stem == "cli":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.startswith("Fake"):
                found[node.name] = f"callpipe.testing.fakes.{path.stem}"
    return found


def test_every_fake_server_is_named_by_the_package() -> None:
    expected = _fake_classes()
    assert len(expected) > 30  # the scan found the modules
    named = {name: fakes._LAZY.get(name) for name in expected}
    assert named == expected
    assert set(expected) <= set(fakes.__all__)


def test_each_named_fake_resolves_to_its_class() -> None:
    for name, module in fakes._LAZY.items():
        if name.startswith("Fake"):
            assert getattr(fakes, name) is getattr(importlib.import_module(module), name)


def test_importing_the_package_imports_no_fake() -> None:
    code = (
        "import sys, callpipe.testing.fakes as f\n"
        "print(sorted(m for m in sys.modules if m.startswith('callpipe.testing.fakes.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
