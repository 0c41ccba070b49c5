"""Fixtures of the flow tests (see helpers.py)."""

from __future__ import annotations

from .helpers import server, start

__all__ = ["server", "start"]
