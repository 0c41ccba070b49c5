"""Telnyx media streaming: JSON text frames carrying base64 G.711 (PCMU or PCMA) at 8 kHz.

Inbound: ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``error``, ``stop``. Outbound:
``media``, ``clear``, ``mark`` — the shapes Pipecat writes (no ``stream_id`` on them).

Encoding names follow Telnyx's point of view, as in Pipecat: ``inbound_encoding`` is the codec of
audio *we send to* Telnyx, ``outbound_encoding`` the codec Telnyx sends us. An outbound codec we
cannot decode does not fail the call at construction (the runner takes it from the ``start``
message): each media message is counted as ``unsupported_encoding`` and skipped.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import Frame, InputAudioRawFrame, StreamStoppedFrame
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import Encoding, Malformed
from callpipe.telephony.telnyx import TelnyxCallControl

logger = logging.getLogger(__name__)

_CODECS: dict[str, Encoding] = {"PCMU": "ulaw", "PCMA": "alaw"}

_FAST_MEDIA = re.compile(
    r'\{"event":"media","sequence_number":"\d{1,12}","media":\{"track":"inbound",'
    r'"chunk":"\d{1,12}","timestamp":"\d{1,15}","payload":"([A-Za-z0-9+/]+={0,2})"\},'
    r'"stream_id":"[A-Za-z0-9-]{1,64}"\}'
).fullmatch


class TelnyxFrameSerializer(TelephonySerializer):
    """Serializer for one Telnyx media stream."""

    class InputParams(TelephonySerializer.InputParams):
        telnyx_sample_rate: int = 8000
        inbound_encoding: str = "PCMU"
        outbound_encoding: str = "PCMU"
        auto_hang_up: bool = True

    _params: InputParams
    _fast_media = _FAST_MEDIA

    def __init__(
        self,
        stream_id: str,
        outbound_encoding: str,
        inbound_encoding: str,
        call_control_id: str | None = None,
        api_key: str | None = None,
        params: InputParams | None = None,
        *,
        base_url: str | None = None,
    ) -> None:
        base = params if params is not None else self.InputParams()
        # A copy: the caller's params object is not modified.
        p = base.model_copy(
            update={"inbound_encoding": inbound_encoding, "outbound_encoding": outbound_encoding}
        )
        send_codec = _CODECS.get(p.inbound_encoding.upper())
        if send_codec is None:
            raise ConfigurationError(
                f"TelnyxFrameSerializer: unsupported inbound_encoding {p.inbound_encoding!r} "
                "(the codec sent to Telnyx): use 'PCMU' or 'PCMA'"
            )
        recv_codec = _CODECS.get(p.outbound_encoding.upper())
        super().__init__(p, recv_codec or "ulaw", p.telnyx_sample_rate, send_codec)
        self._recv_supported = recv_codec is not None
        self.stream_id = stream_id
        self.call_control_id = call_control_id
        self.auto_hang_up = p.auto_hang_up
        if not self._recv_supported:
            logger.warning(
                "Telnyx stream %s: unsupported outbound_encoding %r; inbound audio is dropped",
                stream_id,
                p.outbound_encoding,
            )

        if self.auto_hang_up:
            missing = [
                n for n, v in (("call_control_id", call_control_id), ("api_key", api_key)) if not v
            ]
            if missing:
                raise ConfigurationError(
                    "TelnyxFrameSerializer: auto_hang_up is enabled but missing required "
                    f"parameters: {', '.join(missing)}. Pass them, or disable hang-up with "
                    "params=TelnyxFrameSerializer.InputParams(auto_hang_up=False)"
                )
        if call_control_id and api_key:
            self.call_control = TelnyxCallControl(
                call_control_id=call_control_id, api_key=api_key, base_url=base_url
            )

    @property
    def call_id(self) -> str:
        return self.call_control_id or self.stream_id

    # ------------------------------------------------------------------ outbound

    _media_prefix = '{"event": "media", "media": {"payload": "'
    _clear_message = '{"event": "clear"}'
    _mark_prefix = '{"event": "mark", "mark": {"name": '

    # ------------------------------------------------------------------ inbound

    def _audio_frame(self, payload: bytes) -> InputAudioRawFrame | None:
        if not self._recv_supported:
            raise Malformed("unsupported_encoding", self._params.outbound_encoding[:20])
        return super()._audio_frame(payload)

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
        if event == "error":
            payload = message.get("payload")
            detail = payload if isinstance(payload, dict) else {}
            logger.warning(
                "Telnyx stream %s reported an error: %s %s",
                self.stream_id,
                str(detail.get("code"))[:20],
                str(detail.get("title"))[:60],
            )
            return None
        if event in ("connected", "start"):
            return None
        raise self._unknown(event)
