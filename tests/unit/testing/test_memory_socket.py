"""The in-memory WebSocket stand-ins of ``callpipe.testing``, on their own and under a transport."""

from __future__ import annotations

import asyncio
import json

from starlette.websockets import WebSocketState

from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing import MemoryWebSocket, TwilioCallerSocket, run_virtual
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)


async def test_memory_socket_receives_what_is_fed_and_records_sends() -> None:
    socket = MemoryWebSocket()
    socket.feed_text("hello")
    socket.feed_bytes(b"\x01")
    socket.disconnect(1001)
    assert socket.pending == 3
    assert await socket.receive() == {"type": "websocket.receive", "text": "hello"}
    assert await socket.receive() == {"type": "websocket.receive", "bytes": b"\x01"}
    assert await socket.receive() == {"type": "websocket.disconnect", "code": 1001}
    await socket.send_text("a")
    await socket.send_bytes(b"b")
    assert (socket.texts, socket.sent, socket.closed_with) == (["a"], 2, None)
    await socket.close(1000)
    assert socket.closed_with == 1000
    assert socket.application_state == WebSocketState.DISCONNECTED
    assert socket.client_state == WebSocketState.CONNECTED


def test_caller_sends_paced_media_acknowledges_marks_then_hangs_up() -> None:
    async def scenario() -> tuple[list[dict[str, object]], float]:
        socket = TwilioCallerSocket(2, stream_sid="MZ9")
        start = asyncio.get_running_loop().time()
        first = json.loads((await socket.receive())["text"])
        await socket.send_text(json.dumps({"event": "mark", "mark": {"name": "m1"}}))
        await socket.send_text(json.dumps({"event": "clear"}))
        received = [first]
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                break
            received.append(json.loads(message["text"]))
        return received, asyncio.get_running_loop().time() - start

    received, took = run_virtual(scenario())
    assert [m["event"] for m in received] == ["media", "mark", "media"]
    assert received[1] == {"event": "mark", "streamSid": "MZ9", "mark": {"name": "m1"}}
    assert received[2]["media"]["chunk"] == "2" and received[2]["streamSid"] == "MZ9"
    assert abs(took - (4 * 0.02 + 0.5)) < 1e-6  # 20 ms per message, then 0.5 s of listening


def test_a_transport_runs_a_call_over_the_caller_socket() -> None:
    from callpipe.pipeline.pipeline import Pipeline
    from callpipe.pipeline.runner import PipelineRunner
    from callpipe.pipeline.task import PipelineParams, PipelineTask

    socket = TwilioCallerSocket(25)
    serializer = TwilioFrameSerializer(
        "MZ0", "CA0123456789", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    params = FastAPIWebsocketParams(audio_in_enabled=True, serializer=serializer)
    transport = FastAPIWebsocketTransport(socket.websocket, params)
    task = PipelineTask(
        Pipeline([transport.input(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=None,
    )
    run_virtual(PipelineRunner(handle_sigint=False).run(task))
    assert transport.stats.packets_in == 25
    assert socket.closed_with is None  # the caller hung up first: no close frame after it
