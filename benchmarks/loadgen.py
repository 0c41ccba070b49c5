"""Load generator: N concurrent callers speaking Twilio's media-stream protocol in real time.

Each call connects, sends ``connected`` and ``start`` exactly as Twilio does, then streams a
scripted timeline of real speech (eSpeak NG utterances, see ``speech.py``) and silence as 20 ms
µ-law ``media`` messages, paced by one clock-anchored ticker for all calls of the process. About
a third of the pauses are short, so the next utterance barges in on the bot's echo.

The caller's side of every reply is modelled like a phone: received audio goes through a 60 ms
playout buffer (an underrun is a dropout), marks are acknowledged when the audio before them has
played (at once on ``clear``, as Twilio does). Measured per call, relative to what was *sent*:

- response latency: last speech chunk of an utterance sent → first reply packet received;
- interruption delay: first chunk of a barge-in utterance sent → ``clear`` received;
- gaps between reply packets while the bot speaks; dropouts; utterances with no reply.

Output: one JSON document of raw samples (the runner merges several generator processes and
computes the statistics). Standalone::

    python benchmarks/loadgen.py --url ws://127.0.0.1:8765/ws --calls 10 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from speech import RATE, load_utterances, pcm_to_ulaw

CHUNK_SECS = 0.02
CHUNK_BYTES = int(RATE * CHUNK_SECS)  # µ-law: one byte per sample
PHASES = 4  # calls are spread over 4 sub-slots of the 20 ms packet interval
PLAYOUT_BUFFER = 0.060
#: Measurement clock: uvloop's loop.time() only has millisecond resolution.
clock = time.perf_counter
SILENCE = base64.b64encode(b"\xff" * CHUNK_BYTES).decode()
MEDIA = (
    '{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
    '"timestamp":"%d","payload":"%s"},"streamSid":"%s"}'
)


@dataclass(slots=True)
class Utterance:
    """One caller utterance and what came back for it."""

    index: int
    first_chunk: int
    last_chunk: int
    secs: float
    start: float = 0.0
    end: float = 0.0
    reply_at: float | None = None
    barge_in: bool = False  # this utterance started while the previous echo was playing
    clear_at: float | None = None


@dataclass
class Script:
    """A call's timeline: one payload per 20 ms chunk and where the utterances are."""

    payloads: list[str]
    utterances: list[Utterance]


def make_script(
    rng: random.Random,
    speech: list[list[str]],
    duration: float,
    stop_secs: float,
    barge_ratio: float,
    choices: list[int] | None = None,
) -> Script:
    payloads: list[str] = []
    utterances: list[Utterance] = []
    total = int(duration / CHUNK_SECS)
    payloads.extend([SILENCE] * rng.randint(10, 40))
    while True:
        index = rng.choice(choices) if choices else rng.randrange(len(speech))
        chunks = speech[index]
        secs = len(chunks) * CHUNK_SECS
        utt = Utterance(index, len(payloads), len(payloads) + len(chunks) - 1, secs)
        payloads.extend(chunks)
        utterances.append(utt)
        # The echo starts about stop_secs after the end and lasts about as long as the speech.
        if secs >= 2.0 and rng.random() < barge_ratio * 1.6:
            pause = stop_secs + 0.9  # the next utterance starts ~0.7 s into the echo
        else:
            pause = stop_secs + 0.6 + secs + rng.uniform(0.4, 1.2)
        if len(payloads) + (pause + 4.0) / CHUNK_SECS > total:
            payloads.extend([SILENCE] * int((stop_secs + 1.5 + secs) / CHUNK_SECS))
            return Script(payloads, utterances)
        payloads.extend([SILENCE] * int(pause / CHUNK_SECS))


