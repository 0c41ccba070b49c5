"""AudioSocket end to end over real TCP on 127.0.0.1: the demo bot answers an Asterisk
``AudioSocket()`` call (greeting in paced 20 ms ``0x10`` packets, DTMF read, ``#`` ends the call
with the ``0x00`` hang-up), and hostile peers are cut off without harming a genuine call."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from callpipe.demo.bot import bot
from callpipe.runner.app import RunnerConfig, RunnerState, create_app
from callpipe.runner.audiosocket import AudioSocketServer
from callpipe.serializers.audiosocket import encode, parse_header
from callpipe.testing.virtual_calls import virtual_time
from callpipe.transports.network.audiosocket import AudioSocketLimits

from .test_demo_bot import GREETING

SILENCE = b"\x00\x00" * 160


@contextlib.asynccontextmanager
async def audiosocket_demo(
    limits: AudioSocketLimits | None = None, **kwargs: Any
) -> AsyncIterator[tuple[tuple[str, int], RunnerState]]:
    cli_args = argparse.Namespace(greeting=GREETING, session_timeout=0.0, echo=True)
    app = create_app(bot, RunnerConfig(insecure=True, cli_args=cli_args))
    state: RunnerState = app.state.runner
    server = AudioSocketServer(state, limits, **kwargs)
    address = await server.start("127.0.0.1", 0)
    try:
        yield address, state
    finally:
        await server.close()


class AsteriskSide:
    """What Asterisk's AudioSocket() does: UUID first, then 20 ms of audio every 20 ms."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.packets: list[tuple[float, int, bytes]] = []
        self.hangup = False
        self.call_id = uuid.uuid4()

    async def pump(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        with contextlib.suppress(ConnectionError):
            while not self.writer.is_closing():
                self.writer.write(encode(0x10, SILENCE))
                await self.writer.drain()
                n += 1
                await asyncio.sleep(max(0.0, start + n * 0.02 - loop.time()))

    async def read(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                kind, length = parse_header(await self.reader.readexactly(3))
                payload = await self.reader.readexactly(length) if length else b""
                self.packets.append((loop.time(), kind, payload))
                if kind == 0x00:
                    self.hangup = True
                    return


@virtual_time
async def test_demo_bot_answers_an_audiosocket_call_over_tcp() -> None:
    async with audiosocket_demo() as ((host, port), state):
        reader, writer = await asyncio.open_connection(host, port)
        side = AsteriskSide(reader, writer)
        writer.write(encode(0x01, side.call_id.bytes))
        pump = asyncio.create_task(side.pump())
        read = asyncio.create_task(side.read())
        await asyncio.sleep(3.0)  # the greeting plays
        assert state.calls.active == 1
        writer.write(b"\x03\x00\x01#")
        await asyncio.wait_for(read, 10)
        pump.cancel()
        writer.close()
        for _ in range(50):
            if state.calls.active == 0:
                break
            await asyncio.sleep(0.05)
    audio = [(t, p) for t, kind, p in side.packets if kind == 0x10]
    assert side.hangup, "the bot's # goodbye ends with the AudioSocket hang-up"
    assert {kind for _, kind, _ in side.packets} == {0x10, 0x00}
    assert {len(p) for _, p in audio} == {320}  # 20 ms of 8 kHz slin each
    pcm = np.frombuffer(b"".join(p for _, p in audio), dtype="<i2")
    assert np.abs(pcm).max() > 3000, "the greeting is audible"
    span = audio[-1][0] - audio[0][0]
    assert span >= 0.02 * (len(audio) - 1) * 0.8, "audio is paced in real time, not burst"
    assert state.calls.active == 0


@virtual_time
async def test_hostile_peers_are_cut_off_and_a_genuine_call_still_works() -> None:
    limits = AudioSocketLimits(handshake_timeout=1.0, read_timeout=0.5, max_payload=4096)
    async with audiosocket_demo(limits, max_pending_per_address=2) as ((host, port), state):
        loop = asyncio.get_running_loop()

        async def eof_after(reader: asyncio.StreamReader) -> float:
            t0 = loop.time()
            assert await asyncio.wait_for(reader.read(), 3) == b""
            return loop.time() - t0

        # A peer announcing a huge payload instead of its UUID: dropped at the header.
        huge_r, huge_w = await asyncio.open_connection(host, port)
        huge_w.write(b"\x01\xff\xff")
        assert await eof_after(huge_r) < 0.5
        # Two silent peers wait for their UUID deadline; a third from the same address is
        # refused at once (per-address cap), and none of them takes a call slot.
        silent = [await asyncio.open_connection(host, port) for _ in range(2)]
        await asyncio.sleep(0.05)
        third_r, third_w = await asyncio.open_connection(host, port)
        assert await eof_after(third_r) < 0.5
        waited = await asyncio.gather(*(eof_after(r) for r, _ in silent))
        assert all(0.5 < w < 2.0 for w in waited), waited
        assert state.calls.active == 0
        for w in (huge_w, third_w, *(w for _, w in silent)):
            w.close()
        # A genuine call that then goes quiet: the read deadline ends it.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(encode(0x01, uuid.uuid4().bytes) + encode(0x10, SILENCE))
        await asyncio.sleep(0.2)
        assert state.calls.active == 1
        data = await asyncio.wait_for(reader.read(), 5)  # greeting packets, then EOF
        assert data and data[0] == 0x10
        for _ in range(40):
            if state.calls.active == 0:
                break
            await asyncio.sleep(0.05)
        assert state.calls.active == 0
        writer.close()
