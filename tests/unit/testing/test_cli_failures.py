"""``callpipe call`` on calls that cannot work: clear messages and exit codes, no tracebacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from callpipe.testing import cli
from callpipe.testing.simulator.script import CallScript, run_script
from callpipe.testing.virtual_calls import virtual_time


@asynccontextmanager
async def refusing_server(code: int, reason: str) -> AsyncIterator[str]:
    """Reads the handshake, then closes the stream the way the runner refuses one."""

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(code, reason)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


def test_missing_or_broken_wav_is_an_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["ws://127.0.0.1:9/ws", "--wav", str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr().err
    assert "no such WAV file" in err and "missing.wav" in err and "Traceback" not in err
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    assert cli.main(["ws://127.0.0.1:9/ws", "--wav", str(broken)]) == 2
    assert "not a readable 16-bit PCM WAV" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (4003, "unauthorized: missing or invalid stream token", "without -x"),
        (1011, "bot failed: ConfigurationError: missing auth_token", "ConfigurationError"),
    ],
)
@virtual_time
async def test_refused_or_failed_call_exits_non_zero_and_says_why(
    code: int, reason: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with refusing_server(code, reason) as url:
        result = await run_script(url, CallScript(wait_for_greeting=False, linger_secs=0.1))
    assert result.ended_by == "bot" and result.close_code == code
    assert result.close_reason == reason and result.failed
    assert cli._report([result], None) == 1
    err = capsys.readouterr().err
    assert f"code {code}" in err and expected in err


@virtual_time
async def test_normal_bot_hang_up_is_success() -> None:
    async with refusing_server(1000, "bye") as url:
        result = await run_script(url, CallScript(wait_for_greeting=False, linger_secs=0.1))
    assert not result.failed and cli._report([result], None) == 0


@virtual_time
async def test_bot_closing_mid_utterance_ends_the_script_at_once() -> None:
    """The caller was still talking when the bot failed the call: the script must stop there,
    not wait for its max_duration (it used to hang for two minutes)."""
    import asyncio

    from .fake_bot import tone

    script = CallScript(utterances=[tone(3.0)], wait_for_greeting=False, max_duration=30)
    async with refusing_server(1011, "bot failed: KeyError") as url:
        result = await asyncio.wait_for(run_script(url, script), 5)
    assert result.close_code == 1011 and result.failed
    assert not result.events_of("fault")  # no "script hit max_duration"


def test_nothing_listening_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from callpipe.testing.server import free_port

    url = f"ws://127.0.0.1:{free_port()}/ws"
    assert cli.main([url, "--no-greeting", "--linger", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "connect failed" in err and "is the bot running there?" in err
