"""Test bot for the runner's subprocess tests: the spec's recommended shape.

On connect it speaks a "reply" (then hangs up, unless END_AFTER_REPLY=0): REPLY_SECS of a
440 Hz tone at 8 kHz whose last 200 ms are a louder 880 Hz tone (the "end of the reply", which a
drained call must still hear). It reports what it saw (transport type, call data, drain) as JSON
lines to $CALLPIPE_TEST_REPORT, and can send its hang-up to a fake provider API at
$CALLPIPE_TEST_API.
"""

from __future__ import annotations

import json
import math
import os
import struct

from callpipe.frames.frames import EndFrame, Frame, OutputAudioRawFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments
from callpipe.runner.utils import build_serializer, parse_telephony_websocket
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

RATE = 8000


def _tone(freq: float, secs: float, amp: float) -> bytes:
    n = int(RATE * secs)
    return struct.pack(
        f"<{n}h", *(int(amp * 32767 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n))
    )


def _report(**fields: object) -> None:
    path = os.environ.get("CALLPIPE_TEST_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(fields, default=str) + "\n")


def _serializer(transport_type: str, call_data):  # type: ignore[no-untyped-def]
    api = os.environ.get("CALLPIPE_TEST_API")
    if transport_type == "twilio" and api:
        from callpipe.serializers.twilio import TwilioFrameSerializer

        return TwilioFrameSerializer(
            call_data["stream_id"],
            call_data["call_id"],
            account_sid="AC_test",
            auth_token="tok",
            base_url=api,
        )
    return build_serializer(transport_type, call_data)


async def bot(runner_args: RunnerArguments) -> None:
    assert isinstance(runner_args, WebSocketRunnerArguments)
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    again = await parse_telephony_websocket(runner_args.websocket)
    cli = runner_args.cli_args
    _report(
        event="bot",
        transport_type=transport_type,
        runner_transport_type=runner_args.transport_type,
        call_data=call_data.model_dump(by_alias=True),
        idempotent=again == (transport_type, call_data),
        extra_flag=getattr(cli, "extra_flag", None),
        pid=os.getpid(),
        body=runner_args.body,
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_out_sample_rate=RATE,
            serializer=_serializer(transport_type, call_data),
        ),
    )
    # A call may ask for its own ending (tests of how calls end): customParameters test_end =
    # "stay" (the bot never hangs up) or "idle" (no hang-up; the pipeline's idle timeout ends it).
    test_end = call_data.body.get("test_end") if isinstance(call_data.body, dict) else None
    task = PipelineTask(
        Pipeline([transport.input(), transport.output()]),
        PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        idle_timeout_secs=0.8 if test_end == "idle" else None,
    )
    runner_args.attach(task)
    reply_secs = float(os.environ.get("REPLY_SECS", "0.6"))

    @transport.event_handler("on_client_connected")
    async def on_connected(transport, websocket):  # type: ignore[no-untyped-def]
        audio = _tone(440, max(0.0, reply_secs - 0.2), 0.3) + _tone(880, 0.2, 0.9)
        frames: list[Frame] = [OutputAudioRawFrame(audio, RATE, 1)]
        if os.environ.get("END_AFTER_REPLY", "1") == "1" and test_end is None:
            frames.append(EndFrame(reason="reply done"))
        await task.queue_frames(frames)

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(transport, websocket):  # type: ignore[no-untyped-def]
        await task.cancel()

    async def watch_drain() -> None:
        await runner_args.wait_for_drain()
        _report(event="drain_requested")

    import asyncio

    watcher = asyncio.create_task(watch_drain())
    try:
        await PipelineRunner(handle_sigint=False).run(task)
    finally:
        watcher.cancel()
    _report(event="bot_done")


if __name__ == "__main__":
    import argparse

    from callpipe.runner.run import main

    parser = argparse.ArgumentParser()
    parser.add_argument("--extra-flag", default=None)
    main(parser)
