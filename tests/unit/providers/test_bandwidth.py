"""Bandwidth through the provider registry: BXML documents, detection, callback auth, serializer.

The answer and busy documents are compared with what Bandwidth's Python SDK (``bandwidth-sdk``,
a dev dependency) builds from its BXML verbs. Webhook authentication follows Bandwidth's
"Authenticated Callbacks": HTTP Basic, sent only after a 401 carrying ``WWW-Authenticate``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import Headers
from starlette.testclient import TestClient

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
    StreamStoppedFrame,
)
from callpipe.providers import registry
from callpipe.providers.bandwidth import BANDWIDTH, BandwidthCallData
from callpipe.providers.bandwidth.auth import CHALLENGE, BandwidthVerifier
from callpipe.providers.bandwidth.dialect import BandwidthDialect, pcm_rate
from callpipe.providers.base import AnswerRequest, SignedWebhook
from callpipe.runner.answer import answer_document, busy_document
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.dials import DialBook
from callpipe.runner.run import startup_refusal
from callpipe.runner.utils import build_serializer
from callpipe.serializers.bandwidth import BandwidthFrameSerializer
from callpipe.telephony.bandwidth import BandwidthCallControl
from callpipe.telephony.dial.types import CallHandle
from callpipe.testing.simulator import CallIdentity

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"
TONE = (FIXTURES / "tone_440hz_20ms_8k.pcm").read_bytes()
HOST = "bot.example"
AUTH = "bw-user:bw-pass"
CALL = "c-95ac8d6e-1a31c52e-b38f-4198-93c1-51633ec68f8d"
INITIATE = {
    "eventType": "initiate",
    "eventTime": "2019-06-20T15:56:11.554Z",
    "accountId": "55555555",
    "applicationId": "7fc9698a-b04a-468b-9e8f-91238c0d0086",
    "from": "+15551112222",
    "to": "+15553334444",
    "direction": "inbound",
    "callId": CALL,
    "callUrl": f"https://voice.bandwidth.com/api/v2/accounts/55555555/calls/{CALL}",
    "startTime": "2019-06-20T15:54:22.234Z",
}


def fixture(name: str) -> dict[str, Any]:
    [path] = (FIXTURES / "bandwidth").glob(f"*_{name}.json")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _tree(xml: str) -> Any:
    def walk(e: ET.Element) -> Any:
        return (e.tag, dict(e.attrib), (e.text or "").strip(), [walk(c) for c in e])

    return walk(ET.fromstring(xml.encode()))


# ----------------------------------------------------------------------------- documents


def test_answer_is_the_bxml_bandwidths_sdk_builds() -> None:
    from bandwidth.models.bxml import Hangup, Response, StartStream, StopStream, StreamParam

    doc = answer_document(
        "bandwidth", HOST, token="tok", from_number="+15551112222", to_number="+15553334444"
    )
    assert doc.media_type == "application/xml" and doc.status_code == 200
    params = [StreamParam("from_number", "+15551112222"), StreamParam("to_number", "+15553334444")]
    sdk = Response(
        [
            StartStream(
                destination=f"wss://{HOST}/ws/tok",
                stream_params=params,
                name="callpipe",
                mode="bidirectional",
                tracks="inbound",
            ),
            StopStream(name="callpipe", wait="true"),  # type: ignore[arg-type]
            Hangup(),
        ]
    )
    assert _tree(doc.body) == _tree(sdk.to_bxml())


def test_answer_escapes_and_skips_empty_numbers() -> None:
    answer = BANDWIDTH.answer(AnswerRequest('wss://h/ws/a"b&c', "", "+1666"))
    stream = ET.fromstring(answer.body).find("StartStream")
    assert stream is not None and stream.get("destination") == 'wss://h/ws/a"b&c'
    assert [p.get("name") for p in stream.findall("StreamParam")] == ["to_number"]


def test_busy_rejects_with_hangup() -> None:
    from bandwidth.models.bxml import Hangup, Response

    busy = busy_document("bandwidth", "at capacity")
    assert busy.media_type == "application/xml"
    assert _tree(busy.body) == _tree(Response([Hangup()]).to_bxml())


# ----------------------------------------------------------------------------- detection


def test_the_documented_start_is_detected() -> None:
    found = registry.detect_stream(fixture("start"))
    assert found is not None and found[0] is BANDWIDTH
    call_data = found[1]
    assert isinstance(call_data, BandwidthCallData)
    assert call_data["stream_id"] == "s-95ac90b3-bfc81595-35fc-4b64-8265-fab6855b74a2"
    assert call_data["call_id"] == CALL and call_data["account_id"] == "55555555"
    assert call_data.from_number == "+15551112222" and call_data["to"] == "+15553334444"
    assert (call_data.tracks, call_data.encoding, call_data.sample_rate) == (
        ["inbound"],
        "audio/PCMU",
        8000,
    )
    assert BANDWIDTH.stream_parameters(call_data) == fixture("start")["streamParams"]


def test_neighbours_stay_themselves() -> None:
    for provider in registry.PROVIDERS:
        if provider is BANDWIDTH:
            continue
        assert provider.detect_stream(fixture("start")) is None, provider.name
        for message in provider.dialect().handshake():
            try:
                decoded = json.loads(message)
            except ValueError:
                continue
            assert BANDWIDTH.detect_stream(decoded) is None, provider.name


@pytest.mark.parametrize(
    "message",
    [
        {},
        {"eventType": "start"},
        {"eventType": "start", "metadata": []},
        {"eventType": "start", "metadata": {"callId": CALL}},
        {"eventType": "start", "metadata": {"streamId": "s-1"}},
        {"eventType": "start", "metadata": {"streamId": "s-1", "callId": "c/../../x"}},
        {"eventType": "start", "metadata": {"streamId": 5, "callId": CALL}},
        {"eventType": "media", "metadata": {"streamId": "s-1", "callId": CALL}},
    ],
)
def test_hostile_starts_are_not_streams(message: dict[str, Any]) -> None:
    assert BANDWIDTH.detect_stream(message) is None


def test_odd_start_fields_are_dropped_not_fatal() -> None:
    start = fixture("start")
    start["metadata"].update(accountId="55/../1", tracks="nope")
    start["streamParams"] = {"k": {"nested": 1}, "n": 5, **{f"p{i}": "v" for i in range(20)}}
    call_data = BANDWIDTH.detect_stream(start)
    assert isinstance(call_data, BandwidthCallData)
    assert call_data.account_id is None and call_data.tracks == []
    assert "k" not in call_data.body and call_data.body["n"] == "5"
    assert len(call_data.body) <= 12


# ------------------------------------------------------------------------------ dialect


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return type(value).__name__


def test_simulated_messages_have_the_documented_shape() -> None:
    dialect = BandwidthDialect()
    assert _shape(json.loads(dialect.handshake()[0])) == _shape(fixture("start"))
    media = json.loads(dialect.media(TONE, 0))
    assert _shape(media) == _shape(fixture("media"))
    assert media["payload"] == fixture("media")["payload"]  # the same tone, bit for bit
    assert _shape(json.loads(dialect.stop())) == _shape(fixture("stop"))
    with pytest.raises(ConfigurationError, match="no DTMF"):
        dialect.dtmf("5")
    assert dialect.mark_ack(dialect.parse('{"eventType": "clear"}')) is None


async def test_serializer_and_simulator_understand_each_other() -> None:
    dialect = BandwidthDialect(CallIdentity(custom_parameters={"tenant": "demo"}))
    call_data = BANDWIDTH.detect_stream(json.loads(dialect.handshake()[0]))
    assert call_data is not None and call_data.body["tenant"] == "demo"
    ser = BandwidthFrameSerializer(
        call_data.stream_id or "",
        call_data.call_id,
        params=BandwidthFrameSerializer.InputParams(auto_hang_up=False),
    )
    await ser.setup(StartFrame(audio_in_sample_rate=8000, audio_out_sample_rate=8000))
    frame = await ser.deserialize(dialect.media(TONE, 0))
    assert isinstance(frame, InputAudioRawFrame) and len(frame.audio) == len(TONE)
    assert isinstance(await ser.deserialize(dialect.stop()), StreamStoppedFrame)
    heard = dialect.parse(await ser.serialize(OutputAudioRawFrame(TONE, 8000)) or "")
    assert heard.kind == "audio" and len(heard.pcm) == len(TONE)
    assert dialect.parse(await ser.serialize(InterruptionFrame()) or "").kind == "clear"


def test_simulator_reads_pcm_play_audio_at_each_rate() -> None:
    dialect = BandwidthDialect()
    for rate in (8000, 16000, 24000):
        pcm = bytes(rate // 50 * 2)
        message = {
            "eventType": "playAudio",
            "media": {
                "contentType": f"audio/pcm;rate={rate};channels=1;bit-depth=16",
                "payload": base64.b64encode(pcm).decode(),
            },
        }
        event = dialect.parse(json.dumps(message))
        assert event.kind == "audio"
    assert pcm_rate("audio/pcm;rate=44100") is None and pcm_rate("audio/pcmu") is None
    assert dialect.parse('{"eventType": "playAudio", "media": {"payload": "%%"}}').kind == (
        "invalid"
    )
    assert dialect.parse("nope").kind == "invalid"
    assert dialect.parse('{"eventType": "other"}').kind == "other"


# ----------------------------------------------------------------------------- verifier


def _signed(header: str | None) -> SignedWebhook:
    headers = Headers({"Authorization": header} if header is not None else {})
    return SignedWebhook("POST", f"https://{HOST}/", headers, b"{}", is_form=False)


def test_verifier_takes_exactly_the_configured_credentials() -> None:
    verifier = BANDWIDTH.webhook_verifier({"BANDWIDTH_CALLBACK_AUTH": AUTH})
    assert isinstance(verifier, BandwidthVerifier)
    assert verifier.verify(_signed(basic("bw-user", "bw-pass")))
    for header in (
        basic("bw-user", "bw-pass2"),
        basic("bw-use", "bw-pass"),
        basic("", ""),
        "Bearer abc",
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + "A" * 5000,
        None,
    ):
        assert not verifier.verify(_signed(header)), header
    bare = BANDWIDTH.webhook_verifier({"BANDWIDTH_CALLBACK_AUTH": "only-a-password"})
    assert bare is not None and bare.verify(_signed(basic("callpipe", "only-a-password")))
    assert BANDWIDTH.webhook_verifier({}) is None
    assert BANDWIDTH.webhook_verifier({"BANDWIDTH_CALLBACK_AUTH": "user:"}) is None


# ------------------------------------------------------------------------ runner webhook


def _client(creds: Credentials | None = None, **config: Any) -> TestClient:
    config.setdefault("proxy", HOST)
    creds = creds or Credentials(extra={"BANDWIDTH_CALLBACK_AUTH": AUTH})

    async def bot(args: Any) -> None:
        return None

    app = create_app(bot, RunnerConfig(**config), credentials=creds, secret=b"k" * 32)
    return TestClient(app)


def _post(
    client: TestClient, body: dict[str, Any], auth: str | None = None, path: str = "/"
) -> Any:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    return client.post(path, content=json.dumps(body), headers=headers)


@pytest.mark.parametrize("transport", [None, "bandwidth"])
def test_runner_challenges_then_answers_with_bxml_and_a_token(transport: str | None) -> None:
    client = _client(transport=transport)
    first = _post(client, INITIATE)  # Bandwidth's first try carries no credentials
    assert first.status_code == 401
    assert first.headers["www-authenticate"] == CHALLENGE
    assert "wss://" not in first.text
    answer = _post(client, INITIATE, basic("bw-user", "bw-pass"))
    assert answer.status_code == 200, answer.text
    stream = ET.fromstring(answer.text).find("StartStream")
    assert stream is not None and stream.get("destination", "").startswith(f"wss://{HOST}/ws/")
    params = {p.get("name"): p.get("value") for p in stream.findall("StreamParam")}
    assert params == {"from_number": INITIATE["from"], "to_number": INITIATE["to"]}
    again = _post(client, INITIATE, basic("bw-user", "bw-pass"))  # a retried webhook
    assert again.text == answer.text  # the same single-use token


def test_runner_refuses_wrong_credentials_with_the_challenge() -> None:
    response = _post(_client(), INITIATE, basic("bw-user", "guess"))
    assert response.status_code == 401 and response.headers["www-authenticate"] == CHALLENGE
    assert "wss://" not in response.text


def test_no_challenge_when_bandwidth_is_not_configured() -> None:
    twilio_only = _client(Credentials(twilio_auth_token="t"))
    response = _post(twilio_only, INITIATE)
    assert response.status_code == 403 and "www-authenticate" not in response.headers
    unconfigured = _client(Credentials(), transport="bandwidth")
    assert _post(unconfigured, INITIATE).status_code == 403


def test_another_providers_refusal_is_unchanged() -> None:
    both = _client(Credentials(twilio_auth_token="t", extra={"BANDWIDTH_CALLBACK_AUTH": AUTH}))
    forged = both.post("/", data={"CallSid": "CA1"}, headers={"X-Twilio-Signature": "bad"})
    assert forged.status_code == 403


def test_local_mode_takes_the_unauthenticated_webhook() -> None:
    client = _client(Credentials(), proxy=None, insecure=True)
    answer = _post(client, INITIATE)
    assert answer.status_code == 200 and "<StartStream" in answer.text


def test_unsigned_webhook_detection_in_local_mode() -> None:
    fields = {k: v for k, v in INITIATE.items()}
    assert registry.detect_webhook(Headers({}), fields) is BANDWIDTH
    assert registry.detect_webhook(Headers({}), {**fields, "eventType": "answer"}) is BANDWIDTH
    assert registry.detect_webhook(Headers({}), {**fields, "eventType": "disconnect"}) is None
    twilio = {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "0" * 32}
    assert registry.detect_webhook(Headers({}), twilio) is registry.require("twilio")
    assert BANDWIDTH.webhook_call_id({"callId": "c/../x"}) == ""


def test_callback_auth_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANDWIDTH_CALLBACK_AUTH", AUTH)
    assert Credentials.from_env().secrets()["BANDWIDTH_CALLBACK_AUTH"] == AUTH
    config = RunnerConfig(proxy=HOST, transport="bandwidth")
    assert startup_refusal(config, {"BANDWIDTH_CALLBACK_AUTH": AUTH}) is None
    refusal = startup_refusal(config, {})
    assert refusal is not None and "BANDWIDTH_CALLBACK_AUTH" in refusal


# ----------------------------------------------------------------------- status callbacks


def test_status_callbacks_are_challenged_then_applied() -> None:
    client = _client()
    book: DialBook = client.app.state.runner.dials  # type: ignore[attr-defined]
    handle = CallHandle(provider="bandwidth", call_id=CALL, dial_id="d-1", to="+1555")
    asyncio.run(book.add(handle))
    amd = {
        **INITIATE,
        "eventType": "machineDetectionComplete",
        "direction": "outbound",
        "machineDetectionResult": {"value": "answering-machine", "duration": "PT4.9S"},
    }
    disconnect = {**INITIATE, "eventType": "disconnect", "cause": "hangup", "direction": "outbound"}
    first = _post(client, amd, path="/calls/status")
    assert first.status_code == 401 and first.headers["www-authenticate"] == CHALLENGE
    auth = basic("bw-user", "bw-pass")
    assert _post(client, amd, auth, path="/calls/status").status_code == 204
    assert _post(client, disconnect, auth, path="/calls/status").status_code == 204
    assert handle.history == [("amd", "machine_start"), ("status", "completed")]


# ---------------------------------------------------------------------------- serializer


CREDS = ("BANDWIDTH_CLIENT_ID", "BANDWIDTH_CLIENT_SECRET", "BANDWIDTH_ACCOUNT_ID")


def test_serializer_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BANDWIDTH_USERNAME", "BANDWIDTH_PASSWORD", "BANDWIDTH_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BANDWIDTH_CLIENT_ID", "client-1")
    monkeypatch.setenv("BANDWIDTH_CLIENT_SECRET", "secret-1")
    call_data = BANDWIDTH.detect_stream(fixture("start"))
    assert call_data is not None
    serializer = build_serializer("bandwidth", call_data)
    assert isinstance(serializer, BandwidthFrameSerializer) and serializer.auto_hang_up
    control = serializer.call_control
    assert isinstance(control, BandwidthCallControl)
    assert control.call_url == (
        f"https://voice.bandwidth.com/api/v2/accounts/55555555/calls/{CALL}"
    )
    monkeypatch.setenv("BANDWIDTH_ACCOUNT_ID", "66666666")  # the operator's account wins
    control = build_serializer("bandwidth", call_data).call_control
    assert isinstance(control, BandwidthCallControl) and control.account_id == "66666666"


def test_serializer_without_credentials_does_not_hang_up(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CREDS, "BANDWIDTH_USERNAME", "BANDWIDTH_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    call_data = BANDWIDTH.detect_stream(fixture("start")) or pytest.fail("not detected")
    serializer = build_serializer("bandwidth", call_data)
    assert serializer.auto_hang_up is False and serializer.call_control is None


def test_the_call_cli_refuses_keys_for_a_bandwidth_caller(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from callpipe.testing import cli

    assert BandwidthDialect.carries_dtmf is False
    assert cli.main(["ws://127.0.0.1:9/ws", "-p", "bandwidth", "--dtmf", "5@1"]) == 2
    assert "bandwidth streams carry no DTMF" in capsys.readouterr().err