@dataclass
class Results:
    """Raw samples from every call of this process."""

    gaps: list[float] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (offset in run, secs)
    interruptions: list[float] = field(default_factory=list)
    utterances: int = 0
    answered: int = 0
    missed_clears: int = 0
    unexpected_clears: int = 0
    stale_after_clear: int = 0
    dropouts: int = 0
    dropout_secs: float = 0.0
    reply_secs: float = 0.0
    packets_in: int = 0
    packets_out: int = 0
    marks_acked: int = 0
    call_secs: float = 0.0
    failed_calls: int = 0
    errors: list[str] = field(default_factory=list)
    long_gaps: list[tuple[float, float]] = field(default_factory=list)  # (offset, gap) > 100 ms
    #: (call sid, last chunk sent, first reply packet) of answered utterances, CLOCK_MONOTONIC
    #: seconds (shared by the processes of one host): joined with the bots' probe records.
    turns: list[tuple[str, float, float]] = field(default_factory=list)
    run_start: float = 0.0


class Call:
    """One caller: sends its script on the shared ticker's schedule and models playout."""

    def __init__(
        self, number: int, url: str, script: Script, start_frame: int, reply_secs: float | None
    ) -> None:
        self.number = number
        self.reply_secs = reply_secs
        self.url = url
        self.script = script
        self.start_frame = start_frame
        self.stream_sid = f"MZ{number:032x}"
        self.call_sid = f"CA{number:032x}"
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.seq = 0
        self.done = False
        self.connected_at = 0.0
        self.closed_at = 0.0
        self.next_utt = 0  # index into script.utterances of the next one to start
        self.last_ended: Utterance | None = None
        # playout model
        self.stream_of: Utterance | None = None
        self.stream_cleared = False
        self.last_arrival = 0.0
        self.play_end = 0.0
        self.pending_barge: Utterance | None = None
        self.marks: list[tuple[float, str]] = []
        self.failed = False

    # ------------------------------------------------------------------ connection

    async def connect(self, results: Results) -> None:
        from websockets.asyncio.client import connect

        try:
            self.ws = await asyncio.wait_for(
                connect(self.url, max_size=None, compression=None, ping_interval=None), 30
            )
            self.connected_at = clock()
            await self.ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            self.seq += 1
            start = {
                "event": "start",
                "sequenceNumber": str(self.seq),
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": {},
                },
                "streamSid": self.stream_sid,
            }
            await self.ws.send(json.dumps(start))
        except Exception as exc:
            self.failed = True
            self.done = True
            results.failed_calls += 1
            results.errors.append(f"connect: {exc!r}"[:200])
            return
        self.reader = asyncio.get_running_loop().create_task(self.read(results))

    async def finish(self, results: Results) -> None:
        self.done = True
        if self.failed or self.ws is None:
            return
        try:
            self.seq += 1
            stop = {
                "event": "stop",
                "sequenceNumber": str(self.seq),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
            }
            await self.ws.send(json.dumps(stop))
            await asyncio.sleep(0.2)
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception as exc:
            results.errors.append(f"close: {exc!r}"[:200])
        self.closed_at = clock()
        if self.reader is not None:
            try:
                await asyncio.wait_for(self.reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                self.reader.cancel()

    # ------------------------------------------------------------------ sending

    async def send_chunk(self, k: int, now: float, results: Results) -> None:
        """Send chunk ``k`` of the script (called by the ticker at its due time)."""
        script = self.script
        if k >= len(script.payloads):
            if not self.done:
                self.done = True
                asyncio.get_running_loop().create_task(self.finish(results))
            return
        utts = script.utterances
        if self.next_utt < len(utts) and utts[self.next_utt].first_chunk == k:
            utt = utts[self.next_utt]
            utt.start = now
            if self._bot_playing(now):
                utt.barge_in = True
                self.pending_barge = utt
        self.seq += 1
        msg = MEDIA % (self.seq, k + 1, (k + 1) * 20, script.payloads[k], self.stream_sid)
        try:
            await self.ws.send(msg)
        except Exception as exc:
            if not self.failed:
                self.failed = True
                results.errors.append(f"send: {exc!r}"[:200])
            self.done = True
            return
        results.packets_out += 1
        if self.next_utt < len(utts) and utts[self.next_utt].last_chunk == k:
            utt = utts[self.next_utt]
            utt.end = now
            self.last_ended = utt
            self.next_utt += 1
        if self.marks:
            await self._ack_marks(now, results)

    def _bot_playing(self, now: float) -> bool:
        """Is the echo of the previous utterance playing with at least 0.4 s still to come?"""
        prev = self.last_ended
        if prev is None or prev.reply_at is None or self.stream_cleared:
            return False
        length = self.reply_secs if self.reply_secs is not None else max(prev.secs - 0.3, 0.0)
        expected_end = prev.reply_at + PLAYOUT_BUFFER + length
        return self.stream_of is prev and expected_end - now >= 0.4

    async def _ack_marks(self, now: float, results: Results, everything: bool = False) -> None:
        due = [m for m in self.marks if everything or m[0] <= now]
        if not due:
            return
        self.marks = [m for m in self.marks if not (everything or m[0] <= now)]
        for _, name in due:
            self.seq += 1
            try:
                await self.ws.send(
                    json.dumps(
                        {
                            "event": "mark",
                            "sequenceNumber": str(self.seq),
                            "streamSid": self.stream_sid,
                            "mark": {"name": name},
                        }
                    )
                )
                results.marks_acked += 1
            except Exception:
                return

    # ------------------------------------------------------------------ receiving

    async def read(self, results: Results) -> None:
        try:
            async for raw in self.ws:
                now = clock()
                if isinstance(raw, bytes):
                    continue
                head = raw[:20]
                if '"media"' in head:
                    self._on_media(now, _payload_bytes(raw) / RATE, results)
                    continue
                msg = json.loads(raw)
                event = msg.get("event")
                if event == "media":
                    payload = msg.get("media", {}).get("payload", "")
                    self._on_media(now, len(base64.b64decode(payload)) / RATE, results)
                elif event == "clear":
                    self._on_clear(now, results)
                elif event == "mark":
                    name = msg.get("mark", {}).get("name", "")
                    playing = self.stream_of is not None and not self.stream_cleared
                    at = max(self.play_end, now) if playing else now
                    self.marks.append((at, name))
        except Exception as exc:
            if not self.done:
                results.errors.append(f"read: {exc!r}"[:200])

    def _on_media(self, now: float, secs: float, results: Results) -> None:
        results.packets_in += 1
        results.reply_secs += secs
        utt = self.last_ended
        if utt is None:
            return  # audio before anything was said (no greeting in the echo bot)
        if self.stream_of is not utt or self.stream_cleared:
            if self.stream_of is utt and self.stream_cleared:
                results.stale_after_clear += 1
            self.stream_of = utt
            self.stream_cleared = False
            if utt.reply_at is None:
                utt.reply_at = now
            self.play_end = now + PLAYOUT_BUFFER + secs
            self.last_arrival = now
            return
        gap = now - self.last_arrival
        results.gaps.append(gap)
        if gap > 0.1 and len(results.long_gaps) < 200:
            results.long_gaps.append((round(now - results.run_start, 3), round(gap, 3)))
        self.last_arrival = now
        if now > self.play_end:
            results.dropouts += 1
            results.dropout_secs += now - self.play_end
            self.play_end = now + PLAYOUT_BUFFER + secs
        else:
            self.play_end += secs

    def _on_clear(self, now: float, results: Results) -> None:
        self.stream_cleared = True
        if self.marks:
            asyncio.get_running_loop().create_task(self._ack_marks(now, results, everything=True))
        barge = self.pending_barge
        if barge is not None and barge.clear_at is None:
            barge.clear_at = now
            self.pending_barge = None
        else:
            results.unexpected_clears += 1

    # ------------------------------------------------------------------ summary

    def summarize(self, results: Results, run_start: float) -> None:
        if self.failed and not self.script.utterances[0].end:
            return
        end = self.closed_at or clock()
        results.call_secs += max(end - self.connected_at, 0.0)
        for utt in self.script.utterances:
            if not utt.end:
                continue
            results.utterances += 1
            if utt.reply_at is not None:
                results.answered += 1
                results.latencies.append((utt.end - run_start, utt.reply_at - utt.end))
                results.turns.append((self.call_sid, utt.end, utt.reply_at))
            if utt.barge_in:
                if utt.clear_at is not None:
                    results.interruptions.append(utt.clear_at - utt.start)
                else:
                    results.missed_clears += 1


def _payload_bytes(raw: str) -> int:
    """Decoded size of the base64 payload of a media message, without parsing the JSON."""
    i = raw.find('"payload"')
    start = raw.find('"', i + 9) + 1
    end = raw.find('"', start)
    n = end - start
    pad = (raw[end - 1] == "=") + (raw[end - 2] == "=")
    return n * 3 // 4 - pad


def speech_chunks() -> list[list[str]]:
    out = []
    for pcm in load_utterances():
        ulaw = pcm_to_ulaw(pcm)
        if len(ulaw) % CHUNK_BYTES:
            ulaw += b"\xff" * (CHUNK_BYTES - len(ulaw) % CHUNK_BYTES)
        out.append(
            [
                base64.b64encode(ulaw[i : i + CHUNK_BYTES]).decode()
                for i in range(0, len(ulaw), CHUNK_BYTES)
            ]
        )
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    speech = speech_chunks()
    results = Results()
    calls = []
    ramp_frames = int(args.ramp / CHUNK_SECS)
    for i in range(args.calls):
        number = args.first_call + i
        rng = random.Random(args.seed * 100_003 + number)
        script = make_script(
            rng, speech, args.duration, args.stop_secs, args.barge_ratio, args.utterances
        )
        start = (i * ramp_frames) // max(args.calls, 1)
        calls.append(Call(number, args.url, script, start, args.reply_secs))

    sem = asyncio.Semaphore(args.connect_concurrency)

    async def connect(call: Call) -> None:
        async with sem:
            await call.connect(results)

    t_connect = loop.time()
    await asyncio.gather(*(connect(c) for c in calls))
    connect_secs = loop.time() - t_connect

    phases: list[list[Call]] = [[] for _ in range(PHASES)]
    for i, call in enumerate(calls):
        phases[i % PHASES].append(call)
    lateness: list[float] = []
    slot = CHUNK_SECS / PHASES
    t0 = loop.time() + 0.05
    run_start = results.run_start = clock() + 0.05
    tick = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    while not all(c.done for c in calls):
        due = t0 + tick * slot
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(loop.time() - due)
        now = clock()
        frame = tick // PHASES
        for call in phases[tick % PHASES]:
            if not call.done and frame >= call.start_frame:
                await call.send_chunk(frame - call.start_frame, now, results)
        tick += 1
        if now - run_start > args.duration + 60:
            results.errors.append("generator: run did not finish in time")
            break
    closers = [c.reader for c in calls if c.reader is not None and not c.reader.done()]
    if closers:
        await asyncio.wait(closers, timeout=10)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for call in calls:
        call.summarize(results, run_start)
    lateness.sort()
    return {
        "calls": args.calls,
        "connect_secs": connect_secs,
        "run_secs": clock() - run_start,
        "generator_cpu_secs": (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime),
        "tick_lateness_p99": lateness[int(0.99 * (len(lateness) - 1))] if lateness else 0.0,
        "tick_lateness_max": lateness[-1] if lateness else 0.0,
        **results.__dict__,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--first-call", type=int, default=1, help="number of the first call")
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of audio per call")
    parser.add_argument("--ramp", type=float, default=1.0, help="spread call starts over this")
    parser.add_argument("--stop-secs", type=float, default=0.4, help="the bots' VAD stop_secs")
    parser.add_argument("--barge-ratio", type=float, default=0.3)
    parser.add_argument(
        "--reply-secs",
        type=float,
        default=None,
        help="length of the bot's replies (default: an echo, as long as the utterance)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--utterances",
        type=lambda s: [int(x) for x in s.split(",")],
        default=None,
        help="only these utterances (indexes into speech.UTTERANCES)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write JSON here (default: stdout)")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    try:
        import uvloop
    except ImportError:
        doc = asyncio.run(run(args))
    else:
        doc = uvloop.run(run(args))
    text = json.dumps(doc)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
