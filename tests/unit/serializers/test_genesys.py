"""Genesys AudioHook serializer: every message type, exact JSON both ways, audio, bad input.

Message shapes follow the AudioHook protocol as Genesys's reference implementations type them
(purecloudlabs/audiohook-reference-implementation, GenesysCloudBlueprints/audioconnector-server-
reference-implementation): client messages carry ``seq``/``serverseq``/``position``, server
messages ``seq``/``clientseq``; ``dtmf`` and ``playback_*`` are the Audio Connector additions.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from callpipe.audio import g711
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    KeypadEntry,
    OutputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
)
from callpipe.serializers.genesys import (
    AudioHookChannel,
    AudioHookMediaFormat,
    GenesysAudioHookSerializer,
)

SESSION = "e160e428-53e2-487c-977d-96989bf5c99d"
CONVERSATION = "090eaa2f-72fa-480a-83e0-8667ff89c0ec"
STEREO = {"type": "audio", "format": "PCMU", "channels": ["external", "internal"], "rate": 8000}
EXTERNAL = {"type": "audio", "format": "PCMU", "channels": ["external"], "rate": 8000}
INTERNAL = {"type": "audio", "format": "PCMU", "channels": ["internal"], "rate": 8000}


def client(type_: str, seq: int, parameters: dict[str, Any] | None = None, **extra: Any) -> str:
    message = {
        "version": "2",
        "id": SESSION,
        "type": type_,
        "seq": seq,
        "serverseq": extra.pop("serverseq", 1),  # the opened
        "position": extra.pop("position", "PT0S"),
        "parameters": parameters if parameters is not None else {},
    }
    message.update(extra)
    return json.dumps(message)


def open_message(media: list[dict[str, Any]] | None = None, **params: Any) -> str:
    parameters = {
        "organizationId": "d7934305-0972-4844-938e-9060eef73d05",
        "conversationId": CONVERSATION,
        "participant": {
            "id": "883efee8-3d6c-4537-b500-6d7ca4b92fa0",
            "ani": "+1-555-555-1234",
            "aniName": "John Doe",
            "dnis": "+1-800-555-6789",
        },
        "media": media if media is not None else [STEREO, EXTERNAL, INTERNAL],
        "language": "en-US",
        **params,
    }
    return client("open", 1, parameters, serverseq=0)


async def opened(
    params: GenesysAudioHookSerializer.InputParams | None = None,
    media: list[dict[str, Any]] | None = None,
    rate: int = 8000,
) -> tuple[GenesysAudioHookSerializer, dict[str, Any]]:
    serializer = GenesysAudioHookSerializer(params)
    await serializer.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    reply = await serializer.deserialize(open_message(media))
    assert isinstance(reply, OutputTransportMessageUrgentFrame)
    return serializer, reply.message


def wire(reply: Any) -> dict[str, Any]:
    """What the transport puts on the socket for a reply frame."""
    assert isinstance(reply, OutputTransportMessageUrgentFrame)
    return dict(json.loads(json.dumps(reply.message)))


async def test_open_is_answered_with_opened_selecting_the_mono_caller_offer() -> None:
    serializer, message = await opened()
    assert message == {
        "version": "2",
        "id": SESSION,
        "type": "opened",
        "seq": 1,
        "clientseq": 1,
        "parameters": {"media": [EXTERNAL], "startPaused": False},
    }
    assert serializer.is_open and serializer.call_id == CONVERSATION
    assert serializer.session_id == SESSION
    assert serializer.participant is not None and serializer.participant["dnis"]
    assert serializer.language == "en-US"


async def test_opened_carries_start_paused_and_supported_languages_when_asked() -> None:
    params = GenesysAudioHookSerializer.InputParams(
        start_paused=True, supported_languages=["en-US", "es-ES"], selected_language="en-US"
    )
    serializer = GenesysAudioHookSerializer(params)
    reply = await serializer.deserialize(open_message(supportedLanguages=True))
    assert wire(reply)["parameters"] == {
        "media": [EXTERNAL],
        "startPaused": True,
        "supportedLanguages": ["en-US", "es-ES"],
    }
    assert serializer.is_paused


async def test_no_supported_media_is_refused_with_a_disconnect() -> None:
    serializer = GenesysAudioHookSerializer()
    l16 = [{"type": "audio", "format": "L16", "channels": ["external"], "rate": 8000}]
    reply = await serializer.deserialize(open_message(l16))
    assert wire(reply) == {
        "version": "2",
        "id": SESSION,
        "type": "disconnect",
        "seq": 1,
        "clientseq": 1,
        "parameters": {
            "reason": "error",
            "info": "No supported media format offered (callpipe takes PCMU at 8000 Hz)",
        },
    }
    assert not serializer.is_open
    assert await serializer.deserialize(b"\xff" * 160) is None  # no audio for a refused session


async def test_ping_pong_close_closed_and_the_counters() -> None:
    serializer, _ = await opened()
    pong = await serializer.deserialize(client("ping", 2, {"rtt": "PT0.012S"}, position="PT1.5S"))
    assert wire(pong) == {
        "version": "2",
        "id": SESSION,
        "type": "pong",
        "seq": 2,
        "clientseq": 2,
        "parameters": {},
    }
    assert serializer.position == timedelta(seconds=1.5)
    result = await serializer.deserialize(client("close", 3, {"reason": "end"}))
    assert isinstance(result, list) and isinstance(result[1], StreamStoppedFrame)
    assert wire(result[0]) == {
        "version": "2",
        "id": SESSION,
        "type": "closed",
        "seq": 3,
        "clientseq": 3,
        "parameters": {},
    }
    # Closed: no disconnect at the pipeline's end, no audio either way.
    assert await serializer.serialize(EndFrame()) is None
    assert await serializer.serialize(OutputAudioRawFrame(b"\x00\x01" * 160, 8000, 1)) is None


async def test_pause_and_resume_both_ways() -> None:
    serializer, _ = await opened()
    pcm = b"\x10\x00" * 160
    assert await serializer.deserialize(client("paused", 2)) is None
    assert serializer.is_paused
    assert await serializer.deserialize(g711.pcm_to_ulaw(pcm)) is None  # not heard while paused
    assert await serializer.serialize(OutputAudioRawFrame(pcm, 8000, 1)) is None
    assert (
        await serializer.deserialize(client("resumed", 3, {"start": "PT2S", "discarded": "PT0.5S"}))
        is None
    )
    assert not serializer.is_paused
    assert isinstance(await serializer.serialize(OutputAudioRawFrame(pcm, 8000, 1)), bytes)
    assert serializer.create_pause_message() == {
        "version": "2",
        "id": SESSION,
        "type": "pause",
        "seq": 2,
        "clientseq": 3,
        "parameters": {},
    }
    assert serializer.create_resume_message()["type"] == "resume"


async def test_update_discarded_error_and_playback_need_no_answer() -> None:
    serializer, _ = await opened()
    seq = 2
    for type_, params in (
        ("update", {"language": "fr-FR"}),
        ("discarded", {"start": "PT1S", "discarded": "PT0.2S"}),
        ("error", {"code": 429, "message": "Too many requests", "retryAfter": "PT1S"}),
        ("playback_started", {}),
        ("playback_completed", {}),
    ):
        assert await serializer.deserialize(client(type_, seq, params)) is None, type_
        seq += 1
    assert serializer.language == "fr-FR"
    assert serializer.malformed_counts == {}


async def test_dtmf_is_a_key_press() -> None:
    serializer, _ = await opened()
    frame = await serializer.deserialize(client("dtmf", 2, {"digit": "#"}))
    assert isinstance(frame, InputDTMFFrame) and frame.button is KeypadEntry.POUND


async def test_barge_in_event_on_interruption_and_disconnect_at_the_end() -> None:
    serializer, _ = await opened()
    barge_in = await serializer.serialize(InterruptionFrame())
    assert isinstance(barge_in, str)
    assert json.loads(barge_in) == {
        "version": "2",
        "id": SESSION,
        "type": "event",
        "seq": 2,
        "clientseq": 1,
        "parameters": {"entities": [{"type": "barge_in", "data": {}}]},
    }
    serializer.set_output_variables({"intent": "billing"})
    goodbye = await serializer.serialize(EndFrame())
    assert isinstance(goodbye, str)
    assert json.loads(goodbye) == {
        "version": "2",
        "id": SESSION,
        "type": "disconnect",
        "seq": 3,
        "clientseq": 1,
        "parameters": {"reason": "completed", "outputVariables": {"intent": "billing"}},
    }
    assert await serializer.serialize(CancelFrame()) is None  # said once


async def test_bot_audio_is_binary_pcmu_at_8k() -> None:
    serializer, _ = await opened(rate=16000)
    t = np.arange(320) / 16000
    pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    frames = [await serializer.serialize(OutputAudioRawFrame(pcm, 16000, 1)) for _ in range(5)]
    sent = b"".join(f for f in frames if isinstance(f, bytes))
    assert all(f is None or isinstance(f, bytes) for f in frames)
    assert 600 <= len(sent) <= 800  # 100 ms at 8 kHz, one byte per sample (resampler delay)
    decoded = np.frombuffer(g711.ulaw_to_pcm(sent[-160:]), dtype="<i2")
    assert np.abs(decoded).max() > 4000  # the tone, not silence


async def test_nothing_is_sent_before_opened() -> None:
    serializer = GenesysAudioHookSerializer()
    assert await serializer.serialize(OutputAudioRawFrame(b"\x00\x10" * 160, 8000, 1)) is None
    assert await serializer.serialize(InterruptionFrame()) is None
    assert await serializer.serialize(EndFrame()) is None
    assert await serializer.deserialize(b"\xff" * 160) is None


def stereo_frame(external: bytes, internal: bytes, order: list[str]) -> bytes:
    tracks = {"external": g711.pcm_to_ulaw(external), "internal": g711.pcm_to_ulaw(internal)}
    a, b = (tracks[c] for c in order)
    return bytes(x for pair in zip(a, b, strict=True) for x in pair)


CALLER = (np.full(160, 3000)).astype("<i2").tobytes()
AGENT = (np.full(160, -6000)).astype("<i2").tobytes()


@pytest.mark.parametrize("order", [["external", "internal"], ["internal", "external"]])
@pytest.mark.parametrize(
    ("external", "internal", "level"),
    [(True, False, 3000), (False, True, -6000), (True, True, -1500)],
)
async def test_stereo_channel_selection(
    order: list[str], external: bool, internal: bool, level: int
) -> None:
    media = {"type": "audio", "format": "PCMU", "channels": order, "rate": 8000}
    params = GenesysAudioHookSerializer.InputParams(
        channel=AudioHookChannel.BOTH, process_external=external, process_internal=internal
    )
    serializer, message = await opened(params, media=[media])
    assert message["parameters"]["media"] == [media]
    frame = await serializer.deserialize(stereo_frame(CALLER, AGENT, order))
    assert isinstance(frame, InputAudioRawFrame) and len(frame.audio) == 320
    heard = np.frombuffer(frame.audio, dtype="<i2").astype(int)
    assert abs(int(np.median(heard)) - level) < 150  # µ-law steps at these levels
    # An odd-length stereo frame is malformed: skipped and counted, never raised.
    assert await serializer.deserialize(b"\xff" * 161) is None
    assert serializer.malformed_counts == {"wrong_payload_size": 1}


async def test_a_mono_wish_accepts_a_stereo_only_offer_and_extracts_the_caller() -> None:
    serializer, message = await opened(media=[STEREO])
    assert message["parameters"]["media"] == [STEREO]
    frame = await serializer.deserialize(stereo_frame(CALLER, AGENT, STEREO["channels"]))
    assert isinstance(frame, InputAudioRawFrame)
    assert abs(int(np.median(np.frombuffer(frame.audio, dtype="<i2"))) - 3000) < 150


async def test_sequence_numbers_and_position_over_a_stream() -> None:
    serializer, _ = await opened()
    seq = 1
    for second in range(1, 4):
        for _ in range(50):  # one second of 20 ms frames
            assert isinstance(await serializer.deserialize(b"\xff" * 160), InputAudioRawFrame)
        assert serializer.position == timedelta(seconds=second)
        seq += 1
        pong = wire(await serializer.deserialize(client("ping", seq, position=f"PT{second}S")))
        assert (pong["seq"], pong["clientseq"]) == (seq, seq)
    # A gap in the client's numbering is counted but still answered, echoing the new seq.
    pong = wire(await serializer.deserialize(client("ping", seq + 2)))
    assert (pong["seq"], pong["clientseq"]) == (seq + 1, seq + 2)
    assert serializer.malformed_counts == {"seq_gap": 1}
    # Genesys cannot have seen a server message we never sent.
    await serializer.deserialize(client("ping", seq + 3, serverseq=99))
    assert serializer.malformed_counts == {"seq_gap": 1, "serverseq_ahead": 1}


async def test_adopted_open_is_answered_once_through_pending_replies() -> None:
    serializer = GenesysAudioHookSerializer()
    serializer.adopt_open(json.loads(open_message()))
    replies = serializer.pending_replies()
    assert [json.loads(r)["type"] for r in replies] == ["opened"]
    assert serializer.pending_replies() == []
    assert serializer.is_open


async def test_the_connection_probe_is_opened_but_gets_no_audio() -> None:
    serializer = GenesysAudioHookSerializer()
    probe = json.loads(open_message())
    probe["parameters"]["conversationId"] = "00000000-0000-0000-0000-000000000000"
    reply = await serializer.deserialize(json.dumps(probe))
    assert wire(reply)["type"] == "opened" and serializer.is_probe
    assert await serializer.serialize(OutputAudioRawFrame(b"\x00\x10" * 160, 8000, 1)) is None


async def test_only_audiohook_messages_pass_as_app_messages() -> None:
    serializer, _ = await opened()
    event = serializer.create_event_message([{"type": "bot_turn_response", "data": {}}])
    assert await serializer.serialize(TransportMessageFrame(message=event)) == json.dumps(event)
    assert await serializer.serialize(TransportMessageFrame(message={"hello": 1})) is None
    rtvi = {"label": "rtvi-ai", "version": "2", "type": "x"}
    assert await serializer.serialize(TransportMessageFrame(message=rtvi)) is None


def _raw(type_: str, session: str = SESSION, **fields: Any) -> str:
    return json.dumps({"version": "2", "type": type_, "id": session, **fields})


HOSTILE: list[str | bytes] = [
    "",
    "not json",
    "[]",
    "null",
    '{"type": 5}',
    _raw("nope", seq=2),
    json.dumps({"version": "1", "type": "ping", "id": SESSION, "seq": 2}),
    _raw("ping", "someone-else", seq=2),
    _raw("ping", seq="2"),
    _raw("ping", seq=True),
    _raw("ping", seq=0),
    _raw("dtmf", seq=2, parameters={"digit": "12"}),
    _raw("open", seq=2, parameters=[]),
    _raw("update", seq=2, parameters="x"),
    "[" * 100_000,
    b"",
    b"\xff" * 70_000,
    b"\x00",
]


@pytest.mark.parametrize("data", HOSTILE, ids=range(len(HOSTILE)))
async def test_bad_input_never_raises(data: str | bytes) -> None:
    serializer, _ = await opened(
        GenesysAudioHookSerializer.InputParams(channel=AudioHookChannel.BOTH), media=[STEREO]
    )
    result = await serializer.deserialize(data)
    assert result is None or isinstance(result, list | OutputTransportMessageUrgentFrame)
    assert not isinstance(result, InputDTMFFrame)


async def test_hostile_open_shapes_never_raise() -> None:
    for media in ([], [None, 5, "x"], [{"format": "PCMU"}], [{**EXTERNAL, "channels": "ext"}]):
        serializer = GenesysAudioHookSerializer()
        reply = await serializer.deserialize(open_message(media))  # type: ignore[arg-type]
        assert wire(reply)["type"] == "disconnect"


def test_pipecat_compatible_construction() -> None:
    params = GenesysAudioHookSerializer.InputParams(
        channel=AudioHookChannel.EXTERNAL,
        media_format=AudioHookMediaFormat.PCMU,
        supported_languages=["en-US"],
        selected_language="en-US",
        genesys_sample_rate=8000,
        sample_rate=16000,
        ignore_rtvi_messages=True,
    )
    serializer = GenesysAudioHookSerializer(params=params)
    assert serializer.PROTOCOL_VERSION == "2"
    assert serializer.conversation_id is None and not serializer.is_open
    assert serializer.input_variables is None and serializer.output_variables is None
