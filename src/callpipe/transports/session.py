"""CallSession: the one per-call object the input and output halves of a transport share.

The two halves of a call run in different tasks (one reads the provider's messages, the other
paces bot audio out) but act on one call: one socket, one set of counters, one serializer to set
up, one "the caller hung up" to report, one call-end line. The transport creates a session per
call and hands it to both halves; they hold only it, so neither reaches into the transport or
into the other half, and everything they share is listed here.

The hot path reads plain attributes of it (``stats``, ``client``); everything else is called a
few times per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from callpipe.log import mask
from callpipe.transports.call_stats import CallStats
from callpipe.transports.record_hooks import current_recorder

if TYPE_CHECKING:
    from callpipe.frames.frames import StartFrame
    from callpipe.transports.seams import TransportSerializer

logger = logging.getLogger(__name__)

ClientT = TypeVar("ClientT")
"""The transport's socket wrapper (the WebSocket transport's ``_Client``): the session only
holds it for the halves, which see its full type."""


class CallSession(Generic[ClientT]):
    """The state of one call that both halves of its transport use.

    ``fire`` calls the app's handlers of a transport event, ``listens`` says whether an event
    has any, and ``cancel`` ends the pipeline (used when the far end left and nobody listens
    for ``on_client_disconnected``): the transport supplies these, as it owns the handlers and
    the pipeline's ends.
    """

    __slots__ = (
        "name",
        "serializer",
        "client",
        "stats",
        "recorder",
        "bot_speaking",
        "hang_up_at_end",
        "_fire",
        "_listens",
        "_cancel",
        "_on_mark",
        "_setup_lock",
        "_serializer_ready",
        "_disconnected",
        "_logged_end",
    )

    def __init__(
        self,
        name: str,
        serializer: TransportSerializer | None,
        client: ClientT,
        stats: CallStats,
        *,
        fire: Callable[[str], Awaitable[None]],
        listens: Callable[[str], bool],
        cancel: Callable[[str], Awaitable[None]],
    ) -> None:
        self.name = name
        self.serializer = serializer
        """The provider's codec (None: a plain socket); set up once per call."""
        self.client = client
        """The call's one socket: both halves send, receive and close through it."""
        self.stats = stats
        """The call's counters (incremented on the hot path) and its end reason."""
        self.recorder = current_recorder()
        """The call's record, when one is kept."""
        self.bot_speaking = False
        """The bot's audio is playing to the caller now (the output keeps it up to date), so a
        user turn now is a barge-in."""
        self.hang_up_at_end = False
        """The peer stalled or flooded: the carrier's leg may still be up although the socket
        is gone, so hang up through the provider's API when the call ends."""
        self._fire = fire
        self._listens = listens
        self._cancel = cancel
        self._on_mark: Callable[[str], None] | None = None
        self._setup_lock = asyncio.Lock()
        self._serializer_ready = False
        self._disconnected = False
        self._logged_end = False
        if self.recorder is not None:
            self.recorder.identify(stats.call_id, stats.provider)

    def __str__(self) -> str:
        # Every line the transport logs names the (masked) call, like the call-end line does.
        return f"{self.name}[{mask(self.stats.call_id) or '-'}]"

    async def setup_serializer(self, frame: StartFrame) -> None:
        """Set the serializer up once per call; whichever half starts first does it, and the
        other waits until it is done (both read what setup decides, e.g. the wire rate)."""
        if self.recorder is None:  # a worker tracing its call made its recorder after us
            self.recorder = current_recorder()
            if self.recorder is not None:
                self.recorder.identify(self.stats.call_id, self.stats.provider)
        async with self._setup_lock:
            if self._serializer_ready or self.serializer is None:
                return
            self._serializer_ready = True
            await self.serializer.setup(frame)

    async def fire(self, event: str) -> None:
        """Call the app's handlers of a transport event (``on_client_connected``, ...)."""
        await self._fire(event)

    async def on_remote_closed(self, reason: str) -> None:
        """The far end went away: tell the app once; end the pipeline if nobody listens."""
        if self._disconnected:
            return
        self._disconnected = True
        self.stats.end_reason = self.stats.end_reason or f"caller hung up ({reason})"
        logger.info("%s: client disconnected: %s", self, reason)
        if self._listens("on_client_disconnected"):
            await self.fire("on_client_disconnected")
        else:
            await self._cancel(reason)

    def peer_stalled(self) -> None:
        """The peer cannot be trusted to end the carrier leg: hang up through its API."""
        self.hang_up_at_end = True

    def on_mark(self, handler: Callable[[str], None]) -> None:
        """Who learns of acknowledged playback marks (the output, which tracks playback)."""
        self._on_mark = handler

    def mark_played(self, name: str) -> None:
        """The provider acknowledged a playback mark (the input read it off the socket)."""
        if self._on_mark is not None:
            self._on_mark(name)

    def log_call_end(self, now: float) -> None:
        """The one call-end line, and the record's end (idempotent)."""
        if self._logged_end:
            return
        self._logged_end = True
        self.stats.log_end(now, self.serializer)
        if self.recorder is not None:
            stats = self.stats
            counts = {"packets_in": stats.packets_in, "packets_out": stats.packets_out}
            self.recorder.note_end(stats.end_reason, counts)
