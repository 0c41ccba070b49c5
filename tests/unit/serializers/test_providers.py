"""Telnyx, Plivo, Exotel, Vonage and the generic serializer: the same checks as Twilio's.

Each provider gets its recorded handshake decoded, every outbound message kind compared byte for
byte with ``json.dumps`` of the documented shape, an audio round trip at 8 and 16 kHz, every DTMF
key, and a table of malformed inputs that must be counted and skipped.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    InterruptionFrame,
    KeypadEntry,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
    TTSStoppedFrame,
)
from callpipe.serializers.base_serializer import FrameSerializer, FrameSerializerType
from callpipe.serializers.exotel import ExotelFrameSerializer
from callpipe.serializers.generic import GenericFrameSerializer
from callpipe.serializers.plivo import PlivoFrameSerializer
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.serializers.vonage import VonageFrameSerializer

from ._helpers import fixture, handshake, max_abs_diff, samples, tone_8k

TELNYX_SID = "32DE0DEA-53CB-4B21-89A4-9E1819C043BC"
PLIVO_SID = "87654321-4321-4321-4321-cba987654321"
EXOTEL_SID = "MZ0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b"


def _telnyx(encoding: str = "PCMU") -> TelnyxFrameSerializer:
    params = TelnyxFrameSerializer.InputParams(auto_hang_up=False)
    return TelnyxFrameSerializer(TELNYX_SID, encoding, encoding, params=params)


def _plivo() -> PlivoFrameSerializer:
    params = PlivoFrameSerializer.InputParams(auto_hang_up=False)
    return PlivoFrameSerializer(PLIVO_SID, params=params)


@dataclass
class Provider:
    name: str
    make: Callable[[], FrameSerializer]
    wire_rate: int
    bytes_per_sample: int  # of the wire codec
    handshake: list[type | None]
    media_json: Callable[[str], dict[str, Any]] | None  # payload → outbound media message
    clear: str
    mark: Callable[[str], str]
    inbound_media: Callable[[bytes], str | bytes]  # wire payload → inbound message
    dtmf: Callable[[str], str]


def _json_media(event: str, payload: str, **extra: Any) -> str:
    return json.dumps({"event": event, **extra, "media": {"payload": payload}})


PROVIDERS = [
    Provider(
        "telnyx",
        _telnyx,
        8000,
        1,
        [None, None, InputAudioRawFrame, InputDTMFFrame, PlaybackMarkFrame, None]
        + [StreamStoppedFrame],
        lambda p: {"event": "media", "media": {"payload": p}},
        json.dumps({"event": "clear"}),
        lambda n: json.dumps({"event": "mark", "mark": {"name": n}}),
        lambda b: _json_media("media", base64.b64encode(b).decode()),
        lambda d: json.dumps({"event": "dtmf", "dtmf": {"digit": d}}),
    ),
    Provider(
        "plivo",
        _plivo,
        8000,
        1,
        [None, InputAudioRawFrame, InputDTMFFrame, PlaybackMarkFrame, None],
        lambda p: {
            "event": "playAudio",
            "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": p},
            "streamId": PLIVO_SID,
        },
        json.dumps({"event": "clearAudio", "streamId": PLIVO_SID}),
        lambda n: json.dumps({"event": "checkpoint", "streamId": PLIVO_SID, "name": n}),
        lambda b: _json_media("media", base64.b64encode(b).decode()),
        lambda d: json.dumps({"event": "dtmf", "dtmf": {"digit": d}}),
    ),
    Provider(
        "exotel",
        lambda: ExotelFrameSerializer(EXOTEL_SID),
        8000,
        2,
        [None, None, InputAudioRawFrame, InputDTMFFrame, PlaybackMarkFrame, StreamStoppedFrame],
        lambda p: {"event": "media", "stream_sid": EXOTEL_SID, "media": {"payload": p}},
        json.dumps({"event": "clear", "stream_sid": EXOTEL_SID}),
        lambda n: json.dumps({"event": "mark", "stream_sid": EXOTEL_SID, "mark": {"name": n}}),
        lambda b: _json_media("media", base64.b64encode(b).decode(), stream_sid=EXOTEL_SID),
        lambda d: json.dumps({"event": "dtmf", "dtmf": {"digit": d, "duration": "100"}}),
    ),
    Provider(
        "vonage",
        VonageFrameSerializer,
        16000,
        2,
        [None, InputAudioRawFrame, InputDTMFFrame, PlaybackMarkFrame, None],
        None,
        json.dumps({"action": "clear"}),
        lambda n: json.dumps({"action": "notify", "payload": {"mark": n}}),
        lambda b: b,
        lambda d: json.dumps({"event": "websocket:dtmf", "digit": d, "duration": 250}),
    ),
    Provider(
        "generic",
        GenericFrameSerializer,
        16000,
        2,
        [],
        None,
        json.dumps({"type": "clear"}),
        lambda n: json.dumps({"type": "mark", "name": n}),
        lambda b: b,
        lambda d: json.dumps({"type": "dtmf", "digit": d}),
    ),
]
BY_NAME = {p.name: p for p in PROVIDERS}
IDS = [p.name for p in PROVIDERS]


async def setup(provider: Provider, rate: int | None = None) -> FrameSerializer:
    ser = provider.make()
    rate = rate or provider.wire_rate
    await ser.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    return ser


def tone(rate: int, ms: int = 20) -> bytes:
    """The fixture tone at ``rate`` (repeated/decimated from the 8 kHz source)."""
    base = samples(tone_8k())
    if rate == 16000:
        t = np.arange(len(base) * 2) / 16000
        return np.round(6000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    assert rate == 8000
    return base.astype("<i2").tobytes()


def payload_of(provider: Provider, wire: str | bytes) -> bytes:
    if isinstance(wire, bytes):
        return wire
    message = json.loads(wire)
    return base64.b64decode(message["media"]["payload"])


# ---------------------------------------------------------------------------- inbound


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p.handshake], ids=lambda p: p.name)
async def test_handshake_fixtures_decode_to_frames(provider: Provider) -> None:
    ser = await setup(provider)
    frames = [await ser.deserialize(m) for m in handshake(provider.name)]
    assert [type(f) if f is not None else None for f in frames] == provider.handshake
    for frame in frames:
        if isinstance(frame, InputAudioRawFrame):
            assert frame.sample_rate == provider.wire_rate
            expected = tone(provider.wire_rate)
            assert max_abs_diff(frame.audio, expected) < 200
        elif isinstance(frame, PlaybackMarkFrame):
            assert frame.mark == "utterance-1"
    assert ser.malformed_counts == {}


def test_fixture_dtmf_digits() -> None:
    assert json.loads(fixture("telnyx", "dtmf"))["dtmf"]["digit"] == "*"


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("digit", list("0123456789*#"))
async def test_every_dtmf_digit(provider: Provider, digit: str) -> None:
    ser = await setup(provider)
    frame = await ser.deserialize(provider.dtmf(digit))
    assert frame == InputDTMFFrame(button=KeypadEntry(digit))


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
@pytest.mark.parametrize("pipeline_rate", [8000, 16000])
async def test_audio_round_trip(provider: Provider, pipeline_rate: int) -> None:
    """Pipeline PCM → wire → pipeline PCM, over 0.5 s of tone, at 8 and 16 kHz pipelines."""
    ser = await setup(provider, pipeline_rate)
    pcm = tone(pipeline_rate)
    sent = b""
    received = b""
    for _ in range(25):
        wire = await ser.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=pipeline_rate))
        if wire is None:
            continue
        sent += pcm
        frame = await ser.deserialize(provider.inbound_media(payload_of(provider, wire)))
        if frame is not None:
            assert isinstance(frame, InputAudioRawFrame)
            assert frame.sample_rate == pipeline_rate
            received += frame.audio
    assert len(received) >= 0.85 * len(pcm) * 25
    if provider.wire_rate == pipeline_rate:
        # No resampling: exact for PCM16, within G.711 quantisation otherwise.
        limit = 0 if provider.bytes_per_sample == 2 else 200
        assert max_abs_diff(received, pcm * 25) <= limit
    else:
        # Resampled twice: compare the steady middle by level and frequency.
        x = samples(received)[len(received) // 4 :]
        level = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
        assert 0.8 * 6000 / np.sqrt(2) < level < 1.2 * 6000 / np.sqrt(2)
        spectrum = np.abs(np.fft.rfft(x))
        peak_hz = np.argmax(spectrum) * pipeline_rate / len(x)
        assert abs(peak_hz - 440) < 20


# ---------------------------------------------------------------------------- outbound


@pytest.mark.parametrize("provider", PROVIDERS, ids=IDS)
async def test_outbound_messages_are_byte_exact(provider: Provider) -> None:
    ser = await setup(provider)
    pcm = tone(provider.wire_rate)
    wire = await ser.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=provider.wire_rate))
    assert wire is not None
    if provider.media_json is None:
        assert wire == pcm  # binary PCM16, untouched
    else:
        assert isinstance(wire, str)
        payload = json.loads(wire)["media"]["payload"]
        assert wire == json.dumps(provider.media_json(payload))
        assert len(base64.b64decode(payload)) == len(pcm) // 2 * provider.bytes_per_sample
    assert await ser.serialize(InterruptionFrame()) == provider.clear
    assert ser.serialize_mark("turn-1") == provider.mark("turn-1")
    assert ser.serialize_mark('q"é') == provider.mark('q"é')
    message = {"kind": "note", "n": [1, 2]}
    assert await ser.serialize(TransportMessageFrame(message=message)) == json.dumps(message)
    for frame in (EndFrame(), CancelFrame(), TTSStoppedFrame()):
        assert await ser.serialize(frame) is None


async def test_binary_dialects_report_binary_type() -> None:
    assert VonageFrameSerializer().type is FrameSerializerType.BINARY
    assert GenericFrameSerializer().type is FrameSerializerType.BINARY
    assert ExotelFrameSerializer("x").type is FrameSerializerType.TEXT


# ---------------------------------------------------------------------------- provider specifics


async def test_telnyx_pcma_and_split_codecs() -> None:
    ser = _telnyx("PCMA")
    await ser.setup(StartFrame(audio_in_sample_rate=8000))
    frame = await ser.deserialize(fixture("telnyx/pcma", "media"))
    assert isinstance(frame, InputAudioRawFrame)
    assert max_abs_diff(frame.audio, tone(8000)) < 200
    # Receive PCMA (Telnyx "outbound") and send PCMU (Telnyx "inbound"):
    params = TelnyxFrameSerializer.InputParams(auto_hang_up=False)
    split = TelnyxFrameSerializer(TELNYX_SID, "PCMA", "PCMU", params=params)
    await split.setup(StartFrame(audio_in_sample_rate=8000))
    out = await split.serialize(OutputAudioRawFrame(audio=tone(8000), sample_rate=8000))
    ulaw = payload_of(BY_NAME["telnyx"], out or "")
    pcmu = await _telnyx("PCMU").serialize(OutputAudioRawFrame(audio=tone(8000), sample_rate=8000))
    assert ulaw == payload_of(BY_NAME["telnyx"], pcmu or "")
    assert params.inbound_encoding == "PCMU" and params.outbound_encoding == "PCMU"


async def test_telnyx_unsupported_encodings() -> None:
    params = TelnyxFrameSerializer.InputParams(auto_hang_up=False)
    ser = TelnyxFrameSerializer(TELNYX_SID, "G722", "PCMU", params=params)
    await ser.setup(StartFrame(audio_in_sample_rate=8000))
    assert await ser.deserialize(fixture("telnyx", "media")) is None
    assert await ser.deserialize(fixture("telnyx", "media")) is None
    assert ser.malformed_counts == {"unsupported_encoding": 2}
    assert await ser.deserialize(fixture("telnyx", "dtmf")) is not None
    with pytest.raises(ValueError, match="inbound_encoding"):
        TelnyxFrameSerializer(TELNYX_SID, "PCMU", "OPUS", params=params)


def test_telnyx_and_plivo_credentials() -> None:
    with pytest.raises(ValueError, match="call_control_id, api_key") as err:
        TelnyxFrameSerializer(TELNYX_SID, "PCMU", "PCMU")
    assert "InputParams(auto_hang_up=False)" in str(err.value)
    ser = TelnyxFrameSerializer(TELNYX_SID, "PCMU", "PCMU", "v3:cc", "KEY")
    assert ser.call_control is not None and ser.auto_hang_up
    with pytest.raises(ValueError, match="call_id, auth_id, auth_token"):
        PlivoFrameSerializer(PLIVO_SID)
    plivo = PlivoFrameSerializer(PLIVO_SID, "uuid-1", "MA1", "tok")
    assert plivo.call_control is not None and plivo.auto_hang_up
    exotel = ExotelFrameSerializer(EXOTEL_SID, "CA1")
    assert exotel.call_control is None and not exotel.auto_hang_up


async def test_plivo_empty_dtmf_digit_is_ignored_quietly() -> None:
    ser = await setup(BY_NAME["plivo"])
    assert await ser.deserialize('{"event": "dtmf", "dtmf": {"digit": ""}}') is None
    assert ser.malformed_counts == {}


async def test_exotel_stop_reason() -> None:
    ser = await setup(BY_NAME["exotel"])
    frame = await ser.deserialize(fixture("exotel", "stop"))
    assert frame == StreamStoppedFrame(reason="callended")


async def test_exotel_fast_path_matches_json_path() -> None:
    compact = fixture("exotel", "media")
    out = []
    for text in (compact, json.dumps(json.loads(compact), indent=1)):
        ser = await setup(BY_NAME["exotel"])
        frame = await ser.deserialize(text)
        assert isinstance(frame, InputAudioRawFrame)
        out.append(frame.audio)
    assert out[0] == out[1]


async def test_vonage_adopts_rate_from_connected_and_nested_dtmf() -> None:
    ser = VonageFrameSerializer()
    await ser.setup(StartFrame(audio_in_sample_rate=16000))
    connected = json.dumps({"event": "websocket:connected", "content-type": "audio/l16;rate=8000"})
    assert await ser.deserialize(connected) is None
    frames = [await ser.deserialize(tone(8000)) for _ in range(10)]  # 8 kHz in
    audio = [f for f in frames if f is not None]
    assert all(isinstance(f, InputAudioRawFrame) and f.sample_rate == 16000 for f in audio)
    total = sum(len(f.audio) for f in audio if isinstance(f, InputAudioRawFrame))
    assert 0.8 * 10 * 640 <= total <= 10 * 640  # upsampled 2x
    nested = json.dumps({"event": "websocket:dtmf", "dtmf": {"digit": "#", "duration": 100}})
    assert await ser.deserialize(nested) == InputDTMFFrame(button=KeypadEntry.POUND)
    assert await ser.deserialize('{"event": "websocket:notify", "payload": {}}') is None


async def test_generic_messages_and_stop() -> None:
    ser = await setup(BY_NAME["generic"])
    frame = await ser.deserialize('{"type": "hello", "who": "browser"}')
    assert frame == InputTransportMessageFrame(message={"type": "hello", "who": "browser"})
    assert await ser.deserialize('{"type": "mark", "name": "m1"}') == PlaybackMarkFrame(mark="m1")
    assert isinstance(await ser.deserialize('{"type": "stop"}'), StreamStoppedFrame)
    rtvi = {"label": "rtvi-ai", "type": "bot-ready"}
    assert await ser.serialize(TransportMessageFrame(message=rtvi)) == json.dumps(rtvi)


# ---------------------------------------------------------------------------- malformed input

_JSON_COMMON = [
    ("invalid_json", "{nope"),
    ("invalid_json", ""),
    ("not_an_object", "[]"),
    ("not_an_object", "null"),
    ("not_an_object", '"x"'),
]

MALFORMED: dict[str, list[tuple[str, str | bytes]]] = {
    "telnyx": _JSON_COMMON
    + [
        ("missing_event", "{}"),
        ("unknown_event", '{"event": "bogus"}'),
        ("missing_media", '{"event": "media"}'),
        ("missing_payload", '{"event": "media", "media": {"payload": ""}}'),
        ("bad_base64", '{"event": "media", "media": {"payload": "abc"}}'),
        ("bad_dtmf_digit", '{"event": "dtmf", "dtmf": {"digit": "?"}}'),
        ("missing_mark_name", '{"event": "mark", "mark": {}}'),
    ],
    "plivo": _JSON_COMMON
    + [
        ("missing_event", '{"sequenceNumber": 1}'),
        ("unknown_event", '{"event": "stopp"}'),
        ("missing_media", '{"event": "media", "media": []}'),
        ("bad_base64", '{"event": "media", "media": {"payload": "@@@@"}}'),
        ("bad_dtmf_digit", '{"event": "dtmf", "dtmf": {"digit": "55"}}'),
        ("missing_dtmf", '{"event": "dtmf"}'),
        ("missing_mark_name", '{"event": "playedStream"}'),
    ],
    "exotel": _JSON_COMMON
    + [
        ("unknown_event", '{"event": "Media"}'),
        ("wrong_payload_size", '{"event": "media", "media": {"payload": "AAAA"}}'),
        ("missing_payload", '{"event": "media", "media": {"payload": null}}'),
        ("bad_dtmf_digit", '{"event": "dtmf", "dtmf": {"digit": null}}'),
    ],
    "vonage": _JSON_COMMON
    + [
        ("wrong_payload_size", b"\x00\x01\x02"),
        ("missing_payload", b""),
        ("payload_too_large", bytes(200_000)),
        ("unknown_event", '{"event": "websocket:bogus"}'),
        ("missing_event", '{"digit": "1"}'),
        ("bad_dtmf_digit", '{"event": "websocket:dtmf"}'),
    ],
    "generic": _JSON_COMMON
    + [
        ("wrong_payload_size", b"\x01"),
        ("bad_dtmf_digit", '{"type": "dtmf", "digit": "Z"}'),
        ("missing_mark_name", '{"type": "mark"}'),
    ],
}
CASES = [(name, kind, data) for name, rows in MALFORMED.items() for kind, data in rows]


@pytest.mark.parametrize(("name", "kind", "data"), CASES)
async def test_malformed_input_is_counted_and_skipped(
    name: str, kind: str, data: str | bytes
) -> None:
    provider = BY_NAME[name]
    ser = await setup(provider, 16000)
    assert await ser.deserialize(data) is None
    assert ser.malformed_counts == {kind: 1}
    assert await ser.deserialize(provider.dtmf("1")) == InputDTMFFrame(button=KeypadEntry.ONE)
