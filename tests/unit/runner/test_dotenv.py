"""``.env`` is read from the directory the user runs the bot in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callpipe.runner.run import _load_dotenv

pytest.importorskip("dotenv")


def test_dotenv_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("CALLPIPE_TEST_DOTENV=from-cwd\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALLPIPE_TEST_DOTENV", raising=False)
    _load_dotenv()
    try:
        assert os.environ.get("CALLPIPE_TEST_DOTENV") == "from-cwd"
    finally:
        os.environ.pop("CALLPIPE_TEST_DOTENV", None)


def test_dotenv_never_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("CALLPIPE_TEST_DOTENV=from-file\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLPIPE_TEST_DOTENV", "from-shell")
    _load_dotenv()
    assert os.environ["CALLPIPE_TEST_DOTENV"] == "from-shell"
