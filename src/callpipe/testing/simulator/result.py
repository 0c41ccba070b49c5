"""What a simulated call produced: events, both audio tracks, turns with latency, a timeline."""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from callpipe.testing.simulator.recording import speech_regions, stereo_wav
from callpipe.testing.simulator.words import (
    REGION_GAP_SECS,
    Recognizer,
    TranscriptLine,
    default_recognizer,
    transcribe_regions,
)

RECORDING_RATE = 8000

NORMAL_CLOSE_CODES = frozenset({None, 1000, 1001, 1005})
"""A bot hanging up normally: normal closure, going away, or a close frame without a code."""


@dataclass(slots=True)
class CallEvent:
    """Something that happened on the call, ``t`` seconds after the WebSocket opened."""

    t: float
    kind: str
    """``connected``, ``dtmf``, ``clear``, ``mark``, ``mark_ack``, ``hangup``, ``fault``,
    ``invalid``, ``message`` (any other bot message), ``error``."""
    detail: str = ""


@dataclass(slots=True)
class Turn:
    """One caller utterance and the bot's answer to it."""

    caller_start: float
    caller_end: float
    bot_start: float | None
    """Arrival of the first bot audio after the caller stopped (None: no answer)."""
    clear_at: float | None = None
    """A clear received while this utterance was being spoken (barge-in)."""

    @property
    def latency(self) -> float | None:
        """Caller stops → first bot audio arrives, in seconds."""
        return None if self.bot_start is None else self.bot_start - self.caller_end

    @property
    def interrupt_latency(self) -> float | None:
        """Caller starts → clear arrives, in seconds (barge-in only)."""
        return None if self.clear_at is None else self.clear_at - self.caller_start


