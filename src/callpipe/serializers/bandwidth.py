"""Bandwidth media streams (BXML ``<StartStream mode="bidirectional">``): JSON text frames.

Inbound (what Bandwidth's ``<StartStream>`` documentation lists): ``start`` (``metadata`` with
``accountId``, ``callId``, ``streamId``, ``streamName`` and ``tracks``, each with a
``mediaFormat`` of ``audio/PCMU`` at 8000 Hz; ``streamParams`` from ``<StreamParam>``), ``media``
(``track`` and a base64 ``payload`` at the top level) and ``stop``. Every message names its kind
in ``eventType``.

Outbound: ``playAudio`` (``media.contentType`` + base64 ``media.payload``) and ``clear``, which
drops the audio queued for playback (barge-in). These two are the shapes Bandwidth's own Pipecat
serializer sends. ``audio/pcmu`` is µ-law at 8 kHz; with ``outbound_encoding="PCM"`` the bot's
audio goes as 16-bit linear PCM at ``outbound_pcm_sample_rate`` (8, 16 or 24 kHz), which Bandwidth
accepts as ``audio/pcm;rate=…`` and which sounds better than µ-law for TTS.

What the stream does not carry: DTMF (Bandwidth reports keys through ``<Gather>``/
``<StartGather>`` webhooks, not over the media stream) and marks (nothing acknowledges played
audio, so the transport estimates playout by time).

``auto_hang_up`` ends the call through the Voice API (:mod:`callpipe.telephony.bandwidth`),
authenticated with API credentials (OAuth 2.0 client id and secret). The runner's answer also
ends the call when the bot closes the stream (``<StopStream wait="true"/>`` then ``<Hangup/>``).
"""

from __future__ import annotations

import logging
from typing import Any

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StreamStoppedFrame,
    TTSStoppedFrame,
)
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import Malformed, PhoneAudio
from callpipe.telephony.bandwidth import BandwidthCallControl, is_safe_id

logger = logging.getLogger(__name__)

PCM_RATES = (8000, 16000, 24000)
PCMU_CONTENT_TYPE = "audio/pcmu"


def pcm_content_type(rate: int) -> str:
    """The ``contentType`` of 16-bit linear PCM at ``rate`` in a ``playAudio`` message."""
    return f"audio/pcm;rate={rate};channels=1;bit-depth=16;endian=little;encoding=signed"


