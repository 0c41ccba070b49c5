"""Soak tests run only when asked for (``pytest -m soak``) or via ``tests/reliability/soak.py``."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="long soak: run with -m soak or tests/reliability/soak.py")
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(skip)