@dataclass
class CallResult:
    """Everything observed on one simulated call."""

    provider: str
    sample_rate: int
    caller: np.ndarray
    """Caller audio as sent, PCM16 at ``sample_rate``, from call start."""
    bot: np.ndarray
    """Bot audio as a jitter-free phone would have played it, same time base."""
    events: list[CallEvent]
    voiced_arrivals: list[float]
    duration: float
    ended_by: str
    """``bot`` (the bot closed the socket), ``caller`` (we hung up), ``network`` (abrupt close),
    ``error`` (could not connect or protocol failure)."""
    close_code: int | None = None
    close_reason: str = ""
    voiced_wire_times: list[float] = field(default_factory=list)
    """When each voiced bot packet left the bot (read off the socket), parallel to
    ``voiced_arrivals``; differs from it only for packets a simulated stall held back."""
    stall: tuple[float, float] | None = None
    """The simulated network stall (start, end), if any: nothing the caller said in it
    reached the bot before its end."""
    """The reason text of the bot's close frame (e.g. why it refused or failed the call)."""
    messages_sent: list[str | bytes] = field(default_factory=list)
    messages_received: list[str | bytes] = field(default_factory=list)

    # -- derived -------------------------------------------------------------------------------

    def events_of(self, kind: str) -> list[CallEvent]:
        return [e for e in self.events if e.kind == kind]

    @property
    def dtmf_sent(self) -> str:
        return "".join(e.detail for e in self.events_of("dtmf"))

    @property
    def clears(self) -> list[float]:
        return [e.t for e in self.events_of("clear")]

    @property
    def hung_up_by_bot(self) -> bool:
        return self.ended_by == "bot"

    @property
    def failed(self) -> bool:
        """The call did not complete normally: refused, failed by the bot, cut or never up."""
        if self.ended_by == "bot":
            return self.close_code not in NORMAL_CLOSE_CODES
        return self.ended_by not in ("caller",)

    def caller_regions(self, merge_gap_secs: float = 0.6) -> list[tuple[float, float]]:
        return speech_regions(self.caller, self.sample_rate, merge_gap_secs=merge_gap_secs)

    def bot_regions(self, merge_gap_secs: float = 0.3) -> list[tuple[float, float]]:
        return speech_regions(self.bot, self.sample_rate, merge_gap_secs=merge_gap_secs)

    def bot_speech_secs(self, start: float = 0.0, end: float | None = None) -> float:
        """Seconds of audible bot speech (as played) between ``start`` and ``end``."""
        stop = self.duration if end is None else end
        total = 0.0
        for s, e in self.bot_regions():
            total += max(0.0, min(e, stop) - max(s, start))
        return total

    def turns(self) -> list[Turn]:
        regions = self.caller_regions()
        clears = self.clears
        turns: list[Turn] = []
        arrivals = self.voiced_arrivals
        wire = self.voiced_wire_times if len(self.voiced_wire_times) == len(arrivals) else arrivals
        for i, (start, end) in enumerate(regions):
            limit = regions[i + 1][0] if i + 1 < len(regions) else self.duration + 1.0
            heard = self._heard_by_bot(end)
            bot_start = None
            # The answer is the first bot audio that left the bot after it could have heard
            # the caller stop; audio it sent earlier but a stall held back is not an answer.
            for k in range(bisect.bisect_right(arrivals, end), len(arrivals)):
                if arrivals[k] >= limit:
                    break
                if wire[k] >= heard:
                    bot_start = arrivals[k]
                    break
            clear_at = next((c for c in clears if start <= c <= end + 0.5), None)
            turns.append(Turn(start, end, bot_start, clear_at))
        return turns

    def _heard_by_bot(self, t: float) -> float:
        """When caller audio sent at ``t`` reached the bot (held to the stall's end)."""
        if self.stall is not None and self.stall[0] <= t < self.stall[1]:
            return self.stall[1]
        return t

    def latencies(self) -> list[float]:
        return [t.latency for t in self.turns() if t.latency is not None]

    # -- output --------------------------------------------------------------------------------

    def stereo_wav(self) -> bytes:
        """Caller left, bot right, 16-bit, at 8 kHz."""
        left, right = self.caller, self.bot
        if self.sample_rate != RECORDING_RATE:
            left = _downsample(left, self.sample_rate)
            right = _downsample(right, self.sample_rate)
        return stereo_wav(left, right, RECORDING_RATE)

    def save_wav(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_bytes(self.stereo_wav())
        return target

    def timeline(self, *, show_marks: bool = False) -> str:
        """Human-readable: who spoke when, control events, and per-turn latency.

        Marks (the bot's playback checkpoints) are summarised unless ``show_marks``."""
        rows: list[tuple[float, str]] = []
        for s, e in self.caller_regions():
            rows.append((s, f"caller speaks   {s:7.2f} – {e:7.2f}  ({e - s:4.2f}s)"))
        for s, e in self.bot_regions(merge_gap_secs=0.6):
            rows.append((s, f"bot speaks      {s:7.2f} – {e:7.2f}  ({e - s:4.2f}s)"))
        for ev in self.events:
            if ev.kind in ("mark", "mark_ack") and not show_marks:
                continue
            rows.append((ev.t, f"{ev.kind:<15} {ev.t:7.2f}  {ev.detail}".rstrip()))
        rows.sort(key=lambda r: r[0])
        lines = [f"call via {self.provider} — {self.duration:.2f}s, ended by {self.ended_by}"]
        lines += ["  " + text for _, text in rows]
        marks, acks = len(self.events_of("mark")), len(self.events_of("mark_ack"))
        if marks and not show_marks:
            lines.append(f"  marks: {marks} received, {acks} acknowledged after playout")
        turns = self.turns()
        if turns:
            lines.append("turns (caller stops → first bot audio):")
            for n, turn in enumerate(turns, 1):
                lat = "no answer" if turn.latency is None else f"{turn.latency * 1000:6.0f} ms"
                extra = ""
                if turn.interrupt_latency is not None:
                    extra = f"   barge-in → clear {turn.interrupt_latency * 1000:.0f} ms"
                lines.append(
                    f"  {n:2d}. {turn.caller_start:7.2f}–{turn.caller_end:7.2f}  {lat}{extra}"
                )
        return "\n".join(lines)

    def transcript(self, recognizer: Recognizer | None = None) -> list[TranscriptLine]:
        """Who said what, when, in words (local Whisper on both recorded tracks), in time
        order; a bot line that answers the caller carries that turn's latency."""
        rec = recognizer or default_recognizer()
        callers = self.caller_regions(merge_gap_secs=REGION_GAP_SECS)
        bots = self.bot_regions(merge_gap_secs=REGION_GAP_SECS)
        answer_at = {t.bot_start: t.latency for t in self.turns() if t.bot_start is not None}
        lines = [
            TranscriptLine("caller", s, e, text)
            for (s, e), text in zip(
                callers,
                transcribe_regions(self.caller, self.sample_rate, callers, rec),
                strict=True,
            )
        ]
        for (s, e), text in zip(
            bots, transcribe_regions(self.bot, self.sample_rate, bots, rec), strict=True
        ):
            # The answer's first packet arrives at most one packet before it plays.
            latency = next((lat for at, lat in answer_at.items() if abs(at - s) <= 0.1), None)
            lines.append(TranscriptLine("bot", s, e, text, latency))
        return sorted(lines, key=lambda line: line.start)

    def transcript_text(self, recognizer: Recognizer | None = None) -> str:
        """:meth:`transcript` as printable lines."""
        return "\n".join(str(line) for line in self.transcript(recognizer))


def _downsample(samples: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    out: np.ndarray = soxr.resample(samples.astype(np.float32) / 32768.0, rate, RECORDING_RATE)
    clipped: np.ndarray = np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)
    return clipped


def summarize_latencies(results: list[CallResult]) -> dict[str, float]:
    """Median / p95 / max response latency (seconds) over many calls; empty if none answered."""
    values = sorted(lat for r in results for lat in r.latencies())
    if not values:
        return {}
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return {
        "turns": float(len(values)),
        "median": statistics.median(values),
        "p95": p95,
        "max": values[-1],
    }
