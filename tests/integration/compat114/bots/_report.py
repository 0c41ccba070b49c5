"""Shared by the 1.14-style test bots: append what the bot saw to $CALLPIPE_TEST_REPORT."""

from __future__ import annotations

import json
import os


def report(**fields: object) -> None:
    path = os.environ.get("CALLPIPE_TEST_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields, default=str) + "\n")
