"""jambonz through the provider registry: the listen verb's stream, documents and detection.

Wire shapes: the first text frame carries the call attributes plus ``sampleRate``/``mixType``
(jambonz listen docs); DTMF frames are ``{"event": "dtmf", "dtmf", "duration"}`` and the app's
``killAudio``/``disconnect`` are what jambonz's audio-fork module reads (its source).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from callpipe.frames.frames import (
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from callpipe.providers import registry
from callpipe.providers.jambonz import JAMBONZ
from callpipe.providers.jambonz.dialect import JambonzDialect
from callpipe.runner.answer import answer_document, busy_document
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.utils import build_serializer
from callpipe.serializers.jambonz import JambonzFrameSerializer

CALL = "0d5f3c4e-7a5b-4f0e-9a43-2b1de7d2c7a1"
PREAMBLE = {
    "sampleRate": 8000,
    "mixType": "mono",
    "callSid": CALL,
    "direction": "inbound",
    "from": "+15550100001",
    "to": "+15550100002",
    "callId": "a1b2c3@10.0.0.1",
    "sipStatus": 200,
    "callStatus": "in-progress",
    "accountSid": "9351f46a-678c-43f5-b8a6-d4eb58d131af",
    "applicationSid": "e7fe8e4b-fd34-4f4f-9f43-4a2b58f1fd43",
    "from_number": "+15550100001",
}
WEBHOOK = {
    "call_sid": CALL,
    "direction": "inbound",
    "from": "+15550100001",
    "to": "+15550100002",
    "call_id": "a1b2c3@10.0.0.1",
    "sip_status": 100,
    "call_status": "trying",
    "account_sid": "9351f46a-678c-43f5-b8a6-d4eb58d131af",
    "application_sid": "e7fe8e4b-fd34-4f4f-9f43-4a2b58f1fd43",
}


async def _serializer(rate: int = 16000) -> JambonzFrameSerializer:
    serializer = JambonzFrameSerializer(
        params=JambonzFrameSerializer.InputParams(auto_hang_up=False)
    )
    await serializer.setup(StartFrame(audio_in_sample_rate=rate, audio_out_sample_rate=rate))
    return serializer


# ---------------------------------------------------------------------------- serializer


async def test_preamble_names_the_call_and_audio_flows_both_ways() -> None:
    serializer = await _serializer(8000)
    assert await serializer.deserialize(json.dumps(PREAMBLE)) is None
    assert serializer.call_id == CALL
    pcm = (1000).to_bytes(2, "little", signed=True) * 160
    frame = await serializer.deserialize(pcm)
    assert isinstance(frame, InputAudioRawFrame) and frame.audio == pcm
    out = await serializer.serialize(OutputAudioRawFrame(audio=pcm, sample_rate=8000))
    assert out == pcm  # binary L16 at the stream's rate, no envelope


async def test_preamble_rate_is_adopted() -> None:
    serializer = await _serializer(16000)
    await serializer.deserialize(json.dumps({**PREAMBLE, "sampleRate": 16000}))
    assert serializer.wire_sample_rate == 16000


@pytest.mark.parametrize("digit", ["0", "5", "9", "*", "#"])
async def test_dtmf(digit: str) -> None:
    serializer = await _serializer()
    frame = await serializer.deserialize(
        json.dumps({"event": "dtmf", "dtmf": digit, "duration": 1600})
    )
    assert isinstance(frame, InputDTMFFrame) and frame.button.value == digit


async def test_interruption_is_kill_audio_and_there_are_no_marks() -> None:
    serializer = await _serializer()
    assert json.loads(await serializer.serialize(InterruptionFrame()) or "") == {
        "type": "killAudio"
    }
    assert serializer.supports_marks is False and serializer.serialize_mark("m") is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x00" * 100_000,
        "not json",
        "[1, 2]",
        '{"event": "dtmf", "dtmf": "x"}',
        '{"event": "dtmf"}',
        '{"event": "surprise"}',
        '{"callSid": 5, "sampleRate": "fast"}',
        "[" * 10_000,
    ],
)
async def test_bad_input_never_raises(data: str | bytes) -> None:
    serializer = await _serializer()
    result = await serializer.deserialize(data)
    assert result is None or isinstance(result, InputAudioRawFrame)


# ---------------------------------------------------------------------- registry, runner


def test_handshake_detected_as_jambonz_and_nobody_else() -> None:
    detected = registry.detect_stream(PREAMBLE)
    assert detected is not None and detected[0] is JAMBONZ
    call_data = detected[1]
    assert (call_data.call_id, call_data.get("sample_rate"), call_data["from"]) == (
        CALL,
        8000,
        "+15550100001",
    )
    assert call_data.body["from_number"] == "+15550100001"  # the listen verb's metadata
    for other in ("twilio", "telnyx", "plivo", "exotel", "vonage", "signalwire"):
        start = [json.loads(m) for m in registry.require(other).dialect().handshake()]
        assert all(JAMBONZ.detect_stream(m) is None for m in start), other
    assert registry.detect_stream({"event": "dtmf", "dtmf": "1"}) is None


def test_dialect_handshake_is_what_detection_reads() -> None:
    dialect = JambonzDialect()
    detected = registry.detect_stream(json.loads(dialect.handshake()[0]))
    assert detected is not None and detected[1].call_id == dialect.identity.call_id


def test_answer_is_listen_then_hangup_and_busy_declines() -> None:
    doc = answer_document("jambonz", "bot.example", token="tok", from_number="+1555")
    verbs = json.loads(doc.body)
    assert doc.media_type == "application/json"
    assert [v["verb"] for v in verbs] == ["listen", "hangup"]
    listen = verbs[0]
    assert listen["url"] == "wss://bot.example/ws/tok"
    assert listen["bidirectionalAudio"] == {"enabled": True, "streaming": True, "sampleRate": 8000}
    assert (listen["sampleRate"], listen["mixType"], listen["passDtmf"]) == (8000, "mono", True)
    assert listen["metadata"] == {"from_number": "+1555"}
    busy = json.loads(busy_document("jambonz", "at capacity").body)
    assert busy == [{"verb": "sip:decline", "status": 486, "reason": "Busy Here"}]


def test_subprotocol_is_chosen_only_when_asked() -> None:
    assert registry.subprotocol_for(["audio.jambonz.org"]) == "audio.jambonz.org"
    assert registry.subprotocol_for(["chat", "audio.jambonz.org"]) == "audio.jambonz.org"
    assert registry.subprotocol_for([]) is None and registry.subprotocol_for(["x"]) is None


def test_json_webhook_detected_in_local_mode() -> None:
    assert registry.detect_webhook(Headers({}), WEBHOOK) is JAMBONZ

    async def bot(args: Any) -> None:
        return None

    config = RunnerConfig(insecure=True, proxy="bot.example")
    app = create_app(bot, config, credentials=Credentials(), secret=b"k" * 32)
    response = TestClient(app).post("/", json=WEBHOOK)
    assert response.status_code == 200, response.text
    assert json.loads(response.text)[0]["url"] == "wss://bot.example/ws"


def test_serializer_takes_the_streams_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAMBONZ_API_KEY", raising=False)
    detected = registry.detect_stream({**PREAMBLE, "sampleRate": 16000})
    assert detected is not None
    serializer = build_serializer("jambonz", detected[1])
    assert isinstance(serializer, JambonzFrameSerializer)
    assert serializer.wire_sample_rate == 16000
    assert serializer.call_control is None and serializer.auto_hang_up is False


def test_serializer_hangs_up_through_the_api_with_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from callpipe.telephony.jambonz import JambonzCallControl

    monkeypatch.setenv("JAMBONZ_API_KEY", "key-1")
    monkeypatch.setenv("JAMBONZ_API_URL", "https://jambonz.example.com/api")
    detected = registry.detect_stream(PREAMBLE)
    assert detected is not None and detected[1].get("account_sid") == PREAMBLE["accountSid"]
    serializer = build_serializer("jambonz", detected[1])
    assert serializer.auto_hang_up is True
    control = serializer.call_control
    assert isinstance(control, JambonzCallControl)
    assert control.base_url == "https://jambonz.example.com/api" and control.call_id == CALL


# ---------------------------------------------------------------------------- signatures

SECRET = "wh_secret_0123456789"


def _sign(body: bytes, timestamp: int, secret: str = SECRET) -> str:
    """Signed as jambonz documents it, computed here independently of callpipe's code."""
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _verify(header: str | None, body: bytes, now: float) -> bool:
    from callpipe.providers.base import SignedWebhook
    from callpipe.providers.jambonz.signature import JambonzVerifier

    headers = Headers({"Jambonz-Signature": header} if header is not None else {})
    request = SignedWebhook("POST", "https://bot.example/", headers, body, [], is_form=False)
    return JambonzVerifier(SECRET, clock=lambda: now).verify(request)


