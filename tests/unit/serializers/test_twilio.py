"""TwilioFrameSerializer: Media Streams wire format, audio path, DTMF, marks, bad input."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    StreamStoppedFrame,
    TextFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from callpipe.serializers.base_serializer import FrameSerializerType
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.telephony.twilio import TwilioCallControl

from ._helpers import fixture, handshake, max_abs_diff, samples, tone_8k

MZ = "MZ18ad3ab5a668481ce02b83e7395059f0"
NO_HANGUP = TwilioFrameSerializer.InputParams(auto_hang_up=False)


async def make(rate: int = 8000, **kwargs: object) -> TwilioFrameSerializer:
    ser = TwilioFrameSerializer(MZ, params=NO_HANGUP, **kwargs)  # type: ignore[arg-type]
    await ser.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    return ser


# ---------------------------------------------------------------------------- inbound


async def test_handshake_fixtures_decode_to_frames() -> None:
    ser = await make()
    frames = [await ser.deserialize(m) for m in handshake("twilio")]
    connected, start, media, dtmf, mark, stop = frames
    assert connected is None and start is None
    assert isinstance(media, InputAudioRawFrame)
    assert (media.sample_rate, media.num_channels, len(media.audio)) == (8000, 1, 320)
    # µ-law quantisation error of a 6000-amplitude tone stays well under 2 %.
    assert max_abs_diff(media.audio, tone_8k()) < 200
    assert dtmf == InputDTMFFrame(button=KeypadEntry.POUND)
    assert mark == PlaybackMarkFrame(mark="utterance-1")
    assert isinstance(stop, StreamStoppedFrame)
    assert ser.malformed_counts == {}


async def test_fast_path_and_json_path_agree() -> None:
    compact = fixture("twilio", "media")
    pretty = json.dumps(json.loads(compact), indent=2)
    reordered = json.dumps({"streamSid": MZ, **json.loads(compact)})
    results = []
    for text in (compact, pretty, reordered, compact.encode()):
        ser = await make()
        frame = await ser.deserialize(text)
        assert isinstance(frame, InputAudioRawFrame)
        results.append(frame.audio)
    assert len(set(results)) == 1


async def test_outbound_track_media_is_ignored_quietly() -> None:
    ser = await make()
    message = json.loads(fixture("twilio", "media"))
    message["media"]["track"] = "outbound"
    assert await ser.deserialize(json.dumps(message)) is None
    assert ser.malformed_counts == {}


async def test_pipeline_at_16k_gets_upsampled_audio() -> None:
    ser = await make(16000)
    media = fixture("twilio", "media")
    out = b""
    for _ in range(50):  # one second
        frame = await ser.deserialize(media)
        if frame is not None:
            assert isinstance(frame, InputAudioRawFrame)
            assert frame.sample_rate == 16000
            out += frame.audio
    # 1 s at 8 kHz → about 1 s at 16 kHz, less what the resampler still holds (< 50 ms).
    assert 16000 * 2 * 0.95 <= len(out) <= 16000 * 2


async def test_sample_rate_param_overrides_start_frame() -> None:
    params = TwilioFrameSerializer.InputParams(auto_hang_up=False, sample_rate=8000)
    ser = TwilioFrameSerializer(MZ, params=params)
    await ser.setup(StartFrame(audio_in_sample_rate=16000))
    frame = await ser.deserialize(fixture("twilio", "media"))
    assert isinstance(frame, InputAudioRawFrame) and frame.sample_rate == 8000


@pytest.mark.parametrize("digit", list("0123456789*#"))
async def test_every_dtmf_digit(digit: str) -> None:
    ser = await make()
    message = json.loads(fixture("twilio", "dtmf"))
    message["dtmf"]["digit"] = digit
    assert await ser.deserialize(json.dumps(message)) == InputDTMFFrame(button=KeypadEntry(digit))


# ---------------------------------------------------------------------------- outbound


async def test_media_message_is_byte_exact() -> None:
    ser = await make()
    pcm = tone_8k()
    out = await ser.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=8000))
    assert isinstance(out, str)
    payload = json.loads(out)["media"]["payload"]
    expected = json.dumps({"event": "media", "streamSid": MZ, "media": {"payload": payload}})
    assert out == expected
    assert len(base64.b64decode(payload)) == 160


async def test_clear_mark_and_messages_are_byte_exact() -> None:
    ser = await make()
    assert await ser.serialize(InterruptionFrame()) == json.dumps(
        {"event": "clear", "streamSid": MZ}
    )
    assert ser.serialize_mark('turn "1"') == json.dumps(
        {"event": "mark", "streamSid": MZ, "mark": {"name": 'turn "1"'}}
    )
    msg = {"type": "custom", "value": [1, 2.5, "é"]}
    assert await ser.serialize(TransportMessageFrame(message=msg)) == json.dumps(msg)
    assert await ser.serialize(TransportMessageUrgentFrame(message=msg)) == json.dumps(msg)
    rtvi = {"label": "rtvi-ai", "type": "bot-ready"}
    assert await ser.serialize(TransportMessageFrame(message=rtvi)) is None
    assert await ser.serialize(TransportMessageFrame(message={"x": object()})) is None


async def test_frames_not_sent() -> None:
    ser = await make()
    for frame in (EndFrame(), CancelFrame(), TextFrame(text="hi"), TTSStoppedFrame()):
        assert await ser.serialize(frame) is None


async def test_round_trip_8k() -> None:
    ser = await make()
    pcm = tone_8k()
    wire = await ser.serialize(TTSAudioRawFrame(audio=pcm, sample_rate=8000))
    assert isinstance(wire, str)
    inbound = json.dumps(
        {
            "event": "media",
            "media": {"track": "inbound", "payload": json.loads(wire)["media"]["payload"]},
        }
    )
    frame = await ser.deserialize(inbound)
    assert isinstance(frame, InputAudioRawFrame)
    assert max_abs_diff(frame.audio, pcm) < 200


async def test_output_at_16k_is_resampled_and_flushed_at_utterance_end() -> None:
    ser = await make(16000)
    tone16 = samples(tone_8k()).repeat(2).astype("<i2").tobytes()  # 20 ms at 16 kHz
    total = 0
    for _ in range(25):  # 0.5 s
        out = await ser.serialize(OutputAudioRawFrame(audio=tone16, sample_rate=16000))
        if out is not None:
            total += len(base64.b64decode(json.loads(out)["media"]["payload"]))
    tail = await ser.serialize(TTSStoppedFrame())
    if tail is not None:
        total += len(base64.b64decode(json.loads(tail)["media"]["payload"]))
    # Every input sample comes out (at half the rate) once the tail is flushed.
    assert abs(total - 4000) <= 8


async def test_interruption_resets_output_resampler() -> None:
    ser = await make(16000)
    tone16 = samples(tone_8k()).repeat(2).astype("<i2").tobytes()
    await ser.serialize(OutputAudioRawFrame(audio=tone16, sample_rate=16000))
    assert await ser.serialize(InterruptionFrame()) is not None
    # Nothing held back from before the interruption leaks out afterwards.
    assert await ser.serialize(TTSStoppedFrame()) is None


async def test_stereo_output_is_downmixed() -> None:
    ser = await make()
    mono = tone_8k()
    stereo = samples(mono).repeat(2).astype("<i2").tobytes()
    out = await ser.serialize(OutputAudioRawFrame(audio=stereo, sample_rate=8000, num_channels=2))
    ref = await ser.serialize(OutputAudioRawFrame(audio=mono, sample_rate=8000))
    assert out == ref


# ---------------------------------------------------------------------------- malformed input

MEDIA = json.loads(fixture("twilio", "media"))


def _media_with(payload: object) -> str:
    m = json.loads(json.dumps(MEDIA))
    m["media"]["payload"] = payload
    return json.dumps(m)


MALFORMED = [
    ("invalid_json", "{not json"),
    ("invalid_json", b"\xff\xfe\x00"),
    ("invalid_json", ""),
    ("not_an_object", "[]"),
    ("not_an_object", '"media"'),
    ("not_an_object", "42"),
    ("missing_event", '{"streamSid": "MZ1"}'),
    ("missing_event", '{"event": 5}'),
    ("unknown_event", '{"event": "bogus"}'),
    ("missing_media", '{"event": "media"}'),
    ("missing_media", '{"event": "media", "media": "abc"}'),
    ("missing_payload", '{"event": "media", "media": {}}'),
    ("missing_payload", _media_with("")),
    ("missing_payload", _media_with(123)),
    ("bad_base64", _media_with("abc")),
    ("bad_base64", _media_with("####")),
    ("bad_base64", _media_with("QUJD\u00e9")),
    ("payload_too_large", _media_with("A" * 200_000)),
    ("missing_dtmf", '{"event": "dtmf"}'),
    ("bad_dtmf_digit", '{"event": "dtmf", "dtmf": {"digit": "x"}}'),
    ("bad_dtmf_digit", '{"event": "dtmf", "dtmf": {"digit": "12"}}'),
    ("bad_dtmf_digit", '{"event": "dtmf", "dtmf": {}}'),
    ("missing_mark", '{"event": "mark", "mark": null}'),
    ("missing_mark_name", '{"event": "mark", "mark": {"name": 3}}'),
]


@pytest.mark.parametrize(("kind", "data"), MALFORMED)
async def test_malformed_input_is_counted_and_skipped(kind: str, data: str | bytes) -> None:
    ser = await make(16000)
    assert await ser.deserialize(data) is None
    assert ser.malformed_counts == {kind: 1}
    # The call goes on: good audio still decodes afterwards.
    assert await ser.deserialize(fixture("twilio", "dtmf")) is not None


async def test_malformed_logged_once_per_kind_with_call_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sid = "CA42" + "0" * 28 + "ab"
    ser = TwilioFrameSerializer(MZ, call_sid=sid, params=NO_HANGUP)
    await ser.setup(StartFrame())
    with caplog.at_level(logging.WARNING, logger="callpipe.serializers"):
        for _ in range(5):
            await ser.deserialize("[]")
            await ser.deserialize("{bad")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("CA42…ab" in r.getMessage() for r in warnings)  # the call id, masked
    assert not any(sid in r.getMessage() for r in warnings)
    assert ser.malformed_counts == {"not_an_object": 5, "invalid_json": 5}


# ---------------------------------------------------------------------------- construction


def test_missing_credentials_with_auto_hang_up_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"InputParams\(auto_hang_up=False\)") as err:
        TwilioFrameSerializer(MZ)
    assert isinstance(err.value, ConfigurationError)
    assert "call_sid" in str(err.value) and "account_sid" in str(err.value)
    with pytest.raises(ValueError, match="auth_token"):
        TwilioFrameSerializer(MZ, call_sid="CA1", account_sid="AC1")


def test_without_credentials_and_hang_up_off_there_is_no_call_control() -> None:
    ser = TwilioFrameSerializer(MZ, params=NO_HANGUP)
    assert ser.call_control is None and ser.auto_hang_up is False
    assert ser.type is FrameSerializerType.TEXT


def test_credentials_build_call_control() -> None:
    ser = TwilioFrameSerializer(MZ, "CA1", "AC1", "tok")
    assert ser.auto_hang_up is True
    assert isinstance(ser.call_control, TwilioCallControl)
    assert (
        ser.call_control.call_url == "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls/CA1.json"
    )


def test_region_edge_and_base_url() -> None:
    ser = TwilioFrameSerializer(MZ, "CA1", "AC1", "tok", region="au1", edge="sydney")
    assert isinstance(ser.call_control, TwilioCallControl)
    assert ser.call_control.base_url == "https://api.sydney.au1.twilio.com"
    ser = TwilioFrameSerializer(MZ, "CA1", "AC1", "tok", region="au1", base_url="http://x:1/")
    assert isinstance(ser.call_control, TwilioCallControl)
    assert ser.call_control.base_url == "http://x:1"
    with pytest.raises(ValueError, match="region and edge"):
        TwilioFrameSerializer(MZ, "CA1", "AC1", "tok", region="au1")


def test_api_key_credentials() -> None:
    ser = TwilioFrameSerializer(MZ, "CA1", "AC1", api_key_sid="SK1", api_key_secret="sec")
    assert isinstance(ser.call_control, TwilioCallControl)
    with pytest.raises(ValueError, match="not both"):
        TwilioFrameSerializer(MZ, "CA1", "AC1", "tok", api_key_sid="SK1", api_key_secret="s")
    with pytest.raises(ValueError, match="together"):
        TwilioFrameSerializer(MZ, "CA1", "AC1", api_key_sid="SK1")


async def test_json_escapes_in_payload_take_the_json_path() -> None:
    """``\\/`` is valid JSON for ``/``: the fast path must defer, not count it as bad base64."""
    compact = fixture("twilio", "media")
    payload = json.loads(compact)["media"]["payload"]
    assert "/" in payload or "+" in payload
    escaped = compact.replace("/", "\\/")
    plain = await (await make()).deserialize(compact)
    ser = await make()
    frame = await ser.deserialize(escaped)
    assert isinstance(frame, InputAudioRawFrame) and isinstance(plain, InputAudioRawFrame)
    assert frame.audio == plain.audio and ser.malformed_counts == {}


async def test_fast_path_needs_this_stream_and_exact_tail() -> None:
    compact = fixture("twilio", "media")
    other = TwilioFrameSerializer("MZother", params=NO_HANGUP)
    await other.setup(StartFrame(audio_in_sample_rate=8000))
    assert isinstance(await other.deserialize(compact), InputAudioRawFrame)  # via JSON
    ser = await make()
    assert await ser.deserialize(compact[:-1]) is None  # truncated: invalid JSON
    assert await ser.deserialize(compact + "}") is None
    assert ser.malformed_counts == {"invalid_json": 2}
