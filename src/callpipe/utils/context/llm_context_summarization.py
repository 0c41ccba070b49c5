"""Context summarization settings and the message arithmetic behind them (Pipecat 1.14 names).

A long call's context grows with every turn and every tool result, and each turn resends all of
it. Summarization replaces the older part of the conversation with one short message written by
the LLM, so the context stays bounded. This module holds what needs nothing above ``utils``:

- :class:`LLMContextSummaryConfig`: how a summary is made (token budget, messages kept, prompt,
  the template of the summary message, an optional separate LLM, a timeout);
- :class:`LLMAutoContextSummarizationConfig`: when one is made automatically (an estimated token
  limit and/or a number of messages since the last summary);
- :class:`LLMContextSummarizationConfig`: the older flat form of both, deprecated as in Pipecat;
- :class:`LLMContextSummarizationUtil`: the token estimate (about four characters a token, plus
  a little per message), the choice of messages to summarize and the transcript sent to the LLM.

Which messages are summarized: everything between the leading ``system`` message(s) and the
last ``min_messages_after_summary`` messages, except that the range ends before any tool call
whose result is not inside it (or is still pending), so a call is never separated from its
result. The summarizer that acts on this is
:class:`callpipe.processors.aggregators.llm_context_summarizer.LLMContextSummarizer`.

Messages are the context's dicts (Chat Completions shape); anything else in the list (a
provider-specific message) is skipped when estimating and transcribing.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_SUMMARIZATION_PROMPT",
    "DEFAULT_SUMMARIZATION_TIMEOUT",
    "IMAGE_TOKEN_ESTIMATE",
    "TOKEN_OVERHEAD_PER_MESSAGE",
    "LLMAutoContextSummarizationConfig",
    "LLMContextSummarizationConfig",
    "LLMContextSummarizationUtil",
    "LLMContextSummaryConfig",
    "LLMMessagesToSummarize",
    "SummaryLLM",
]

DEFAULT_SUMMARIZATION_TIMEOUT = 120.0
"""Seconds a summary may take when the config gives no timeout."""

CHARS_PER_TOKEN = 4
TOKEN_OVERHEAD_PER_MESSAGE = 10
IMAGE_TOKEN_ESTIMATE = 500

DEFAULT_SUMMARIZATION_PROMPT = (
    "Summarize the earlier part of a phone conversation between a caller and an AI assistant, "
    "so that the assistant can carry on the call from the summary alone.\n\n"
    "Keep: who the caller is and what they want; facts, numbers, names and references they "
    "gave; what was looked up or done (tool results) and what came of it; decisions, promises "
    "and anything still open.\n"
    "Leave out: greetings, small talk, repetitions and anything settled that will not matter "
    "again.\n\n"
    "Write short factual statements grouped by topic and stay within the length you are "
    "given. Answer with the summary only."
)
"""The instruction given to the LLM when the config names no ``summarization_prompt``."""


class SummaryLLM(Protocol):
    """What summarization needs of an LLM service: a one-shot completion
    (``LLMService.run_inference``; the services live above this layer)."""

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None: ...


@dataclass
class LLMContextSummaryConfig:
    """How a summary is made (automatic or on demand).

    Parameters:
        target_context_tokens: The summary's length limit, sent to the LLM as its maximum number
            of output tokens.
        min_messages_after_summary: How many of the latest messages stay as they are.
        summarization_prompt: The instruction for the LLM; None uses
            :data:`DEFAULT_SUMMARIZATION_PROMPT`.
        summary_message_template: The text of the message that replaces the summarized ones;
            ``{summary}`` is where the summary goes (wrap it in tags your system prompt
            mentions, for example).
        llm: Another LLM service to write summaries (a cheaper model); None asks the LLM service
            of the pipeline.
        summarization_timeout: Seconds the LLM may take; after that the attempt is given up and
            the context stays as it was.
    """

    target_context_tokens: int = 6000
    min_messages_after_summary: int = 4
    summarization_prompt: str | None = None
    summary_message_template: str = "Conversation summary: {summary}"
    llm: SummaryLLM | None = None
    summarization_timeout: float = DEFAULT_SUMMARIZATION_TIMEOUT

    def __post_init__(self) -> None:
        if self.target_context_tokens <= 0:
            raise ValueError("target_context_tokens must be greater than 0")
        if self.min_messages_after_summary < 0:
            raise ValueError("min_messages_after_summary cannot be negative")

    @property
    def summary_prompt(self) -> str:
        """The instruction actually used (``summarization_prompt`` or the default)."""
        return self.summarization_prompt or DEFAULT_SUMMARIZATION_PROMPT


def _check_thresholds(
    max_context_tokens: int | None, max_unsummarized_messages: int | None
) -> None:
    if max_context_tokens is None and max_unsummarized_messages is None:
        raise ValueError(
            "set max_context_tokens or max_unsummarized_messages (or both): with neither, "
            "nothing would ever trigger a summary"
        )
    if max_context_tokens is not None and max_context_tokens <= 0:
        raise ValueError("max_context_tokens must be greater than 0")
    if max_unsummarized_messages is not None and max_unsummarized_messages < 1:
        raise ValueError("max_unsummarized_messages must be 1 or more")


def _summary_budget(target: int, max_context_tokens: int | None) -> int:
    """A summary budget larger than the context limit is cut to 80 % of the limit."""
    if max_context_tokens is not None and target > max_context_tokens:
        return int(max_context_tokens * 0.8)
    return target


@dataclass
class LLMAutoContextSummarizationConfig:
    """When a summary is made automatically (after an assistant turn), and how.

    Either threshold may be None to switch it off, not both.

    Parameters:
        max_context_tokens: Summarize once the context's estimated size reaches this many
            tokens (about four characters a token; the service's ``system_instruction`` is not
            part of the context and not counted).
        max_unsummarized_messages: Summarize once this many messages were added since the last
            summary (the leading system message(s) and the summary itself do not count).
        summary_config: How the summary is made. Its ``target_context_tokens`` is lowered to
            80 % of ``max_context_tokens`` when it is larger.
    """

    max_context_tokens: int | None = 8000
    max_unsummarized_messages: int | None = 20
    summary_config: LLMContextSummaryConfig = field(default_factory=LLMContextSummaryConfig)

    def __post_init__(self) -> None:
        _check_thresholds(self.max_context_tokens, self.max_unsummarized_messages)
        self.summary_config.target_context_tokens = _summary_budget(
            self.summary_config.target_context_tokens, self.max_context_tokens
        )


@dataclass
class LLMContextSummarizationConfig:
    """The older, flat configuration (deprecated, as in Pipecat 1.14).

    .. deprecated:: 0.0.104
        Use :class:`LLMAutoContextSummarizationConfig` with a nested
        :class:`LLMContextSummaryConfig`; :meth:`to_auto_config` converts.

    Fields mean what they mean in those two classes.
    """

    max_context_tokens: int | None = 8000
    target_context_tokens: int = 6000
    max_unsummarized_messages: int | None = 20
    min_messages_after_summary: int = 4
    summarization_prompt: str | None = None
    summary_message_template: str = "Conversation summary: {summary}"
    llm: SummaryLLM | None = None
    summarization_timeout: float = DEFAULT_SUMMARIZATION_TIMEOUT

    def __post_init__(self) -> None:
        warnings.warn(
            "`LLMContextSummarizationConfig` is deprecated since 0.0.104 and will be removed "
            "in 2.0.0. Use `LLMAutoContextSummarizationConfig` instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        _check_thresholds(self.max_context_tokens, self.max_unsummarized_messages)
        if self.target_context_tokens <= 0:
            raise ValueError("target_context_tokens must be greater than 0")
        if self.min_messages_after_summary < 0:
            raise ValueError("min_messages_after_summary cannot be negative")
        self.target_context_tokens = _summary_budget(
            self.target_context_tokens, self.max_context_tokens
        )

    @property
    def summary_prompt(self) -> str:
        """The instruction actually used (``summarization_prompt`` or the default)."""
        return self.summarization_prompt or DEFAULT_SUMMARIZATION_PROMPT

    def to_auto_config(self) -> LLMAutoContextSummarizationConfig:
        """The same settings in the current form."""
        return LLMAutoContextSummarizationConfig(
            max_context_tokens=self.max_context_tokens,
            max_unsummarized_messages=self.max_unsummarized_messages,
            summary_config=LLMContextSummaryConfig(
                target_context_tokens=self.target_context_tokens,
                min_messages_after_summary=self.min_messages_after_summary,
                summarization_prompt=self.summarization_prompt,
                summary_message_template=self.summary_message_template,
                llm=self.llm,
                summarization_timeout=self.summarization_timeout,
            ),
        )


@dataclass
class LLMMessagesToSummarize:
    """The messages chosen for a summary and the context index of the last of them (-1: none)."""

    messages: list[Any]
    last_summarized_index: int


class _HasMessages(Protocol):
    @property
    def messages(self) -> Any: ...


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _tool_calls(message: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(id, name, arguments)`` of an assistant message's tool calls."""
    found: list[tuple[str, str, str]] = []
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return found
    for call in calls:
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        found.append(
            (
                str(call.get("id") or ""),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
            )
        )
    return found


