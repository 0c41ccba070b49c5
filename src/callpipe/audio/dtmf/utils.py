"""Pipecat path for DTMF tone audio: ``await load_dtmf_audio(button, sample_rate=...)``."""

from __future__ import annotations

from callpipe.audio.dtmf_tones import dtmf_tones
from callpipe.frames.frames import KeypadEntry


async def load_dtmf_audio(button: KeypadEntry, *, sample_rate: int = 8000) -> bytes:
    """The in-band tone of one key (synthesised, not read from a file) as 16-bit PCM."""
    return dtmf_tones(button.value, sample_rate)
