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


async def test_a_failing_bot_frees_its_slot_and_logs_one_line(caplog: Any) -> None:
    import logging
    import uuid

    from callpipe.errors import ConfigurationError
    from callpipe.runner.audiosocket import AudioSocketServer
    from callpipe.serializers.audiosocket import encode

    async def broken(args: Any) -> None:
        assert args.transport_type == "asterisk" and args.call_data.media == "audiosocket"
        raise ConfigurationError("missing OPENAI_API_KEY")

    app = create_app(broken, RunnerConfig(insecure=True, max_calls=1), secret=b"k" * 32)
    state = app.state.runner
    server = AudioSocketServer(state)
    host, port = await server.start("127.0.0.1", 0)
    call_id = uuid.uuid4()
    with caplog.at_level(logging.INFO, logger="callpipe.runner.audiosocket"):
        for _ in range(2):  # the slot is free again for the next call
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(encode(0x01, call_id.bytes))
            assert await asyncio.wait_for(reader.read(), 3) == b""
            writer.close()
    await server.close()
    assert state.calls.active == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info is None for r in errors)
    assert "missing OPENAI_API_KEY" in errors[0].getMessage()
    assert str(call_id) not in caplog.text  # the call id is masked


def test_a_secure_runner_refuses_a_public_audiosocket_address() -> None:
    from callpipe.runner.run import startup_refusal

    public = RunnerConfig(audiosocket_port=9092, audiosocket_host="0.0.0.0")
    assert "no authentication" in (startup_refusal(public, {}) or "")
    private = RunnerConfig(audiosocket_port=9092, audiosocket_host="10.1.2.3")
    assert startup_refusal(private, {}) is None
    assert (
        startup_refusal(
            RunnerConfig(audiosocket_port=9092, audiosocket_host="0.0.0.0", insecure=True), {}
        )
        is None
    )
