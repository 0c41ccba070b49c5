"""G.711 is checked exhaustively against the stdlib ``audioop`` reference (every input and code)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from callpipe.audio import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

ALL_PCM = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_CODES = bytes(range(256))


def test_public_codecs_equal_the_tables_everywhere() -> None:
    assert g711.pcm_to_ulaw(ALL_PCM) == g711.table_pcm_to_ulaw(ALL_PCM)
    assert g711.pcm_to_alaw(ALL_PCM) == g711.table_pcm_to_alaw(ALL_PCM)
    assert g711.ulaw_to_pcm(ALL_CODES) == g711.table_ulaw_to_pcm(ALL_CODES)
    assert g711.alaw_to_pcm(ALL_CODES) == g711.table_alaw_to_pcm(ALL_CODES)


def test_ulaw_encode_every_sample_matches_reference() -> None:
    assert g711.table_pcm_to_ulaw(ALL_PCM) == audioop.lin2ulaw(ALL_PCM, 2)


def test_alaw_encode_every_sample_matches_reference() -> None:
    assert g711.table_pcm_to_alaw(ALL_PCM) == audioop.lin2alaw(ALL_PCM, 2)


def test_ulaw_decode_every_code_matches_reference() -> None:
    assert g711.table_ulaw_to_pcm(ALL_CODES) == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_every_code_matches_reference() -> None:
    assert g711.table_alaw_to_pcm(ALL_CODES) == audioop.alaw2lin(ALL_CODES, 2)


@pytest.mark.parametrize(
    ("encode", "decode"),
    [
        (g711.pcm_to_ulaw, g711.ulaw_to_pcm),
        (g711.pcm_to_alaw, g711.alaw_to_pcm),
        (g711.table_pcm_to_ulaw, g711.table_ulaw_to_pcm),
        (g711.table_pcm_to_alaw, g711.table_alaw_to_pcm),
    ],
)
def test_codes_survive_decode_then_encode(encode, decode) -> None:  # type: ignore[no-untyped-def]
    # Every code decodes to a value that encodes back to the same code, except μ-law's
    # "negative zero" 0x7F which decodes to 0 and re-encodes as positive zero 0xFF.
    back = encode(decode(ALL_CODES))
    differing = {c for c, b in zip(ALL_CODES, back, strict=True) if c != b}
    assert differing <= {0x7F}


def test_known_values() -> None:
    # Silence is 0xFF in μ-law and 0xD5 in A-law on real phone lines.
    assert g711.pcm_to_ulaw(b"\x00\x00") == b"\xff"
    assert g711.pcm_to_alaw(b"\x00\x00") == b"\xd5"
    assert g711.ulaw_to_pcm(b"\x00") == np.array([-32124], dtype="<i2").tobytes()
    assert g711.alaw_to_pcm(b"\x55") == np.array([-8], dtype="<i2").tobytes()


def test_empty_and_odd_input() -> None:
    assert g711.ulaw_to_pcm(b"") == b""
    assert g711.pcm_to_ulaw(b"") == b""
    assert g711.pcm_to_ulaw(b"\x01") == b""
    assert g711.pcm_to_alaw(b"\x00\x00\x01") == b"\xd5"


def test_accepts_bytearray_and_memoryview() -> None:
    pcm = np.array([1000, -1000], dtype="<i2").tobytes()
    assert g711.pcm_to_ulaw(bytearray(pcm)) == g711.pcm_to_ulaw(pcm)
    assert g711.ulaw_to_pcm(memoryview(b"\x10\x90")) == g711.ulaw_to_pcm(b"\x10\x90")
