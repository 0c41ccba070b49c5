"""The Bandwidth dialect of the call simulator: a bidirectional ``<StartStream>`` media stream.

Bandwidth sends ``start`` (``metadata``: account, call and stream ids, the tracks and their
``audio/PCMU`` 8000 Hz media format; ``streamParams`` from the answer's ``<StreamParam>``s), then
``media`` messages (``track``, base64 µ-law ``payload``) and ``stop`` when the call ends. The bot
sends ``playAudio`` (``audio/pcmu``, or ``audio/pcm;rate=…`` 16-bit linear PCM) and ``clear``.
Bandwidth acknowledges nothing (no marks) and reports no DTMF on the stream.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, ClassVar

from callpipe.audio import g711
from callpipe.audio.resample import StreamResampler
from callpipe.errors import ConfigurationError
from callpipe.providers.dialect import (
    CallIdentity,
    Dialect,
    ServerEvent,
    b64,
    dumps,
    random_hex,
    unb64,
)

PCM_RATES = (8000, 16000, 24000)


def pcm_rate(content_type: str) -> int | None:
    """The rate of an ``audio/pcm;rate=…`` content type (8, 16 or 24 kHz), else None."""
    kind, *params = (part.strip().lower() for part in content_type.split(";"))
    if kind != "audio/pcm":
        return None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "rate" and value.strip().isdigit() and len(value.strip()) <= 6:
            rate = int(value)
            return rate if rate in PCM_RATES else None
    return None


def bandwidth_id(prefix: str) -> str:
    """An id shaped like Bandwidth's (``c-95ac8d6e-1a31c52e-b38f-4198-93c1-51633ec68f8d``)."""
    return f"{prefix}-{random_hex(8)}-{uuid.uuid4()}"


class BandwidthDialect(Dialect):
    """Bandwidth ``<StartStream mode="bidirectional" tracks="inbound">``: µ-law 8 kHz JSON."""

    name = "bandwidth"
    carries_dtmf: ClassVar[bool] = False

    def __init__(self, identity: CallIdentity | None = None) -> None:
        super().__init__(identity)
        self._resamplers: dict[int, StreamResampler] = {}

    def _fill_identity(self, identity: CallIdentity) -> None:
        identity.stream_id = identity.stream_id or bandwidth_id("s")
        identity.call_id = identity.call_id or bandwidth_id("c")
        identity.account_id = identity.account_id or str(10_000_000 + secrets.randbelow(90_000_000))

    def _metadata(self) -> dict[str, Any]:
        i = self.identity
        return {
            "accountId": i.account_id,
            "callId": i.call_id,
            "streamId": i.stream_id,
            "tracks": [
                {"name": "inbound", "mediaFormat": {"encoding": "audio/PCMU", "sampleRate": 8000}}
            ],
        }

    def handshake(self) -> list[str]:
        i = self.identity
        params = {"from_number": i.from_number, "to_number": i.to_number}
        params.update(i.custom_parameters)
        return [dumps({"eventType": "start", "metadata": self._metadata(), "streamParams": params})]

    def media(self, pcm: bytes, timestamp_ms: int) -> str:
        payload = b64(g711.pcm_to_ulaw(pcm))
        return dumps({"eventType": "media", "track": "inbound", "payload": payload})

    def dtmf(self, digit: str) -> str:
        raise ConfigurationError(
            "Bandwidth media streams carry no DTMF (keys reach a <Gather> webhook instead): "
            "a simulated Bandwidth caller cannot press keys"
        )

    def stop(self) -> str:
        return dumps({"eventType": "stop", "metadata": self._metadata()})

    def _pcm(self, audio: bytes, rate: int) -> bytes:
        pcm = audio[: len(audio) // 2 * 2]
        if rate == self.sample_rate:
            return pcm
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = StreamResampler(rate, self.sample_rate, clear_after_secs=None)
            self._resamplers[rate] = resampler
        return resampler.resample(pcm)

    def parse(self, data: str | bytes) -> ServerEvent:
        message = self._load(data)
        if message is None:
            return ServerEvent("invalid", raw=data)
        event = message.get("eventType")
        if event == "playAudio":
            media = message.get("media")
            media = media if isinstance(media, dict) else {}
            audio = unb64(media.get("payload"))
            content_type = media.get("contentType")
            if audio is None or not isinstance(content_type, str):
                return ServerEvent("invalid", raw=message)
            if content_type.lower() == "audio/pcmu":
                return ServerEvent("audio", pcm=g711.ulaw_to_pcm(audio), raw=message)
            rate = pcm_rate(content_type)
            if rate is None:
                return ServerEvent("invalid", raw=message)
            return ServerEvent("audio", pcm=self._pcm(audio, rate), raw=message)
        if event == "clear":
            for resampler in self._resamplers.values():
                resampler.reset()
            return ServerEvent("clear", raw=message)
        return ServerEvent("other", raw=message)
