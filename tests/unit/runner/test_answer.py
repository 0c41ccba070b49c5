"""The answer documents POST / returns, parsed as the provider would parse them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from callpipe.runner.answer import answer_document, busy_document


def test_twilio_twiml_connect_stream_with_parameters() -> None:
    doc = answer_document(
        "twilio", "bot.example", token="T.k", from_number="+1555", to_number="+1666"
    )
    assert doc.media_type == "application/xml"
    assert doc.body.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(doc.body)
    stream = root.find("./Connect/Stream")
    assert stream is not None and stream.get("url") == "wss://bot.example/ws/T.k"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {"from_number": "+1555", "to_number": "+1666"}


def test_telnyx_texml_bidirectional_rtp() -> None:
    root = ET.fromstring(answer_document("telnyx", "h", token=None).body)
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.attrib == {"url": "wss://h/ws", "bidirectionalMode": "rtp"}


def test_plivo_stream_attributes_and_alnum_headers() -> None:
    doc = answer_document("plivo", "h", token="tok", from_number="+1 555", to_number="+1666")
    stream = ET.fromstring(doc.body).find("Stream")
    assert stream is not None and stream.text == "wss://h/ws/tok"
    assert stream.attrib == {
        "bidirectional": "true",
        "keepCallAlive": "true",
        "contentType": "audio/x-mulaw;rate=8000",
        "extraHeaders": "from=1555,to=1666",
    }


def test_attribute_values_are_escaped() -> None:
    doc = answer_document("twilio", "h", token=None, from_number='"><Hangup/>')
    stream = ET.fromstring(doc.body).find("./Connect/Stream")
    assert stream is not None and ET.fromstring(doc.body).find(".//Hangup") is None
    assert stream.find("Parameter").get("value") == '"><Hangup/>'  # type: ignore[union-attr]


def test_exotel_and_vonage_json() -> None:
    exo = json.loads(answer_document("exotel", "h", token="t").body)
    assert exo["url"] == exo["websocket_url"] == "wss://h/ws/t"
    ncco = json.loads(answer_document("vonage", "h", token="t", call_id="u1", from_number="1").body)
    endpoint = ncco[0]["endpoint"][0]
    assert ncco[0]["action"] == "connect" and endpoint["uri"] == "wss://h/ws/t"
    assert endpoint["headers"] == {"from": "1", "call_id": "u1"}


def test_busy_documents() -> None:
    for provider in ("twilio", "telnyx"):
        reject = ET.fromstring(busy_document(provider, "at capacity").body).find("Reject")
        assert reject is not None and reject.get("reason") == "busy"
    hangup = ET.fromstring(busy_document("plivo", "draining").body).find("Hangup")
    assert hangup is not None and hangup.get("reason") == "busy"
    exo = busy_document("exotel", "draining")
    assert exo.status_code == 503 and json.loads(exo.body)["reason"] == "draining"
