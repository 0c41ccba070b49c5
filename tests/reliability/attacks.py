"""Attack clients and measurements for the runner's WebSocket and connection guards.

The runner under attack is a real subprocess (``tests/integration/runner/reply_bot.py`` run by
``run_bot_process``), so its resident memory is measured alone. A genuine call runs through the
attack: it is admitted the way the provider's would be (signed webhook, token in the URL) and
records when each outbound audio packet arrives, so the largest gap shows whether the attack
stalled the event loop. Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from unit.runner.fixtures import handshake

AUTH_TOKEN = "attack-test-twilio-token"
PUBLIC_HOST = "example.test"
SECURE_ENV = {
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "CALLPIPE_STREAM_SECRET": "attack-test-stream-secret-0123456789",
    "TWILIO_ACCOUNT_SID": "",
    "TELNYX_PUBLIC_KEY": "",
    "PLIVO_AUTH_TOKEN": "",
}
SECURE_ARGS = ["-t", "twilio", "-x", PUBLIC_HOST]
# 130 ms of stall beyond the message interval: messages carry up to 80 ms (4 packets) of audio
# when the bot's audio is at hand (``audio_out_max_message_ms``), not 20 ms.
MAX_GAP_SECS = 0.210
MAX_GROWTH_MB = 50.0
_STREAM_URL = re.compile(r'url="wss://example\.test(/ws/[^"]+)"')


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of process ``pid`` in MB (Linux ``/proc``); ``field="VmHWM"`` gives
    its peak since start."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def nofile_limits(pid: int) -> tuple[int, int]:
    """(soft, hard) open-file limits of process ``pid``."""
    with open(f"/proc/{pid}/limits", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise RuntimeError("no open-file limit")


async def stream_path(base: str, call_id: str) -> str:
    """POST the answer webhook signed as Twilio signs it; the stream path from the TwiML."""
    from twilio.request_validator import RequestValidator

    form = {"CallSid": call_id, "AccountSid": "AC1", "From": "+15551112222", "To": "+15553334444"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(f"https://{PUBLIC_HOST}/", form)
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{base}/", data=form, headers={"X-Twilio-Signature": signature})
    resp.raise_for_status()
    match = _STREAM_URL.search(resp.text)
    assert match, resp.text
    return match.group(1)


@dataclass
class Genuine:
    """What the genuine caller saw."""

    http_status: int | None = None
    close_code: int | None = None
    media_times: list[float] = field(default_factory=list)
    admitted: asyncio.Event = field(default_factory=asyncio.Event)

    audio_bytes: int = 0

    @property
    def heard_secs(self) -> float:
        return self.audio_bytes / 8000  # mu-law, 8 kHz: one byte per sample

    def max_gap(self) -> float:
        """Largest gap between consecutive outbound audio messages (the first two leave
        back-to-back by design, so the measure starts at the second)."""
        times = self.media_times[1:]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


async def genuine_call(
    url: str,
    call_id: str,
    *,
    max_secs: float = 15.0,
    result: Genuine | None = None,
    **extra: Any,
) -> Genuine:
    """A Twilio media stream from ``url`` until the bot closes it (acks marks like Twilio);
    ``result`` fills as the call goes (``admitted`` is set at the first audio)."""
    result = result or Genuine()
    try:
        ws = await connect(url, open_timeout=5, close_timeout=2, compression=None, **extra)
    except InvalidStatus as exc:
        result.http_status = exc.response.status_code
        result.admitted.set()
        return result
    async with ws:
        for message in handshake("twilio", stream_id=f"MZ{call_id}", call_id=call_id):
            await ws.send(message)
        deadline = time.monotonic() + max_secs
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            while time.monotonic() < deadline:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
                message = json.loads(raw)
                if message.get("event") == "media":
                    result.media_times.append(time.monotonic())
                    result.audio_bytes += len(base64.b64decode(message["media"]["payload"]))
                    result.admitted.set()
                elif message.get("event") == "mark":
                    ack = {"event": "mark", "streamSid": f"MZ{call_id}", "mark": message["mark"]}
                    await ws.send(json.dumps(ack))
        result.close_code = ws.close_code
    result.admitted.set()
    return result


async def open_raw(
    port: int, source: str = "127.0.0.1", *, rcvbuf: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the runner from ``source`` (any 127.0.0.0/8 address is local)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


def upgrade_request(path: str, port: int, headers: dict[str, str] | None = None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def raw_upgrade(
    port: int, path: str, *, source: str = "127.0.0.1", rcvbuf: int | None = None, **headers: str
) -> tuple[int, str, asyncio.StreamReader, asyncio.StreamWriter]:
    """Send a WebSocket upgrade by hand; (status, response head, reader, writer)."""
    reader, writer = await open_raw(port, source, rcvbuf=rcvbuf)
    writer.write(upgrade_request(path, port, headers))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    text = head.decode("latin-1")
    return int(text.split(" ", 2)[1]), text, reader, writer


def client_frame(opcode: int, payload: bytes, *, rsv1: bool = False) -> bytes:
    """One masked client frame (payload < 64 KiB)."""
    first = 0x80 | (0x40 if rsv1 else 0) | opcode
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    size = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    return bytes([first]) + size + mask + masked


async def read_close_code(reader: asyncio.StreamReader, within: float = 5.0) -> int | None:
    """Read frames until a close frame (its code) or EOF/reset (None); bounded in time."""
    deadline = time.monotonic() + within
    with contextlib.suppress(TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        while time.monotonic() < deadline:
            head = await asyncio.wait_for(reader.readexactly(2), deadline - time.monotonic())
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(n)
            if head[0] & 0x0F == 0x8:
                return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005
    return None


async def refused_counts(base: str) -> dict[str, float]:
    """``callpipe_runner_*refused_total`` samples from ``/metrics`` (label text -> value)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base}/metrics")).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("callpipe_runner_") and "refused_total{" in line:
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def server_errors(log: str) -> list[str]:
    """Lines of the server log that must never appear for a refused attack."""
    words = ("ERROR", "CRITICAL", "Traceback", "Exception in ASGI", " 500")
    return [line for line in log.splitlines() if any(w in line for w in words)]


def close_quietly(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.transport.abort()
