"""Pre/post actions of a flow's nodes (``pipecat.flows.actions`` in Pipecat 1.14).

Built in: ``tts_say`` queues a ``TTSSpeakFrame``; ``end_conversation`` queues the optional
goodbye and an ``EndFrame``; ``function`` queues a marker frame and runs the action's
``handler`` when that marker reaches the end of the pipeline (so it runs after everything
queued before it, e.g. once a ``tts_say`` before it has been spoken). Other types are handlers
registered by the bot.

Actions run in order. After a ``tts_say`` or a ``function`` the manager waits for it to have
gone through the pipeline before running a custom action or finishing the list, so a node's
context change never overtakes words meant to be said before it. The pipeline worker is asked
to report only these markers (and ``BotStoppedSpeakingFrame``, for post-actions waiting for
the bot's next turn): a flow adds no work to frames of other types.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from callpipe.flows.exceptions import ActionError
from callpipe.flows.types import ActionConfig, FlowActionHandler
from callpipe.frames.frames import (
    BotStoppedSpeakingFrame,
    ControlFrame,
    EndFrame,
    Frame,
    TTSSpeakFrame,
)
from callpipe.pipeline.worker import PipelineWorker
from callpipe.processors.base_object import cancel_and_wait, create_logged_task

if TYPE_CHECKING:
    from callpipe.flows.manager import FlowManager

logger = logging.getLogger(__name__)

_WAITED_FOR = ("tts_say", "function")


@dataclass(slots=True)
class FunctionActionFrame(ControlFrame):
    """Marker of a ``function`` action: its handler runs when this reaches the pipeline's end."""

    UNINTERRUPTIBLE: ClassVar[bool] = True
    action: dict[str, Any]
    function: FlowActionHandler


@dataclass(slots=True)
class ActionFinishedFrame(ControlFrame):
    """Marker queued after a ``tts_say``: the words before it have gone through."""

    UNINTERRUPTIBLE: ClassVar[bool] = True


class ActionManager:
    """Runs the actions of the nodes of one :class:`FlowManager`."""

    def __init__(self, worker: PipelineWorker, flow_manager: FlowManager) -> None:
        self._worker = worker
        self._flow_manager = flow_manager
        self._action_handlers: dict[str, Callable[..., Any]] = {
            "tts_say": self._tts_say,
            "end_conversation": self._end_conversation,
            "function": self._function,
        }
        self._ongoing = 0
        self._all_finished = asyncio.Event()
        self._all_finished.set()
        self._deferred_post_actions: list[ActionConfig] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        worker.add_reached_downstream_filter(
            (ActionFinishedFrame, FunctionActionFrame, BotStoppedSpeakingFrame)
        )
        worker.add_event_handler("on_frame_reached_downstream", self._on_frame_reached_end)

    def register_action(self, action_type: str, handler: Callable[..., Any]) -> None:
        if not callable(handler):
            raise ActionError(f"the handler of action {action_type!r} is not callable")
        self._action_handlers[action_type] = handler

    def has_action(self, action_type: str) -> bool:
        return action_type in self._action_handlers

    async def execute_actions(self, actions: list[ActionConfig] | None) -> None:
        """Run ``actions`` in order (see the module docstring for the waiting rules)."""
        previous: str | None = None
        for action in actions or []:
            action_type = action.get("type")
            if not action_type:
                raise ActionError("an action has no 'type'")
            handler = self._action_handlers.get(action_type)
            if handler is None:
                raise ActionError(f"no handler for action type {action_type!r}")
            if previous in _WAITED_FOR and not (
                previous == "tts_say" and action_type in ("tts_say", "end_conversation", "function")
            ):
                await self._all_finished.wait()
            ongoing = self._ongoing
            try:
                await _call(handler, action, self._flow_manager)
            except Exception as exc:
                if self._ongoing > ongoing:
                    self._finished_one()
                raise ActionError(f"action {action_type!r} failed: {exc}") from exc
            logger.debug("flow action %s done", action_type)
            if action_type == "end_conversation":
                return  # nothing after the end would ever be let through
            previous = action_type
        if previous in _WAITED_FOR:
            await self._all_finished.wait()

    # ------------------------------------------------------------------ deferred post-actions

    def schedule_deferred_post_actions(self, post_actions: list[ActionConfig]) -> None:
        """Run ``post_actions`` once the bot has finished its next turn."""
        self._deferred_post_actions = list(post_actions)

    def clear_deferred_post_actions(self) -> None:
        self._deferred_post_actions = []

    # ------------------------------------------------------------------ built-in actions

    async def _tts_say(self, action: dict[str, Any]) -> None:
        text = action.get("text")
        if not text:
            logger.error("flow action tts_say has no 'text'")
            return
        self._started_one()
        append = bool(action.get("append_text_to_context", True))
        await self._worker.queue_frames(
            [TTSSpeakFrame(text, append_to_context=append), ActionFinishedFrame()]
        )

    async def _end_conversation(self, action: dict[str, Any]) -> None:
        frames: list[Frame] = []
        if text := action.get("text"):
            append = bool(action.get("append_text_to_context", True))
            frames.append(TTSSpeakFrame(text, append_to_context=append))
        frames.append(EndFrame())
        await self._worker.queue_frames(frames)

    async def _function(self, action: dict[str, Any]) -> None:
        handler = action.get("handler")
        if handler is None:
            logger.error("flow action 'function' has no 'handler'")
            return
        self._started_one()
        await self._worker.queue_frame(FunctionActionFrame(action=action, function=handler))

    # ------------------------------------------------------------------ pipeline markers

    async def _on_frame_reached_end(self, worker: PipelineWorker, frame: Frame) -> None:
        # The worker's sink waits for this handler: anything that may wait on the pipeline
        # (a handler, actions that wait for their markers) runs in a task of its own.
        if isinstance(frame, FunctionActionFrame):
            self.spawn(self._run_function(frame), "flow-function-action")
        elif isinstance(frame, ActionFinishedFrame):
            self._finished_one()
        elif isinstance(frame, BotStoppedSpeakingFrame) and self._ongoing == 0:
            actions, self._deferred_post_actions = self._deferred_post_actions, []
            if actions:
                self.spawn(self.execute_actions(actions), "flow-deferred-post-actions")

    async def _run_function(self, frame: FunctionActionFrame) -> None:
        try:
            await frame.function(frame.action, self._flow_manager)
        finally:
            self._finished_one()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coro`` in a task whose failure is logged; :meth:`cancel_tasks` stops it."""
        task = create_logged_task(coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            await cancel_and_wait(task)

    def _started_one(self) -> None:
        self._ongoing += 1
        self._all_finished.clear()

    def _finished_one(self) -> None:
        self._ongoing = max(0, self._ongoing - 1)
        if self._ongoing == 0:
            self._all_finished.set()


async def _call(handler: Callable[..., Any], action: ActionConfig, flow_manager: Any) -> None:
    """Call an action handler as ``(action, flow_manager)`` or, older style, ``(action)``."""
    try:
        takes_manager = len(inspect.signature(handler).parameters) > 1
    except (TypeError, ValueError):
        takes_manager = False
    outcome = handler(action, flow_manager) if takes_manager else handler(action)
    if inspect.isawaitable(outcome):
        await outcome
