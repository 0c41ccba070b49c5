"""Helpers shared by the telephony serializers: JSON/base64 decoding and the audio path.

``PhoneAudio`` is the per-call audio path between a provider's codec and rate and the pipeline's
PCM16: G.711 (vectorised) or PCM16, plus one stateful stream resampler per direction that exists
only when the rates differ, so the common 8 kHz pipeline pays for neither.
"""

from __future__ import annotations

import binascii
import json
import time
from typing import Any, Literal

import numpy as np

from callpipe.audio import g711
from callpipe.audio.resample import StreamResampler
from callpipe.frames.frames import KeypadEntry

Encoding = Literal["ulaw", "alaw", "pcm16"]

_KEYPAD = {k.value: k for k in KeypadEntry}


class Malformed(Exception):
    """Internal: a message to skip; ``kind`` is the counter key."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


def load_object(data: str | bytes) -> dict[str, Any]:
    """Parse a JSON object; anything else is ``Malformed``."""
    try:
        message = json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise Malformed("invalid_json", type(exc).__name__) from None
    if not isinstance(message, dict):
        raise Malformed("not_an_object", type(message).__name__)
    return message


def get_object(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"missing_{key}")
    return value


def get_str(message: dict[str, Any], key: str, kind: str) -> str:
    value = message.get(key)
    if not isinstance(value, str) or not value:
        raise Malformed(kind)
    return value


def b64decode(payload: Any, max_bytes: int) -> bytes:
    """Strict base64 of a non-empty payload no larger than ``max_bytes`` once decoded."""
    if not isinstance(payload, str) or not payload:
        raise Malformed("missing_payload")
    if len(payload) > (max_bytes * 4) // 3 + 4:
        raise Malformed("payload_too_large", f"{len(payload)} base64 chars")
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed("bad_base64", str(exc)) from None


def b64encode(data: bytes) -> str:
    """Standard base64 without a newline, as text."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def keypad(digit: Any) -> KeypadEntry:
    """A keypad button from a provider digit (string or int)."""
    if isinstance(digit, int) and not isinstance(digit, bool):
        digit = str(digit)
    entry = _KEYPAD.get(digit) if isinstance(digit, str) else None
    if entry is None:
        raise Malformed("bad_dtmf_digit", repr(digit)[:20])
    return entry


def downmix(pcm: bytes, channels: int) -> bytes:
    """Interleaved PCM16 with ``channels`` channels to mono (mean)."""
    samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels)
    mono: bytes = samples.mean(axis=1).round().astype("<i2").tobytes()
    return mono


class PhoneAudio:
    """Provider audio ⇄ pipeline PCM16 for one call (``out_encoding`` if sending differs)."""

    __slots__ = (
        "_clear_after",
        "_decode",
        "_encode",
        "_in_resampler",
        "_out_rate",
        "_out_resampler",
        "encoding",
        "pipeline_rate",
        "provider_rate",
    )

    def __init__(
        self,
        encoding: Encoding,
        provider_rate: int,
        clear_after_secs: float | None,
        out_encoding: Encoding | None = None,
    ) -> None:
        self.encoding = encoding
        self.provider_rate = provider_rate
        self.pipeline_rate = provider_rate
        self._clear_after = clear_after_secs
        self._decode = _DECODERS[encoding]
        self._encode = _ENCODERS[out_encoding or encoding]
        self._in_resampler: StreamResampler | None = None
        self._out_resampler: StreamResampler | None = None
        self._out_rate = 0

    def set_pipeline_rate(self, rate: int) -> None:
        self.pipeline_rate = rate
        self._in_resampler = (
            None
            if rate == self.provider_rate
            else StreamResampler(self.provider_rate, rate, clear_after_secs=self._clear_after)
        )

    def decode(self, payload: bytes) -> bytes:
        """Provider payload → PCM16 at the pipeline rate (may be empty while a resampler fills)."""
        if self.encoding == "pcm16" and len(payload) & 1:
            raise Malformed("wrong_payload_size", f"{len(payload)} bytes of PCM16")
        pcm = self._decode(payload)
        resampler = self._in_resampler
        if resampler is None:
            return pcm
        return resampler.resample(pcm, now=time.monotonic())

    def encode(self, pcm: bytes, rate: int) -> bytes:
        """PCM16 at ``rate`` → provider payload (may be empty while a resampler fills)."""
        if rate != self.provider_rate:
            if rate != self._out_rate or self._out_resampler is None:
                self._out_rate = rate
                self._out_resampler = StreamResampler(
                    rate, self.provider_rate, clear_after_secs=self._clear_after
                )
            pcm = self._out_resampler.resample(pcm, now=time.monotonic())
            if not pcm:
                return b""
        return self._encode(pcm)

    def flush_out(self) -> bytes:
        """The outbound resampler's held tail, encoded (end of an utterance)."""
        if self._out_resampler is None:
            return b""
        tail = self._out_resampler.flush()
        return self._encode(tail) if tail else b""

    def reset_out(self) -> None:
        """Drop held outbound audio (interruption)."""
        if self._out_resampler is not None:
            self._out_resampler.reset()


def _identity(data: bytes) -> bytes:
    return data


ulaw_to_pcm = g711.ulaw_to_pcm
pcm_to_ulaw = g711.pcm_to_ulaw
alaw_to_pcm = g711.alaw_to_pcm
pcm_to_alaw = g711.pcm_to_alaw


_DECODERS = {"ulaw": ulaw_to_pcm, "alaw": alaw_to_pcm, "pcm16": _identity}
_ENCODERS = {"ulaw": pcm_to_ulaw, "alaw": pcm_to_alaw, "pcm16": _identity}
