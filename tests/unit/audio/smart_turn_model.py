"""The smart-turn model file for tests: the cache, else fetched once; skip only if both fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from callpipe.audio.turn.smart_turn.model_file import (
    ModelNotFoundError,
    fetch_model,
    resolve_model_path,
)

_fetch_error: list[str] = []


def smart_turn_model() -> Path:
    try:
        return resolve_model_path()
    except ModelNotFoundError:
        pass
    if not _fetch_error:
        try:
            return fetch_model()
        except RuntimeError as exc:
            _fetch_error.append(str(exc))
    pytest.skip(
        "smart-turn model absent and not fetchable (no network?): "
        f"{_fetch_error[0]}; run python -m callpipe.audio.turn.smart_turn.fetch"
    )
