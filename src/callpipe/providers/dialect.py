"""The simulator's side of a provider's media WebSocket: the base every provider dialect extends.

A dialect is sans-I/O: it builds the provider's messages (handshake, media, DTMF, mark/checkpoint
acknowledgements, stop) from plain values and parses the bot's messages into
:class:`ServerEvent`. Each provider keeps its dialect beside the rest of what callpipe knows about
it (``callpipe.providers.<name>.dialect``), so the shapes follow that provider's published
documentation in one place; the simulator (``callpipe.testing``) finds them through the registry.
"""

from __future__ import annotations

import binascii
import itertools
import json
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

EventKind = Literal["audio", "clear", "mark", "other", "invalid"]


@dataclass(slots=True)
class ServerEvent:
    """One message from the bot, as the provider understands it."""

    kind: EventKind
    pcm: bytes = b""
    """Bot audio as PCM16 mono at the dialect's wire rate (``kind == "audio"``)."""
    name: str = ""
    """Mark/checkpoint name (``kind == "mark"``)."""
    ack: Any = None
    """Provider-specific data echoed in the acknowledgement (Vonage notify payload)."""
    raw: Any = None
    reply: str | None = None
    """What the provider answers at once (Genesys: ``close`` to a ``disconnect``)."""
    close: bool = False
    """The provider closes the socket now (Genesys, after ``closed``)."""


@dataclass(slots=True)
class CallIdentity:
    """The ids and numbers a provider puts in its handshake (random unless given)."""

    stream_id: str = ""
    call_id: str = ""
    account_id: str = ""
    from_number: str = "+15550100001"
    to_number: str = "+15550100002"
    custom_parameters: dict[str, str] = field(default_factory=dict)


def random_hex(n: int) -> str:
    return secrets.token_hex(n // 2)


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def unb64(payload: Any) -> bytes | None:
    if not isinstance(payload, str):
        return None
    try:
        return binascii.a2b_base64(payload, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class Dialect(ABC):
    """One provider's side of the media WebSocket."""

    name: ClassVar[str]
    sample_rate: ClassVar[int] = 8000
    """Wire sample rate of the audio in both directions."""
    subprotocols: ClassVar[tuple[str, ...]] = ()
    """WebSocket subprotocols the provider asks for when it connects."""
    acks_marks_on_clear: ClassVar[bool] = True
    """On clear, pending marks are acknowledged at once (their audio will never play)."""
    carries_dtmf: ClassVar[bool] = True
    """The provider reports the caller's keys on the stream (False: :meth:`dtmf` raises)."""

    def __init__(self, identity: CallIdentity | None = None) -> None:
        self.identity = identity or CallIdentity()
        self._seq = itertools.count(1)
        self._chunk = itertools.count(1)
        self._fill_identity(self.identity)

    @abstractmethod
    def _fill_identity(self, identity: CallIdentity) -> None:
        """Invent provider-shaped ids for fields left empty."""

    @abstractmethod
    def handshake(self) -> list[str]:
        """Messages sent right after the WebSocket opens (connected, start)."""

    @abstractmethod
    def media(self, pcm: bytes, timestamp_ms: int) -> str | bytes:
        """One packet of caller audio (PCM16 at ``sample_rate``) in the provider's format."""

    @abstractmethod
    def dtmf(self, digit: str) -> str:
        """A key press as the provider reports it."""

    def mark_ack(self, event: ServerEvent) -> str | None:
        """The acknowledgement for a played mark, or None if the provider sends none."""
        return None

    def clear_ack(self) -> str | None:
        """The acknowledgement for a clear, if the provider sends one."""
        return None

    @property
    def media_flowing(self) -> bool:
        """The provider streams caller audio now (Genesys waits for ``opened``)."""
        return True

    def stop(self) -> str | None:
        """The message sent when the caller hangs up (None: the socket just closes)."""
        return None

    @abstractmethod
    def parse(self, data: str | bytes) -> ServerEvent:
        """Understand one message from the bot."""

    # helpers -----------------------------------------------------------------

    def _next_seq(self) -> int:
        return next(self._seq)

    def _next_chunk(self) -> int:
        return next(self._chunk)

    @staticmethod
    def _load(data: str | bytes) -> dict[str, Any] | None:
        if isinstance(data, bytes):
            return None
        try:
            message = json.loads(data)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None
