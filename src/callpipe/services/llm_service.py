"""LLMService: runs a chat model on the conversation context, with function calling.

Frames in: ``OpenAILLMContextFrame`` (from the user aggregator), ``LLMMessagesFrame``.
Frames out: ``LLMFullResponseStartFrame``, ``LLMTextFrame``…, ``LLMFullResponseEndFrame`` per
completion. When the model asks for tools, the registered async handlers run (concurrently),
the assistant ``tool_calls`` message and the ``tool`` results are appended to the context and
the model runs again, until it answers in text (bounded by ``max_tool_rounds``).

A completion runs inside the processor's worker, so an ``InterruptionFrame`` cancels it: the
HTTP stream is closed, handlers marked ``cancel_on_interruption`` are cancelled, and nothing
of the old reply is pushed afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from callpipe.frames.frames import Frame, LLMMessagesFrame
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.ai_service import AIService
from callpipe.transports.record_hooks import note_function_call

if TYPE_CHECKING:
    from callpipe.processors.aggregators.llm_response import (
        LLMAssistantAggregatorParams,
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )

logger = logging.getLogger(__name__)


@dataclass
class FunctionCallParams:
    """What a function handler receives; call ``await params.result_callback(result)``.

    A handler may instead simply ``return`` its result.
    """

    function_name: str
    tool_call_id: str
    arguments: dict[str, Any]
    llm: LLMService
    context: OpenAILLMContext
    result_callback: Callable[[Any], Awaitable[None]]


FunctionHandler = Callable[[FunctionCallParams], Awaitable[Any]]


@dataclass
class ToolCall:
    """One tool call assembled from the streamed deltas."""

    id: str
    name: str
    arguments: str = ""

    def as_message_entry(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments or "{}"},
        }


@dataclass
class _Registration:
    handler: FunctionHandler
    cancel_on_interruption: bool = True


_NO_RESULT = object()


def _json_or_text(value: str) -> Any:
    """For the call record: a JSON argument/result string parsed, anything else as it is."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@dataclass
class _ResultBox:
    value: Any = field(default=_NO_RESULT)


class LLMService(AIService):
    """Base of LLM services: function registry, context frames, the tool loop."""

    kind = "llm"

    def __init__(self, *, max_tool_rounds: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._functions: dict[str | None, _Registration] = {}
        self._max_tool_rounds = max_tool_rounds

    # ------------------------------------------------------------------ functions

    def register_function(
        self,
        function_name: str | None,
        handler: FunctionHandler,
        *,
        cancel_on_interruption: bool = True,
    ) -> None:
        """Run ``handler`` when the model calls ``function_name`` (``None``: any function)."""
        self._functions[function_name] = _Registration(handler, cancel_on_interruption)

    def unregister_function(self, function_name: str | None) -> None:
        self._functions.pop(function_name, None)

    def has_function(self, function_name: str) -> bool:
        return function_name in self._functions or None in self._functions

    # ------------------------------------------------------------------ aggregators

    def create_context_aggregator(
        self,
        context: OpenAILLMContext,
        *,
        user_params: LLMUserAggregatorParams | None = None,
        assistant_params: LLMAssistantAggregatorParams | None = None,
    ) -> LLMContextAggregatorPair:
        """The user/assistant aggregator pair sharing ``context``: ``.user()``, ``.assistant()``."""
        from callpipe.processors.aggregators.llm_response import LLMContextAggregatorPair

        return LLMContextAggregatorPair(
            context, user_params=user_params, assistant_params=assistant_params
        )

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if await self.handle_lifecycle(frame, direction):
            return
        if isinstance(frame, OpenAILLMContextFrame):
            await self._run_context(frame.context)
        elif isinstance(frame, LLMMessagesFrame):
            await self._run_context(OpenAILLMContext(frame.messages))
        else:
            await self.push_frame(frame, direction)

    async def _run_context(self, context: OpenAILLMContext) -> None:
        for _ in range(self._max_tool_rounds + 1):
            calls = await self.run_completion(context)
            if not calls:
                return
            await self.run_function_calls(context, calls)
        logger.warning("%s: stopped after %d tool rounds", self, self._max_tool_rounds)

    async def run_completion(self, context: OpenAILLMContext) -> list[ToolCall]:
        """Stream one completion (pushing its frames); return the tool calls it asked for."""
        raise NotImplementedError

    async def run_function_calls(self, context: OpenAILLMContext, calls: list[ToolCall]) -> None:
        """Run the handlers, then append the tool_calls message and the results to ``context``."""
        results = await asyncio.gather(*(self._call_one(context, call) for call in calls))
        context.add_message(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [call.as_message_entry() for call in calls],
            }
        )
        for call, result in zip(calls, results, strict=True):
            context.add_message({"role": "tool", "tool_call_id": call.id, "content": result})
            note_function_call(call.name, _json_or_text(call.arguments), _json_or_text(result))

    async def _call_one(self, context: OpenAILLMContext, call: ToolCall) -> str:
        registration = self._functions.get(call.name) or self._functions.get(None)
        if registration is None:
            logger.warning("%s: the model called unknown function %r", self, call.name)
            return json.dumps({"error": f"unknown function {call.name}"})
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
            if not isinstance(arguments, dict):
                raise ValueError("arguments are not a JSON object")
        except ValueError as exc:
            logger.warning("%s: bad arguments for %s: %s", self, call.name, exc)
            return json.dumps({"error": f"invalid arguments: {exc}"})
        box = _ResultBox()

        async def result_callback(result: Any) -> None:
            box.value = result

        params = FunctionCallParams(call.name, call.id, arguments, self, context, result_callback)
        logger.debug("%s: calling function %s", self, call.name)
        try:
            if registration.cancel_on_interruption:
                returned = await registration.handler(params)
            else:
                # Shielded: an interruption cancels the turn, not this side effect.
                returned = await asyncio.shield(registration.handler(params))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("%s: function %s failed", self, call.name)
            return json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        value = box.value if box.value is not _NO_RESULT else returned
        if isinstance(value, str):
            return value
        return json.dumps(value, default=str)
