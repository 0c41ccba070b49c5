"""Shared pytest configuration."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from callpipe.log import CALL_TAG

logging.getLogger("callpipe").setLevel(logging.DEBUG)


@pytest.fixture(autouse=True)
def _no_call_tag_from_an_earlier_test() -> Iterator[None]:
    """A transport built in a test's own context tags that context's log lines with its call;
    each test starts untagged, whatever ran before it."""
    token = CALL_TAG.set("")
    yield
    CALL_TAG.reset(token)
