"""The softphone page's side channel: live transcript and per-turn latency for a call.

``/ws`` stays a faithful Twilio Media Streams endpoint, so the page learns what the bot heard
and said on a second, local-mode-only WebSocket: it opens ``/phone/events?call=<CallSid>``
*before* ``/ws`` (with the ``callSid`` it will announce in its ``start`` message), and receives
one JSON object per :data:`callpipe.pipeline.turn_log.TurnEvent` — ``caller``, ``bot`` and
``latency`` — for as long as that call runs. A call nobody watches gets no observer at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable

from fastapi import FastAPI, WebSocket
from starlette.websockets import WebSocketDisconnect

from callpipe.pipeline.turn_log import TurnEvent

logger = logging.getLogger(__name__)

EVENTS_PATH = "/phone/events"
MAX_WATCHERS = 8
"""Open event sockets per process: a page per call, on a laptop."""
QUEUE_SIZE = 256


class PhoneEvents:
    """Event queues of the pages watching each call, keyed by the call's id."""

    def __init__(self) -> None:
        self._watchers: dict[str, list[asyncio.Queue[TurnEvent]]] = {}

    @property
    def watching(self) -> int:
        return sum(len(queues) for queues in self._watchers.values())

    def sink(self, call_id: str | None) -> Callable[[TurnEvent], None] | None:
        """A callable delivering events to the pages watching ``call_id`` (None: nobody)."""
        if not call_id or call_id not in self._watchers:
            return None

        def deliver(event: TurnEvent) -> None:
            for queue in self._watchers.get(call_id, ()):
                with contextlib.suppress(asyncio.QueueFull):  # a stuck page loses lines
                    queue.put_nowait(event)

        return deliver

    async def serve(self, websocket: WebSocket, call_id: str) -> None:
        await websocket.accept()
        if not call_id or self.watching >= MAX_WATCHERS:
            await websocket.close(1008, "pass ?call=<CallSid>" if not call_id else "busy")
            return
        queue: asyncio.Queue[TurnEvent] = asyncio.Queue(QUEUE_SIZE)
        self._watchers.setdefault(call_id, []).append(queue)
        reader = asyncio.ensure_future(_drain(websocket))
        try:
            while not reader.done():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    break
                await websocket.send_text(json.dumps(getter.result()))
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the page went away
        finally:
            reader.cancel()
            queues = self._watchers.get(call_id, [])
            if queue in queues:
                queues.remove(queue)
            if not queues:
                self._watchers.pop(call_id, None)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) until the page closes its side."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while True:
            message = await websocket.receive()
            if message.get("type") == "websocket.disconnect":
                return


def add_phone_events(app: FastAPI, events: PhoneEvents) -> None:
    """Serve :data:`EVENTS_PATH` (the runner adds it in local mode only)."""

    @app.websocket(EVENTS_PATH)
    async def phone_events(websocket: WebSocket) -> None:
        await events.serve(websocket, websocket.query_params.get("call", ""))
