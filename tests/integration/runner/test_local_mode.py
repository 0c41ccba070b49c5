"""A user's own bot without -x runs in local mode, like the demo: the same "where to go next"
lines, the softphone page, and `callpipe call` works; with -x, `callpipe call` says why the
runner refuses it and exits non-zero. ``-v`` shows callpipe's lines, not uvicorn's frame dumps.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest

from .harness import run_bot_process

pytestmark = pytest.mark.integration

NO_PROVIDER_CREDS = {
    "TWILIO_ACCOUNT_SID": "",
    "TWILIO_AUTH_TOKEN": "",
    "TWILIO_API_KEY": "",
    "TWILIO_API_SECRET": "",
}


async def callpipe_call(url: str, *extra: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callpipe.cli",
        "call",
        url,
        "--linger",
        "0.5",
        "--max-duration",
        "10",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_own_bot_without_x_runs_in_local_mode(tmp_path: Path) -> None:
    with run_bot_process(tmp_path, ["-t", "twilio", "-v"], NO_PROVIDER_CREDS) as runner:
        async with httpx.AsyncClient() as http:
            page = await http.get(f"{runner.base}/phone")
        assert page.status_code == 200 and "<script" in page.text
        code, out, err = await callpipe_call(f"ws://127.0.0.1:{runner.port}/ws")
        output = runner.output()
    assert code == 0, out + err
    assert "ended by bot" in out
    assert f"http://localhost:{runner.port}/phone" in output
    assert f"callpipe call ws://localhost:{runner.port}/ws" in output
    assert "local mode" in output and "WARNING callpipe.runner.run" not in output
    assert "configure Twilio" not in output  # provider set-up advice only with -x
    assert "< TEXT" not in output and "> TEXT" not in output  # no wire dumps with -v


async def test_production_mode_refusal_is_explained(tmp_path: Path) -> None:
    args = ["-t", "twilio", "-x", "bot.example", "--wire-debug"]
    # A public runner starts only with its webhook secret (no hang-up credentials needed).
    env = {**NO_PROVIDER_CREDS, "TWILIO_AUTH_TOKEN": "t" * 32}
    with run_bot_process(tmp_path, args, env) as runner:
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{runner.base}/phone")).status_code == 404
        code, out, err = await callpipe_call(f"ws://127.0.0.1:{runner.port}/ws")
        output = runner.output()
    assert code == 1
    assert "code 4003" in err and "missing or invalid stream token" in err
    assert "without -x" in err
    assert "point your provider at:   https://bot.example/" in output
    assert "TEXT" in output  # --wire-debug: uvicorn's frame dumps are back
