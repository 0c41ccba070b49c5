"""Call recording: a stereo WAV (caller left, bot right) as the caller heard the call.

The transports hand their audio to :class:`CallRecording` only when a recording is on (one
``is not None`` test per packet otherwise). Both channels are placed on one time axis starting
at the call's start: the caller's audio as it arrived, the bot's at the moment it is due to play
(its position in the playback schedule, not when it was sent ahead), and a barge-in cuts the
bot's audio at the moment of the cut — what was sent but never played is not in the recording.

Audio is kept in memory only until it can no longer change (the bot's audio before "now"
cannot be cut any more), then appended to the file in chunks: memory stays flat however long
the call. :meth:`CallRecording.close` writes what is left and fixes up the WAV header; the
runner calls it on every ending of the call, including a crash of the bot.

Where the file goes is behind :class:`RecordingStorage`; :class:`LocalDirectoryStorage` is the
one implementation here; ``callpipe.runner.s3_storage.S3Storage`` spools to a local file and
uploads it to an S3-compatible bucket when the call ends.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np
import numpy.typing as npt

from callpipe.audio.resample import StreamResampler

logger = logging.getLogger(__name__)

RECORDING_RATE = 8000
FLUSH_SECS = 1.0
"""Audio older than this behind "now" is written out."""
MAX_AHEAD_SECS = 30.0
"""Bot audio scheduled further ahead than this is not kept (bounds memory on a runaway TTS)."""


class RecordingStorage(Protocol):
    """Where recordings are written: a seekable binary file per recording, and its address."""

    def open(self, name: str) -> BinaryIO: ...

    def uri(self, name: str) -> str: ...

    def local_path(self, name: str) -> Path | None:
        """The file on this machine, if there is one (the inspector serves it)."""
        ...

    def finish(self, name: str) -> None:
        """The recording is complete (closed): store it for good. Called in a worker thread,
        never on the event loop (an upload may take a while)."""
        ...


class LocalDirectoryStorage:
    """Recordings as files in one directory (created when needed)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def open(self, name: str) -> BinaryIO:
        self.directory.mkdir(parents=True, exist_ok=True)
        return open(self.directory / safe_name(name), "w+b")

    def uri(self, name: str) -> str:
        return (self.directory / safe_name(name)).resolve().as_uri()

    def local_path(self, name: str) -> Path | None:
        return self.directory / safe_name(name)

    def finish(self, name: str) -> None:
        """Nothing to do: the file is already where it belongs."""


def safe_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch.isalnum() or ch in "._-")
    if not cleaned or cleaned.startswith("."):
        raise ValueError(f"bad recording name {name!r}")
    return cleaned


_UNKNOWN_LENGTH = 0xFFFFFFFF - 36


def _wav_header(data_bytes: int, rate: int) -> bytes:
    channels, width = 2, 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * 4, channels * width, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class _Channel:
    """One channel's pending samples from ``base`` (absolute sample index) onward: the first
    ``length`` samples of a buffer that grows by doubling (no copy per packet)."""

    def __init__(self) -> None:
        self.buffer: npt.NDArray[np.int16] = np.zeros(4 * RECORDING_RATE, dtype=np.int16)
        self.length = 0
        self.resampler: StreamResampler | None = None
        self.rate = 0

    def to_rate(self, pcm: bytes, rate: int) -> bytes:
        if rate == RECORDING_RATE:
            return pcm
        if self.resampler is None or self.rate != rate:
            self.resampler = StreamResampler(rate, RECORDING_RATE)
            self.rate = rate
        return bytes(self.resampler.resample(pcm))

    def put(self, offset: int, samples: npt.NDArray[np.int16]) -> None:
        end = offset + len(samples)
        if end > len(self.buffer):
            grown = np.zeros(max(end, 2 * len(self.buffer)), dtype=np.int16)
            grown[: self.length] = self.buffer[: self.length]
            self.buffer = grown
        if offset > self.length:
            self.buffer[self.length : offset] = 0
        self.buffer[offset:end] = samples
        self.length = max(self.length, end)

    def take(self, count: int) -> npt.NDArray[np.int16]:
        """The first ``count`` samples (zero-padded), dropped from the buffer."""
        out = np.zeros(count, dtype=np.int16)
        have = min(count, self.length)
        out[:have] = self.buffer[:have]
        rest = self.length - have
        self.buffer[:rest] = self.buffer[have : self.length]
        self.length = rest
        return out


