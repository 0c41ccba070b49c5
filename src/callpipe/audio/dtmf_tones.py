"""In-band DTMF: keypad tones as PCM16, for providers whose API cannot send digits.

Each key is the sum of one low (row) and one high (column) sine, the ITU-T Q.23 pairs. Tones get
a short raised-cosine fade in and out so they do not click, and each digit is followed by
``gap_ms`` of silence so repeated keys stay distinct to the far-end detector. ``w`` and ``W``
are pauses of 0.5 s and 1 s, as in the providers' DTMF APIs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from callpipe.errors import ConfigurationError

_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLS = (1209.0, 1336.0, 1477.0, 1633.0)
_LAYOUT = ("123A", "456B", "789C", "*0#D")

#: Key → (low Hz, high Hz), per ITU-T Q.23.
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (_ROWS[r], _COLS[c]) for r, row in enumerate(_LAYOUT) for c, key in enumerate(row)
}

_PAUSES_MS = {"w": 500, "W": 1000}
_AMPLITUDE = 0.35 * 32767  # per component: about -9 dBFS each, -3 dBFS peak together
_FADE_MS = 3.0


def dtmf_tones(digits: str, sample_rate: int, tone_ms: int = 100, gap_ms: int = 60) -> bytes:
    """PCM16 LE mono of ``digits`` (0-9, *, #, A-D; ``w``/``W`` pause) at ``sample_rate``."""
    if sample_rate < 4000:
        raise ConfigurationError(f"sample_rate {sample_rate} is too low for DTMF (>= 4000)")
    if tone_ms <= 0 or gap_ms < 0:
        raise ConfigurationError("tone_ms must be > 0 and gap_ms >= 0")
    parts = []
    for key in digits:
        if key in _PAUSES_MS:
            parts.append(bytes(2 * (sample_rate * _PAUSES_MS[key] // 1000)))
            continue
        upper = key.upper()
        if upper not in DTMF_FREQUENCIES:
            raise ConfigurationError(f"invalid DTMF key {key!r}: use 0-9, *, #, A-D, w or W")
        parts.append(_digit(upper, sample_rate, tone_ms, gap_ms))
    return b"".join(parts)


@lru_cache(maxsize=256)
def _digit(key: str, sample_rate: int, tone_ms: int, gap_ms: int) -> bytes:
    low, high = DTMF_FREQUENCIES[key]
    n = sample_rate * tone_ms // 1000
    t = np.arange(n) / sample_rate
    wave = np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)
    fade = min(n // 2, int(sample_rate * _FADE_MS / 1000))
    if fade:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        wave[:fade] *= ramp
        wave[n - fade :] *= ramp[::-1]
    tone = np.round(wave * _AMPLITUDE).astype("<i2").tobytes()
    return tone + bytes(2 * (sample_rate * gap_ms // 1000))
