"""What the speech-to-speech fakes (OpenAI Realtime, Gemini Live) share: their test knobs, the
voice activity they hear in the caller's audio, and how a scripted reply is cut into audio
chunks, each with the words said during it.

Each fake speaks its provider's protocol around these; neither is a model of the provider's
real VAD or voice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from callpipe.testing.fakes._server import ServedWebsocketFake

WORD_MS = 80
"""A scripted reply's audio per word, unless the reply gives its length."""


def is_loud(pcm: bytes, threshold: int) -> bool:
    """Whether a sample of ``pcm`` (16-bit) peaks above ``threshold``."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], "<i2")
    return bool(samples.size) and int(np.abs(samples.astype(np.int32)).max()) > threshold


@dataclass
class SpeechGate:
    """The fakes' VAD: a loud chunk starts speech; ``silence_ms`` of quiet after it ends it."""

    in_speech: bool = False
    quiet_ms: float = 0.0

    def hear(
        self, loud: bool, ms: float, silence_ms: float
    ) -> Literal["started", "stopped"] | None:
        """Take ``ms`` of audio; what changed, if anything."""
        if loud:
            self.quiet_ms = 0.0
            if not self.in_speech:
                self.in_speech = True
                return "started"
        elif self.in_speech:
            self.quiet_ms += ms
            if self.quiet_ms >= silence_ms:
                self.in_speech = False
                return "stopped"
        return None


def reply_chunks(text: str, audio_ms: int | None, chunk_ms: int) -> Iterator[tuple[int, str]]:
    """A reply saying ``text`` cut into chunks of ``chunk_ms``: (the chunk's ms, the words said
    with it; after the first words they start with a space, "" for none)."""
    words = text.split()
    total_ms = audio_ms if audio_ms is not None else WORD_MS * max(1, len(words))
    chunks = max(1, -(-total_ms // chunk_ms))
    for index in range(chunks):
        first, end = index * len(words) // chunks, (index + 1) * len(words) // chunks
        said = " ".join(words[first:end])
        yield min(chunk_ms, total_ms - index * chunk_ms), (" " + said if said and first else said)


class SpeechToSpeechFake(ServedWebsocketFake):
    """The knobs and records both fakes have (see their module docstrings)."""

    def __init__(self, *, chunk_ms: int, pace_secs: float, speech_threshold: int) -> None:
        self.chunk_ms = chunk_ms
        self.pace_secs = pace_secs
        """Seconds between audio chunks (a test can interrupt in the middle of a reply)."""
        self.speech_threshold = speech_threshold
        self.transcripts: list[str] = []
        self.echo = False
        """``callpipe fakes`` mode: a turn is heard as the next of ``transcripts`` (``"hello"``
        when none) and a reply with none queued says ``"You said: <what was heard>"``."""
        self.sent: list[dict[str, Any]] = []
        """Every server message, in order."""
        self.audio_bytes = 0
        """Bytes of the caller's audio received."""
        self.opened = 0
        """Connections accepted so far."""

    def _next_transcript(self) -> str:
        """What the caller said in the turn just ended ("" for nothing heard)."""
        return self.transcripts.pop(0) if self.transcripts else ("hello" if self.echo else "")
