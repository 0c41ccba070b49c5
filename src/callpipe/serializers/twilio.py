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
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
    TTSStoppedFrame,
)
from callpipe.serializers import _wire
from callpipe.serializers._wire import Malformed, PhoneAudio, b64encode
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.telephony.base import CallControl
from callpipe.telephony.twilio import TwilioCallControl, twilio_api_root, twilio_credentials

logger = logging.getLogger(__name__)

# Twilio's own (compact) media message. Only valid JSON can match: every value is a digit run,
# a literal, or base64 / SID characters that need no escaping.
_FAST_MEDIA = re.compile(
    r'\{"event":"media","sequenceNumber":"\d{1,12}","media":\{"track":"inbound",'
    r'"chunk":"\d{1,12}","timestamp":"\d{1,15}","payload":"([A-Za-z0-9+/]+={0,2})"\},'
    r'"streamSid":"[A-Za-z0-9]{1,64}"\}'
).fullmatch


class TwilioFrameSerializer(FrameSerializer):
    """Serializer for one Twilio Media Stream (``MZ…``) of one call (``CA…``)."""

    class InputParams(FrameSerializer.InputParams):
        """``twilio_sample_rate``: Twilio's audio rate; ``sample_rate``: pipeline input rate
        override (default: the StartFrame's); ``auto_hang_up``: end the call via REST when the
        pipeline ends."""

        twilio_sample_rate: int = 8000
        sample_rate: int | None = None
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
        super().__init__(params if params is not None else self.InputParams())
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        self.auto_hang_up = self._params.auto_hang_up
        p = self._params
        self._audio = PhoneAudio("ulaw", p.twilio_sample_rate, p.resampler_clear_after_secs)

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
            self.call_control = self._make_call_control(
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
        self._clear = '{"event": "clear", "streamSid": ' + sid + "}"
        self._mark_prefix = '{"event": "mark", "streamSid": ' + sid + ', "mark": {"name": '

    @staticmethod
    def _make_call_control(**kwargs: Any) -> CallControl:
        return TwilioCallControl(**kwargs)

    @property
    def call_id(self) -> str:
        return self.call_sid or self.stream_sid

    async def setup(self, frame: StartFrame) -> None:
        self._audio.set_pipeline_rate(self._params.sample_rate or frame.audio_in_sample_rate)

    # ------------------------------------------------------------------ outbound

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame | InputAudioRawFrame):
            audio = frame.audio
            if frame.num_channels != 1:
                audio = _wire.downmix(audio, frame.num_channels)
            return self._media(self._audio.encode(audio, frame.sample_rate))
        if isinstance(frame, InterruptionFrame):
            self._audio.reset_out()
            return self._clear
        if isinstance(frame, TTSStoppedFrame):
            return self._media(self._audio.flush_out())
        if isinstance(frame, TransportMessageFrame | TransportMessageUrgentFrame):
            return self._message(frame)
        if isinstance(frame, EndFrame | CancelFrame):
            return None  # hang-up is the transport's job, via call_control
        return None

    def _media(self, ulaw: bytes) -> str | None:
        if not ulaw:
            return None
        return self._media_prefix + b64encode(ulaw) + '"}}'

    def _message(self, frame: TransportMessageFrame | TransportMessageUrgentFrame) -> str | None:
        if self.should_ignore_frame(frame):
            return None
        try:
            return json.dumps(frame.message)
        except (TypeError, ValueError) as exc:
            logger.warning("call %s: transport message is not JSON: %s", self.call_id, exc)
            return None

    def serialize_mark(self, name: str) -> str:
        return self._mark_prefix + json.dumps(name) + "}}"

    # ------------------------------------------------------------------ inbound

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        try:
            if type(data) is str:
                match = _FAST_MEDIA(data)
                if match is not None:
                    return self._audio_frame(_wire.b64decode(match[1], self.MAX_PAYLOAD_BYTES))
            return self._dispatch(_wire.load_object(data))
        except Malformed as exc:
            self._skip(exc.kind, exc.detail)
        except Exception as exc:  # never let one message end the call
            self._skip("internal_error", repr(exc))
            logger.debug("deserialize failed", exc_info=True)
        return None

    def _audio_frame(self, ulaw: bytes) -> InputAudioRawFrame | None:
        pcm = self._audio.decode(ulaw)
        if not pcm:
            return None
        return InputAudioRawFrame(audio=pcm, sample_rate=self._audio.pipeline_rate)

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "media":
            media = _wire.get_object(message, "media")
            track = media.get("track", "inbound")
            if track not in ("inbound", "inbound_track"):
                return None  # the bot's own audio on a both-tracks stream
            return self._audio_frame(_wire.b64decode(media.get("payload"), self.MAX_PAYLOAD_BYTES))
        if event == "dtmf":
            dtmf = _wire.get_object(message, "dtmf")
            return InputDTMFFrame(button=_wire.keypad(dtmf.get("digit")))
        if event == "mark":
            mark = _wire.get_object(message, "mark")
            return PlaybackMarkFrame(mark=_wire.get_str(mark, "name", "missing_mark_name"))
        if event == "stop":
            return StreamStoppedFrame()
        if event in ("connected", "start"):
            return None
        if not isinstance(event, str):
            raise Malformed("missing_event")
        raise Malformed("unknown_event", event[:40])
