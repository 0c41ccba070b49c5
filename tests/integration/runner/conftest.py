"""Fixtures shared by the runner's integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from unit.telephony._server import ProviderServer, start_server


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    """A fake provider REST API (scripted replies, recorded requests) on a loopback port."""
    state, httpd = start_server()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
