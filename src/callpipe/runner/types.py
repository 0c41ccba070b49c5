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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from callpipe.providers import registry
from callpipe.providers.base import CallData
from callpipe.providers.exotel import ExotelCallData
from callpipe.providers.telnyx import TelnyxCallData
from callpipe.providers.vonage import VonageCallData

if TYPE_CHECKING:
    from fastapi import WebSocket

    from callpipe.pipeline.worker import PipelineWorker
    from callpipe.transports.seams import TransportSerializer

logger = logging.getLogger(__name__)

TELEPHONY_PROVIDERS: tuple[str, ...] = registry.names()
"""Providers the runner can answer for and detect on ``/ws`` (see callpipe.providers)."""

__all__ = [
    "TELEPHONY_PROVIDERS",
    "CallData",
    "DailyDialinRequest",
    "DailyRunnerArguments",
    "DialinSettings",
    "ExotelCallData",
    "LiveKitRunnerArguments",
    "RunnerArguments",
    "SmallWebRTCRunnerArguments",
    "TelnyxCallData",
    "VonageCallData",
    "WebSocketRunnerArguments",
]
"""The call data models live with their providers; they are re-exported here, where Pipecat
bots import them from."""


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
    _serializer: TransportSerializer | None = field(init=False, default=None, repr=False)

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


# Pipecat's browser/WebRTC session types. callpipe's runner never makes them (it answers phone
# calls only); they exist so a bot written for several transports imports, and can test
# ``isinstance(runner_args, DailyRunnerArguments)`` on its way to the phone branch. Handed one,
# ``create_transport`` raises a ConfigurationError naming the transport.


@dataclass(kw_only=True)
class DailyRunnerArguments(RunnerArguments):
    """A Daily room session (Pipecat's runner); callpipe does not join Daily rooms."""

    room_url: str = field(kw_only=False)
    token: str | None = field(kw_only=False, default=None)


@dataclass(kw_only=True)
class SmallWebRTCRunnerArguments(RunnerArguments):
    """A browser WebRTC peer connection (Pipecat's runner); not provided by callpipe."""

    webrtc_connection: Any = field(kw_only=False)


@dataclass(kw_only=True)
class LiveKitRunnerArguments(RunnerArguments):
    """A LiveKit room session (Pipecat's runner); not provided by callpipe."""

    room_name: str = field(kw_only=False)
    url: str = field(kw_only=False)
    token: str = field(kw_only=False)


class DialinSettings(BaseModel):
    """What a Daily PSTN dial-in webhook says about the call (for Daily rooms only)."""

    call_id: str
    call_domain: str
    To: str | None = None  # the webhook's own keys
    From: str | None = None
    sip_headers: dict[str, str] | None = None


class DailyDialinRequest(BaseModel):
    """The body of a Daily dial-in request (for Daily rooms only)."""

    dialin_settings: DialinSettings
    daily_api_key: str
    daily_api_url: str
