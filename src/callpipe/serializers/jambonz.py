"""jambonz ``listen`` verb with bidirectional streaming audio: binary L16 plus JSON text frames.

jambonz opens the WebSocket (subprotocol ``audio.jambonz.org``) and first sends one text frame:
the call's attributes (``callSid``, ``from``, ``to``, ...) with ``sampleRate`` and ``mixType``
and the verb's ``metadata``. After that, caller audio arrives as binary frames of 16-bit
little-endian PCM at ``sampleRate``, and (with ``passDtmf``) key presses as text frames
``{"event": "dtmf", "dtmf": "5", "duration": ...}``. With ``bidirectionalAudio.streaming`` the
bot's audio goes back as binary L16 frames at ``bidirectionalAudio.sampleRate`` (the runner's
answer sets both rates equal); ``{"type": "killAudio"}`` drops what is queued (barge-in) and
``{"type": "disconnect"}`` ends the verb. jambonz has no playback marks on this socket, so the
transport estimates playout from the clock.
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import Frame, InputDTMFFrame
from callpipe.log import mask
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import PhoneAudio
from callpipe.serializers.base_serializer import FrameSerializerType
from callpipe.telephony.jambonz import JambonzCallControl

logger = logging.getLogger(__name__)

SUBPROTOCOL = "audio.jambonz.org"
RATES = (8000, 16000, 24000, 48000, 64000)
"""Sample rates the listen verb allows."""


class JambonzFrameSerializer(TelephonySerializer):
    """Serializer for one jambonz ``listen`` stream of one call."""

    class InputParams(TelephonySerializer.InputParams):
        """``auto_hang_up`` ends the call through jambonz's REST API when the pipeline ends
        (needs ``account_sid`` and ``api_key``)."""

        jambonz_sample_rate: int = 8000
        auto_hang_up: bool = True

    _params: InputParams
    _binary_audio = True

    def __init__(
        self,
        call_sid: str | None = None,
        params: InputParams | None = None,
        *,
        account_sid: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
    ) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "pcm16", p.jambonz_sample_rate)
        self.call_sid = call_sid
        self.auto_hang_up = p.auto_hang_up
        if p.auto_hang_up:
            missing = [
                name
                for name, value in (
                    ("call_sid", call_sid),
                    ("account_sid", account_sid),
                    ("api_key", api_key),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "JambonzFrameSerializer: auto_hang_up is enabled but missing required "
                    f"parameters: {', '.join(missing)}. Pass them, or disable hang-up with "
                    "params=JambonzFrameSerializer.InputParams(auto_hang_up=False)"
                )
        if call_sid and account_sid and api_key:
            self.call_control = JambonzCallControl(
                account_sid=account_sid, call_sid=call_sid, api_key=api_key, base_url=base_url
            )

    @property
    def type(self) -> FrameSerializerType:
        return FrameSerializerType.BINARY

    @property
    def call_id(self) -> str:
        return self.call_sid or "-"

    def _media(self, payload: bytes) -> bytes:
        return payload

    def _clear(self) -> str:
        return '{"type": "killAudio"}'

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        if message.get("event") == "dtmf":
            return InputDTMFFrame(button=_wire.keypad(message.get("dtmf")))
        if "sampleRate" in message and "callSid" in message:
            self._on_preamble(message)
            return None
        if message.get("type") in ("playDone", "error"):
            return None
        raise self._unknown(message.get("event", message.get("type")))

    def _on_preamble(self, message: dict[str, Any]) -> None:
        """The first text frame: adopt the call id and the stream's rate (as sent)."""
        call_sid = message.get("callSid")
        if isinstance(call_sid, str) and not self.call_sid:
            self.call_sid = call_sid[:64]
        rate = message.get("sampleRate")
        if isinstance(rate, int) and rate in RATES and rate != self._audio.provider_rate:
            logger.info("jambonz call %s: stream audio is %d Hz", mask(self.call_id), rate)
            pipeline_rate = self._audio.pipeline_rate
            self._audio = PhoneAudio("pcm16", rate, self._params.resampler_clear_after_secs)
            self._audio.set_pipeline_rate(pipeline_rate)
        mix = message.get("mixType")
        if mix not in (None, "mono"):
            logger.warning("jambonz call %s: mixType %r is not mono", mask(self.call_id), mix)
