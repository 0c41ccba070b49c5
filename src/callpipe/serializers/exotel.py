"""Exotel Voicebot streams: JSON text frames carrying base64 PCM16 LE (not G.711) at 8 kHz.

Inbound: ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``. Outbound: ``media``,
``clear``, ``mark`` keyed by ``stream_sid``. Exotel has no hang-up API here (``call_control`` is
None): the call moves to the next applet when the socket closes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from callpipe.frames.frames import Frame, StreamStoppedFrame
from callpipe.serializers._telephony import TelephonySerializer

_FAST_MEDIA = re.compile(
    r'\{"event":"media","sequence_number":"\d{1,12}","stream_sid":"[A-Za-z0-9_-]{1,64}",'
    r'"media":\{"chunk":"\d{1,12}","timestamp":"\d{1,15}","payload":"([A-Za-z0-9+/]+={0,2})"\}\}'
).fullmatch


class ExotelFrameSerializer(TelephonySerializer):
    """Serializer for one Exotel Voicebot stream."""

    class InputParams(TelephonySerializer.InputParams):
        exotel_sample_rate: int = 8000

    _params: InputParams
    _fast_media = _FAST_MEDIA
    #: Exotel asks for outbound media in chunks of at least 3.2 kB (200 ms of 8 kHz PCM16) in
    #: multiples of 320 B; smaller chunks can sound distorted. The transport uses this packet size
    #: unless the application set ``audio_out_10ms_chunks`` itself.
    preferred_10ms_chunks = 20

    def __init__(
        self, stream_sid: str, call_sid: str | None = None, params: InputParams | None = None
    ) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "pcm16", p.exotel_sample_rate)
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        sid = json.dumps(stream_sid)
        self._media_prefix = '{"event": "media", "stream_sid": ' + sid + ', "media": {"payload": "'
        self._clear_message = '{"event": "clear", "stream_sid": ' + sid + "}"
        self._mark_prefix = '{"event": "mark", "stream_sid": ' + sid + ', "mark": {"name": '

    @property
    def call_id(self) -> str:
        return self.call_sid or self.stream_sid

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("event")
        if event == "media":
            return self._media_event(message)
        if event == "dtmf":
            return self._dtmf_event(message)
        if event == "mark":
            return self._mark_event(message)
        if event == "stop":
            stop = message.get("stop")
            reason = stop.get("reason") if isinstance(stop, dict) else None
            return StreamStoppedFrame(reason=reason if isinstance(reason, str) else None)
        if event in ("connected", "start", "clear"):
            return None
        raise self._unknown(event)