class CallRecording:
    """Streams one call's stereo recording to storage. Times are clock seconds (loop time)."""

    def __init__(self, storage: RecordingStorage, name: str, *, rate: int = RECORDING_RATE) -> None:
        if rate != RECORDING_RATE:
            raise ValueError("recordings are written at 8 kHz")
        self.storage = storage
        self.name = name
        self.rate = rate
        self._file: BinaryIO | None = storage.open(name)
        # Until close() fixes it up, the header claims the longest possible data chunk (the
        # streaming-WAV convention): a file left by a killed process still plays.
        self._file.write(_wav_header(_UNKNOWN_LENGTH, rate))
        self._t0: float | None = None
        self._base = 0  # absolute index of the first pending sample; everything before is written
        self._caller = _Channel()
        self._bot = _Channel()
        self._caller_next: int | None = None
        self.written_samples = 0
        self.closed = False
        self.failed = False

    def start(self, t0: float) -> None:
        """The call's time origin (the record's t=0)."""
        if self._t0 is None:
            self._t0 = t0

    # ------------------------------------------------------------------ input

    def caller_audio(self, pcm: bytes, rate: int, now: float) -> None:
        """Caller audio that just arrived (PCM16 mono at ``rate``)."""
        if self.closed or not pcm:
            return
        data = self._caller.to_rate(pcm, rate)
        n = len(data) // 2
        if self._caller_next is None or self._caller_next < self._base:
            self._caller_next = max(self._index(now) - n, self._base)
        self._place(self._caller, self._caller_next, data)
        self._caller_next += n
        self._maybe_flush(now)

    def bot_audio(self, pcm: bytes, rate: int, play_at: float, now: float) -> None:
        """Bot audio sent to the far end, due to play at ``play_at``."""
        if self.closed or not pcm:
            return
        if play_at - now > MAX_AHEAD_SECS:
            return
        data = self._bot.to_rate(pcm, rate)
        self._place(self._bot, self._index(play_at), data)
        self._maybe_flush(now)

    def bot_cut(self, now: float) -> None:
        """Barge-in: bot audio from ``now`` on was never played."""
        if self.closed:
            return
        keep = self._index(now) - self._base
        if 0 <= keep < self._bot.length:
            self._bot.length = keep
        if self._bot.resampler is not None:
            self._bot.resampler.reset()

    # ------------------------------------------------------------------ output

    def close(self) -> None:
        """Write what is pending and the final header (idempotent; never raises)."""
        if self.closed:
            return
        self.closed = True
        try:
            end = max(self._caller.length, self._bot.length)
            self._write(self._base + end)
            if self._file is not None:
                self._file.seek(0)
                self._file.write(_wav_header(self.written_samples * 4, self.rate))
                self._file.close()
        except (OSError, ValueError) as exc:
            self.failed = True
            logger.warning("recording %s: could not finish: %s", self.name, exc)
        self._file = None

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "uri": self.storage.uri(self.name),
            "format": "wav",
            "sample_rate": self.rate,
            "channels": ["caller", "bot"],
            "duration_secs": round(self.written_samples / self.rate, 3),
            "complete": self.closed and not self.failed,
        }

    @property
    def pending_samples(self) -> int:
        """Samples held in memory (stays around FLUSH_SECS × rate however long the call)."""
        return max(self._caller.length, self._bot.length)

    # ------------------------------------------------------------------ internals

    def _index(self, t: float) -> int:
        if self._t0 is None:
            self._t0 = t
        return max(0, round((t - self._t0) * self.rate))

    def _place(self, channel: _Channel, index: int, data: bytes) -> None:
        samples = np.frombuffer(data, dtype=np.int16)
        offset = index - self._base
        if offset < 0:  # already written: keep only the part still pending
            samples = samples[-offset:]
            offset = 0
        if len(samples):
            channel.put(offset, samples)

    def _maybe_flush(self, now: float) -> None:
        upto = self._index(now) - round(FLUSH_SECS * self.rate)
        if upto - self._base >= self.rate * FLUSH_SECS:
            self._write(upto)

    def _write(self, upto: int) -> None:
        count = upto - self._base
        if count <= 0 or self._file is None:
            return
        frames = np.empty((count, 2), dtype="<i2")
        frames[:, 0] = self._caller.take(count)
        frames[:, 1] = self._bot.take(count)
        try:
            self._file.write(frames.tobytes())
        except OSError as exc:
            if not self.failed:
                logger.warning("recording %s: write failed: %s", self.name, exc)
            self.failed = True
        self.written_samples += count
        self._base = upto
