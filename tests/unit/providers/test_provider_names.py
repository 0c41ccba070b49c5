"""No code outside a provider's own modules switches on a provider's name.

Everything provider-specific goes through ``callpipe.providers.registry`` (see
docs/architecture.md, "Providers"). A comparison with a provider name (``== "twilio"``,
``in ("twilio", "telnyx")``), a dict keyed by provider names or a ``match`` case on one, anywhere
else in ``src/callpipe``, is the old nine-files-per-provider shape creeping back: this fails.
Defaults (``provider: str = "twilio"``) and docstrings are not switches and are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import callpipe
from callpipe.providers import registry

ROOT = Path(callpipe.__file__).parent
NAMES = frozenset(registry.names())


def _own_module(rel: Path, names: frozenset[str]) -> bool:
    """A provider's package, serializer module or call-control module may name itself."""
    parts = rel.parts
    if parts[0] == "providers" and len(parts) > 2 and parts[1] in names:
        return True
    return parts[0] in ("serializers", "telephony") and rel.stem in names


def _names_in(node: ast.AST, names: frozenset[str]) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value] if node.value in names else []
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [n for elt in node.elts for n in _names_in(elt, names)]
    return []


def switches(source: str, names: frozenset[str]) -> list[tuple[int, str]]:
    """(line, name) of every comparison, dict key or match case on a provider name."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        operands: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            operands = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.MatchValue):
            operands = [node.value]
        for operand in operands:
            found.extend((node.lineno, name) for name in _names_in(operand, names))
    return found


def test_the_checker_sees_each_kind_of_switch() -> None:
    names = frozenset({"acme"})
    source = (
        'if p == "acme": pass\n'
        'ok = p in ("other", "acme")\n'
        'HINTS = {"acme": "x"}\n'
        'match p:\n    case "acme": pass\n'
        'def f(provider: str = "acme") -> str:\n    """Mentions "acme"."""\n    return "acme"\n'
    )
    assert [line for line, _ in switches(source, names)] == [1, 2, 3, 5]


def test_no_provider_name_is_switched_on_outside_its_own_modules() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if _own_module(rel, NAMES):
            continue
        for line, name in switches(path.read_text(), NAMES):
            offenders.append(f"{rel}:{line} switches on {name!r}")
    assert offenders == []


def test_the_allow_list_is_only_the_providers_own_modules() -> None:
    assert _own_module(Path("providers/twilio/__init__.py"), NAMES)
    assert _own_module(Path("serializers/plivo.py"), NAMES)
    assert not _own_module(Path("providers/registry.py"), NAMES)
    assert not _own_module(Path("runner/webhook.py"), NAMES)
