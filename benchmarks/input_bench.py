"""The input side of a call, in one process: CPU per call-second from WebSocket message to STT.

Run: ``.venv/bin/python benchmarks/input_bench.py [--calls 25] [--seconds 10] [--rounds 3]``.

N calls, each a real ``FastAPIWebsocketTransport`` whose WebSocket is an in-process stand-in
fed Twilio's compact media messages (real speech from ``tests/fixtures/audio`` with 2 s of
digital silence after each utterance, as the benchmark callers send while the bot talks),
20 ms per message in real time, each call at its own phase of the 20 ms tick. The
pipeline has the full-pipeline bot's shape: input transport (Silero VAD, the default shared
engine) → tap → streaming STT (sends nothing: its ``send_audio`` returns at once) → user
aggregator → LLM → two stand-ins (TTS) → output transport (audio out off) → assistant aggregator
→ tap. No network, no uvicorn: what is measured is callpipe's own input path (receive loop,
Twilio parse, µ-law, VAD, Silero, frames through the pipeline) plus this driver's queue puts.

The result is process CPU time (user + system, so onnxruntime counts) per second of call audio,
and per 20 ms packet. For an A/B of two source trees, run it with each on ``PYTHONPATH``
alternately (``--label`` names the rows); the host's speed drifts, so compare within one round.
``--virtual`` runs on a virtual-time loop: arrivals (hence Silero's batches) are exactly as
scheduled even on a loaded host, while CPU time stays real; ``--uvloop`` runs in real time on
uvloop, as uvicorn does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
import time
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parent / "tests" / "fixtures" / "audio"

from callpipe.audio import g711  # noqa: E402
from callpipe.audio.resample import resample_once  # noqa: E402
from callpipe.audio.vad.silero import SileroBatchEngine, SileroVADAnalyzer  # noqa: E402
from callpipe.audio.vad.vad_analyzer import VADParams  # noqa: E402
from callpipe.frames.frames import Frame  # noqa: E402
from callpipe.pipeline.pipeline import Pipeline  # noqa: E402
from callpipe.pipeline.runner import PipelineRunner  # noqa: E402
from callpipe.pipeline.task import PipelineParams, PipelineTask  # noqa: E402
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext  # noqa: E402
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from callpipe.serializers.twilio import TwilioFrameSerializer  # noqa: E402
from callpipe.services.openai.llm import OpenAILLMService  # noqa: E402
from callpipe.services.stt_service import StreamingSTTService  # noqa: E402
from callpipe.testing.memory_socket import MemoryWebSocket  # noqa: E402
from callpipe.transports.network.fastapi_websocket import (  # noqa: E402
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

STREAM_SID = "MZ0123456789abcdef0123456789abcdef"
VAD = VADParams(confidence=0.7, start_secs=0.2, stop_secs=0.4, min_volume=0.6)


def call_ulaw() -> bytes:
    """The fixtures' speech at 8 kHz µ-law, each utterance followed by 2 s of digital silence."""
    parts = []
    for path in sorted(FIXTURES.glob("*_16k.wav")):
        with wave.open(str(path), "rb") as reader:
            pcm = reader.readframes(reader.getnframes())
        parts.append(g711.pcm_to_ulaw(resample_once(pcm, 16000, 8000)))
        parts.append(b"\xff" * 16000)
    ulaw = b"".join(parts)
    return ulaw[: len(ulaw) - len(ulaw) % 160]


def media_messages(ulaw: bytes) -> list[str]:
    out = []
    for seq, start in enumerate(range(0, len(ulaw), 160)):
        payload = base64.b64encode(ulaw[start : start + 160]).decode()
        out.append(
            f'{{"event":"media","sequenceNumber":"{seq + 2}","media":{{"track":"inbound",'
            f'"chunk":"{seq + 1}","timestamp":"{seq * 20}","payload":"{payload}"}},'
            f'"streamSid":"{STREAM_SID}"}}'
        )
    return out


class Pass(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class QuietSTT(StreamingSTTService):
    """A streaming STT whose provider takes every batch at once."""

    async def send_audio(self, audio: bytes) -> bool:
        return True


def build_call(index: int, shape: str = "full") -> tuple[MemoryWebSocket, PipelineTask]:
    ws = MemoryWebSocket()
    serializer = TwilioFrameSerializer(
        STREAM_SID,
        call_sid=f"CA{index:032x}",
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        ws.websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=False,
            vad_analyzer=None if shape == "novad" else SileroVADAnalyzer(params=VAD),
            serializer=serializer,
        ),
    )
    llm = OpenAILLMService(api_key="k", base_url="http://127.0.0.1:9", model="m")
    aggregator = llm.create_context_aggregator(OpenAILLMContext([]))
    processors: list[FrameProcessor] = [
        transport.input(),
        Pass(),
        QuietSTT(),
        aggregator.user(),
        llm,
        Pass(),
        Pass(),
        transport.output(),
        aggregator.assistant(),
        Pass(),
    ]
    if shape == "short":
        processors = processors[:3]
    pipeline = Pipeline(processors)
    task = PipelineTask(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=8000, audio_out_sample_rate=8000, allow_interruptions=True
        ),
        idle_timeout_secs=None,
    )
    return ws, task


