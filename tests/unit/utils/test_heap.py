"""freeze_startup_heap: once per process, before the calls; the first transport or the runner's
app does it; ``CALLPIPE_GC_FREEZE=0`` turns it off. Each case runs in a fresh interpreter: the
test process's own heap is frozen by whichever test built a transport first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import gc, json, sys
before = gc.get_freeze_count()
result = {"before": before}
what = sys.argv[1]
if what == "call":
    from callpipe.utils.heap import freeze_startup_heap
    result["first"] = freeze_startup_heap()
    result["count"] = gc.get_freeze_count()
    result["second"] = freeze_startup_heap()
    result["after_second"] = gc.get_freeze_count()
elif what == "transport":
    import asyncio
    from callpipe.serializers.twilio import TwilioFrameSerializer
    from callpipe.testing.memory_socket import MemoryWebSocket
    from callpipe.transports.network.fastapi_websocket import (
        FastAPIWebsocketParams, FastAPIWebsocketTransport)
    async def main():
        socket = MemoryWebSocket()
        result["imported"] = gc.get_freeze_count()
        FastAPIWebsocketTransport(socket.websocket, FastAPIWebsocketParams(
            serializer=TwilioFrameSerializer("MZ1", call_sid="CA1",
                params=TwilioFrameSerializer.InputParams(auto_hang_up=False))))
        result["count"] = gc.get_freeze_count()
    asyncio.run(main())
elif what == "runner":
    from callpipe.runner.app import create_app
    result["imported"] = gc.get_freeze_count()
    async def bot(runner_args): pass
    create_app(bot)
    result["count"] = gc.get_freeze_count()
print(json.dumps(result))
"""


def probe(what: str, **env: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, what],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_startup_heap_is_frozen_once() -> None:
    result = probe("call")
    assert result["before"] == 0
    assert result["first"] is True
    assert isinstance(result["count"], int) and result["count"] > 10_000  # the imports
    assert result["second"] is False
    assert result["after_second"] == result["count"]


@pytest.mark.parametrize("what", ["transport", "runner"])
def test_the_first_transport_or_the_runner_freezes_it(what: str) -> None:
    result = probe(what)
    assert result["imported"] == 0  # importing callpipe alone freezes nothing
    assert isinstance(result["count"], int) and result["count"] > 10_000


def test_the_environment_turns_it_off() -> None:
    result = probe("call", CALLPIPE_GC_FREEZE="0")
    assert result["first"] is False
    assert result["count"] == 0
