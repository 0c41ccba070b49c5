"""What ``bot(runner_args)`` receives, and the call data read from a provider's handshake.

``RunnerArguments`` also carries the runner's side of graceful drain: when the server is asked to
stop (SIGTERM), ``drain_requested`` is set on every active call. A bot may react itself (say
goodbye, then end), and a bot that calls ``runner_args.attach(task)`` lets the runner queue an
``EndFrame`` on its ``PipelineTask`` once ``--drain-timeout`` has passed, so the call is played
out and hung up rather than dropped. See docs/architecture.md (Runner ↔ bot).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from fastapi import WebSocket

    from callpipe.pipeline.worker import PipelineWorker

logger = logging.getLogger(__name__)

TELEPHONY_PROVIDERS: tuple[str, ...] = ("twilio", "telnyx", "plivo", "exotel", "vonage")
"""Providers the runner can answer for and detect on ``/ws``."""


class CallData(BaseModel):
    """Call identifiers read from the provider's first WebSocket messages.

    Dict-compatible for bots written against plain dicts: ``cd["call_id"]`` raises ``KeyError``
    when the key is unset, ``"from" in cd`` is true only when set and not None, and
    ``cd.get(key, default)`` returns the default for a None value too. ``from``/``to`` are the wire
    names of ``from_number``/``to_number``.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    stream_id: str | None = None
    call_id: str | None = None
    from_number: str | None = Field(default=None, alias="from")
    to_number: str | None = Field(default=None, alias="to")
    body: dict[str, Any] = Field(default_factory=dict)

    def _as_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)

    def __getitem__(self, key: str) -> Any:
        data = self._as_wire()
        if key not in data:
            raise KeyError(key)
        return data[key]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._as_wire().get(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self._as_wire().get(key)
        return default if value is None else value

    def keys(self) -> list[str]:
        return list(self._as_wire().keys())

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.keys())


class TelnyxCallData(CallData):
    """Telnyx adds the codec Telnyx sends us (its ``media_format.encoding``).

    ``call_id`` is Telnyx's ``call_control_id`` (Pipecat 1.x normalises it so); the key
    ``call_control_id`` is kept too, because bots written for earlier releases read it.
    """

    outbound_encoding: str = "PCMU"
    call_control_id: str | None = None


class ExotelCallData(CallData):
    """Exotel adds its account and the custom parameters configured on the applet URL."""

    account_sid: str = ""
    custom_parameters: dict[str, Any] = Field(default_factory=dict)


class VonageCallData(CallData):
    """Vonage (Voice API WebSocket) adds the negotiated content type."""

    content_type: str = ""


@dataclass(kw_only=True)
class RunnerArguments:
    """Base of what the runner passes to ``bot()``; one instance per call.

    ``handle_sigint``/``handle_sigterm`` are False because the server owns signals (a bot's
    ``PipelineRunner`` must not install handlers); ``pipeline_idle_timeout_secs`` is a hint.
    """

    handle_sigint: bool = field(init=False, default=False)
    handle_sigterm: bool = field(init=False, default=False)
    pipeline_idle_timeout_secs: int = field(init=False, default=300)
    body: dict[str, Any] = field(default_factory=dict)
    call_data: CallData | None = None
    session_id: str | None = None
    cli_args: argparse.Namespace | None = field(init=False, default=None)
    file_storage: Any = None
    drain_requested: asyncio.Event = field(init=False, default_factory=asyncio.Event)
    _task: PipelineWorker | None = field(init=False, default=None, repr=False)
    _serializer: Any = field(init=False, default=None, repr=False)

    def attach(self, task: PipelineWorker) -> None:
        """Let the runner end this call gracefully (``EndFrame``) when the server drains.

        Takes a ``PipelineTask`` or a Pipecat 1.x ``PipelineWorker`` (the same class)."""
        self._task = task

    @property
    def task(self) -> PipelineWorker | None:
        return self._task

    @property
    def draining(self) -> bool:
        """True once the server was asked to stop; finish the call soon."""
        return self.drain_requested.is_set()

    async def wait_for_drain(self) -> None:
        """Return when the server starts draining (for a bot that wants to say goodbye)."""
        await self.drain_requested.wait()


@dataclass(kw_only=True)
class WebSocketRunnerArguments(RunnerArguments):
    """A provider (or plain client) WebSocket; the connection lives as long as ``bot()``.

    ``transport_type`` is the detected provider (``"twilio"``, ...) once the runner has read the
    handshake, or ``"websocket"`` for plain clients; ``None`` means not parsed yet.
    """

    websocket: WebSocket = field(kw_only=False)
    transport_type: str | None = field(kw_only=False, default=None)
