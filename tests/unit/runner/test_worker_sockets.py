"""``--workers`` listeners: on Linux each worker gets its own socket in the port's SO_REUSEPORT
group, and the kernel spreads connections over them; the supervisor's placeholder gets none."""

from __future__ import annotations

import select
import socket
import sys

import pytest

from callpipe.runner.app import RunnerConfig
from callpipe.runner.run import build_app_from_spec, configure_logging
from callpipe.runner.server import (
    WorkerSpec,
    balanced_reuse_port,
    bind_tcp_socket,
    serve_workers,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux SO_REUSEPORT")


@linux_only
def test_linux_balances_with_reuse_port() -> None:
    assert balanced_reuse_port()


def test_bound_socket_is_tcp_and_inheritable() -> None:
    sock = bind_tcp_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        sock.close()


def test_a_taken_port_fails_at_bind() -> None:
    taken = bind_tcp_socket("127.0.0.1", 0)
    taken.listen()
    try:
        with pytest.raises(OSError):
            bind_tcp_socket("127.0.0.1", taken.getsockname()[1], reuse_port=True)
    finally:
        taken.close()


@linux_only
def test_connections_spread_over_the_workers_listeners() -> None:
    placeholder = bind_tcp_socket("127.0.0.1", 0, reuse_port=True)  # the supervisor's
    port = placeholder.getsockname()[1]
    listeners = [bind_tcp_socket("127.0.0.1", port, reuse_port=True) for _ in range(2)]
    for sock in listeners:
        sock.listen(128)
        sock.setblocking(False)
    clients: list[socket.socket] = []
    accepted = [0, 0]
    try:
        for _ in range(64):
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        pending = 64
        while pending:
            ready, _, _ = select.select(listeners, [], [], 5)
            assert ready, f"only {64 - pending} of 64 connections accepted"
            for sock in ready:
                conn, _ = sock.accept()
                conn.close()
                accepted[listeners.index(sock)] += 1
                pending -= 1
        # A hash spread: 64 connections put fewer than 16 on one listener about once in 10^5.
        assert min(accepted) >= 16, accepted
    finally:
        for sock in [*clients, *listeners, placeholder]:
            sock.close()


@linux_only
def test_workers_refuse_a_port_another_reuse_port_group_listens_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Another runner's worker (same user, SO_REUSEPORT) still on the port: joining its group
    # would quietly split the calls between the two; the supervisor must refuse to start.
    other = bind_tcp_socket("127.0.0.1", 0, reuse_port=True)
    other.listen()
    spec = WorkerSpec(
        host="127.0.0.1",
        port=other.getsockname()[1],
        build_app=build_app_from_spec,
        setup_logging=configure_logging,
        config=RunnerConfig(transport="twilio", insecure=True),
    )
    try:
        assert serve_workers(spec, 2) == 1
    finally:
        other.close()
    assert "cannot listen on 127.0.0.1" in caplog.text
