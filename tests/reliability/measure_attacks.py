"""Measure the /ws attacks of issue 14 against a runner: outcome, live-call gap, memory, CPU cost.

Not a test (the attack tests assert the limits); this prints the numbers for a before/after
comparison. The runner is a subprocess of ``tests/integration/runner/reply_bot.py``, importing
callpipe from ``--src`` (e.g. an older checkout's ``src`` for "before")::

    PYTHONPATH=src .venv/bin/python tests/reliability/measure_attacks.py --src src
    PYTHONPATH=src .venv/bin/python tests/reliability/measure_attacks.py --src /old/checkout/src

Loopback only; every attack is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import httpx  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from integration.runner.harness import RunnerProcess, run_bot_process  # noqa: E402
from reliability.attacks import (  # noqa: E402
    SECURE_ARGS,
    SECURE_ENV,
    Genuine,
    client_frame,
    close_quietly,
    genuine_call,
    open_raw,
    raw_upgrade,
    rss_mb,
    server_errors,
    stream_path,
)


def cpu_secs(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def idle_sockets(runner: RunnerProcess) -> str:
    codes: dict[int, int] = {}
    held = []
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        for _ in range(16):
            status, _, _, writer = await raw_upgrade(runner.port, "/ws", source=source)
            codes[status] = codes.get(status, 0) + 1
            held.append(writer)
    async with httpx.AsyncClient() as http:
        ready = (await http.get(f"{runner.base}/ready")).status_code
    path = await stream_path(runner.base, "CA0009")
    late = await genuine_call(f"ws://127.0.0.1:{runner.port}{path}", "CA0009", max_secs=1.0)
    for writer in held:
        close_quietly(writer)
    admitted = "503" if late.http_status == 503 else f"admitted ({late.heard_secs:.1f}s audio)"
    return f"64 silent sockets -> {codes}; /ready {ready}; a genuine call while held: {admitted}"


async def _bomb(port: int) -> str:
    async def one() -> str:
        async with connect(f"ws://127.0.0.1:{port}/ws", compression="deflate", max_size=None) as ws:
            deflate = bool(ws.protocol.extensions)
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                for _ in range(2):  # 12 MiB of zeros: ~12 KB on the wire when deflated
                    await ws.send(b"\0" * (12 * 1024 * 1024))
                await asyncio.wait_for(ws.recv(), 3)
        return f"deflate={'on' if deflate else 'off'} close={ws.close_code}"

    outcome = await asyncio.gather(*(one() for _ in range(4)))
    return "4 sockets x 2 x 12 MiB of zeros: " + ", ".join(sorted(set(outcome)))


async def compression_bomb(runner: RunnerProcess) -> str:
    """In a separate process: compressing and masking 96 MiB would stall this process's loop,
    which also times the live call."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--bomb", str(runner.port), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return out.decode().strip()


async def ping_flood(runner: RunnerProcess) -> str:
    status, _, _, writer = await raw_upgrade(runner.port, "/ws", rcvbuf=4096)
    burst = client_frame(0x9, b"x" * 125) * 200
    sent = 0
    deadline = time.monotonic() + 4.0
    result = "still open after 4 s"
    try:
        for _ in range(400):
            writer.write(burst)
            await asyncio.wait_for(writer.drain(), max(0.01, deadline - time.monotonic()))
            sent += len(burst)
            await asyncio.sleep(0.005)
    except ConnectionError:
        result = "cut by the server"
    except TimeoutError:
        result = "server stopped reading (4 s)"
    close_quietly(writer)
    return f"upgrade {status}; {sent / 1e6:.1f} MB of pings sent, never reading: {result}"


async def slowloris(runner: RunnerProcess) -> str:
    held = []
    opened = 0
    with contextlib.suppress(OSError):
        for _ in range(600):
            reader, writer = await open_raw(runner.port, "127.0.0.2")
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            held.append((reader, writer))
            opened += 1
    await asyncio.sleep(0.5)
    health = []
    async with httpx.AsyncClient() as http:
        for _ in range(5):
            started = time.monotonic()
            try:
                code: Any = (await http.get(f"{runner.base}/health", timeout=2)).status_code
            except httpx.HTTPError as exc:
                code = type(exc).__name__
            health.append(f"{code}/{(time.monotonic() - started) * 1000:.0f}ms")
            await asyncio.sleep(0.3)
    for _, writer in held:
        close_quietly(writer)
    return f"{opened} incomplete requests from one address; /health: {', '.join(health)}"


async def foreign_origin(runner: RunnerProcess) -> str:
    status, *_, writer = await raw_upgrade(runner.port, "/ws", Origin="http://evil.example")
    close_quietly(writer)
    return f"Origin http://evil.example -> HTTP {status}"


async def hostile_input(runner: RunnerProcess) -> str:
    codes = []
    for message in ("[" * 50_000, '{"event":"start","start":{"streamSid":5,"callSid":6}}'):
        async with connect(f"ws://127.0.0.1:{runner.port}/ws", compression=None) as ws:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                for _ in range(3):
                    await ws.send(message)
                await asyncio.wait_for(ws.recv(), 3)
        codes.append(ws.close_code)
    return f"deep JSON, int ids -> close {codes}"


