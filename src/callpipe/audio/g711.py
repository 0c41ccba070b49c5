"""G.711 μ-law and A-law codecs (ITU-T G.711), bit-exact: C ``audioop`` or numpy lookup tables.

Every phone leg is 8 kHz G.711, so these run on every 20 ms packet of every call. A codec is a
pure function of one byte (decode) or one 16-bit sample (encode), so both directions are a single
numpy ``take`` into a table computed once at import: 256 entries to decode, 65 536 to encode
(indexed by the sample's raw unsigned 16-bit pattern). No per-sample Python code runs.

Rounding follows the ITU-T reference: μ-law works on the top 14 bits of the sample and A-law on
the top 13 (the low bits are truncated toward −∞ by an arithmetic shift), which is what the classic
``audioop`` module does; the exhaustive tests compare all 65 536 inputs and all 256 codes.

PCM is 16-bit little-endian mono. A trailing odd byte of PCM cannot form a sample and is dropped.

Which one runs: on a 20 ms packet (160 samples) the cost is call overhead, not arithmetic, and the
C ``audioop`` codec (stdlib up to Python 3.12, the ``audioop-lts`` package from 3.13, a core
dependency there) is several times faster than a numpy ``take``; on large buffers the tables win.
The public functions use ``audioop`` when it can be imported and the ``table_*`` functions
otherwise; both are checked against each other over every input.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = [
    "alaw_to_pcm",
    "pcm_to_alaw",
    "pcm_to_ulaw",
    "table_alaw_to_pcm",
    "table_pcm_to_alaw",
    "table_pcm_to_ulaw",
    "table_ulaw_to_pcm",
    "ulaw_to_pcm",
]

_ULAW_BIAS = 0x84  # 132: the μ-law bias in 16-bit units (33 in 14-bit units).
_ULAW_CLIP = 8159  # largest encodable 14-bit magnitude before the bias is added.
_PCM_DTYPE = np.dtype("<i2")

if sys.byteorder != "little":  # tables are indexed by the raw little-endian bit pattern
    raise ImportError("callpipe.audio.g711 assumes a little-endian host")


def _all_samples() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its unsigned bit pattern (0..32767, −32768..−1)."""
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _segment(magnitude: npt.NDArray[np.int32], first_top: int) -> npt.NDArray[np.int32]:
    """Segment number 0..8: how many times ``magnitude`` exceeds the doubling boundaries."""
    tops = first_top * (1 << np.arange(8, dtype=np.int32)) + ((1 << np.arange(8)) - 1)
    # tops for μ-law (first_top=0x3F): 0x3F, 0x7F, ..., 0x1FFF; A-law (0x1F): 0x1F ... 0xFFF.
    return np.searchsorted(tops, magnitude, side="left").astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_samples() >> 2  # 14-bit, floor toward −∞ like the reference
    negative = x < 0
    mag = np.where(negative, -x, x)
    mag = np.minimum(mag, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(mag, 0x3F)
    code = (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = ((((u & 0x0F) << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(_PCM_DTYPE)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_samples() >> 3  # 13-bit
    negative = x < 0
    mag = np.where(negative, -x - 1, x)  # one's-complement magnitude for negatives
    seg = _segment(mag, 0x1F)
    shift = np.where(seg < 2, 1, seg)
    code = (np.minimum(seg, 7) << 4) | ((mag >> np.minimum(shift, 7)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)
    mask = np.where(negative, 0x55, 0xD5)
    return (code ^ mask).astype(np.uint8)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a >> 4) & 0x07
    base = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    magnitude = np.where(seg > 1, base << np.maximum(seg - 1, 0), base)
    return np.where(a & 0x80, magnitude, -magnitude).astype(_PCM_DTYPE)


_ULAW_ENCODE = _build_ulaw_encode()
_ULAW_DECODE = _build_ulaw_decode()
_ALAW_ENCODE = _build_alaw_encode()
_ALAW_DECODE = _build_alaw_decode()


_U8 = np.dtype(np.uint8)
_U16 = np.dtype("<u2")

# The public functions are written out (no shared helper) because on a 160-byte packet the
# Python call overhead is a large part of the cost.


def table_ulaw_to_pcm(data: bytes) -> bytes:
    """Decode μ-law bytes to 16-bit PCM (two output bytes per input byte)."""
    return bytes(_ULAW_DECODE.take(np.frombuffer(data, _U8)).tobytes())


def table_pcm_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit PCM to μ-law (one byte per sample)."""
    return bytes(_ULAW_ENCODE.take(np.frombuffer(pcm, _U16, len(pcm) >> 1)).tobytes())


def table_alaw_to_pcm(data: bytes) -> bytes:
    """Decode A-law bytes to 16-bit PCM (two output bytes per input byte)."""
    return bytes(_ALAW_DECODE.take(np.frombuffer(data, _U8)).tobytes())


def table_pcm_to_alaw(pcm: bytes) -> bytes:
    """Encode 16-bit PCM to A-law (one byte per sample)."""
    return bytes(_ALAW_ENCODE.take(np.frombuffer(pcm, _U16, len(pcm) >> 1)).tobytes())


ulaw_to_pcm: Callable[[bytes], bytes]
pcm_to_ulaw: Callable[[bytes], bytes]
alaw_to_pcm: Callable[[bytes], bytes]
pcm_to_alaw: Callable[[bytes], bytes]

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
except ImportError:  # pragma: no cover - audioop-lts is a core dependency on 3.13+
    ulaw_to_pcm, pcm_to_ulaw = table_ulaw_to_pcm, table_pcm_to_ulaw
    alaw_to_pcm, pcm_to_alaw = table_alaw_to_pcm, table_pcm_to_alaw
else:

    def ulaw_to_pcm(data: bytes) -> bytes:
        """Decode μ-law bytes to 16-bit PCM (two output bytes per input byte)."""
        return audioop.ulaw2lin(data, 2)

    def pcm_to_ulaw(pcm: bytes) -> bytes:
        """Encode 16-bit PCM to μ-law (one byte per sample)."""
        return audioop.lin2ulaw(pcm[:-1] if len(pcm) & 1 else pcm, 2)

    def alaw_to_pcm(data: bytes) -> bytes:
        """Decode A-law bytes to 16-bit PCM (two output bytes per input byte)."""
        return audioop.alaw2lin(data, 2)

    def pcm_to_alaw(pcm: bytes) -> bytes:
        """Encode 16-bit PCM to A-law (one byte per sample)."""
        return audioop.lin2alaw(pcm[:-1] if len(pcm) & 1 else pcm, 2)


def ulaw_decoder() -> Callable[[bytes, int], bytes]:
    """The raw ``(data, width) -> pcm`` μ-law decoder behind :func:`ulaw_to_pcm`.

    For per-packet hot paths that want to skip one Python call: ``audioop.ulaw2lin`` itself,
    or the table decoder with the same signature when ``audioop`` is missing. Width must be 2.
    """
    if ulaw_to_pcm is table_ulaw_to_pcm:  # pragma: no cover - audioop-lts is a dependency
        return lambda data, width: table_ulaw_to_pcm(data)
    return audioop.ulaw2lin
