"""The runner loads ``.env`` from the directory it is started in, without overriding the shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callpipe.runner import run


def test_env_file_in_the_working_directory_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("CALLPIPE_TEST_FROM_DOTENV=yes\nCALLPIPE_TEST_KEPT=file\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALLPIPE_TEST_FROM_DOTENV", raising=False)
    monkeypatch.setenv("CALLPIPE_TEST_KEPT", "shell")
    try:
        run._load_dotenv()
        assert os.environ.get("CALLPIPE_TEST_FROM_DOTENV") == "yes"
        assert os.environ["CALLPIPE_TEST_KEPT"] == "shell"  # the shell wins
    finally:
        os.environ.pop("CALLPIPE_TEST_FROM_DOTENV", None)
