"""The two sides of a simulated call as time-aligned audio, and what can be read from them.

The caller side is exactly what the simulator sent, placed at its scheduled send time. The bot
side is what a jitter-free phone would have played: each packet starts when it arrives or when
the packet before it finishes, whichever is later, with silence where nothing arrived. A
``clear`` drops whatever had arrived but not yet played, as a provider's buffer does.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

SILENCE_DBFS = -45.0
"""Frames quieter than this (RMS relative to full scale) count as silence."""


class Track:
    """A mono PCM16 track that grows as audio is written at sample positions."""

    __slots__ = ("_buf", "_len")

    def __init__(self, capacity: int = 8000 * 30) -> None:
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def write(self, position: int, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2")
        end = position + len(samples)
        if end > len(self._buf):
            grown = np.zeros(max(end, 2 * len(self._buf)), dtype=np.int16)
            grown[: self._len] = self._buf[: self._len]
            self._buf = grown
        self._buf[position:end] = samples
        self._len = max(self._len, end)

    def erase_from(self, position: int) -> None:
        """Silence everything from ``position`` on (audio that never played)."""
        if position < self._len:
            self._buf[position : self._len] = 0
            self._len = max(position, 0)

    def samples(self, length: int | None = None) -> np.ndarray:
        n = self._len if length is None else length
        out = np.zeros(n, dtype=np.int16)
        k = min(n, self._len)
        out[:k] = self._buf[:k]
        return out


@dataclass(slots=True)
class PendingMark:
    name: str
    due_sample: int
    ack: object = None


class BotPlayout:
    """A phone's playout buffer: where each bot packet plays, marks, and clears."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.track = Track(sample_rate * 30)
        self.end = 0
        """Sample position where the buffered bot audio ends."""
        self.marks: list[PendingMark] = []
        self.last_voiced_end = -1
        """Play position where the latest non-silent bot packet ends (-1: never)."""
        self.voiced_arrivals: list[float] = []
        """Arrival times (s since call start) of each non-silent bot packet."""
        self.voiced_wire_times: list[float] = []
        """When each of those packets came off the socket: earlier than its arrival when a
        simulated network stall held it back."""

    def add_audio(self, pcm: bytes, now: float, wire: float | None = None) -> tuple[int, bool]:
        """Queue a packet that arrived at ``now`` (read from the socket at ``wire``, default
        ``now``); returns (play start sample, voiced)."""
        arrival = int(round(now * self.sample_rate))
        start = max(arrival, self.end)
        self.track.write(start, pcm)
        self.end = start + len(pcm) // 2
        voiced = is_voiced(pcm)
        if voiced:
            self.last_voiced_end = self.end
            self.voiced_arrivals.append(now)
            self.voiced_wire_times.append(now if wire is None else wire)
        return start, voiced

    def add_mark(self, name: str, ack: object = None) -> None:
        self.marks.append(PendingMark(name, self.end, ack))

    def due_marks(self, now: float) -> list[PendingMark]:
        """Marks whose preceding audio has finished playing by ``now`` (removed)."""
        position = now * self.sample_rate
        due = [m for m in self.marks if m.due_sample <= position]
        if due:
            self.marks = [m for m in self.marks if m.due_sample > position]
        return due

    def clear(self, now: float) -> tuple[float, list[PendingMark]]:
        """Drop unplayed audio; returns (seconds dropped, marks that were pending)."""
        cut = int(round(now * self.sample_rate))
        dropped = max(0, self.end - cut) / self.sample_rate
        if self.end > cut:
            self.track.erase_from(cut)
            self.end = cut
            if self.last_voiced_end > cut:
                self.last_voiced_end = cut
        pending, self.marks = self.marks, []
        return dropped, pending

    def playing_voice(self, now: float) -> bool:
        """Whether bot speech is audible at ``now``."""
        return self.last_voiced_end > now * self.sample_rate and self.end > 0


def rms_dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return float(20.0 * np.log10(max(rms, 1e-6) / 32768.0))


def is_voiced(pcm: bytes, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    return rms_dbfs(np.frombuffer(pcm, dtype="<i2")) > threshold_dbfs


def speech_regions(
    samples: np.ndarray,
    sample_rate: int,
    *,
    threshold_dbfs: float = SILENCE_DBFS,
    frame_secs: float = 0.02,
    merge_gap_secs: float = 0.3,
    min_secs: float = 0.06,
) -> list[tuple[float, float]]:
    """(start, end) seconds of non-silent stretches; gaps under ``merge_gap_secs`` are merged."""
    frame = max(1, int(sample_rate * frame_secs))
    n = len(samples) // frame
    if n == 0:
        return []
    frames = samples[: n * frame].astype(np.float64).reshape(n, frame)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    voiced = rms > 32768.0 * 10 ** (threshold_dbfs / 20.0)
    regions: list[tuple[float, float]] = []
    for start, end in _runs(voiced):
        s, e = start * frame_secs, end * frame_secs
        if regions and s - regions[-1][1] < merge_gap_secs:
            regions[-1] = (regions[-1][0], e)
        else:
            regions.append((s, e))
    return [(s, e) for s, e in regions if e - s >= min_secs]


def _runs(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    padded = np.concatenate(([False], mask, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    for i in range(0, len(edges), 2):
        yield int(edges[i]), int(edges[i + 1])


def stereo_wav(left: np.ndarray, right: np.ndarray, sample_rate: int) -> bytes:
    """A 16-bit stereo WAV (caller left, bot right), padded to the longer side."""
    n = max(len(left), len(right))
    frames = np.zeros((n, 2), dtype="<i2")
    frames[: len(left), 0] = left
    frames[: len(right), 1] = right
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(frames.tobytes())
    return out.getvalue()
