"""However a call ends, the runner logs one INFO call-end line and nothing at WARNING or above.

A real provider ends almost every call by closing the stream while the bot is still running, so
an ``Exception in ASGI application`` traceback here would be one per call in production. The
runner is a real subprocess (``python reply_bot.py --insecure``) and its whole log is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from callpipe.testing.server import running_server
from unit.runner.fixtures import handshake

from .harness import run_bot_process

pytestmark = pytest.mark.integration

BAD = ("ERROR", "WARNING", "CRITICAL", "Traceback", "Exception in ASGI")


async def _call(url: str, call_id: str, end: str) -> int | None:
    """One Twilio-style call that ends as ``end`` says; returns the close code the caller saw."""
    params = {"test_end": "stay" if end in ("caller", "drop") else end}
    if end == "bot":
        params = {}
    ws = await connect(url, open_timeout=5, close_timeout=2, compression=None)
    for message in handshake(
        "twilio", stream_id=f"MZ{call_id}", call_id=call_id, **{"custom_parameters": params}
    ):
        await ws.send(message)
    media = 0
    deadline = time.monotonic() + 8.0
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
            message = json.loads(raw)
            media += message.get("event") == "media"
            if media >= 5 and end == "caller":  # a hang-up as Twilio does it: stop, then close
                stop = {"event": "stop", "streamSid": f"MZ{call_id}", "stop": {"callSid": call_id}}
                await ws.send(json.dumps(stop))
                await ws.close()
                return ws.close_code
            if media >= 5 and end == "drop":  # the network goes away: RST, no close frame
                sock = ws.transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                ws.transport.abort()
                return None
    except ConnectionClosed:
        pass
    with contextlib.suppress(Exception):
        await ws.close()
    return ws.close_code


def _ended_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "callpipe.runner.app: call ended" in line]


def _provider_api(hangups: list[str]) -> FastAPI:
    """Twilio's call-update endpoint: the bot hangs up through it (no credentials warning)."""
    api = FastAPI()

    @api.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def update(account: str, call: str) -> dict[str, str]:
        hangups.append(call)
        return {"sid": call, "status": "completed"}

    return api


async def test_hang_ups_by_either_side_log_one_info_line_and_no_error(tmp_path: Path) -> None:
    hangups: list[str] = []
    async with running_server(_provider_api(hangups)) as api:
        env = {"REPLY_SECS": "0.6", "CALLPIPE_TEST_API": f"http://{api}"}
        await _calls_through_runner(tmp_path, env)


async def _calls_through_runner(tmp_path: Path, env: dict[str, str]) -> None:
    with run_bot_process(tmp_path, ["--insecure"], env=env) as runner:
        ready_at = len(runner.output())  # start-up lines (the --insecure warning) are not calls
        url = f"ws://127.0.0.1:{runner.port}/ws"
        codes = {}
        for n, end in enumerate(("caller", "bot", "idle", "drop"), start=1):
            codes[end] = await _call(url, f"CA{n}", end)
        for _ in range(100):  # the last call's end line, within 10 s
            if len(_ended_lines(runner.output())) >= 4:
                break
            await asyncio.sleep(0.1)
        log = runner.output()[ready_at:]
    assert codes["caller"] == 1000
    assert codes["bot"] == 1000
    assert codes["idle"] == 1000
    ended = _ended_lines(log)
    assert len(ended) == 4, log
    assert all(" INFO " in line for line in ended)
    bad = [line for line in log.splitlines() if any(word in line for word in BAD)]
    assert bad == [], "\n".join(bad)
