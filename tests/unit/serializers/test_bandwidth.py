"""Bandwidth's media-stream serializer: the documented messages in, ``playAudio``/``clear`` out.

Inbound fixtures (tests/fixtures/providers/bandwidth) carry the fields Bandwidth's
``<StartStream>`` page lists for its "Websocket Packet Format"; outbound messages are compared
byte for byte with the shapes Bandwidth's own Pipecat serializer sends.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
    TTSStoppedFrame,
)
from callpipe.serializers.bandwidth import BandwidthFrameSerializer, pcm_content_type
from callpipe.telephony.bandwidth import BandwidthCallControl

from ._helpers import fixture, handshake, max_abs_diff, samples, tone_8k

STREAM = "s-95ac90b3-bfc81595-35fc-4b64-8265-fab6855b74a2"
CALL = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-51633ec68f8d"
NO_HANG_UP = BandwidthFrameSerializer.InputParams(auto_hang_up=False)


async def _ready(
    params: BandwidthFrameSerializer.InputParams = NO_HANG_UP, rate: int = 8000
) -> BandwidthFrameSerializer:
    ser = BandwidthFrameSerializer(STREAM, CALL, params=params)
    await ser.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    return ser


async def test_fixtures_decode_start_media_stop() -> None:
    ser = await _ready()
    frames = [await ser.deserialize(m) for m in handshake("bandwidth")]
    assert frames[0] is None
    audio = frames[1]
    assert isinstance(audio, InputAudioRawFrame) and audio.sample_rate == 8000
    assert max_abs_diff(audio.audio, tone_8k()) < 200
    assert isinstance(frames[2], StreamStoppedFrame)
    assert ser.malformed_counts == {}


async def test_outbound_track_is_not_the_caller() -> None:
    ser = await _ready()
    media = json.loads(fixture("bandwidth", "media"))
    assert await ser.deserialize(json.dumps({**media, "track": "outbound"})) is None
    assert ser.malformed_counts == {}


async def test_outbound_messages_are_byte_exact() -> None:
    ser = await _ready()
    wire = await ser.serialize(OutputAudioRawFrame(audio=tone_8k(), sample_rate=8000))
    assert isinstance(wire, str)
    payload = json.loads(wire)["media"]["payload"]
    media = {"contentType": "audio/pcmu", "payload": payload}
    assert wire == json.dumps({"eventType": "playAudio", "media": media})
    assert len(base64.b64decode(payload)) == 160
    assert await ser.serialize(InterruptionFrame()) == json.dumps({"eventType": "clear"})
    assert ser.supports_marks is False and ser.serialize_mark("m1") is None
    note = {"kind": "note"}
    assert await ser.serialize(TransportMessageFrame(message=note)) == json.dumps(note)
    for frame in (EndFrame(), CancelFrame(), TTSStoppedFrame()):
        assert await ser.serialize(frame) is None
    assert ser.wire_sample_rate == 8000


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
async def test_pcm_outbound_at_its_own_rate(rate: int) -> None:
    params = BandwidthFrameSerializer.InputParams(
        auto_hang_up=False, outbound_encoding="PCM", outbound_pcm_sample_rate=rate
    )
    ser = await _ready(params, rate=16000)
    assert ser.wire_sample_rate == rate  # the transport resamples the bot straight to it
    pcm = np.round(6000 * np.sin(2 * np.pi * 440 * np.arange(rate // 50) / rate)).astype("<i2")
    wire = await ser.serialize(OutputAudioRawFrame(audio=pcm.tobytes(), sample_rate=rate))
    assert isinstance(wire, str)
    message = json.loads(wire)
    assert message["media"]["contentType"] == pcm_content_type(rate)
    assert message["media"]["contentType"].startswith(f"audio/pcm;rate={rate};")
    assert base64.b64decode(message["media"]["payload"]) == pcm.tobytes()  # untouched
    # A frame at another rate is resampled to the PCM rate; the caller's side stays µ-law 8 kHz.
    tone = np.round(6000 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)).astype("<i2")
    sent = b""
    for chunk in np.split(tone, 5):  # 5 frames of 20 ms at 16 kHz
        out = await ser.serialize(OutputAudioRawFrame(audio=chunk.tobytes(), sample_rate=16000))
        if out is not None:
            sent += base64.b64decode(json.loads(out)["media"]["payload"])
    if rate == 16000:
        assert sent == tone.tobytes()  # already at the PCM rate: untouched
    else:
        expected = 5 * (rate // 50) * 2  # 100 ms at the PCM rate, 16-bit
        # The resampler may hold back up to a frame (20 ms) for the next one, never more.
        assert expected - rate // 50 * 2 <= len(sent) <= expected
    assert await ser.serialize(InterruptionFrame()) == '{"eventType": "clear"}'
    inbound = await ser.deserialize(fixture("bandwidth", "media"))
    assert isinstance(inbound, InputAudioRawFrame) and inbound.sample_rate == 16000


async def test_audio_round_trip_at_a_16k_pipeline() -> None:
    ser = await _ready(rate=16000)
    t = np.arange(320) / 16000
    pcm = np.round(6000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    received = b""
    for _ in range(25):
        wire = await ser.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=16000))
        if wire is None:
            continue
        payload = json.loads(wire)["media"]["payload"]
        inbound = json.dumps({"eventType": "media", "track": "inbound", "payload": payload})
        frame = await ser.deserialize(inbound)
        if isinstance(frame, InputAudioRawFrame):
            received += frame.audio
    x = samples(received)[len(received) // 4 :]
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 16000 / len(x) - 440) < 20


MALFORMED: list[tuple[str, str | bytes]] = [
    ("invalid_json", "{nope"),
    ("invalid_json", b"\xff\xfe"),
    ("not_an_object", "[]"),
    ("missing_event", '{"event": "media"}'),
    ("unknown_event", '{"eventType": "playAudio"}'),
    ("missing_payload", '{"eventType": "media", "track": "inbound"}'),
    ("missing_payload", '{"eventType": "media", "payload": ""}'),
    ("bad_base64", '{"eventType": "media", "payload": "@@@"}'),
    ("bad_track", '{"eventType": "media", "track": 5, "payload": "AAAA"}'),
    ("payload_too_large", json.dumps({"eventType": "media", "payload": "A" * 200_000})),
]


@pytest.mark.parametrize(("kind", "data"), MALFORMED, ids=[k for k, _ in MALFORMED])
async def test_malformed_input_is_counted_and_skipped(kind: str, data: str | bytes) -> None:
    ser = await _ready()
    assert await ser.deserialize(data) is None
    assert ser.malformed_counts == {kind: 1}
    assert isinstance(await ser.deserialize(fixture("bandwidth", "media")), InputAudioRawFrame)


def test_pipecat_constructor_and_params() -> None:
    """Pipecat's ``BandwidthFrameSerializer(stream_id, call_id, account_id, client_id,
    client_secret, params)`` and its InputParams names."""
    ser = BandwidthFrameSerializer(STREAM, CALL, "55555555", "client", "secret")
    assert ser.auto_hang_up and isinstance(ser.call_control, BandwidthCallControl)
    assert ser.call_control.call_url == (
        f"https://voice.bandwidth.com/api/v2/accounts/55555555/calls/{CALL}"
    )
    assert ser.call_id == CALL and ser.stream_id == STREAM
    params = BandwidthFrameSerializer.InputParams(
        bandwidth_sample_rate=8000, sample_rate=16000, outbound_encoding="PCMU", auto_hang_up=True
    )
    assert BandwidthFrameSerializer(STREAM, CALL, "1", "c", "s", params).auto_hang_up
    legacy = BandwidthFrameSerializer(STREAM, CALL, "1", username="api-user", password="pw")
    assert isinstance(legacy.call_control, BandwidthCallControl)


def test_missing_credentials_are_named() -> None:
    with pytest.raises(ConfigurationError, match="account_id, client_id, client_secret") as err:
        BandwidthFrameSerializer(STREAM, CALL)
    assert "InputParams(auto_hang_up=False)" in str(err.value)
    quiet = BandwidthFrameSerializer(STREAM, CALL, params=NO_HANG_UP)
    assert quiet.call_control is None and not quiet.auto_hang_up


@pytest.mark.parametrize(
    ("update", "match"),
    [
        ({"outbound_encoding": "OPUS"}, "outbound_encoding"),
        ({"outbound_encoding": "PCM", "outbound_pcm_sample_rate": 44100}, "outbound_pcm_sample"),
    ],
)
def test_bad_params_are_configuration_errors(update: dict[str, object], match: str) -> None:
    params = NO_HANG_UP.model_copy(update=update)
    with pytest.raises(ConfigurationError, match=match):
        BandwidthFrameSerializer(STREAM, params=params)


@pytest.mark.parametrize("bad", ["c-1/../../x", "c-1?x=1", "c 1", "c-1#f", "%2e%2e"])
def test_ids_that_would_change_the_rest_url_are_refused(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="not a Bandwidth id"):
        BandwidthFrameSerializer(STREAM, bad, params=NO_HANG_UP)
    with pytest.raises(ConfigurationError, match="not a Bandwidth id"):
        BandwidthFrameSerializer(STREAM, CALL, bad, "c", "s")