def _async_tool_status(content: Any) -> tuple[str, str] | None:
    """``(status, tool_call_id)`` of an async-tool marker message (Pipecat's JSON form)."""
    if not isinstance(content, str) or not content.startswith("{"):
        return None
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != "async_tool":
        return None
    return str(data.get("status") or ""), str(data.get("tool_call_id") or "")


def _result_pending(content: Any) -> bool:
    """A tool result that is only a placeholder: the call is still running (``IN_PROGRESS``,
    or an asynchronous call's ``started`` message, whose status is ``running``; ``started``
    is accepted too, the status Pipecat's summarizer looks for)."""
    if content == "IN_PROGRESS":
        return True
    status = _async_tool_status(content)
    return status is not None and status[0] in ("running", "started")


class LLMContextSummarizationUtil:
    """Static helpers: token estimate, message choice, transcript (see the module docstring)."""

    @staticmethod
    def estimate_tokens(text: str) -> int:
        """About one token per four characters."""
        return len(text) // CHARS_PER_TOKEN if text else 0

    @staticmethod
    def estimate_context_tokens(context: _HasMessages) -> int:
        """The estimated size of the context's messages (text, images, tool calls, overhead)."""
        return LLMContextSummarizationUtil.estimate_message_tokens(context.messages)

    @staticmethod
    def estimate_message_tokens(messages: Sequence[Any]) -> int:
        """:meth:`estimate_context_tokens` for a list of messages."""
        estimate = LLMContextSummarizationUtil.estimate_tokens
        total = 0
        for message in messages:
            if not isinstance(message, dict):
                continue
            total += TOKEN_OVERHEAD_PER_MESSAGE
            content = message.get("content")
            if isinstance(content, str):
                total += estimate(content)
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict):
                        continue
                    if part.get("type") == "text":
                        total += estimate(str(part.get("text") or ""))
                    elif part.get("type") in ("image_url", "image"):
                        total += IMAGE_TOKEN_ESTIMATE
            for _, name, arguments in _tool_calls(message):
                total += estimate(name + arguments)
            if "tool_call_id" in message:
                total += TOKEN_OVERHEAD_PER_MESSAGE
        return total

    @staticmethod
    def leading_system_count(messages: Sequence[Any]) -> int:
        """How many ``system`` messages open the context (kept out of every summary)."""
        count = 0
        for message in messages:
            if not (isinstance(message, dict) and message.get("role") == "system"):
                break
            count += 1
        return count

    @staticmethod
    def first_unresolved_call(messages: Sequence[Any], start: int, end: int) -> int:
        """Index of the earliest assistant message in ``messages[start:end]`` with a tool call
        whose result is not in that range or is still pending; -1 if every call is resolved."""
        open_calls: dict[str, int] = {}
        for index in range(start, end):
            message = messages[index]
            if not isinstance(message, dict):
                continue
            role = message.get("role")
            if role == "assistant":
                for call_id, _, _ in _tool_calls(message):
                    if call_id:
                        open_calls[call_id] = index
            elif role == "tool":
                call_id = str(message.get("tool_call_id") or "")
                if call_id in open_calls and not _result_pending(message.get("content")):
                    del open_calls[call_id]
            elif role == "developer":
                status = _async_tool_status(message.get("content"))
                if status is not None and status[0] == "finished":
                    open_calls.pop(status[1], None)
        return min(open_calls.values()) if open_calls else -1

    @staticmethod
    def get_messages_to_summarize(
        context: _HasMessages, min_messages_to_keep: int
    ) -> LLMMessagesToSummarize:
        """The messages a summary would replace (see the module docstring for which)."""
        return LLMContextSummarizationUtil.select_messages(context.messages, min_messages_to_keep)

    @staticmethod
    def select_messages(
        messages: Sequence[Any], min_messages_to_keep: int
    ) -> LLMMessagesToSummarize:
        """:meth:`get_messages_to_summarize` for a list of messages."""
        nothing = LLMMessagesToSummarize(messages=[], last_summarized_index=-1)
        start = LLMContextSummarizationUtil.leading_system_count(messages)
        end = len(messages) - max(0, min_messages_to_keep)
        if start >= end:
            return nothing
        unresolved = LLMContextSummarizationUtil.first_unresolved_call(messages, start, end)
        if unresolved >= 0:
            logger.debug(
                "summary stops at message %d: its tool call has no result before %d",
                unresolved,
                end,
            )
            end = unresolved
        if start >= end:
            return nothing
        return LLMMessagesToSummarize(
            messages=list(messages[start:end]), last_summarized_index=end - 1
        )

    @staticmethod
    def format_messages_for_summary(messages: Sequence[Any]) -> str:
        """The messages as a plain transcript: ``ROLE: text``, tool calls and their results."""
        lines: list[str] = []
        for message in messages:
            if not isinstance(message, dict):
                continue
            role = str(message.get("role") or "unknown")
            text = _text_of(message.get("content"))
            if role == "tool":
                lines.append(f"TOOL_RESULT[{message.get('tool_call_id') or 'unknown'}]: {text}")
                continue
            if text:
                lines.append(f"{role.upper()}: {text}")
            for _, name, arguments in _tool_calls(message):
                lines.append(f"TOOL_CALL: {name or 'unknown'}({arguments})")
        return "\n\n".join(lines)
