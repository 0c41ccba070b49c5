"""The smart-turn model file for tests: skip (with the fetch command) when it is absent.

Tests use no network beyond loopback, so they never download it themselves: the README's test
command fetches it before running the suite (``callpipe models fetch smart-turn``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callpipe.audio.turn.smart_turn.model_file import ModelNotFoundError, resolve_model_path


def smart_turn_model() -> Path:
    try:
        return resolve_model_path()
    except ModelNotFoundError:
        pytest.skip("smart-turn model absent: run `callpipe models fetch smart-turn` first")
