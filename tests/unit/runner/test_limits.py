"""Connection accounting below the app: caps, limits from the environment, the open-file limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.runner.limits import (
    WS_MAX_SIZE,
    ConnectionLimits,
    ConnectionTracker,
    GuardedHttpProtocol,
    GuardedWebSocketProtocol,
    uvicorn_ws_options,
)
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time
from unit.small_writes import WORDS, receive_words, small_writes_app


class _Transport(asyncio.Transport):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return (self.host, 40000)
        return default


def test_connections_are_capped_per_address_and_in_total() -> None:
    tracker = ConnectionTracker(ConnectionLimits(max_connections=5, max_per_address=3))
    a = [_Transport("10.0.0.1") for _ in range(4)]
    b = [_Transport("10.0.0.2") for _ in range(3)]
    assert [tracker.admit(t) for t in a] == [
        None,
        None,
        None,
        "too many connections from one address",
    ]
    assert [tracker.admit(t) for t in b] == [None, None, "too many connections"]
    assert tracker.total == 5 and tracker.count("10.0.0.1") == 3
    tracker.release(a[0])
    tracker.release(a[0])  # idempotent: HTTP and WebSocket protocol may both release
    tracker.release(a[3])  # never admitted: nothing to release
    assert tracker.total == 4 and tracker.count("10.0.0.1") == 2
    assert tracker.admit(b[2]) is None


def test_the_total_cap_stays_below_the_open_file_limit() -> None:
    assert ConnectionTracker(ConnectionLimits(), nofile=1024).max_connections == 1024 - 64
    assert (
        ConnectionTracker(ConnectionLimits(max_connections=100), nofile=10**6).max_connections
        == 100
    )


def test_limits_from_the_environment() -> None:
    limits = ConnectionLimits.from_env(
        {
            "CALLPIPE_MAX_CONNECTIONS": "300",
            "CALLPIPE_MAX_CONNECTIONS_PER_ADDRESS": "20",
            "CALLPIPE_HEADER_TIMEOUT": "2.5",
            "CALLPIPE_BODY_TIMEOUT": "4",
        }
    )
    assert (limits.max_connections, limits.max_per_address, limits.header_timeout) == (300, 20, 2.5)
    assert limits.body_timeout == 4.0
    assert ConnectionLimits.from_env({}) == ConnectionLimits()
    with pytest.raises(ConfigurationError):
        ConnectionLimits.from_env({"CALLPIPE_HEADER_TIMEOUT": "soon"})


def test_uvicorn_options_turn_compression_off_and_bind_one_tracker() -> None:
    options = uvicorn_ws_options(ConnectionLimits(max_per_address=7))
    assert options["ws_per_message_deflate"] is False
    assert options["ws_max_size"] == WS_MAX_SIZE == 256 * 1024
    http, ws = options["http"], options["ws"]
    assert issubclass(http, GuardedHttpProtocol) and issubclass(ws, GuardedWebSocketProtocol)
    assert http.tracker is ws.tracker and http.tracker.limits.max_per_address == 7
    other = uvicorn_ws_options()
    assert other["http"].tracker is not http.tracker  # one tracker per server


@virtual_time
async def test_guarded_connections_send_small_messages_without_nagle() -> None:
    """A listening socket made as uvicorn's ``bind_socket`` makes it (``--workers``): proto 0,
    so asyncio's loop leaves Nagle on. The guarded protocol turns it off; with it on, the second
    of two small messages waits for the client's delayed ACK, which this virtual clock skips."""
    options = uvicorn_ws_options()
    async with running_server(small_writes_app(), options=options, listen_proto=0) as addr:
        assert await receive_words(f"ws://{addr}/ws") == WORDS
