"""Plivo audio streams: JSON text frames carrying base64 µ-law at 8 kHz.

Inbound: ``start``, ``media``, ``dtmf``, ``playedStream`` (checkpoint acknowledged),
``clearedAudio``. Plivo sends no ``stop``; the stream ends when the socket closes. Outbound:
``playAudio``, ``clearAudio``, ``checkpoint``, in the shapes Pipecat writes.
"""

from __future__ import annotations

import json
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import Frame, PlaybackMarkFrame, StreamStoppedFrame
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.telephony.plivo import PlivoCallControl


class PlivoFrameSerializer(TelephonySerializer):
    """Serializer for one Plivo audio stream."""

    class InputParams(TelephonySerializer.InputParams):
        plivo_sample_rate: int = 8000
        auto_hang_up: bool = True

    _params: InputParams

    def __init__(
        self,
        stream_id: str,
        call_id: str | None = None,
        auth_id: str | None = None,
        auth_token: str | None = None,
        params: InputParams | None = None,
        *,
        base_url: str | None = None,
        transfer_url: str | None = None,
    ) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "ulaw", p.plivo_sample_rate)
        self.stream_id = stream_id
        self.plivo_call_id = call_id
        self.auto_hang_up = p.auto_hang_up
        if self.auto_hang_up:
            missing = [
                name
                for name, value in (
                    ("call_id", call_id),
                    ("auth_id", auth_id),
                    ("auth_token", auth_token),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "PlivoFrameSerializer: auto_hang_up is enabled but missing required "
                    f"parameters: {', '.join(missing)}. Pass them, or disable hang-up with "
                    "params=PlivoFrameSerializer.InputParams(auto_hang_up=False)"
                )
        if call_id and auth_id and auth_token:
            self.call_control = PlivoCallControl(
                auth_id=auth_id,
                auth_token=auth_token,
                call_uuid=call_id,
                base_url=base_url,
                transfer_url=transfer_url,
            )
        sid = json.dumps(stream_id)
        self._media_prefix = (
            '{"event": "playAudio", "media": {"contentType": "audio/x-mulaw", '
            f'"sampleRate": {int(p.plivo_sample_rate)}, "payload": "'
        )
        self._media_suffix = '"}, "streamId": ' + sid + "}"
        self._clear_message = '{"event": "clearAudio", "streamId": ' + sid + "}"
        self._mark_suffix = "}"  # Plivo's checkpoint: the name is a top-level field
        self._mark_prefix = '{"event": "checkpoint", "streamId": ' + sid + ', "name": '

    @property
    def call_id(self) -> str:
        return self.plivo_call_id or self.stream_id

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "media":
            return self._media_event(message)
        if event == "dtmf":
            dtmf = _wire.get_object(message, "dtmf")
            if dtmf.get("digit") == "":
                return None  # Plivo reports key releases with an empty digit
            return self._dtmf_event(message)
        if event in ("playedStream", "played"):
            return PlaybackMarkFrame(mark=_wire.get_str(message, "name", "missing_mark_name"))
        if event == "stop":
            return StreamStoppedFrame()
        if event in ("start", "clearedAudio"):
            return None
        raise self._unknown(event)
