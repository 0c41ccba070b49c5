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
from binascii import Error as BinasciiError
from binascii import a2b_base64
from typing import Any

from callpipe.audio.g711 import pcm_to_ulaw, ulaw_decoder
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
    StreamStoppedFrame,
)
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import Malformed, b64encode
from callpipe.telephony.twilio import TwilioCallControl, twilio_api_root, twilio_credentials

logger = logging.getLogger(__name__)

_AUDIO_FRAMES = (OutputAudioRawFrame, InputAudioRawFrame)
_MAX_PAYLOAD = TelephonySerializer.MAX_PAYLOAD_BYTES
_ulaw2lin = ulaw_decoder()  # the codec's own (data, width) function: no wrapper per packet

# The head of Twilio's own (compact) media message, up to the payload's opening quote. The fast
# path accepts a message only if it is this head, then characters that strict base64 decoding
# accepts (so no quote or escape), then exactly ``"},"streamSid":"<our stream>"}``: that is valid
# JSON with the same meaning the ``json.loads`` path would find. Anything else takes that path.
_MEDIA_HEAD = re.compile(
    r'\{"event":"media","sequenceNumber":"\d{1,12}","media":\{"track":"inbound",'
    r'"chunk":"\d{1,12}","timestamp":"\d{1,15}","payload":"'
).match


class TwilioFrameSerializer(TelephonySerializer):
    """Serializer for one Twilio Media Stream (``MZ…``) of one call (``CA…``)."""

    class InputParams(TelephonySerializer.InputParams):
        """``twilio_sample_rate``: Twilio's audio rate; ``sample_rate``: pipeline input rate
        override (default: the StartFrame's); ``auto_hang_up``: end the call via REST when the
        pipeline ends."""

        twilio_sample_rate: int = 8000
        auto_hang_up: bool = True

    _params: InputParams

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
        self._plain_in = True

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
        self._media_tail = '"},"streamSid":' + json.dumps(stream_sid, separators=(",", ":")) + "}"
        self._payload_stop = -len(self._media_tail)
        self._wire_rate = p.twilio_sample_rate
        self._media_prefix = '{"event": "media", "streamSid": ' + sid + ', "media": {"payload": "'
        self._clear_message = '{"event": "clear", "streamSid": ' + sid + "}"
        self._mark_prefix = '{"event": "mark", "streamSid": ' + sid + ', "mark": {"name": '

    @property
    def call_id(self) -> str:
        return self.call_sid or self.stream_sid

    async def setup(self, frame: StartFrame) -> None:
        await super().setup(frame)
        self._plain_in = self._audio.pipeline_rate == self._wire_rate

    async def serialize(self, frame: Frame) -> str | bytes | None:
        # Hot path: mono audio already at Twilio's rate (what the transport normally sends).
        if (
            isinstance(frame, _AUDIO_FRAMES)
            and frame.sample_rate == self._wire_rate
            and frame.num_channels == 1
            and frame.audio
        ):
            return self._media_prefix + b64encode(pcm_to_ulaw(frame.audio)) + '"}}'
        return await super().serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        # Hot path: Twilio's compact media message for this stream (see ``_MEDIA_HEAD``).
        if type(data) is str and data.endswith(self._media_tail):
            head = _MEDIA_HEAD(data)
            if head is not None:
                try:
                    ulaw = a2b_base64(data[head.end() : self._payload_stop], strict_mode=True)
                except (BinasciiError, ValueError):
                    ulaw = b""  # escapes or garbage: let the JSON path decide
                if 0 < len(ulaw) <= _MAX_PAYLOAD:
                    if self._plain_in:
                        return InputAudioRawFrame(_ulaw2lin(ulaw, 2), self._wire_rate)
                    return self._audio_frame(ulaw)
        return await super().deserialize(data)

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
        if event == "start":
            self._check_media_format(message)
            return None
        if event == "connected":
            return None
        raise self._unknown(event)

    def _check_media_format(self, message: dict[str, Any]) -> None:
        """A (repeated) ``start`` announcing audio we would decode wrongly: say so, once."""
        start = message.get("start")
        fmt = start.get("mediaFormat") if isinstance(start, dict) else None
        if not isinstance(fmt, dict):
            return
        encoding, rate = (
            fmt.get("encoding", "audio/x-mulaw"),
            fmt.get("sampleRate", self._wire_rate),
        )
        if encoding != "audio/x-mulaw" or rate != self._wire_rate:
            raise Malformed("unsupported_media_format", f"{str(encoding)[:30]} at {str(rate)[:8]}")
