"""What the transport needs from the objects it is given: typed seams instead of probing.

``FastAPIWebsocketParams.serializer`` and ``TransportParams.vad_analyzer`` are typed with these
protocols. Validation is skipped (any object with these members works, as before), but the
transport reads each member directly: every callpipe serializer (``FrameSerializer``) and VAD
analyzer (``VADAnalyzer``) provides them with defaults, so nothing is guessed at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from callpipe.audio.vad.vad_analyzer import VADParams, VADState
    from callpipe.frames.frames import Frame, StartFrame
    from callpipe.telephony.base import CallControl


class TransportSerializer(Protocol):
    """A provider's wire codec as the WebSocket transport uses it (see ``FrameSerializer``)."""

    call_control: CallControl | None
    """REST call control (hang-up, transfer, DTMF), or None without credentials."""
    auto_hang_up: bool
    """End the call through ``call_control`` when the pipeline ends."""
    coalesce_packets: bool
    """The output may put several packets already at hand into one message."""
    malformed_counts: dict[str, int]
    """Malformed inbound messages skipped, by kind (logged once at the call's end)."""

    @property
    def call_id(self) -> str:
        """An id for logs (call or stream id); never a phone number."""
        ...

    @property
    def wire_sample_rate(self) -> int | None:
        """The provider's audio rate (the output resamples straight to it); None: pipeline's."""
        ...

    @property
    def preferred_10ms_chunks(self) -> int | None:
        """Packet size the provider wants, in 10 ms units; None: the transport's default."""
        ...

    @property
    def supports_marks(self) -> bool:
        """True when :meth:`serialize_mark` returns messages (playback is acknowledged)."""
        ...

    async def setup(self, frame: StartFrame) -> None: ...

    async def serialize(self, frame: Frame) -> str | bytes | None: ...

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None: ...

    def serialize_mark(self, name: str) -> str | bytes | None: ...

    def pending_replies(self) -> list[str | bytes]:
        """Replies owed to a handshake read before the transport existed (sent once at start).
        A ``TransportMessageUrgentFrame`` returned by :meth:`deserialize` is a reply too: the
        input transport sends it straight back to the peer."""
        ...


class VADAnalyzerLike(Protocol):
    """A voice activity detector as the input transport uses it (see ``VADAnalyzer``)."""

    @property
    def params(self) -> VADParams: ...

    def set_sample_rate(self, sample_rate: int) -> None: ...

    def set_params(self, params: VADParams) -> None: ...

    async def analyze_audio(self, buffer: bytes) -> VADState: ...
