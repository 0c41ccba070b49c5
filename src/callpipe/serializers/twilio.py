"""Twilio Media Streams: JSON text frames carrying base64 µ-law at 8 kHz.

Inbound: ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``. Outbound: ``media``,
``clear``, ``mark`` and application messages, byte-for-byte as ``json.dumps`` writes them.

Media messages are the hot path (one per 20 ms per call in each direction): outbound JSON is a
precomputed prefix + base64 + suffix, and inbound media in Twilio's exact compact shape is matched
by one anchored regular expression that accepts only valid JSON of that shape (anything else
takes the ordinary ``json.loads`` path, so results are identical).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import Frame, StreamStoppedFrame
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import b64encode
from callpipe.telephony.twilio import TwilioCallControl, twilio_api_root, twilio_credentials

logger = logging.getLogger(__name__)

# Twilio's own (compact) media message. Only valid JSON can match: every value is a digit run,
# a literal, or base64 / SID characters that need no escaping.
_FAST_MEDIA = re.compile(
    r'\{"event":"media","sequenceNumber":"\d{1,12}","media":\{"track":"inbound",'
    r'"chunk":"\d{1,12}","timestamp":"\d{1,15}","payload":"([A-Za-z0-9+/]+={0,2})"\},'
    r'"streamSid":"[A-Za-z0-9]{1,64}"\}'
).fullmatch


class TwilioFrameSerializer(TelephonySerializer):
    """Serializer for one Twilio Media Stream (``MZ…``) of one call (``CA…``)."""

    class InputParams(TelephonySerializer.InputParams):
        """``twilio_sample_rate``: Twilio's audio rate; ``sample_rate``: pipeline input rate
        override (default: the StartFrame's); ``auto_hang_up``: end the call via REST when the
        pipeline ends."""

        twilio_sample_rate: int = 8000
        auto_hang_up: bool = True

    _params: InputParams
    _fast_media = _FAST_MEDIA

    def __init__(
        self,
        stream_sid: str,
        call_sid: str | None = None,
        account_sid: str | None = None,
        auth_token: str | None = None,
        region: str | None = None,
        edge: str | None = None,
        base_url: str | None = None,
        params: InputParams | None = None,
        *,
        api_key_sid: str | None = None,
        api_key_secret: str | None = None,
    ) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "ulaw", p.twilio_sample_rate)
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.auto_hang_up = p.auto_hang_up

        twilio_api_root(region, edge, base_url)  # validates region/edge early
        creds = twilio_credentials(account_sid, auth_token, api_key_sid, api_key_secret)
        if self.auto_hang_up:
            missing = [
                name
                for name, value in (
                    ("call_sid", call_sid),
                    ("account_sid", account_sid),
                    ("auth_token (or api_key_sid + api_key_secret)", creds),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "TwilioFrameSerializer: auto_hang_up is enabled but missing required "
                    f"parameters: {', '.join(missing)}. Pass them, or disable hang-up with "
                    "params=TwilioFrameSerializer.InputParams(auto_hang_up=False)"
                )
        if call_sid and account_sid and creds:
            self.call_control = TwilioCallControl(
                account_sid=account_sid,
                call_sid=call_sid,
                auth_token=auth_token,
                api_key_sid=api_key_sid,
                api_key_secret=api_key_secret,
                region=region,
                edge=edge,
                base_url=base_url,
            )

        sid = json.dumps(stream_sid)
        self._media_prefix = '{"event": "media", "streamSid": ' + sid + ', "media": {"payload": "'
        self._clear_message = '{"event": "clear", "streamSid": ' + sid + "}"
        self._mark_prefix = '{"event": "mark", "streamSid": ' + sid + ', "mark": {"name": '

    @property
    def call_id(self) -> str:
        return self.call_sid or self.stream_sid

    def _media(self, payload: bytes) -> str:
        return self._media_prefix + b64encode(payload) + '"}}'

    def _clear(self) -> str:
        return self._clear_message

    def serialize_mark(self, name: str) -> str:
        return self._mark_prefix + json.dumps(name) + "}}"

    # ------------------------------------------------------------------ inbound

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "media":
            return self._media_event(message)
        if event == "dtmf":
            return self._dtmf_event(message)
        if event == "mark":
            return self._mark_event(message)
        if event == "stop":
            return StreamStoppedFrame()
        if event in ("connected", "start"):
            return None
        raise self._unknown(event)
