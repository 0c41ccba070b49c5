"""CallRegistry: capacity, readiness and the drain sequence (with fake calls)."""

from __future__ import annotations

import asyncio
from typing import Any

from callpipe.frames.frames import EndFrame
from callpipe.runner.calls import ActiveCall, CallRegistry
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments


class FakeTask:
    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.got_frame = asyncio.Event()

    def has_finished(self) -> bool:
        return False

    async def queue_frame(self, frame: Any) -> None:
        self.frames.append(frame)
        self.got_frame.set()


class FakeControl:
    def __init__(self) -> None:
        self.hung_up = 0

    async def hang_up(self) -> bool:
        self.hung_up += 1
        return True


class FakeSocket:
    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None
        self.closed_event = asyncio.Event()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        self.closed_event.set()


def _start(registry: CallRegistry, args: RunnerArguments) -> ActiveCall:
    assert registry.reserve()
    call = ActiveCall(args, "twilio")
    registry.register(call)
    return call


def _finish(registry: CallRegistry, call: ActiveCall) -> None:
    registry.unregister(call, "ok")
    registry.release()


def test_capacity_and_refusal_reasons() -> None:
    registry = CallRegistry(max_calls=2)
    assert registry.reserve() and registry.reserve()
    assert not registry.reserve() and registry.refusal_reason() == "at capacity"
    registry.release()
    assert registry.refusal_reason() is None
    registry.draining = True
    assert registry.refusal_reason() == "draining" and not registry.reserve()


async def test_drain_lets_calls_finish_on_their_own() -> None:
    registry = CallRegistry()
    args = RunnerArguments()
    task = FakeTask()
    args.attach(task)  # type: ignore[arg-type]
    call = _start(registry, args)

    async def polite_bot() -> None:
        await args.wait_for_drain()
        _finish(registry, call)

    bot = asyncio.create_task(polite_bot())
    await asyncio.wait_for(registry.drain(drain_timeout=5.0), 2.0)
    await bot
    assert args.draining and task.frames == []


async def test_drain_timeout_ends_attached_calls_with_endframe() -> None:
    registry = CallRegistry()
    args = RunnerArguments()
    task = FakeTask()
    args.attach(task)  # type: ignore[arg-type]
    call = _start(registry, args)

    async def ends_on_endframe() -> None:
        await task.got_frame.wait()
        _finish(registry, call)

    bot = asyncio.create_task(ends_on_endframe())
    await asyncio.wait_for(registry.drain(drain_timeout=0.05, end_grace=2.0), 2.0)
    await bot
    assert len(task.frames) == 1 and isinstance(task.frames[0], EndFrame)
    assert task.frames[0].reason == "server draining"


async def test_unattached_call_is_hung_up_and_closed() -> None:
    registry = CallRegistry()
    socket = FakeSocket()
    args = WebSocketRunnerArguments(socket)  # type: ignore[arg-type]
    control = FakeControl()
    args._serializer = type("S", (), {"call_control": control})()
    call = _start(registry, args)

    async def ends_when_closed() -> None:
        await socket.closed_event.wait()
        _finish(registry, call)

    bot = asyncio.create_task(ends_when_closed())
    await asyncio.wait_for(registry.drain(drain_timeout=0.05, end_grace=2.0), 2.0)
    await bot
    assert control.hung_up == 1 and socket.closed == (1001, "server shutting down")


async def test_new_call_during_drain_gets_the_event() -> None:
    registry = CallRegistry()
    registry.draining = True
    registry._reserved = 1  # a call that reserved its slot just before the drain began
    args = RunnerArguments()
    registry.register(ActiveCall(args, "twilio"))
    assert args.draining
