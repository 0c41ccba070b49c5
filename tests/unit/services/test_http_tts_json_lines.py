"""``json_lines``: the objects of a newline-delimited streamed answer, other lines passed over."""

from __future__ import annotations

import logging

import httpx
import pytest

from callpipe.services._http_tts import json_lines


async def test_objects_come_in_order_and_other_lines_are_passed_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = b'{"a": 1}\n\n  \nnot json\n[1, 2]\n{"b": 2}'
    response = httpx.Response(200, stream=httpx.ByteStream(body))
    with caplog.at_level(logging.WARNING):
        got = [m async for m in json_lines(response, "svc")]
    assert got == [{"a": 1}, {"b": 2}]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2 and all(m.startswith("svc: skipping") for m in skipped)
