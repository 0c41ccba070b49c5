"""The documents ``POST /`` returns: how each provider is told to open the media stream.

Where each provider carries the stream token and the caller's numbers:

- Twilio (TwiML): token in the stream URL path ``wss://HOST/ws/<token>`` (Twilio forbids query
  strings there); ``from_number``/``to_number`` as ``<Parameter>``s, echoed in
  ``start.customParameters``.
- Telnyx (TeXML, ``bidirectionalMode="rtp"``): token in the URL path; Telnyx puts ``from``/``to``
  in its ``start`` message itself.
- Plivo: token in the URL path; ``from``/``to`` in ``extraHeaders`` (Plivo allows only
  letters and digits in values, so numbers are sent as digits), echoed as ``extra_headers``.
- Exotel: Exotel does not POST; its Voicebot applet can fetch the WebSocket URL from an HTTPS
  endpoint, so ``GET``/``POST /`` answers JSON whose ``url`` carries the token in the path.
- Vonage (Voice API): an NCCO ``connect`` to a websocket endpoint; token in the URL path and
  ``from``/``to``/``call_id`` as websocket ``headers``, echoed in ``websocket:connected``.

Busy documents (at capacity or draining) make the provider reject the call instead of connecting
a stream that would be refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class Answer:
    body: str
    media_type: str
    status_code: int = 200


def stream_url(proxy: str, token: str | None) -> str:
    return f"wss://{proxy}/ws/{token}" if token else f"wss://{proxy}/ws"


def _digits(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", value)


def answer_document(
    provider: str,
    proxy: str,
    *,
    token: str | None,
    from_number: str = "",
    to_number: str = "",
    call_id: str = "",
) -> Answer:
    """The provider's instructions to connect this call to ``wss://{proxy}/ws[/token]``."""
    url = stream_url(proxy, token)
    if provider in ("twilio", "telnyx"):
        extra = ' bidirectionalMode="rtp"' if provider == "telnyx" else ""
        params = ""
        if provider == "twilio":
            params = "".join(
                f"\n      <Parameter name={quoteattr(name)} value={quoteattr(value)}/>"
                for name, value in (("from_number", from_number), ("to_number", to_number))
                if value
            )
        close = "\n    </Stream>" if params else "</Stream>"
        body = (
            f"{XML_DECL}<Response>\n  <Connect>\n"
            f"    <Stream url={quoteattr(url)}{extra}>{params}{close}\n"
            "  </Connect>\n</Response>"
        )
        return Answer(body, "application/xml")
    if provider == "plivo":
        headers = ",".join(
            f"{name}={_digits(value)}"
            for name, value in (("from", from_number), ("to", to_number))
            if _digits(value)
        )
        extra = f" extraHeaders={quoteattr(headers)}" if headers else ""
        body = (
            f"{XML_DECL}<Response>\n"
            '  <Stream bidirectional="true" keepCallAlive="true" '
            f'contentType="audio/x-mulaw;rate=8000"{extra}>{escape(url)}</Stream>\n'
            "</Response>"
        )
        return Answer(body, "application/xml")
    if provider == "exotel":
        doc = {
            "url": url,
            "websocket_url": url,
            "note": "Configure this endpoint (or the WebSocket URL) in your Exotel Voicebot applet",
        }
        return Answer(json.dumps(doc), "application/json")
    if provider == "vonage":
        pairs = (("from", from_number), ("to", to_number), ("call_id", call_id))
        ws_headers: dict[str, str] = {k: v for k, v in pairs if v}
        ncco = [
            {
                "action": "connect",
                "endpoint": [
                    {
                        "type": "websocket",
                        "uri": url,
                        "content-type": "audio/l16;rate=16000",
                        "headers": ws_headers,
                    }
                ],
            }
        ]
        return Answer(json.dumps(ncco), "application/json")
    return Answer(f"{XML_DECL}<Response></Response>", "application/xml")


def busy_document(provider: str, reason: str) -> Answer:
    """Reject the call politely (the caller hears busy) while at capacity or draining."""
    if provider in ("twilio", "telnyx"):
        body = f'{XML_DECL}<Response>\n  <Reject reason="busy"/>\n</Response>'
        return Answer(body, "application/xml")
    if provider == "plivo":
        body = f'{XML_DECL}<Response>\n  <Hangup reason="busy"/>\n</Response>'
        return Answer(body, "application/xml")
    if provider == "vonage":
        return Answer(
            json.dumps([{"action": "talk", "text": "All lines are busy."}]), "application/json"
        )
    return Answer(json.dumps({"error": "busy", "reason": reason}), "application/json", 503)
