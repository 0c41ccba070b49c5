"""Fixtures shared by the REST call-control tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._server import ProviderServer, start_server


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    """A fresh recording REST fake per test, stopped (and any hung reply released) after it."""
    state, httpd = start_server()
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()
