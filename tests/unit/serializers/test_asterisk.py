"""Asterisk chan_websocket serializer: every control message of both formats, audio, flow control.

Fixtures are the exact texts of Asterisk's documentation (docs.asterisk.org, "WebSocket" channel
driver page: the plain-text and JSON ``MEDIA_START``, ``STATUS``, ``STOP_MEDIA_BUFFERING``
examples) and of ``channels/chan_websocket.c``'s event formats (``DTMF_END digit:%c
channel_id:%s``, ``MEDIA_MARK_PROCESSED <id>``, ``ERROR channel_id:%s error_text:%s``).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from callpipe.audio import g711
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    TransportMessageFrame,
    TTSStoppedFrame,
)
from callpipe.serializers.asterisk import AsteriskFrameSerializer, ControlFormat, parse_control

CONNECTION = "e226e283-c90a-4ea9-9e37-389000b9ef47"
PLAIN_START = (
    "MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 channel:WebSocket/connectionid"
    " channel_id:pbx1-123456789.999 format:ulaw optimal_frame_size:160 ptime:20"
)
PLAIN_START_2025 = (  # the first releases: no channel_id, no ptime
    "MEDIA_START connection_id:e226e283-c90a-4ea9-9e37-389000b9ef47 channel:WebSocket/connectionid"
    " format:ulaw optimal_frame_size:160"
)
JSON_START = """{
    "event": "MEDIA_START",
    "connection_id": "e226e283-c90a-4ea9-9e37-389000b9ef47",
    "channel": "WebSocket/connectionid",
    "channel_id": "pbx1-123456789.999",
    "format": "ulaw",
    "optimal_frame_size": 160,
    "ptime": 20,
    "channel_variables": {
        "SOME_CHANNEL_VARIABLE": "some value",
        "ANOTHER_CHANNEL_VARIABLE": "some other value"
    }
}"""
PLAIN_STATUS = (
    "STATUS queue_length:43 xon_level:800 xoff_level:900 queue_full:false bulk_media:true"
    " media_paused:false"
)


async def _serializer(
    control: ControlFormat = "plain-text", fmt: str = "ulaw", rate: int = 8000
) -> AsteriskFrameSerializer:
    params = AsteriskFrameSerializer.InputParams(asterisk_format=fmt, control_format=control)
    serializer = AsteriskFrameSerializer("pbx1-123456789.999", params=params)
    await serializer.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    return serializer


# ------------------------------------------------------------------------- parsing events


def test_plain_media_start_parses_every_parameter() -> None:
    assert parse_control(PLAIN_START) == {
        "event": "MEDIA_START",
        "connection_id": CONNECTION,
        "channel": "WebSocket/connectionid",
        "channel_id": "pbx1-123456789.999",
        "format": "ulaw",
        "optimal_frame_size": 160,
        "ptime": 20,
    }
    assert parse_control(PLAIN_START_2025) == {
        "event": "MEDIA_START",
        "connection_id": CONNECTION,
        "channel": "WebSocket/connectionid",
        "format": "ulaw",
        "optimal_frame_size": 160,
    }


def test_json_media_start_is_taken_as_is() -> None:
    message = parse_control(JSON_START)
    assert message is not None and message["optimal_frame_size"] == 160
    assert message["channel_variables"]["SOME_CHANNEL_VARIABLE"] == "some value"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MEDIA_XOFF", {"event": "MEDIA_XOFF"}),
        ("MEDIA_XON", {"event": "MEDIA_XON"}),
        ("QUEUE_DRAINED", {"event": "QUEUE_DRAINED"}),
        ("MEDIA_BUFFERING_COMPLETED", {"event": "MEDIA_BUFFERING_COMPLETED"}),
        (
            "MEDIA_BUFFERING_COMPLETED 61ea9311-d501-46e5-8825-017b342b39f2",
            {
                "event": "MEDIA_BUFFERING_COMPLETED",
                "correlation_id": "61ea9311-d501-46e5-8825-017b342b39f2",
            },
        ),
        (
            "MEDIA_MARK_PROCESSED cp1-2",
            {"event": "MEDIA_MARK_PROCESSED", "correlation_id": "cp1-2"},
        ),
        ("DTMF_END digit:5", {"event": "DTMF_END", "digit": 5}),
        (
            "DTMF_END digit:# channel_id:1761245643.1",
            {"event": "DTMF_END", "digit": "#", "channel_id": "1761245643.1"},
        ),
        (
            PLAIN_STATUS,
            {
                "event": "STATUS",
                "queue_length": 43,
                "xon_level": 800,
                "xoff_level": 900,
                "queue_full": "false",
                "bulk_media": "true",
                "media_paused": "false",
            },
        ),
        (
            "ERROR channel_id:1761245643.1 error_text:Unable to parse JSON command",
            {
                "event": "ERROR",
                "channel_id": "1761245643.1",
                "error_text": "Unable to parse JSON command",
            },
        ),
    ],
)
def test_plain_text_events(text: str, expected: dict[str, object]) -> None:
    assert parse_control(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "HELLO world",
        "media_start connection_id:x",
        "{",
        "[1]",
        '{"command": "X"}',
        "x" * 5000,
    ],
)
def test_what_is_not_an_event(text: str) -> None:
    assert parse_control(text) is None


# -------------------------------------------------------------------------- inbound frames


@pytest.mark.parametrize("control", ["plain-text", "json"])
async def test_dtmf_in_both_formats(control: ControlFormat) -> None:
    serializer = await _serializer(control)
    for text in (
        "DTMF_END digit:5 channel_id:1761245643.1",
        '{"event":"DTMF_END","channel_id":"1761245643.1","digit":"5"}',
    ):
        frame = await serializer.deserialize(text)
        assert isinstance(frame, InputDTMFFrame) and frame.button.value == "5"
    star = await serializer.deserialize("DTMF_END digit:* channel_id:1761245643.1")
    assert isinstance(star, InputDTMFFrame) and star.button.value == "*"


async def test_mark_round_trip_plain_text() -> None:
    serializer = await _serializer()
    assert serializer.supports_marks
    assert serializer.serialize_mark("cp1-3") == "MARK_MEDIA cp1-3"
    frame = await serializer.deserialize("MEDIA_MARK_PROCESSED cp1-3")
    assert isinstance(frame, PlaybackMarkFrame) and frame.mark == "cp1-3"


async def test_mark_round_trip_json() -> None:
    serializer = await _serializer("json")
    command = serializer.serialize_mark("cp1-3")
    assert json.loads(command) == {"command": "MARK_MEDIA", "correlation_id": "cp1-3"}
    assert len(command.encode()) <= 128  # Asterisk ignores longer control messages
    event = '{"event":"MEDIA_MARK_PROCESSED","channel_id":"1761245643.1","correlation_id":"cp1-3"}'
    frame = await serializer.deserialize(event)
    assert isinstance(frame, PlaybackMarkFrame) and frame.mark == "cp1-3"


@pytest.mark.parametrize(
    "text",
    [
        PLAIN_START,
        JSON_START,
        PLAIN_STATUS,
        "QUEUE_DRAINED",
        '{"event":"QUEUE_DRAINED","channel_id":"1761245643.1"}',
        "MEDIA_BUFFERING_COMPLETED 61ea9311-d501-46e5-8825-017b342b39f2",
        '{"event":"STATUS","channel_id":"1","queue_length":0,"xon_level":800,"xoff_level":900,'
        '"queue_full":false,"bulk_media":false,"media_paused":false}',
        "ERROR channel_id:1761245643.1 error_text:FLUSH_MEDIA not supported in passthrough mode",
    ],
)
async def test_informational_events_produce_no_frame_and_count_nothing(text: str) -> None:
    serializer = await _serializer()
    assert await serializer.deserialize(text) is None
    assert serializer.malformed_counts == {}


async def test_caller_audio_in_each_format() -> None:
    pcm = (1000).to_bytes(2, "little", signed=True) * 160
    ulaw = await _serializer()
    frame = await ulaw.deserialize(g711.pcm_to_ulaw(pcm))
    assert isinstance(frame, InputAudioRawFrame) and frame.sample_rate == 8000
    assert frame.audio == g711.ulaw_to_pcm(g711.pcm_to_ulaw(pcm))
    slin16 = await _serializer(fmt="slin16", rate=16000)
    assert slin16.wire_sample_rate == 16000 and slin16.frame_bytes == 640
    wide = (1000).to_bytes(2, "little", signed=True) * 320
    frame = await slin16.deserialize(wide)
    assert isinstance(frame, InputAudioRawFrame) and frame.audio == wide
    alaw = await _serializer(fmt="alaw")
    assert alaw.frame_bytes == 160 and alaw.preferred_10ms_chunks == 2


async def test_bot_audio_is_raw_codec_bytes_in_whole_frames() -> None:
    serializer = await _serializer()
    pcm = (1000).to_bytes(2, "little", signed=True) * 160
    out = await serializer.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=8000))
    assert out == g711.pcm_to_ulaw(pcm)  # 160 bytes: Asterisk's optimal_frame_size
    assert await serializer.serialize(TTSStoppedFrame()) is None  # no resampler, no tail
    resampling = await _serializer(rate=16000)
    await resampling.serialize(OutputAudioRawFrame(audio=pcm * 2, sample_rate=16000))
    tail = await resampling.serialize(TTSStoppedFrame())
    assert tail is None or (isinstance(tail, bytes) and len(tail) % 160 == 0)


def test_unsupported_format_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="opus"):
        AsteriskFrameSerializer("c", AsteriskFrameSerializer.InputParams(asterisk_format="opus"))


# ------------------------------------------------------------------------ outbound control


async def test_barge_in_is_flush_media_in_the_calls_format() -> None:
    assert await (await _serializer()).serialize(InterruptionFrame()) == "FLUSH_MEDIA"
    flush = await (await _serializer("json")).serialize(InterruptionFrame())
    assert json.loads(flush or "") == {"command": "FLUSH_MEDIA"}


async def test_bot_commands_go_out_in_the_calls_format() -> None:
    plain = await _serializer()
    stop = {
        "command": "STOP_MEDIA_BUFFERING",
        "correlation_id": "61ea9311-d501-46e5-8825-017b342b39f2",
    }
    assert await plain.serialize(TransportMessageFrame(message={"command": "ANSWER"})) == "ANSWER"
    assert (
        await plain.serialize(TransportMessageFrame(message=stop))
        == "STOP_MEDIA_BUFFERING 61ea9311-d501-46e5-8825-017b342b39f2"
    )
    json_ser = await _serializer("json")
    out = await json_ser.serialize(TransportMessageFrame(message=stop))
    assert json.loads(out or "") == stop
    assert await plain.serialize(TransportMessageFrame(message={"hello": 1})) is None
    too_long = {"command": "MARK_MEDIA", "correlation_id": "x" * 200}
    assert await plain.serialize(TransportMessageFrame(message=too_long)) is None


async def test_xoff_pauses_audio_until_xon() -> None:
    serializer = await _serializer()
    pcm = b"\x00\x00" * 160
    assert await serializer.deserialize("MEDIA_XOFF") is None
    assert serializer.paused and serializer.xoff_count == 1
    pending = asyncio.ensure_future(
        serializer.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=8000))
    )
    await asyncio.sleep(0.05)
    assert not pending.done(), "audio must wait while Asterisk's queue is full"
    assert serializer.serialize_mark("m") == "MARK_MEDIA m"  # control still flows
    await serializer.deserialize('{"event":"MEDIA_XON","channel_id":"1761245643.1"}')
    assert await asyncio.wait_for(pending, 1) == g711.pcm_to_ulaw(pcm)
    assert not serializer.paused


async def test_flush_releases_a_paused_output_and_drops_the_stale_chunk() -> None:
    serializer = await _serializer()
    await serializer.deserialize("MEDIA_XOFF")
    stale = asyncio.ensure_future(
        serializer.serialize(OutputAudioRawFrame(audio=b"\x00\x00" * 160, sample_rate=8000))
    )
    await asyncio.sleep(0.02)
    assert await serializer.serialize(InterruptionFrame()) == "FLUSH_MEDIA"
    assert not serializer.paused  # Asterisk's queue is empty after a flush
    assert await asyncio.wait_for(stale, 1) is None  # cut by the barge-in, never sent


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01" * 100_000,
        "",
        "not a command",
        "MEDIA_MARK_PROCESSED",
        '{"event":"MEDIA_MARK_PROCESSED","correlation_id":5}',
        "DTMF_END digit:x",
        "DTMF_END",
        '{"event": "DTMF_END", "digit": ["5"]}',
        '{"event": "SURPRISE"}',
        '{"event": 5}',
        "[" * 10_000,
        "{" + '"a":{' * 5000,
        "\x00\xff MEDIA_START",
    ],
)
async def test_bad_input_never_raises(data: str | bytes) -> None:
    for control in ("plain-text", "json"):
        serializer = await _serializer(control)  # type: ignore[arg-type]
        result = await serializer.deserialize(data)
        assert result is None or isinstance(result, InputAudioRawFrame)


async def test_pcm_of_odd_length_is_skipped_and_counted() -> None:
    serializer = await _serializer(fmt="slin", rate=8000)
    assert await serializer.deserialize(b"\x00" * 321) is None
    assert serializer.malformed_counts == {"wrong_payload_size": 1}
