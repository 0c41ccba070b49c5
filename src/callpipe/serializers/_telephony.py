"""Common shape of the JSON-over-WebSocket telephony dialects (Twilio, Telnyx, Plivo, Exotel).

They differ in field names, not in structure: base64 audio in ``media`` messages, a ``clear``
message for barge-in, a mark/checkpoint acknowledged after playout, DTMF events. Subclasses give
the message templates and the inbound dispatch; this class owns the audio path, the outbound frame
dispatch and the never-raise wrapper around inbound parsing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
    TTSStoppedFrame,
)
from callpipe.log import mask
from callpipe.serializers import _wire
from callpipe.serializers._wire import Encoding, Malformed, PhoneAudio
from callpipe.serializers.base_serializer import FrameSerializer

logger = logging.getLogger(__name__)

_INBOUND_TRACKS = frozenset({"inbound", "inbound_track"})


class TelephonySerializer(FrameSerializer):
    """Base of the JSON telephony serializers."""

    class InputParams(FrameSerializer.InputParams):
        sample_rate: int | None = None

    _params: InputParams

    #: Optional anchored matcher of the provider's exact compact media message; group 1 is the
    #: base64 payload. It must only match valid JSON whose slow-path result would be the same.
    _fast_media: Callable[[str], re.Match[str] | None] | None = None

    #: True for dialects whose binary WebSocket frames are raw audio (Vonage, generic).
    _binary_audio = False

    def __init__(
        self,
        params: InputParams,
        encoding: Encoding,
        provider_rate: int,
        out_encoding: Encoding | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(params, name=name)
        self._audio = PhoneAudio(
            encoding, provider_rate, params.resampler_clear_after_secs, out_encoding
        )

    @property
    def wire_sample_rate(self) -> int:
        """The provider's audio rate; the output transport resamples bot audio straight to it."""
        return self._audio.provider_rate

    async def setup(self, frame: StartFrame) -> None:
        self._audio.set_pipeline_rate(self._params.sample_rate or frame.audio_in_sample_rate)

    # ------------------------------------------------------------------ outbound

    # JSON dialects set these message templates once per call (precomputed: the media message
    # is built per 20 ms packet); binary dialects override the three methods below instead.
    _media_prefix: str = ""
    _media_suffix: str = '"}}'
    _clear_message: str = ""
    _mark_prefix: str | None = None
    _mark_suffix: str = "}}"

    def _media(self, payload: bytes) -> str | bytes:
        """The provider media message carrying ``payload`` (provider codec and rate)."""
        return self._media_prefix + _wire.b64encode(payload) + self._media_suffix

    def _clear(self) -> str | bytes:
        return self._clear_message

    @property
    def supports_marks(self) -> bool:
        overridden = type(self).serialize_mark is not TelephonySerializer.serialize_mark
        return overridden or self._mark_prefix is not None

    def serialize_mark(self, name: str) -> str | bytes | None:
        if self._mark_prefix is None:
            return None
        return self._mark_prefix + json.dumps(name) + self._mark_suffix

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame | InputAudioRawFrame):
            audio = frame.audio
            if frame.num_channels != 1:
                audio = _wire.downmix(audio, frame.num_channels)
            payload = self._audio.encode(audio, frame.sample_rate)
            return self._media(payload) if payload else None
        if isinstance(frame, InterruptionFrame):
            self._audio.reset_out()
            return self._clear()
        if isinstance(frame, TTSStoppedFrame):
            tail = self._audio.flush_out()
            return self._media(tail) if tail else None
        if isinstance(frame, TransportMessageFrame | TransportMessageUrgentFrame):
            return self._message(frame)
        return None  # EndFrame/CancelFrame: hang-up is the transport's job, via call_control

    def _message(self, frame: TransportMessageFrame | TransportMessageUrgentFrame) -> str | None:
        if self.should_ignore_frame(frame):
            return None
        try:
            return json.dumps(frame.message)
        except (TypeError, ValueError) as exc:
            logger.warning("call %s: transport message is not JSON: %s", mask(self.call_id), exc)
            return None

    # ------------------------------------------------------------------ inbound

    def _dispatch(self, message: dict[str, Any]) -> Frame | list[Frame] | None:
        raise NotImplementedError

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        try:
            if self._binary_audio and not isinstance(data, str):
                if len(data) > self.MAX_PAYLOAD_BYTES:
                    raise Malformed("payload_too_large", f"{len(data)} bytes")
                if not data:
                    raise Malformed("missing_payload")
                return self._audio_frame(bytes(data))
            fast = self._fast_media
            if fast is not None and type(data) is str:
                match = fast(data)
                if match is not None:
                    return self._audio_frame(_wire.b64decode(match[1], self.MAX_PAYLOAD_BYTES))
            return self._dispatch(_wire.load_object(data))
        except Exception as exc:  # never let one message end the call
            self._refuse(exc)
        return None

    def _refuse(self, exc: Exception) -> None:
        """Count and log one inbound message that could not be read; the call goes on."""
        if isinstance(exc, Malformed):
            self._skip(exc.kind, exc.detail)
        else:
            self._skip("internal_error", repr(exc))
            logger.debug("deserialize failed", exc_info=exc)

    def _audio_frame(self, payload: bytes) -> InputAudioRawFrame | None:
        pcm = self._audio.decode(payload)
        if not pcm:
            return None
        return InputAudioRawFrame(audio=pcm, sample_rate=self._audio.pipeline_rate)

    def _media_event(self, message: dict[str, Any]) -> InputAudioRawFrame | None:
        media = _wire.get_object(message, "media")
        track = media.get("track", "inbound")
        if not isinstance(track, str):
            raise Malformed("bad_track", type(track).__name__)
        if track not in _INBOUND_TRACKS:
            return None  # the bot's own audio on a both-tracks stream
        return self._audio_frame(_wire.b64decode(media.get("payload"), self.MAX_PAYLOAD_BYTES))

    @staticmethod
    def _dtmf_event(message: dict[str, Any]) -> InputDTMFFrame:
        dtmf = _wire.get_object(message, "dtmf")
        return InputDTMFFrame(button=_wire.keypad(dtmf.get("digit")))

    @staticmethod
    def _mark_event(message: dict[str, Any]) -> PlaybackMarkFrame:
        mark = _wire.get_object(message, "mark")
        return PlaybackMarkFrame(mark=_wire.get_str(mark, "name", "missing_mark_name"))

    @staticmethod
    def _unknown(event: Any) -> Malformed:
        if not isinstance(event, str):
            return Malformed("missing_event")
        return Malformed("unknown_event", event[:40])
