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


SHIPPED = ["README.md", "docs", "src", "examples", "Dockerfile", "mkdocs.yml"]
INTERNAL = ["notes/", "CONTRACTS.md", "HOUSE_RULES", "shared/spec", "the spec's", "/work/"]


def _shipped_files() -> list[Path]:
    files: list[Path] = []
    for entry in SHIPPED:
        path = ROOT / entry
        if path.is_file():
            files.append(path)
        else:
            files.extend(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix in (".py", ".md", ".yaml", ".yml", ".html", ".conf")
            )
    return files


def test_no_internal_team_material_ships() -> None:
    assert not (ROOT / "notes").exists()
    leaks = [
        f"{path.relative_to(ROOT)}: {marker}"
        for path in _shipped_files()
        for marker in INTERNAL
        if marker in path.read_text(encoding="utf-8", errors="replace")
    ]
    assert leaks == []


def test_package_docstring_cites_no_test_file() -> None:
    import callpipe

    assert "tests/" not in (callpipe.__doc__ or "")


def test_relative_links_in_the_docs_point_at_files_that_exist() -> None:
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*.md")]
    broken = [
        f"{page.relative_to(ROOT)} -> {target}"
        for page in pages
        for target in link.findall(page.read_text(encoding="utf-8"))
        if "://" not in target
        and not target.startswith("mailto:")
        and not (page.parent / target).exists()
    ]
    assert broken == []