async def one_round(
    calls: int,
    seconds: float,
    messages: list[str],
    shape: str = "full",
    unpaced: bool = False,
    phases: int = 0,
    engine_wait: float | None = None,
    silero_thread: str = "auto",
) -> dict[str, float]:
    phases = phases or calls
    built = [build_call(i, shape) for i in range(calls)]
    runner = PipelineRunner(handle_sigint=False)
    runs = [asyncio.create_task(runner.run(task)) for _, task in built]
    sockets = [ws for ws, _ in built]
    await asyncio.sleep(0.5)  # pipelines started
    ticks = int(seconds / 0.02)
    loop = asyncio.get_running_loop()
    engine = SileroBatchEngine.for_running_loop()
    if engine_wait is not None:
        engine.max_wait_secs = engine_wait
    engine.offload = {"auto": None, "on": True, "off": False}[silero_thread]
    rows0, batches0 = engine.rows_scored, engine.batches_run
    cpu0, start = time.process_time(), loop.time()
    late = 0
    for tick in range(ticks):
        for phase in range(phases):
            if unpaced:
                while any(ws.pending for ws in sockets):  # noqa: ASYNC110
                    await asyncio.sleep(0)
            else:
                due = start + tick * 0.02 + phase * 0.02 / phases
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.02:
                    late += 1
            for i in range(phase, calls, phases):
                text = messages[(tick + 37 * i) % len(messages)]
                sockets[i].feed_text(text)
    await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu0
    wall = loop.time() - start
    for ws in sockets:
        ws.disconnect(1000)
    await asyncio.wait(runs, timeout=5)
    rows = engine.rows_scored - rows0
    batches = engine.batches_run - batches0
    call_secs = calls * ticks * 0.02
    return {
        "cpu_per_call_sec": cpu / call_secs,
        "us_per_packet": cpu / (calls * ticks) * 1e6,
        "rows_per_batch": rows / max(1, batches),
        "rows_per_call_sec": rows / call_secs,
        "late_ticks": late,
        "wall_over_audio": wall / (ticks * 0.02),
    }


def engine_state() -> str:
    return "on" if SileroBatchEngine.for_running_loop().offloading else "off"


async def main_async(args: argparse.Namespace) -> None:
    messages = media_messages(call_ulaw())
    results = []
    for r in range(args.rounds):
        res = await one_round(
            args.calls,
            args.seconds,
            messages,
            args.shape,
            args.unpaced,
            args.phases,
            args.engine_wait,
            args.silero_thread,
        )
        results.append(res)
        print(
            f"{args.label} round {r + 1}: N={args.calls} "
            f"cpu/call-s={res['cpu_per_call_sec']:.5f} us/packet={res['us_per_packet']:.1f} "
            f"rows/batch={res['rows_per_batch']:.2f} rows/call-s={res['rows_per_call_sec']:.1f} "
            f"late={res['late_ticks']} wall/audio={res['wall_over_audio']:.3f} "
            f"silero thread={engine_state()}",
            flush=True,
        )
    best = min(r["us_per_packet"] for r in results)
    print(f"{args.label} best us/packet={best:.1f}")
    if args.json:
        Path(args.json).write_text(  # noqa: ASYNC240 - after the measurement
            json.dumps({"label": args.label, "rounds": results})
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--label", default=str(Path(sys.modules["callpipe"].__file__ or "").parent))
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--shape",
        default="full",
        choices=["full", "short", "novad"],
        help="short: input, tap and STT only; novad: no VAD analyzer",
    )
    parser.add_argument("--engine-wait", type=float, default=None, help="Silero max_wait_secs")
    parser.add_argument(
        "--phases",
        type=int,
        default=0,
        help="arrival instants per 20 ms tick, calls spread over them (default: one per call)",
    )
    parser.add_argument(
        "--unpaced",
        action="store_true",
        help="feed the next phase as soon as the last one was read (faster; batches differ)",
    )
    parser.add_argument(
        "--virtual",
        action="store_true",
        help="virtual time: the schedule (and so Silero's batches) is exact however loaded the "
        "host is; CPU is still real",
    )
    parser.add_argument(
        "--silero-thread",
        choices=["auto", "on", "off"],
        default="auto",
        help="Silero inference on its own thread: when the loop is busy (auto), always, never",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as uvicorn does)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.virtual:
        from callpipe.testing.virtual_clock import run_virtual

        run_virtual(main_async(args))
    elif args.uvloop:
        import uvloop

        uvloop.run(main_async(args))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