def test_signature_checks() -> None:
    body = json.dumps(WEBHOOK).encode()
    now = 1_764_000_000
    assert _verify(_sign(body, now), body, now + 10)
    assert _verify(f"t={now},v1=deadbeef," + _sign(body, now).split(",")[1], body, now)  # rotation
    assert not _verify(_sign(body, now), body, now + 301)  # replayed later
    assert not _verify(_sign(body, now, "other"), body, now)
    assert not _verify(_sign(body, now), body + b" ", now)
    for header in (None, "", "t=,v1=", "v1=abc", f"t={now}", "t=x,v1=y", "t=1e9,v1=ab", "\x00"):
        assert not _verify(header, body, now)


def test_runner_verifies_jambonz_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("JAMBONZ_WEBHOOK_SECRET", SECRET)
    credentials = Credentials.from_env()
    assert credentials.secrets()["JAMBONZ_WEBHOOK_SECRET"] == SECRET

    async def bot(args: Any) -> None:
        return None

    config = RunnerConfig(proxy="bot.example")
    client = TestClient(create_app(bot, config, credentials=credentials, secret=b"k" * 32))
    body = json.dumps(WEBHOOK).encode()
    headers = {"Content-Type": "application/json"}
    signed = {**headers, "Jambonz-Signature": _sign(body, int(time.time()))}
    ok = client.post("/", content=body, headers=signed)
    assert ok.status_code == 200, ok.text
    assert json.loads(ok.text)[0]["url"].startswith("wss://bot.example/ws/")
    forged = {**headers, "Jambonz-Signature": _sign(body, int(time.time()), "guess")}
    assert client.post("/", content=body, headers=forged).status_code == 403
    assert client.post("/", content=body, headers=headers).status_code == 403
