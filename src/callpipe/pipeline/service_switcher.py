"""ServiceSwitcher (Pipecat 1.14): several services in one slot, one of them active.

A phone bot names a backup for its LLM or TTS provider: the switcher hands each frame to the
active service only (the others stay idle), and a strategy decides when another one takes over,
on a :class:`~callpipe.frames.frames.ManuallySwitchServiceFrame` or when the active service
fails.

How it is built. Pipecat runs the services as branches of a ``ParallelPipeline``, each between
two filters, so every frame visits every branch. Here the switcher holds each service between
two ports of its own (a :class:`PipelineSource` above, a :class:`PipelineSink` below) and sends a
frame through the active service's port only: a frame crossing the switcher costs two calls on
the way in and two on the way out (no queue, no task), whatever the number of services, plus one
dictionary look-up to find the active service's port. What the services push out goes
on as it would from Pipecat's branches (a service that lost its turn still finishes what it
pushes), except the switcher's own bookkeeping frames and the errors it answers for.

Exceptions to "active only", as in Pipecat:

- ``StartFrame``, ``EndFrame`` and ``CancelFrame`` reach every service and leave once all of
  them have passed it, so every service connects at start and closes at the end. Frames pushed
  downstream before the ``StartFrame`` has left wait and follow it.
- A ``ServiceUpdateSettingsFrame`` addressed to a held service (``service=``) reaches it even
  when it is idle; one with ``reach_inactive_services=True`` reaches them all. Any other update
  goes to the active service alone.

Which errors switch. An ``ErrorFrame`` from a held service is the switcher's to answer for.
Pipecat 1.14 fails over only when the error leaves the service unable to work (``is_usable``
False, set by ``push_error(..., force_treat_as_permanent=True)``); a transient error (a
timeout, a 5xx) travels upstream as usual and the service keeps its turn. callpipe's services
still report rejected credentials (what Pipecat 1.14 classes as permanent) as a *fatal* error,
so here a fatal error from a held service also takes that service out of use, and is absorbed
when another service takes over instead of ending the call. An error from an idle service stops
here. When the active service can no longer work and nothing took over, the switcher reports
the failure as its own: fatal only if none of its services can work any more (the call then
ends as it would have without a switcher).
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from functools import partial
from typing import Generic, TypeVar, cast, overload

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    ManuallySwitchServiceFrame,
    ServiceMetadataFrame,
    ServiceSwitcherFrame,
    ServiceSwitcherRequestMetadataFrame,
    ServiceUpdateSettingsFrame,
    StartFrame,
)
from callpipe.pipeline.pipeline import PipelineSink, PipelineSource
from callpipe.processors.base_object import BaseObject
from callpipe.processors.frame_processor import (
    FrameDirection,
    FrameProcessor,
    FrameProcessorSetup,
    cleanup_processor,
    setup_processor,
)

logger = logging.getLogger(__name__)

_EVERY_SERVICE = (StartFrame, EndFrame, CancelFrame)
"""Frames every held service gets; they leave the switcher once all of them passed them."""
_IN_SPECIAL = (*_EVERY_SERVICE, ServiceSwitcherFrame, ServiceUpdateSettingsFrame)
"""Frames entering the switcher that need more than "to the active service"."""
_OUT_SPECIAL = (
    *_EVERY_SERVICE,
    ErrorFrame,
    ServiceMetadataFrame,
    ServiceSwitcherRequestMetadataFrame,
    ServiceUpdateSettingsFrame,
)
"""Frames leaving a held service that need more than "pass on"."""


class ServiceSwitcherStrategy(BaseObject):
    """Decides which held service is active. Pass the class to ``ServiceSwitcher``, which makes
    the instance (``switcher.strategy``).

    The base strategy never switches. Event: ``on_service_switched(strategy, service)`` when
    another service becomes active.
    """

    def __init__(self, services: list[FrameProcessor]) -> None:
        super().__init__()
        if not services:
            raise ConfigurationError("ServiceSwitcherStrategy needs at least one service")
        self._services = services
        self._active_service = services[0]
        self._register_event_handler("on_service_switched")

    @property
    def services(self) -> list[FrameProcessor]:
        return self._services

    @property
    def active_service(self) -> FrameProcessor:
        return self._active_service

    @property
    def usable_services(self) -> list[FrameProcessor]:
        """The services that can still be given work, in the order given."""
        return [service for service in self._services if service.is_usable]

    async def handle_frame(
        self, frame: ServiceSwitcherFrame, direction: FrameDirection
    ) -> FrameProcessor | None:
        """React to a switcher frame; return the service made active, or None (no switch:
        the frame then goes on through the active service)."""
        return None

    async def handle_error(self, error: ErrorFrame) -> FrameProcessor | None:
        """React to an error of the active service; return the service made active, or None.

        Called for every error of the active service; ``error.processor.is_usable`` says
        whether the service can still work. A subclass may switch on any error it likes."""
        return None

    async def _set_active_if_available(self, service: FrameProcessor) -> FrameProcessor | None:
        """Make ``service`` active if it is held here and can work; return it, else None.

        A service held elsewhere is ignored (the request may be for another switcher)."""
        if service not in self._services:
            return None
        if not service.is_usable:
            logger.warning("%s: not switching to %s: it can no longer work", self, service)
            return None
        self._active_service = service
        await service.queue_frame(ServiceSwitcherRequestMetadataFrame(service=service))
        await self._call_event_handler("on_service_switched", service)
        return service


class ServiceSwitcherStrategyManual(ServiceSwitcherStrategy):
    """The first service is active until a ``ManuallySwitchServiceFrame`` names another."""

    async def handle_frame(
        self, frame: ServiceSwitcherFrame, direction: FrameDirection
    ) -> FrameProcessor | None:
        if isinstance(frame, ManuallySwitchServiceFrame):
            return await self._set_active_if_available(frame.service)
        return None


class ServiceSwitcherStrategyFailover(ServiceSwitcherStrategyManual):
    """Manual switching, plus: when the active service can no longer work, the next one in the
    list that can (wrapping round) takes over. Errors the service carries on from leave it
    active. Bringing the failed service back is the application's call
    (``on_service_switched``, then a ``ManuallySwitchServiceFrame``)."""

    async def handle_error(self, error: ErrorFrame) -> FrameProcessor | None:
        failed = error.processor if isinstance(error.processor, FrameProcessor) else None
        failed = failed or self._active_service
        if failed.is_usable:
            return None
        logger.warning("%s: %s failed: %s", self, failed, error.error)
        start = self._services.index(self._active_service)
        count = len(self._services)
        for offset in range(1, count):
            candidate = self._services[(start + offset) % count]
            if candidate.is_usable:
                return await self._set_active_if_available(candidate)
        logger.error("%s: no other service to switch to", self)
        return None


StrategyType = TypeVar("StrategyType", bound=ServiceSwitcherStrategy)


class ServiceSwitcher(FrameProcessor, Generic[StrategyType]):
    """Routes frames to one active service of several; see the module docstring.

    ::

        llm = ServiceSwitcher(
            services=[primary_llm, backup_llm],
            strategy_type=ServiceSwitcherStrategyFailover,
        )

        @llm.strategy.event_handler("on_service_switched")
        async def on_switched(strategy, service): ...
    """

    direct = True

    @overload
    def __init__(
        self: ServiceSwitcher[ServiceSwitcherStrategyManual], services: list[FrameProcessor]
    ) -> None: ...

    @overload
    def __init__(
        self, services: list[FrameProcessor], strategy_type: type[StrategyType]
    ) -> None: ...

    def __init__(
        self,
        services: list[FrameProcessor],
        strategy_type: type[StrategyType] | None = None,
    ) -> None:
        """``strategy_type``: the strategy class (not an instance); default manual."""
        super().__init__()
        if strategy_type is None:
            strategy_type = cast(type[StrategyType], ServiceSwitcherStrategyManual)
        self._strategy: StrategyType = strategy_type(services)
        self._services = list(services)
        self._ports: dict[FrameProcessor, tuple[PipelineSource, PipelineSink]] = {}
        for service in self._services:
            entry = PipelineSource(
                partial(self._leave, FrameDirection.UPSTREAM),
                name=f"{self.name}::{service.name}::In",
            )
            exit_ = PipelineSink(
                partial(self._leave, FrameDirection.DOWNSTREAM),
                name=f"{self.name}::{service.name}::Out",
            )
            entry.link(service)
            service.link(exit_)
            self._ports[service] = (entry, exit_)
        self._starting = False
        self._held: list[Frame] = []
        self._passed: dict[int, int] = {}  # id of a frame every service gets -> services passed
        # Ids of the settings copies handed to idle services: dropped if they come out again.
        self._copies: deque[int] = deque(maxlen=64)

    @property
    def strategy(self) -> StrategyType:
        return self._strategy

    @property
    def services(self) -> list[FrameProcessor]:
        return self._services

    @property
    def is_usable(self) -> bool:
        """True while at least one of the services can be given work."""
        return any(service.is_usable for service in self._services)

    # ------------------------------------------------------------------ wiring

    def processors_with_children(self) -> list[FrameProcessor]:
        result: list[FrameProcessor] = [self]
        for service, (entry, exit_) in self._ports.items():
            result.append(entry)
            result.extend(service.processors_with_children())
            result.append(exit_)
        return result

    async def setup(self, setup: FrameProcessorSetup) -> None:
        for service, (entry, exit_) in self._ports.items():
            await setup_processor(entry, setup)
            await setup_processor(service, setup)
            await setup_processor(exit_, setup)
        await super().setup(setup)  # after the services: see input_audio_unused

    async def cleanup(self) -> None:
        for service, (entry, exit_) in self._ports.items():
            await cleanup_processor(entry)
            await cleanup_processor(service)
            await cleanup_processor(exit_)
        await super().cleanup()

    # ------------------------------------------------------------------ frames in

    passes_input_audio = True  # only while every held service skips it too (below)

    def input_audio_unused(self) -> bool:
        """The caller's audio can step over the switcher when every held service lets it step
        over them (an LLM or TTS switcher); an STT switcher takes it. Asked at setup, after
        the services were set up."""
        return all(service._skip_input_audio for service in self._services)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, _IN_SPECIAL):
            await self._process_special(frame, direction)
            return
        # The path of almost every frame: straight into the active service.
        entry, exit_ = self._ports[self._strategy._active_service]
        if direction is FrameDirection.DOWNSTREAM:
            await entry.push_frame(frame, direction)
        else:
            await exit_.push_frame(frame, direction)

    async def _deliver(
        self, service: FrameProcessor, frame: Frame, direction: FrameDirection
    ) -> None:
        entry, exit_ = self._ports[service]
        if direction is FrameDirection.DOWNSTREAM:
            await entry.push_frame(frame, direction)
        else:
            await exit_.push_frame(frame, direction)

    async def _process_special(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, _EVERY_SERVICE) and direction is FrameDirection.DOWNSTREAM:
            if isinstance(frame, StartFrame):
                self._starting = True
            for service in self._services:
                await self._deliver(service, frame, direction)
            return
        if isinstance(frame, ServiceSwitcherFrame):
            if await self._strategy.handle_frame(frame, direction) is not None:
                return  # switched: the request is done
        active = self._strategy._active_service
        await self._deliver(active, frame, direction)
        if isinstance(frame, ServiceUpdateSettingsFrame):
            for service in self._services:
                if service is not active and (
                    frame.service is service
                    or (frame.service is None and frame.reach_inactive_services)
                ):
                    copy = dataclasses.replace(frame)  # same update, an id of its own
                    self._copies.append(copy.id)
                    await self._deliver(service, copy, direction)

    # ------------------------------------------------------------------ frames out

    async def _leave(self, out: FrameDirection, frame: Frame, _: FrameDirection) -> None:
        """A frame a held service pushed out of the switcher (``out``: which way)."""
        if isinstance(frame, _OUT_SPECIAL):
            await self._leave_special(out, frame)
        elif self._starting and out is FrameDirection.DOWNSTREAM:
            self._held.append(frame)
        else:
            await self.push_frame(frame, out)

    async def _leave_special(self, out: FrameDirection, frame: Frame) -> None:
        if isinstance(frame, ErrorFrame):
            if out is FrameDirection.UPSTREAM and frame.processor in self._services:
                await self._service_error(frame.processor, frame)
            else:
                await self.push_frame(frame, out)
        elif isinstance(frame, _EVERY_SERVICE) and out is FrameDirection.DOWNSTREAM:
            passed = self._passed.get(frame.id, 0) + 1
            if passed < len(self._services):
                self._passed[frame.id] = passed
                return
            self._passed.pop(frame.id, None)
            await self.push_frame(frame, out)
            if isinstance(frame, StartFrame):
                self._starting = False
                held, self._held = self._held, []
                for each in held:
                    await self.push_frame(each, out)
        elif isinstance(frame, ServiceSwitcherRequestMetadataFrame):
            if frame.service not in self._services:
                await self.push_frame(frame, out)  # not ours: for another switcher
        elif isinstance(frame, ServiceUpdateSettingsFrame) and frame.id in self._copies:
            pass  # a copy handed to an idle service: the original travels on
        elif (
            isinstance(frame, ServiceMetadataFrame)
            and frame.service_name != self._strategy._active_service.name
        ):
            pass  # every held service announces itself at start; only the active one counts
        elif self._starting and out is FrameDirection.DOWNSTREAM:
            self._held.append(frame)
        else:
            await self.push_frame(frame, out)

    async def _service_error(self, service: FrameProcessor, error: ErrorFrame) -> None:
        if error.fatal:
            # callpipe's services say "rejected credentials" this way; Pipecat 1.14 marks the
            # service unusable for it. Same state as push_error(force_treat_as_permanent=True).
            await service.set_usable(False)
        if service is not self._strategy._active_service:
            return  # an idle service cannot stop the switcher working
        if await self._strategy.handle_error(error) is not None:
            return  # another service took over: the switcher carries on
        if service.is_usable:
            await self.push_frame(error, FrameDirection.UPSTREAM)
            return
        await self.push_error(
            ErrorFrame(
                error=f"{service} can no longer work: {error.error}",
                fatal=error.fatal and not self.is_usable,
                unhandled=error.unhandled,
            )
        )
