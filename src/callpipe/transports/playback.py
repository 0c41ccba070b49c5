"""Playback tracking: what the caller has actually heard of the bot's audio.

The output transport sends audio ahead of real time; the provider buffers and plays it. This
object keeps the position (in seconds of audio, per bot *stream*) of what was sent, of marks sent
and acknowledged, and of bot text tied to audio positions, so the transport can tell

- when playback really finished (the last mark came back), for "bot stopped speaking";
- how much of an interrupted reply was heard, and which words;
- when a frame that followed some audio (bot text, the end of a response, the audio frame
  itself) may go on downstream: only once that audio has been played.

Without provider marks it falls back to a time estimate: a provider plays audio in real time from
the first packet of a stream. Pure logic: no I/O, time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from callpipe.frames.frames import Frame, OutputAudioRawFrame, TTSTextFrame


@dataclass(slots=True)
class _Mark:
    name: str
    position: float


@dataclass(slots=True)
class _Held:
    position: float
    frame: Frame


@dataclass
class PlaybackTracker:
    """Positions of one output stream. ``start`` is the clock time the stream's first audio is
    due to play; ``sent`` the seconds of audio sent; ``confirmed`` the position of the last
    acknowledged mark."""

    uses_marks: bool = False
    start: float | None = None
    sent: float = 0.0
    confirmed: float = 0.0
    generation: int = 0
    _seq: int = 0
    _marks: deque[_Mark] = field(default_factory=deque)
    _held: deque[_Held] = field(default_factory=deque)
    _heard_texts: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ stream

    def begin(self, now: float) -> None:
        """A new stream starts playing at ``now``."""
        self.start = now
        self.sent = 0.0
        self.confirmed = 0.0
        self._marks.clear()
        self._heard_texts.clear()

    @property
    def active(self) -> bool:
        return self.start is not None

    def end_time(self) -> float:
        """Clock time at which everything sent so far will have played (time estimate)."""
        return (self.start or 0.0) + self.sent

    def estimate(self, now: float) -> float:
        if self.start is None:
            return 0.0
        return min(max(now - self.start, 0.0), self.sent)

    def played(self, now: float) -> float:
        """Best knowledge of the played position."""
        if not self.uses_marks:
            return self.estimate(now)
        bound = self._marks[0].position if self._marks else self.sent
        return max(self.confirmed, min(self.estimate(now), bound))

    def reanchor(self, now: float) -> None:
        """The provider ran dry (we were late): playback resumes from ``now``."""
        if self.start is not None:
            self.start = now - self.sent

    # ------------------------------------------------------------------ marks

    def new_mark(self) -> str:
        self._seq += 1
        name = f"cp{self.generation}-{self._seq}"
        self._marks.append(_Mark(name, self.sent))
        return name

    @property
    def last_mark_position(self) -> float:
        return self._marks[-1].position if self._marks else self.confirmed

    @property
    def all_marks_acknowledged(self) -> bool:
        return not self._marks

    def acknowledge(self, name: str) -> bool:
        """A mark came back. Marks of an older generation (cleared audio) are ignored."""
        while self._marks:
            mark = self._marks.popleft()
            self.confirmed = max(self.confirmed, mark.position)
            if mark.name == name:
                return True
        return False

    # ------------------------------------------------------------------ text

    def hold(self, frame: Frame, position: float | None = None) -> None:
        """Keep ``frame`` until the audio sent before it (or up to ``position``) has played."""
        self._held.append(_Held(self.sent if position is None else position, frame))

    def release(self, now: float, *, everything: bool = False) -> list[Frame]:
        """Held frames whose preceding audio has been played, in order."""
        played = self.played(now)
        out: list[Frame] = []
        while self._held and (everything or self._held[0].position <= played + 1e-6):
            held = self._held.popleft()
            frame = held.frame
            if isinstance(frame, TTSTextFrame):  # what the TTS actually spoke
                self._heard_texts.append(frame.text)
            elif isinstance(frame, OutputAudioRawFrame) and self.start is not None:
                # When its last sample plays (clock time, ns): lets a recorder place it exactly.
                frame.pts = round((self.start + held.position) * 1e9)
            out.append(frame)
        return out

    def holds_uninterruptible_audio(self) -> bool:
        """Whether audio sent but not yet played includes frames an interruption must not cut
        (read only when an interruption comes)."""
        return any(
            isinstance(held.frame, OutputAudioRawFrame) and not held.frame.interruptible
            for held in self._held
        )

    def next_held_position(self) -> float | None:
        return self._held[0].position if self._held else None

    def interrupt(self, now: float) -> tuple[float, str | None]:
        """Cut the stream: return (seconds heard, text heard) and forget everything unplayed.

        Frames released by this call are dropped with the rest: the output pushes an
        interruption report instead, and unplayed bot output is exactly what barge-in cancels.
        """
        self.release(now)
        heard = self.played(now)
        text = " ".join(t.strip() for t in self._heard_texts if t.strip()) or None
        self._held.clear()
        self._marks.clear()
        self._heard_texts.clear()
        self.generation += 1
        self.start = None
        self.sent = 0.0
        self.confirmed = 0.0
        return heard, text

    def finish(self) -> None:
        """The stream played out completely."""
        self._marks.clear()
        self._heard_texts.clear()
        self.start = None
        self.sent = 0.0
        self.confirmed = 0.0
