"""Helpers for runner tests: a provider-like WebSocket client, a runner subprocess, a throw-away
redis-server and signed Twilio webhooks (the ``provider`` fixture is in ``conftest.py``)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.runner.security import twilio_signature
from unit.runner.fixtures import handshake

HERE = Path(__file__).parent
REPLY_BOT = HERE / "reply_bot.py"
ROOT = HERE.parent.parent.parent


@dataclass
class CallResult:
    close_code: int | None = None
    http_status: int | None = None
    """Set when the upgrade itself was refused (e.g. 503 while draining or at capacity)."""
    close_reason: str = ""
    pcm: bytearray = field(default_factory=bytearray)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def peak_of_last(self, samples: int = 800) -> float:
        """Peak amplitude (0..1) of the last ``samples`` non-silent samples heard."""
        import numpy as np

        audio = np.frombuffer(bytes(self.pcm), dtype="<i2")
        loud = np.nonzero(np.abs(audio) > 300)[0]
        if loud.size == 0:
            return 0.0
        tail = audio[max(0, loud[-1] - samples) : loud[-1] + 1]
        return float(np.abs(tail).max()) / 32767.0

    @property
    def heard_secs(self) -> float:
        return len(self.pcm) / 2 / 8000


def _decode_audio(provider: str, message: dict[str, Any]) -> bytes:
    media = message.get("media") or {}
    payload = media.get("payload")
    if not payload:
        return b""
    raw = base64.b64decode(payload)
    return raw if provider == "exotel" else ulaw_to_pcm(raw)


def _mark_ack(provider: str, message: dict[str, Any]) -> str | None:
    event = message.get("event")
    if provider == "twilio" and event == "mark":
        return json.dumps(
            {"event": "mark", "streamSid": message.get("streamSid"), "mark": message["mark"]}
        )
    if provider == "plivo" and event == "checkpoint":
        return json.dumps(
            {"event": "playedStream", "streamId": message.get("streamId"), "name": message["name"]}
        )
    return None


async def fake_call(
    url: str,
    provider: str,
    *,
    call_id: str = "CA1",
    stream_id: str = "MZ1",
    hang_up_after: float | None = None,
    max_secs: float = 15.0,
    **handshake_extra: Any,
) -> CallResult:
    """Open ``url`` like ``provider`` would, collect the bot's audio until the server closes."""
    result = CallResult()
    try:
        ws = await connect(url, open_timeout=5, close_timeout=2)
    except InvalidStatus as exc:
        result.http_status = exc.response.status_code
        return result
    async with ws:
        for message in handshake(provider, stream_id=stream_id, call_id=call_id, **handshake_extra):
            await ws.send(message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (hang_up_after if hang_up_after is not None else max_secs)
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    raw = await asyncio.wait_for(ws.recv(), remaining)
                except TimeoutError:
                    break
                if isinstance(raw, bytes):
                    result.pcm += raw
                    continue
                message = json.loads(raw)
                result.messages.append(message)
                result.pcm += _decode_audio(provider, message)
                ack = _mark_ack(provider, message)
                if ack:
                    await ws.send(ack)
        except ConnectionClosed:
            pass
        if ws.close_code is None:
            await ws.close()
        else:
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason or ""
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def twilio_signed(host: str, token: str, path: str, fields: dict[str, str]) -> dict[str, Any]:
    """httpx keyword arguments of a form POST to ``https://{host}{path}`` signed as Twilio does."""
    sig = twilio_signature(token, f"https://{host}{path}", fields.items())
    return {
        "content": urlencode(fields),
        "headers": {
            "X-Twilio-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    }


REDIS = shutil.which("redis-server")
requires_redis = pytest.mark.skipif(
    REDIS is None, reason="redis-server is not installed (apt-get install redis-server)"
)


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    """A throw-away redis-server on a free loopback port; yields its URL."""
    assert REDIS is not None
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.returncode is not None:
                    raise RuntimeError("redis-server did not start") from None
                await asyncio.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@dataclass
class RunnerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    report: Path
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reports(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.report.exists():
            return []
        lines = [json.loads(line) for line in self.report.read_text().splitlines() if line]
        return [r for r in lines if event is None or r.get("event") == event]

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"runner exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=0.5).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError("runner did not become healthy")


@contextlib.contextmanager
def run_bot_process(
    tmp_path: Path,
    args: list[str],
    env: dict[str, str] | None = None,
    bot: Path = REPLY_BOT,
    *,
    via_cli: bool = False,
    command: list[str] | None = None,
) -> Iterator[RunnerProcess]:
    """``python bot.py ARGS --port FREE`` (or ``callpipe run bot.py ...``, or ``command`` instead
    of ``python bot.py``) in a subprocess; always killed at the end."""
    port = free_port()
    report = tmp_path / f"report-{port}.jsonl"
    log = tmp_path / f"runner-{port}.log"
    full_env = {
        **os.environ,
        "CALLPIPE_TEST_REPORT": str(report),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                *(
                    command
                    or [
                        *(
                            [sys.executable, "-m", "callpipe.cli", "run"]
                            if via_cli
                            else [sys.executable]
                        ),
                        str(bot),
                    ]
                ),
                *args,
                *("--host", "127.0.0.1", "--port", str(port)),
            ],
            env=full_env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=str(bot.parent),
        )
    runner = RunnerProcess(proc, port, report, log)
    try:
        wait_ready(runner.base, proc)
        yield runner
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
