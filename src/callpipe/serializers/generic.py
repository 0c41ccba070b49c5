"""A plain dialect for browsers and test tools: raw PCM16 binary frames plus JSON text frames.

Binary frames carry mono 16-bit little-endian PCM at ``client_sample_rate`` in both directions.
Text frames are JSON objects:

- client → server: ``{"type": "dtmf", "digit": "5"}`` → ``InputDTMFFrame``;
  ``{"type": "mark", "name": "…"}`` (echo of our mark once played) → ``PlaybackMarkFrame``;
  ``{"type": "stop"}`` → ``StreamStoppedFrame``; any other object → ``InputTransportMessageFrame``.
- server → client: ``{"type": "clear"}`` on barge-in, ``{"type": "mark", "name": "…"}``, and
  application messages as their JSON.
"""

from __future__ import annotations

import json
from typing import Any

from callpipe.frames.frames import (
    Frame,
    InputDTMFFrame,
    InputTransportMessageFrame,
    PlaybackMarkFrame,
    StreamStoppedFrame,
)
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers.base_serializer import FrameSerializerType


class GenericFrameSerializer(TelephonySerializer):
    """Raw PCM + JSON messages, for non-telephony clients."""

    class InputParams(TelephonySerializer.InputParams):
        client_sample_rate: int = 16000
        ignore_rtvi_messages: bool = False

    _params: InputParams
    _binary_audio = True

    def __init__(self, params: InputParams | None = None) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "pcm16", p.client_sample_rate)

    @property
    def type(self) -> FrameSerializerType:
        return FrameSerializerType.BINARY

    def _media(self, payload: bytes) -> bytes:
        return payload

    def _clear(self) -> str:
        return '{"type": "clear"}'

    def serialize_mark(self, name: str) -> str:
        return json.dumps({"type": "mark", "name": name})

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        kind = message.get("type")
        if kind == "dtmf":
            return InputDTMFFrame(button=_wire.keypad(message.get("digit")))
        if kind == "mark":
            return PlaybackMarkFrame(mark=_wire.get_str(message, "name", "missing_mark_name"))
        if kind == "stop":
            return StreamStoppedFrame()
        return InputTransportMessageFrame(message=message)
