"""CPU time of the WebSocket transport's per-packet path, in and out, without a network.

Run: ``.venv/bin/python benchmarks/transport_bench.py [--calls N] [--packets N]``. Each call is
a ``FastAPIWebsocketTransport`` over an in-memory socket speaking Twilio's media stream
(``callpipe.testing.TwilioCallerSocket``, so ``--compare`` needs trees that have it): the socket
delivers one 20 ms ``media`` message per 20 ms, an echo processor turns every received
packet into bot audio, and the output paces it back out (marks acknowledged by the socket). A
virtual-time loop runs the clock, so the result is CPU seconds per call-second of audio,
measured with ``time.process_time`` (no wall-clock sleeping, no socket, no VAD).

To compare two checkouts in one run (alternating processes)::

    .venv/bin/python benchmarks/transport_bench.py --compare OLD/src NEW/src --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

PACKET_SECS = 0.02


async def one_call(packets: int) -> int:
    from callpipe.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
    from callpipe.pipeline.pipeline import Pipeline
    from callpipe.pipeline.runner import PipelineRunner
    from callpipe.pipeline.task import PipelineParams, PipelineTask
    from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
    from callpipe.serializers.twilio import TwilioFrameSerializer
    from callpipe.testing.memory_socket import TwilioCallerSocket
    from callpipe.transports.network.fastapi_websocket import (
        FastAPIWebsocketParams,
        FastAPIWebsocketTransport,
    )

    class Echo(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, InputAudioRawFrame):
                await self.push_frame(OutputAudioRawFrame(frame.audio, frame.sample_rate, 1))
            else:
                await self.push_frame(frame, direction)

    socket = TwilioCallerSocket(packets)
    serializer = TwilioFrameSerializer(
        "MZ0", "CA0", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    params = FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
    )
    transport = FastAPIWebsocketTransport(socket.websocket, params)
    task = PipelineTask(
        Pipeline([transport.input(), Echo(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )
    await PipelineRunner(handle_sigint=False).run(task)
    return socket.sent


async def many(calls: int, packets: int) -> int:
    sent = await asyncio.gather(*(one_call(packets) for _ in range(calls)))
    return sum(sent)


def measure(calls: int, packets: int) -> dict[str, float]:
    import logging

    from callpipe.testing.virtual_clock import run_virtual

    logging.disable(logging.WARNING)
    run_virtual(many(1, 50))  # warm up imports and caches
    start = time.process_time()
    sent = run_virtual(many(calls, packets))
    cpu = time.process_time() - start
    call_secs = calls * packets * PACKET_SECS
    return {"cpu_s": cpu, "cpu_per_call_s": cpu / call_secs, "sent": sent}


def compare(srcs: list[str], rounds: int, calls: int, packets: int) -> None:
    results: dict[str, list[float]] = {src: [] for src in srcs}
    for _ in range(rounds):
        for src in srcs:
            env = {**os.environ, "PYTHONPATH": src}
            out = subprocess.run(
                [sys.executable, __file__, "--calls", str(calls), "--packets", str(packets)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[src].append(json.loads(out)["cpu_s"])
    for src, cpus in results.items():
        print(
            f"{src}: CPU s median {statistics.median(cpus):.3f} min {min(cpus):.3f} "
            f"(rounds {', '.join(f'{c:.3f}' for c in cpus)}) "
            f"= {1e6 * statistics.median(cpus) / (calls * packets):.1f} µs per packet in+out"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--packets", type=int, default=1500, help="20 ms packets per call")
    parser.add_argument("--compare", nargs="+", metavar="SRC", help="PYTHONPATHs to compare")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.rounds, args.calls, args.packets)
    else:
        print(json.dumps(measure(args.calls, args.packets)))


if __name__ == "__main__":
    main()
