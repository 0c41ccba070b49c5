"""The serializer interface: wire messages in, frames out, and back. Sans-I/O.

A serializer never touches a socket or makes an HTTP request, and never raises on bad input from
the network: a malformed message is counted by kind (``malformed_counts``), logged once per kind
with the call's id, and skipped, so one garbled packet cannot end a call. Call control (hang-up,
transfer, DTMF) is a separate object exposed as ``call_control`` for the transport to use.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from callpipe.frames.frames import (
    Frame,
    StartFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
)
from callpipe.log import mask

if TYPE_CHECKING:
    from callpipe.telephony.base import CallControl

logger = logging.getLogger(__name__)


class FrameSerializerType(Enum):
    """Legacy (v0.0.8x) hint of the WebSocket frame type a serializer produces."""

    BINARY = "binary"
    TEXT = "text"


class FrameSerializer(ABC):
    """Base of every serializer."""

    class InputParams(BaseModel):
        """Options shared by all serializers.

        ``ignore_rtvi_messages`` keeps RTVI client-protocol chatter (messages labelled
        ``rtvi-ai``) off phone lines; ``resampler_clear_after_secs`` resets a stream resampler
        after that long without audio (None: never).
        """

        model_config = ConfigDict(extra="forbid")

        ignore_rtvi_messages: bool = True
        resampler_clear_after_secs: float | None = 0.2

    #: Largest accepted decoded audio payload per message (8 s of µ-law, 2 s of 16 kHz PCM16).
    MAX_PAYLOAD_BYTES = 64_000

    def __init__(self, params: InputParams | None = None, *, name: str | None = None) -> None:
        self._params = params if params is not None else self.InputParams()
        self.name = name or type(self).__name__
        """For logs (Pipecat's serializers take ``name=`` through their base object)."""
        self.call_control: CallControl | None = None
        self.auto_hang_up = False
        self.malformed_counts: dict[str, int] = {}

    @property
    def params(self) -> InputParams:
        return self._params

    @property
    def type(self) -> FrameSerializerType:
        """Legacy API: the kind of WebSocket frame most messages use."""
        return FrameSerializerType.TEXT

    @property
    def call_id(self) -> str:
        """An id for logs (stream or call id); never a phone number."""
        return "-"

    #: Packet size the provider wants, in 10 ms units; None: the transport's default.
    preferred_10ms_chunks: int | None = None
    coalesce_packets: bool = True
    """The output may send several packets of audio already at hand in one message (fewer
    socket writes, same schedule). False for a peer that plays each message as one packet."""

    @property
    def wire_sample_rate(self) -> int | None:
        """The provider's audio rate; None: this serializer takes the pipeline's rate."""
        return None

    @property
    def supports_marks(self) -> bool:
        """True when :meth:`serialize_mark` returns messages: a subclass that overrides it."""
        return type(self).serialize_mark is not FrameSerializer.serialize_mark

    async def setup(self, frame: StartFrame) -> None:  # noqa: B027 - optional hook
        """Read pipeline settings (sample rates) before the first message."""

    @abstractmethod
    async def serialize(self, frame: Frame) -> str | bytes | None:
        """The wire message for ``frame``, or None when this frame is not sent."""

    @abstractmethod
    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        """The frame(s) a wire message stands for, or None (nothing to do, or malformed)."""

    def pending_replies(self) -> list[str | bytes]:
        """Messages owed to the peer before it sends anything more; the input transport sends
        them once, when it starts. For a handshake someone else already read (the runner reads
        Genesys's ``open`` to detect the provider; its ``opened`` is owed). Default: none.

        Replies to later messages need no hook: ``deserialize`` returns them as an
        ``OutputTransportMessageUrgentFrame``, which the input transport serializes and sends
        straight back instead of pushing it into the pipeline.
        """
        return []

    def serialize_mark(self, name: str) -> str | bytes | None:
        """The provider's mark/checkpoint message, acknowledged after preceding audio played.

        None means the provider has no marks (the transport then estimates playout by time).
        """
        return None

    def should_ignore_frame(self, frame: Frame) -> bool:
        """True for RTVI protocol messages when ``ignore_rtvi_messages`` is set."""
        if not self._params.ignore_rtvi_messages:
            return False
        if isinstance(frame, TransportMessageFrame | TransportMessageUrgentFrame):
            message = frame.message
            return isinstance(message, dict) and message.get("label") == "rtvi-ai"
        return False

    def _skip(self, kind: str, detail: Any = "") -> None:
        """Count a malformed inbound message; log the first of each kind per call.

        The warning names only the kind: ``detail`` can echo values from the wire (a "digit"
        that is really a phone number), so it goes to DEBUG, which may carry call data.
        """
        count = self.malformed_counts.get(kind, 0) + 1
        self.malformed_counts[kind] = count
        if count == 1:
            logger.warning(
                "%s call %s: skipping malformed message (%s); further ones are counted",
                type(self).__name__,
                mask(self.call_id),
                kind,
            )
            if detail:
                logger.debug(
                    "%s call %s: %s: %s",
                    type(self).__name__,
                    mask(self.call_id),
                    kind,
                    _short(detail),
                )


def _short(detail: Any, limit: int = 120) -> str:
    text = detail if isinstance(detail, str) else repr(detail)
    return text if len(text) <= limit else text[:limit] + "…"
