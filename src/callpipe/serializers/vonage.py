"""Vonage Voice WebSocket (and the Audio Connector): binary L16 audio plus JSON text events.

Audio both ways is raw 16-bit little-endian PCM in binary frames, 16 kHz by default. Text frames
are JSON: inbound ``websocket:connected`` (its ``content-type`` names the rate actually used,
which we adopt), ``websocket:dtmf``, ``websocket:notify`` (our ``notify`` payload echoed once the
audio queued before it has played: used as the playback mark), ``websocket:cleared``; outbound
``{"action": "clear"}`` and ``{"action": "notify", "payload": {"mark": name}}``. Vonage has no
``stop`` message; the stream ends with the socket.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from callpipe.frames.frames import Frame, InputDTMFFrame, PlaybackMarkFrame
from callpipe.log import mask
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import PhoneAudio
from callpipe.serializers.base_serializer import FrameSerializerType

logger = logging.getLogger(__name__)

_RATE = re.compile(r"rate=(\d{4,6})")


class VonageFrameSerializer(TelephonySerializer):
    """Serializer for one Vonage WebSocket call leg."""

    class InputParams(TelephonySerializer.InputParams):
        vonage_sample_rate: int = 16000

    _params: InputParams
    _binary_audio = True

    def __init__(self, params: InputParams | None = None) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "pcm16", p.vonage_sample_rate)
        self.uuid: str | None = None

    @property
    def type(self) -> FrameSerializerType:
        return FrameSerializerType.BINARY

    @property
    def call_id(self) -> str:
        return self.uuid or "-"

    def _media(self, payload: bytes) -> bytes:
        return payload

    def _clear(self) -> str:
        return '{"action": "clear"}'

    def serialize_mark(self, name: str) -> str:
        return '{"action": "notify", "payload": {"mark": ' + json.dumps(name) + "}}"

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "websocket:dtmf":
            nested = message.get("dtmf")
            digit = message.get("digit")
            if digit is None and isinstance(nested, dict):
                digit = nested.get("digit")
            return InputDTMFFrame(button=_wire.keypad(digit))
        if event == "websocket:notify":
            payload = message.get("payload")
            mark = payload.get("mark") if isinstance(payload, dict) else None
            return PlaybackMarkFrame(mark=mark) if isinstance(mark, str) else None
        if event == "websocket:connected":
            self._on_connected(message)
            return None
        if event in ("websocket:cleared", "websocket:error"):
            if event == "websocket:error":
                logger.warning("Vonage call %s reported a WebSocket error", mask(self.call_id))
            return None
        raise self._unknown(event)

    def _on_connected(self, message: dict[str, Any]) -> None:
        uuid = message.get("uuid")
        if isinstance(uuid, str):
            self.uuid = uuid[:64]
        content_type = message.get("content-type")
        match = _RATE.search(content_type) if isinstance(content_type, str) else None
        rate = int(match[1]) if match else None
        if rate in (8000, 16000, 24000) and rate != self._audio.provider_rate:
            logger.info("Vonage call %s: stream audio is %d Hz", mask(self.call_id), rate)
            pipeline_rate = self._audio.pipeline_rate
            self._audio = PhoneAudio("pcm16", rate, self._params.resampler_clear_after_secs)
            self._audio.set_pipeline_rate(pipeline_rate)