class BandwidthFrameSerializer(TelephonySerializer):
    """Serializer for one Bandwidth bidirectional media stream."""

    class InputParams(TelephonySerializer.InputParams):
        """Options of a Bandwidth stream (Pipecat's names).

        ``bandwidth_sample_rate``: the stream's µ-law rate (Bandwidth streams 8000 Hz);
        ``outbound_encoding``: ``"PCMU"`` (µ-law 8 kHz) or ``"PCM"`` (16-bit linear PCM at
        ``outbound_pcm_sample_rate``: 8000, 16000 or 24000) for the bot's audio;
        ``auto_hang_up``: end the call through the Voice API when the pipeline ends.
        """

        bandwidth_sample_rate: int = 8000
        outbound_encoding: str = "PCMU"
        outbound_pcm_sample_rate: int = 24000
        auto_hang_up: bool = True

    _params: InputParams

    def __init__(
        self,
        stream_id: str,
        call_id: str | None = None,
        account_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        params: InputParams | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        base_url: str | None = None,
        token_url: str | None = None,
    ) -> None:
        p = params if params is not None else self.InputParams()
        encoding = p.outbound_encoding.upper()
        if encoding not in ("PCMU", "PCM"):
            raise ConfigurationError(
                f"BandwidthFrameSerializer: unsupported outbound_encoding {p.outbound_encoding!r}"
                ": use 'PCMU' or 'PCM'"
            )
        if encoding == "PCM" and p.outbound_pcm_sample_rate not in PCM_RATES:
            raise ConfigurationError(
                "BandwidthFrameSerializer: outbound_pcm_sample_rate must be 8000, 16000 or "
                f"24000 with outbound_encoding 'PCM', got {p.outbound_pcm_sample_rate}"
            )
        for what, value in (("call_id", call_id), ("account_id", account_id)):
            if value is not None and not is_safe_id(value):
                raise ConfigurationError(
                    f"BandwidthFrameSerializer: {what} {value[:40]!r} is not a Bandwidth id "
                    "(letters, digits, '.', '_', '~' and '-' only)"
                )
        super().__init__(p, "ulaw", p.bandwidth_sample_rate)
        self.stream_id = stream_id
        self.bandwidth_call_id = call_id
        self.account_id = account_id
        self.auto_hang_up = p.auto_hang_up
        has_auth = bool((client_id and client_secret) or (username and password))
        if self.auto_hang_up:
            missing = [
                name
                for name, value in (
                    ("call_id", call_id),
                    ("account_id", account_id),
                    ("client_id", client_id or username),
                    ("client_secret", client_secret or password),
                )
                if not value
            ]
            if missing:
                raise ConfigurationError(
                    "BandwidthFrameSerializer: auto_hang_up is enabled but missing required "
                    f"parameters: {', '.join(missing)}. Pass them, or disable hang-up with "
                    "params=BandwidthFrameSerializer.InputParams(auto_hang_up=False)"
                )
        if call_id and account_id and has_auth:
            self.call_control = BandwidthCallControl(
                account_id=account_id,
                call_id=call_id,
                client_id=client_id,
                client_secret=client_secret,
                username=username,
                password=password,
                base_url=base_url,
                token_url=token_url,
            )
        # The bot's audio: µ-law through the base class, or PCM16 at its own rate.
        self._pcm_out: PhoneAudio | None = None
        content_type = PCMU_CONTENT_TYPE
        if encoding == "PCM":
            rate = p.outbound_pcm_sample_rate
            self._pcm_out = PhoneAudio("pcm16", rate, p.resampler_clear_after_secs)
            content_type = pcm_content_type(rate)
        self._media_prefix = (
            '{"eventType": "playAudio", "media": {"contentType": "'
            + content_type
            + '", "payload": "'
        )
        self._clear_message = '{"eventType": "clear"}'

    @property
    def call_id(self) -> str:
        return self.bandwidth_call_id or self.stream_id

    @property
    def wire_sample_rate(self) -> int:
        """The rate of the bot's audio on the wire (``outbound_pcm_sample_rate`` with PCM)."""
        out = self._pcm_out
        return out.provider_rate if out is not None else self._audio.provider_rate

    # ------------------------------------------------------------------ outbound

    async def serialize(self, frame: Frame) -> str | bytes | None:
        out = self._pcm_out
        if out is None:
            return await super().serialize(frame)
        if isinstance(frame, OutputAudioRawFrame | InputAudioRawFrame):
            audio = frame.audio
            if frame.num_channels != 1:
                audio = _wire.downmix(audio, frame.num_channels)
            payload = out.encode(audio, frame.sample_rate)
            return self._media(payload) if payload else None
        if isinstance(frame, InterruptionFrame):
            out.reset_out()
            return self._clear()
        if isinstance(frame, TTSStoppedFrame):
            tail = out.flush_out()
            return self._media(tail) if tail else None
        return await super().serialize(frame)

    # ------------------------------------------------------------------ inbound

    def _dispatch(self, message: dict[str, Any]) -> Frame | None:
        event = message.get("eventType")
        if event == "media":
            return self._bandwidth_media(message)
        if event == "stop":
            return StreamStoppedFrame()
        if event == "start":
            return None
        raise self._unknown(event)

    def _bandwidth_media(self, message: dict[str, Any]) -> InputAudioRawFrame | None:
        track = message.get("track", "inbound")
        if not isinstance(track, str):
            raise Malformed("bad_track", type(track).__name__)
        if track != "inbound":
            return None  # the call's outbound track (tracks="both"): the bot's own audio
        payload = _wire.b64decode(message.get("payload"), self.MAX_PAYLOAD_BYTES)
        return self._audio_frame(payload)
