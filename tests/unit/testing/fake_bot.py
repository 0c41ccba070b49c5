"""A tiny Twilio-dialect echo bot on a plain ``websockets`` server, to test the simulator alone.

Behaviour: after the handshake it sends a greeting (a tone, all at once — the simulated phone
must pace it) followed by a mark; it collects the caller's loud packets and, after 0.3 s of
caller quiet, sends them back followed by a mark; a loud caller packet while its own audio is
still unacknowledged (playing) triggers a ``clear``; DTMF ``#`` closes the socket; every message
it receives is kept for assertions.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve

from callpipe.audio import g711


def tone(secs: float, rate: int = 8000, freq: float = 440.0, level: float = 0.3) -> bytes:
    t = np.arange(int(secs * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype("<i2").tobytes()


def loud(pcm: bytes) -> bool:
    s = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return bool(s.size) and float(np.sqrt(np.mean(s**2))) > 500


@dataclass
class BotLog:
    received: list[dict[str, Any]] = field(default_factory=list)
    receive_times: list[float] = field(default_factory=list)
    sent_marks: list[str] = field(default_factory=list)
    acked_marks: list[str] = field(default_factory=list)
    close_code: int | None = None


@dataclass
class FakeBot:
    url: str
    calls: list[BotLog]
    greeting_secs: float


async def _handle(ws: ServerConnection, log: BotLog, greeting_secs: float) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    stream_sid = ""
    caller_audio = bytearray()
    quiet_packets = 0
    playing: set[str] = set()
    marks = 0

    async def play(pcm: bytes) -> None:
        nonlocal marks
        marks += 1
        name = f"m{marks}"
        for i in range(0, len(pcm), 320):
            payload = base64.b64encode(g711.pcm_to_ulaw(pcm[i : i + 320])).decode()
            await ws.send(
                json.dumps(
                    {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
                )
            )
        await ws.send(
            json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})
        )
        log.sent_marks.append(name)
        playing.add(name)

    async for raw in ws:
        message = json.loads(raw)
        log.received.append(message)
        log.receive_times.append(loop.time())
        event = message.get("event")
        if event == "start":
            stream_sid = message["streamSid"]
            await play(tone(greeting_secs))
        elif event == "mark":
            name = message["mark"]["name"]
            log.acked_marks.append(name)
            playing.discard(name)
        elif event == "dtmf":
            if message["dtmf"]["digit"] == "#":
                await ws.close(1000, "bye")
                return
            await play(tone(0.2, freq=880.0))
        elif event == "media":
            pcm = g711.ulaw_to_pcm(base64.b64decode(message["media"]["payload"]))
            if loud(pcm):
                if playing:
                    await ws.send(json.dumps({"event": "clear", "streamSid": stream_sid}))
                caller_audio += pcm
                quiet_packets = 0
            elif caller_audio:
                quiet_packets += 1
                if quiet_packets >= 15:
                    echo, caller_audio[:] = bytes(caller_audio), b""
                    await play(echo)


@asynccontextmanager
async def fake_bot(greeting_secs: float = 0.6) -> AsyncIterator[FakeBot]:
    calls: list[BotLog] = []

    async def handler(ws: ServerConnection) -> None:
        log = BotLog()
        calls.append(log)
        try:
            await _handle(ws, log, greeting_secs)
        finally:
            log.close_code = ws.close_code

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield FakeBot(f"ws://127.0.0.1:{port}/ws", calls, greeting_secs)
