"""AudioSocket codec and serializer: the message kinds of Asterisk's AudioSocket protocol.

Fixtures follow docs.asterisk.org "AudioSocket" (3-byte header: kind, big-endian uint16 length;
``0x00`` hang-up is ``0x00 0x00 0x00``) and ``res/res_audiosocket.c`` (the UUID message is
``0x01 0x00 0x10`` + 16 bytes; audio ``0x10``; DTMF ``0x03`` + one ASCII digit).
"""

from __future__ import annotations

import uuid

import pytest

from callpipe.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
)
from callpipe.serializers.audiosocket import (
    HANGUP_MESSAGE,
    AudioSocketFrameSerializer,
    encode,
    parse_header,
    parse_uuid,
)

CALL = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")
UUID_MESSAGE = b"\x01\x00\x10" + CALL.bytes


async def _serializer(rate: int = 8000) -> AudioSocketFrameSerializer:
    serializer = AudioSocketFrameSerializer()
    await serializer.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    return serializer


def test_codec_matches_the_documented_bytes() -> None:
    assert HANGUP_MESSAGE == encode(0x00) == b"\x00\x00\x00"
    assert encode(0x01, CALL.bytes) == UUID_MESSAGE
    assert encode(0x10, b"\x01\x02" * 160)[:3] == b"\x10\x01\x40"  # 320 bytes, big-endian
    assert parse_header(b"\x10\x01\x40") == (0x10, 320)
    assert parse_header(b"\xff\xff\xff") == (0xFF, 65535)
    assert parse_uuid(CALL.bytes) == str(CALL) and parse_uuid(b"short") is None
    with pytest.raises(ValueError):
        encode(0x10, b"\x00" * 65536)
    with pytest.raises(ValueError):
        parse_header(b"\x10\x00")


async def test_uuid_audio_dtmf_hangup_and_error() -> None:
    serializer = await _serializer()
    assert await serializer.deserialize(UUID_MESSAGE) is None
    assert serializer.call_id == str(CALL)
    pcm = (1000).to_bytes(2, "little", signed=True) * 160
    audio = await serializer.deserialize(encode(0x10, pcm))
    assert isinstance(audio, InputAudioRawFrame) and audio.audio == pcm
    assert audio.sample_rate == 8000
    dtmf = await serializer.deserialize(b"\x03\x00\x01" + b"7")
    assert isinstance(dtmf, InputDTMFFrame) and dtmf.button.value == "7"
    assert isinstance(await serializer.deserialize(HANGUP_MESSAGE), StreamStoppedFrame)
    assert isinstance(await serializer.deserialize(b"\xff\x00\x01\x01"), StreamStoppedFrame)
    assert serializer.malformed_counts == {}


async def test_bot_audio_is_kind_0x10_slin_and_nothing_else_goes_out() -> None:
    serializer = await _serializer(16000)
    pcm16k = b"\x10\x00" * 320
    out = await serializer.serialize(OutputAudioRawFrame(audio=pcm16k, sample_rate=16000))
    assert isinstance(out, bytes) and out[0] == 0x10
    assert parse_header(out[:3])[1] == len(out) - 3  # resampled to 8 kHz
    assert serializer.wire_sample_rate == 8000 and serializer.preferred_10ms_chunks == 2
    assert await serializer.serialize(InterruptionFrame()) is None  # no clear on AudioSocket
    assert await serializer.serialize(TransportMessageFrame(message={"x": 1})) is None
    assert not serializer.supports_marks


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x10",
        "text",
        b"\x10\x00\x05\x00",  # header says 5, payload is 1
        b"\x10\x00\x00",  # audio without payload
        b"\x10\x00\x03\x00\x00\x00",  # odd PCM16
        b"\x03\x00\x02" + b"12",
        b"\x03\x00\x01" + b"x",
        b"\x42\x00\x00",
        b"\x01\x00\x03abc",
    ],
)
async def test_bad_input_never_raises(data: str | bytes) -> None:
    serializer = await _serializer()
    assert await serializer.deserialize(data) is None
    assert serializer.malformed_counts or (isinstance(data, bytes) and data[:1] == b"\x01")


async def test_slin16_kind_switches_both_directions_to_16_khz() -> None:
    serializer = await _serializer(16000)
    wide = (1000).to_bytes(2, "little", signed=True) * 320  # 20 ms at 16 kHz
    frame = await serializer.deserialize(encode(0x11, wide))
    assert isinstance(frame, InputAudioRawFrame) and frame.audio == wide
    assert frame.sample_rate == 16000
    out = await serializer.serialize(OutputAudioRawFrame(audio=wide, sample_rate=16000))
    assert out == encode(0x11, wide)  # answered in the peer's kind and rate, not resampled
