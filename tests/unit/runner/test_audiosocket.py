"""The AudioSocket listener's wiring: CLI flags, private-address check, started by the server."""

from __future__ import annotations

import asyncio
from typing import Any

from callpipe.runner.app import RunnerConfig, create_app
from callpipe.runner.audiosocket import is_private_host
from callpipe.runner.run import _config_from_args, build_parser
from callpipe.runner.server import DrainingServer, uvicorn_config


def test_flags_reach_the_config_and_default_to_loopback() -> None:
    config = _config_from_args(build_parser().parse_args(["--audiosocket-port", "9092"]))
    assert (config.audiosocket_port, config.audiosocket_host) == (9092, "127.0.0.1")
    config = _config_from_args(build_parser().parse_args([]))
    assert config.audiosocket_port is None


def test_private_hosts() -> None:
    for host in ("127.0.0.1", "localhost", "10.0.0.5", "192.168.1.2", "::1", "172.16.0.9"):
        assert is_private_host(host), host
    for host in ("0.0.0.0", "8.8.8.8", "pbx.example.com", ""):
        assert not is_private_host(host), host


async def _bot(args: Any) -> None:
    return None


async def test_the_draining_server_starts_and_stops_the_listener() -> None:
    config = RunnerConfig(insecure=True, audiosocket_port=0)
    app = create_app(_bot, config, secret=b"k" * 32)
    server = DrainingServer(uvicorn_config(app, "127.0.0.1", 0, 0))
    listener = await server._start_audiosocket()
    assert listener is not None and listener.address is not None
    host, port = listener.address
    reader, writer = await asyncio.open_connection(host, port)
    writer.close()
    await listener.close()
    off = DrainingServer(uvicorn_config(create_app(_bot, RunnerConfig(insecure=True)), "x", 0, 0))
    assert await off._start_audiosocket() is None
