"""MkDocs hook: publish the repository's own Markdown (README, examples, benchmarks) as pages.

The README and the examples' READMEs are written for GitHub, where they sit at the top of the
repository; the site shows the same files, so nothing is written twice. Their links to
``docs/...`` and to each other are rewritten to the pages they become.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]

# source file (repository-relative) -> page in the site
PAGES = {
    "README.md": "index.md",
    "examples/README.md": "examples/index.md",
    "examples/phone_agent/README.md": "examples/phone_agent.md",
    "examples/dtmf_menu/README.md": "examples/dtmf_menu.md",
    "examples/manual_fastapi/README.md": "examples/manual_fastapi.md",
    "examples/outbound_reminder/README.md": "examples/outbound_reminder.md",
    "benchmarks/BENCHMARKS.md": "benchmarks/index.md",
}
ASSETS = {"benchmarks/benchmarks.png": "benchmarks/benchmarks.png"}

_LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _page_for(source_dir: Path, target: str) -> str | None:
    """The site page (docs-relative) a repository link points to, if it is one of ours."""
    if "://" in target or target.startswith("mailto:"):
        return None
    path = (source_dir / target).resolve()
    try:
        relative = path.relative_to(ROOT).as_posix()
    except ValueError:
        return None
    if relative.startswith("docs/"):
        return relative.removeprefix("docs/")
    for source, page in PAGES.items():
        if relative in (source, source.removesuffix("README.md").rstrip("/")):
            return page
    return None


def _relink(markdown: str, source: str, page: str) -> str:
    source_dir = (ROOT / source).parent
    depth = page.count("/")

    def replace(match: re.Match[str]) -> str:
        target, anchor = match.group(1), match.group(2) or ""
        new = _page_for(source_dir, target)
        if new is None:
            return match.group(0)
        return f"]({'../' * depth}{new}{anchor})"

    return _LINK.sub(replace, markdown)


def on_files(files: Files, config: Any) -> Files:
    for source, page in PAGES.items():
        text = _relink((ROOT / source).read_text(encoding="utf-8"), source, page)
        files.append(File.generated(config, page, content=text))
    for source, target in ASSETS.items():
        files.append(File.generated(config, target, abs_src_path=str(ROOT / source)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Links from guide pages to ``../README.md`` (the repository's front page) go to the index."""
    src = page.file.src_uri
    if src in PAGES.values():
        return markdown
    return _relink(markdown, f"docs/{src}", src)
