"""The simulator speaks each provider's dialect exactly: its messages have the shape of the
provider fixtures (tests/fixtures/providers), and it understands callpipe's serializers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from callpipe.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    StreamStoppedFrame,
)
from callpipe.testing.simulator import CallIdentity, ServerEvent, make_dialect
from callpipe.testing.simulator.dialects import TelnyxDialect
from callpipe.testing.virtual_calls import virtual_time

FIXTURES = Path(__file__).parents[2] / "fixtures" / "providers"
TONE = (FIXTURES / "tone_440hz_20ms_8k.pcm").read_bytes()


def fixture(provider: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / provider / name).read_text())
    return loaded


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what a parser depends on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


# (provider, fixture file, how the simulator builds the same message)
CASES: list[tuple[str, str, Any]] = [
    ("twilio", "01_connected.json", lambda d: d.handshake()[0]),
    ("twilio", "02_start.json", lambda d: d.handshake()[1]),
    ("twilio", "03_media.json", lambda d: d.media(TONE, 0)),
    ("twilio", "04_dtmf.json", lambda d: d.dtmf("#")),
    ("twilio", "05_mark.json", lambda d: d.mark_ack(ServerEvent("mark", name="utterance-1"))),
    ("twilio", "06_stop.json", lambda d: d.stop()),
    ("telnyx", "01_connected.json", lambda d: d.handshake()[0]),
    ("telnyx", "02_start.json", lambda d: d.handshake()[1]),
    ("telnyx", "03_media.json", lambda d: d.media(TONE, 0)),
    ("telnyx", "04_dtmf.json", lambda d: d.dtmf("*")),
    ("telnyx", "05_mark.json", lambda d: d.mark_ack(ServerEvent("mark", name="utterance-1"))),
    ("telnyx", "07_stop.json", lambda d: d.stop()),
    ("plivo", "01_start.json", lambda d: d.handshake()[0]),
    ("plivo", "02_media.json", lambda d: d.media(TONE, 0)),
    ("plivo", "03_dtmf.json", lambda d: d.dtmf("7")),
    ("plivo", "04_playedStream.json", lambda d: d.mark_ack(ServerEvent("mark", name="u"))),
    ("plivo", "05_clearedAudio.json", lambda d: d.clear_ack()),
    ("exotel", "01_connected.json", lambda d: d.handshake()[0]),
    ("exotel", "02_start.json", lambda d: d.handshake()[1]),
    ("exotel", "03_media.json", lambda d: d.media(TONE, 0)),
    ("exotel", "04_dtmf.json", lambda d: d.dtmf("5")),
    ("exotel", "05_mark.json", lambda d: d.mark_ack(ServerEvent("mark", name="utterance-1"))),
    ("exotel", "06_stop.json", lambda d: d.stop()),
    ("vonage", "03_websocket_dtmf.json", lambda d: d.dtmf("9")),
    (
        "vonage",
        "04_websocket_notify.json",
        lambda d: d.mark_ack(ServerEvent("mark", name="x", ack={"mark": "utterance-1"})),
    ),
    ("vonage", "05_websocket_cleared.json", lambda d: d.clear_ack()),
]


@pytest.mark.parametrize(
    ("provider", "name", "build"), CASES, ids=[f"{p}-{n}" for p, n, _ in CASES]
)
def test_messages_have_the_fixture_shape(provider: str, name: str, build: Any) -> None:
    identity = CallIdentity(custom_parameters={"tenant": "demo"})
    if provider == "plivo":
        identity.custom_parameters = {}
    sent = json.loads(build(make_dialect(provider, identity)))
    assert shape(sent) == shape(fixture(provider, name))


def test_vonage_connected_and_binary_media() -> None:
    dialect = make_dialect("vonage")
    connected = json.loads(dialect.handshake()[0])
    assert connected["event"] == "websocket:connected"
    assert connected["content-type"] == "audio/l16;rate=16000"
    media = dialect.media(b"\x01\x00" * 320, 0)
    assert isinstance(media, bytes)
    assert len(media) == len((FIXTURES / "vonage" / "02_media.bin").read_bytes()) == 640


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo", "exotel"])
def test_media_payload_is_the_fixture_payload_bit_for_bit(provider: str) -> None:
    """Same 20 ms tone in → the same encoded payload as the provider fixture."""
    name = {"twilio": "03_media.json", "telnyx": "03_media.json"}.get(provider)
    name = name or {"plivo": "02_media.json", "exotel": "03_media.json"}[provider]
    sent = json.loads(make_dialect(provider).media(TONE, 0))
    assert sent["media"]["payload"] == fixture(provider, name)["media"]["payload"]


def test_telnyx_pcma_payload_matches_fixture() -> None:
    sent = json.loads(TelnyxDialect(encoding="PCMA").media(TONE, 0))
    assert sent["media"]["payload"] == fixture("telnyx", "pcma/03_media.json")["media"]["payload"]
    assert (
        json.loads(TelnyxDialect(encoding="PCMA").handshake()[1])["start"]["media_format"][
            "encoding"
        ]
        == "PCMA"
    )


def test_sequence_numbers_and_chunks_count_up() -> None:
    dialect = make_dialect("twilio")
    dialect.handshake()
    first, second = (json.loads(dialect.media(TONE, t)) for t in (0, 20))
    assert int(first["sequenceNumber"]) == 2 and int(second["sequenceNumber"]) == 3
    assert (first["media"]["chunk"], second["media"]["chunk"]) == ("1", "2")
    assert (first["media"]["timestamp"], second["media"]["timestamp"]) == ("0", "20")


@pytest.mark.parametrize(
    ("provider", "audio", "clear", "mark", "expected_name"),
    [
        (
            "twilio",
            {"event": "media", "streamSid": "MZ1", "media": {"payload": "//8="}},
            {"event": "clear", "streamSid": "MZ1"},
            {"event": "mark", "streamSid": "MZ1", "mark": {"name": "a"}},
            "a",
        ),
        (
            "telnyx",
            {"event": "media", "media": {"payload": "//8="}},
            {"event": "clear"},
            {"event": "mark", "mark": {"name": "a"}},
            "a",
        ),
        (
            "plivo",
            {
                "event": "playAudio",
                "media": {"contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": "//8="},
                "streamId": "s",
            },
            {"event": "clearAudio", "streamId": "s"},
            {"event": "checkpoint", "streamId": "s", "name": "a"},
            "a",
        ),
        (
            "exotel",
            {"event": "media", "stream_sid": "s", "media": {"payload": "AAAAAA=="}},
            {"event": "clear", "stream_sid": "s"},
            {"event": "mark", "stream_sid": "s", "mark": {"name": "a"}},
            "a",
        ),
    ],
)
def test_parses_bot_messages(
    provider: str, audio: Any, clear: Any, mark: Any, expected_name: str
) -> None:
    dialect = make_dialect(provider)
    got = dialect.parse(json.dumps(audio))
    assert got.kind == "audio" and len(got.pcm) == 4
    assert dialect.parse(json.dumps(clear)).kind == "clear"
    parsed = dialect.parse(json.dumps(mark))
    assert (parsed.kind, parsed.name) == ("mark", expected_name)
    assert dialect.parse("not json").kind == "invalid"
    assert dialect.parse(json.dumps({"event": "media", "media": {"payload": "%%"}})).kind in (
        "invalid",
        "other",
    )


def test_vonage_parses_binary_clear_and_notify() -> None:
    dialect = make_dialect("vonage")
    assert dialect.parse(b"\x00\x01" * 320).pcm == b"\x00\x01" * 320
    assert dialect.parse('{"action":"clear"}').kind == "clear"
    notify = dialect.parse('{"action":"notify","payload":{"mark":"m7"}}')
    assert (notify.kind, notify.name, notify.ack) == ("mark", "m7", {"mark": "m7"})
    assert json.loads(dialect.mark_ack(notify) or "") == {
        "event": "websocket:notify",
        "payload": {"mark": "m7"},
    }


def test_unknown_provider_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        make_dialect("skype")


# ---- round trip with callpipe's own serializers: what the simulator sends, they understand,
# ---- and what they send, the simulator understands.


def _serializer(provider: str, stream_id: str) -> Any:
    if provider == "twilio":
        from callpipe.serializers.twilio import TwilioFrameSerializer as Twilio

        return Twilio(stream_id, params=Twilio.InputParams(auto_hang_up=False))
    if provider == "telnyx":
        from callpipe.serializers.telnyx import TelnyxFrameSerializer as Telnyx

        return Telnyx(stream_id, "PCMU", "PCMU", params=Telnyx.InputParams(auto_hang_up=False))
    if provider == "plivo":
        from callpipe.serializers.plivo import PlivoFrameSerializer as Plivo

        return Plivo(stream_id, params=Plivo.InputParams(auto_hang_up=False))
    if provider == "exotel":
        from callpipe.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(stream_id)
    from callpipe.serializers.vonage import VonageFrameSerializer

    return VonageFrameSerializer()


def _codec_roundtrip(provider: str, pcm: bytes) -> bytes:
    from callpipe.audio import g711

    if provider in ("exotel", "vonage"):
        return pcm
    return g711.ulaw_to_pcm(g711.pcm_to_ulaw(pcm))


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo", "exotel", "vonage"])
@virtual_time
async def test_callpipe_serializers_and_the_simulator_understand_each_other(
    provider: str,
) -> None:
    dialect = make_dialect(provider)
    rate = dialect.sample_rate
    tone = TONE if rate == 8000 else (FIXTURES / "vonage" / "02_media.bin").read_bytes()
    serializer = _serializer(provider, dialect.identity.stream_id)
    await serializer.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))

    # provider → bot
    frame = await serializer.deserialize(dialect.media(tone, 0))
    assert isinstance(frame, InputAudioRawFrame)
    assert frame.audio == _codec_roundtrip(provider, tone)
    dtmf = await serializer.deserialize(dialect.dtmf("#"))
    assert isinstance(dtmf, InputDTMFFrame) and dtmf.button is KeypadEntry.POUND
    mark = serializer.serialize_mark("m1")
    assert mark is not None
    parsed = dialect.parse(mark)
    assert (parsed.kind, parsed.name) == ("mark", "m1")
    ack = await serializer.deserialize(dialect.mark_ack(parsed) or "")
    assert isinstance(ack, PlaybackMarkFrame) and ack.mark == "m1"
    stop = dialect.stop()
    if stop is not None:
        assert isinstance(await serializer.deserialize(stop), StreamStoppedFrame)

    # bot → provider
    media = await serializer.serialize(OutputAudioRawFrame(tone, rate))
    assert media is not None
    heard = dialect.parse(media)
    assert heard.kind == "audio" and heard.pcm == _codec_roundtrip(provider, tone)
    clear = await serializer.serialize(InterruptionFrame())
    assert clear is not None and dialect.parse(clear).kind == "clear"


def test_fixture_payload_decodes_to_the_tone() -> None:
    payload = fixture("exotel", "03_media.json")["media"]["payload"]
    assert base64.b64decode(payload) == TONE