async def _cpu_per(runner: RunnerProcess, n: int, one: Callable[[int], Awaitable[None]]) -> str:
    """Server CPU per call of ``one`` (the live call's own CPU over the same time subtracted)."""
    pid = runner.proc.pid
    cpu0, t0 = cpu_secs(pid), time.monotonic()
    await asyncio.sleep(1.0)
    idle_rate = (cpu_secs(pid) - cpu0) / (time.monotonic() - t0)
    cpu0, t0 = cpu_secs(pid), time.monotonic()
    for i in range(n):
        await one(i)
    wall = time.monotonic() - t0
    cost = (cpu_secs(pid) - cpu0 - idle_rate * wall) / n
    return f"{max(cost, 0.0) * 1e6:.0f} us"


async def refusal_costs(runner: RunnerProcess) -> str:
    port = runner.port

    async def forged(i: int) -> None:
        _, _, _, writer = await raw_upgrade(port, f"/ws/eyJq{i}.c2ln")
        close_quietly(writer)

    held = []
    for _ in range(8):  # fill this address's share of the tokenless pool
        held.append((await raw_upgrade(port, "/ws", source="127.0.0.9"))[3])

    async def pool_full(i: int) -> None:
        _, _, _, writer = await raw_upgrade(port, "/ws", source="127.0.0.9")
        close_quietly(writer)

    async def oversize(i: int) -> None:
        _, _, reader, writer = await raw_upgrade(port, "/ws", source="127.0.0.10")
        header = bytes([0x82, 0xFF]) + (1 << 20).to_bytes(8, "big") + os.urandom(4)
        writer.write(header + b"\0" * 4096)
        await reader.read()  # until the server closes
        close_quietly(writer)

    async def flood(i: int) -> None:
        _, _, reader, writer = await raw_upgrade(port, "/ws", source="127.0.0.11")
        writer.write(client_frame(0x9, b"x" * 125) * 200)
        with contextlib.suppress(ConnectionError):
            await reader.read()
        close_quietly(writer)

    costs = {
        "403 forged token": await _cpu_per(runner, 200, forged),
        "503 pool full": await _cpu_per(runner, 200, pool_full),
        "1009 oversize message": await _cpu_per(runner, 100, oversize),
        "ping flood cut": await _cpu_per(runner, 100, flood),
    }
    for writer in held:
        close_quietly(writer)
    return "server CPU per refusal (incl. TCP accept + HTTP parse): " + ", ".join(
        f"{k} {v}" for k, v in costs.items()
    )


ATTACKS: dict[str, tuple[Callable[[RunnerProcess], Awaitable[str]], list[str], bool]] = {
    "idle sockets (High 2)": (idle_sockets, [*SECURE_ARGS, "--max-calls", "2"], True),
    "compression bomb (High 3)": (compression_bomb, SECURE_ARGS, True),
    "foreign Origin, local mode (Medium 8)": (foreign_origin, ["--insecure"], False),
    "ping flood (Medium 9)": (ping_flood, SECURE_ARGS, True),
    "slowloris, soft nofile 512 (Medium 10)": (slowloris, SECURE_ARGS, True),
    "hostile handshakes (Low)": (hostile_input, SECURE_ARGS, True),
    "refusal costs": (refusal_costs, SECURE_ARGS, True),
}


async def measure(name: str, src: str, tmp: Path) -> None:
    attack, args, secure = ATTACKS[name]
    reply = "12" if name == "refusal costs" else "6"
    env = {**SECURE_ENV, "REPLY_SECS": reply, "PYTHONPATH": src}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if "slowloris" in name:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        process = run_bot_process(tmp, args, env=env)
        runner = process.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        call = Genuine()
        path = await stream_path(runner.base, "CA0001") if secure else "/ws"
        task = asyncio.create_task(
            genuine_call(f"ws://127.0.0.1:{runner.port}{path}", "CA0001", result=call)
        )
        await asyncio.wait_for(call.admitted.wait(), 10)
        await asyncio.sleep(0.5)  # the call's own start-up is not the attack's cost
        rss0, cpu0, t0 = rss_mb(runner.proc.pid), cpu_secs(runner.proc.pid), time.monotonic()
        try:
            outcome = await asyncio.wait_for(attack(runner), 30)
        except Exception as exc:  # the "before" server may fail in ways the attack didn't plan
            outcome = f"attack client error: {type(exc).__name__}: {exc}"
        cpu, wall = cpu_secs(runner.proc.pid) - cpu0, time.monotonic() - t0
        rss_peak = rss_mb(runner.proc.pid, "VmHWM")
        await asyncio.wait_for(task, 30)
        errors = len(server_errors(runner.output()))
    finally:
        process.__exit__(None, None, None)
    gap = call.max_gap() * 1000
    print(f"## {name}\n  {outcome}")
    print(
        f"  live call: gap max {gap:.0f} ms, heard {call.heard_secs:.1f}s, close {call.close_code}"
        f" | server peak RSS +{rss_peak - rss0:.1f} MB | server CPU {cpu:.2f}s over {wall:.1f}s"
        f" | ERROR/traceback lines in log: {errors}",
        flush=True,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--src", default="src", help="callpipe src/ the runner imports")
    parser.add_argument("--only", default=None, help="substring of one attack name")
    parser.add_argument("--bomb", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bomb is not None:
        print(await _bomb(args.bomb))
        return
    src = os.path.abspath(args.src)  # noqa: ASYNC240 (once, at start)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ATTACKS:
            if args.only is None or args.only in name:
                await measure(name, src, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
