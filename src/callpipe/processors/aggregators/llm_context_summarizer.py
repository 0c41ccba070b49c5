"""LLMContextSummarizer: keeps a long call's context bounded (Pipecat 1.14's summarizer).

The assistant aggregator owns one. After each assistant turn, with automatic summarization on
(``LLMAssistantAggregatorParams(enable_auto_context_summarization=True)``), it checks the
context against :class:`~callpipe.utils.context.llm_context_summarization.
LLMAutoContextSummarizationConfig`; an :class:`~callpipe.frames.frames.LLMSummarizeContextFrame`
asks for a summary at any time, automatic summarization on or off.

How a summary is made, without stopping the call:

1. The summarizer notes the context's messages as they are and emits
   ``on_request_summarization`` with an :class:`~callpipe.frames.frames.
   LLMContextSummaryRequestFrame`; the aggregator pushes it upstream, where the pipeline's LLM
   service picks it up (or, with ``summary_config.llm`` set, the summarizer asks that service
   itself).
2. The service runs :func:`summarize_context` in a background task: the older messages become a
   transcript and ``run_inference`` writes the summary. The call goes on meanwhile.
3. The result comes back downstream as an :class:`~callpipe.frames.frames.
   LLMContextSummaryResultFrame`. The summarized messages are replaced by one ``user`` message
   (``summary_message_template``) placed after the leading system message(s); whatever was
   added to the context since is kept after it. If the summarized messages are no longer where
   they were (the application replaced the messages meanwhile), the summary is dropped.
   Summarized messages are compared by identity with the ones noted in step 1.

One summary at a time; a request that gets no answer within its timeout (plus a margin) is
given up so a later one can run. A failure is logged at WARNING and leaves the context alone.
``on_summary_applied`` (on the summarizer, and on the assistant aggregator) reports each summary
with a :class:`SummaryAppliedEvent`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from callpipe.frames.frames import (
    Frame,
    LLMContextSummaryRequestFrame,
    LLMContextSummaryResultFrame,
    LLMFullResponseStartFrame,
    LLMSummarizeContextFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.base_object import BaseObject
from callpipe.utils.context.llm_context_summarization import (
    DEFAULT_SUMMARIZATION_TIMEOUT,
    LLMAutoContextSummarizationConfig,
    LLMContextSummarizationUtil,
    LLMContextSummaryConfig,
    SummaryLLM,
)

logger = logging.getLogger(__name__)

__all__ = ["LLMContextSummarizer", "SummaryAppliedEvent", "summarize_context"]

_NO_ANSWER_MARGIN_SECS = 5.0
"""How much longer than the summary's own timeout to wait for a result frame before giving the
request up (the service may not be there to answer)."""

_util = LLMContextSummarizationUtil


@dataclass
class SummaryAppliedEvent:
    """What a summary did: message counts before and after, how many were summarized, and how
    many were kept as they were (leading system message(s) included)."""

    original_message_count: int
    new_message_count: int
    summarized_message_count: int
    preserved_message_count: int


async def summarize_context(
    llm: SummaryLLM, request: LLMContextSummaryRequestFrame
) -> LLMContextSummaryResultFrame:
    """Write the summary ``request`` asks for with ``llm.run_inference``.

    Never raises (cancellation aside): a failure, a timeout or an empty answer is returned as
    the result's ``error`` (the summarizer that gets it logs it at WARNING).
    """
    selection = _util.get_messages_to_summarize(request.context, request.min_messages_to_keep)

    def failed(reason: str, exc: BaseException | None = None) -> LLMContextSummaryResultFrame:
        logger.debug("%s: no context summary: %s", llm, reason, exc_info=exc)
        return LLMContextSummaryResultFrame(
            request_id=request.request_id, summary="", last_summarized_index=-1, error=reason
        )

    if not selection.messages:
        return failed("nothing to summarize")
    transcript = _util.format_messages_for_summary(selection.messages)
    prompt_context = LLMContext(
        [{"role": "user", "content": f"Conversation history:\n{transcript}"}]
    )
    timeout = request.summarization_timeout or DEFAULT_SUMMARIZATION_TIMEOUT
    logger.debug(
        "%s: summarizing %d messages (up to index %d)",
        llm,
        len(selection.messages),
        selection.last_summarized_index,
    )
    try:
        async with asyncio.timeout(timeout):
            text = await llm.run_inference(
                prompt_context,
                max_tokens=request.target_context_tokens,
                system_instruction=request.summarization_prompt,
            )
    except TimeoutError:
        return failed(f"the LLM took more than {timeout:g}s")
    except NotImplementedError:
        return failed(f"{type(llm).__name__} has no run_inference")
    except Exception as exc:  # a provider error must not end the call
        return failed(f"{type(exc).__name__}: {exc}", exc)
    summary = (text or "").strip()
    if not summary:
        return failed("the LLM answered with no text")
    return LLMContextSummaryResultFrame(
        request_id=request.request_id,
        summary=summary,
        last_summarized_index=selection.last_summarized_index,
    )


class LLMContextSummarizer(BaseObject):
    """Decides when to summarize, asks for it, and applies the result (module docstring).

    Events: ``on_request_summarization(summarizer, request_frame)`` (the owner sends the frame
    to the LLM service) and ``on_summary_applied(summarizer, SummaryAppliedEvent)``.
    ``auto_trigger=False`` leaves only on-demand summaries.
    """

    def __init__(
        self,
        *,
        context: Any,
        config: LLMAutoContextSummarizationConfig | None = None,
        auto_trigger: bool = True,
    ) -> None:
        super().__init__()
        self._context = context
        self._config = config or LLMAutoContextSummarizationConfig()
        self._auto_trigger = auto_trigger
        self._pending_id: str | None = None
        self._pending_config: LLMContextSummaryConfig | None = None
        self._snapshot: list[Any] = []
        self._no_answer: asyncio.TimerHandle | None = None
        self._summary_message: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._register_event_handler("on_request_summarization")
        self._register_event_handler("on_summary_applied")

    @property
    def config(self) -> LLMAutoContextSummarizationConfig:
        return self._config

    @property
    def auto_trigger(self) -> bool:
        return self._auto_trigger

    @property
    def summarization_in_progress(self) -> bool:
        return self._pending_id is not None

    async def setup(self, setup: Any = None) -> None:
        """Nothing to prepare (Pipecat's summarizer takes the processor's setup here)."""

    async def cleanup(self) -> None:
        """Forget a pending summary and stop any summary this summarizer runs itself."""
        self._clear_pending()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def process_frame(self, frame: Frame) -> None:
        """Act on the summarization frames (others are ignored).

        ``LLMFullResponseStartFrame`` runs the automatic check, as in Pipecat; callpipe's
        assistant aggregator runs it at the end of each assistant turn instead
        (:meth:`maybe_summarize`).
        """
        if isinstance(frame, LLMContextSummaryResultFrame):
            await self.apply_result(frame)
        elif isinstance(frame, LLMSummarizeContextFrame):
            await self.summarize_now(frame.config)
        elif isinstance(frame, LLMFullResponseStartFrame):
            await self.maybe_summarize()

    # ------------------------------------------------------------------ deciding

    def messages_since_summary(self) -> int:
        """Messages that count toward ``max_unsummarized_messages``: all but the leading system
        message(s) and the last summary (while it is still where it was put)."""
        messages = self._context.messages
        skip = _util.leading_system_count(messages)
        summary = self._summary_message
        if summary is not None and skip < len(messages) and messages[skip] is summary:
            skip += 1
        return len(messages) - skip

    def should_summarize(self) -> bool:
        """True when automatic summarization is on, none is in progress, a threshold is reached
        and there is something to summarize."""
        if not self._auto_trigger or self.summarization_in_progress:
            return False
        config = self._config
        reasons = []
        if config.max_context_tokens is not None:
            tokens = _util.estimate_context_tokens(self._context)
            if tokens >= config.max_context_tokens:
                reasons.append(f"~{tokens} tokens (limit {config.max_context_tokens})")
        if config.max_unsummarized_messages is not None:
            count = self.messages_since_summary()
            if count >= config.max_unsummarized_messages:
                reasons.append(f"{count} messages (limit {config.max_unsummarized_messages})")
        if not reasons:
            return False
        keep = config.summary_config.min_messages_after_summary
        if not _util.select_messages(self._context.messages, keep).messages:
            return False  # everything left is kept: asking would only fail
        logger.debug("%s: summarizing the context: %s", self, ", ".join(reasons))
        return True

    async def maybe_summarize(self) -> None:
        """The automatic check: ask for a summary if :meth:`should_summarize`."""
        if self.should_summarize():
            await self._request(self._config.summary_config)

    async def summarize_now(self, config: LLMContextSummaryConfig | None = None) -> None:
        """Ask for a summary now (``config`` for this one; the configured one if None)."""
        if self.summarization_in_progress:
            logger.debug("%s: a summary is already being made; request ignored", self)
            return
        await self._request(config or self._config.summary_config)

    async def _request(self, config: LLMContextSummaryConfig) -> None:
        request = LLMContextSummaryRequestFrame(
            request_id=str(uuid.uuid4()),
            context=self._context,
            min_messages_to_keep=config.min_messages_after_summary,
            target_context_tokens=config.target_context_tokens,
            summarization_prompt=config.summary_prompt,
            summarization_timeout=config.summarization_timeout,
        )
        self._pending_id = request.request_id
        self._pending_config = config
        self._snapshot = list(self._context.messages)
        loop = asyncio.get_running_loop()
        limit = (
            config.summarization_timeout or DEFAULT_SUMMARIZATION_TIMEOUT
        ) + _NO_ANSWER_MARGIN_SECS
        self._no_answer = loop.call_later(limit, self._give_up, request.request_id)
        if config.llm is not None:
            task = loop.create_task(
                self._summarize_with(config.llm, request), name=f"{self}:summary"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            await self._call_event_handler("on_request_summarization", request)

    async def _summarize_with(
        self, llm: SummaryLLM, request: LLMContextSummaryRequestFrame
    ) -> None:
        await self.apply_result(await summarize_context(llm, request))

    def _give_up(self, request_id: str) -> None:
        if self._pending_id == request_id:
            logger.warning("%s: no answer to the summary request; giving it up", self)
            self._clear_pending()

    def _clear_pending(self) -> None:
        if self._no_answer is not None:
            self._no_answer.cancel()
            self._no_answer = None
        self._pending_id = None
        self._pending_config = None
        self._snapshot = []

    # ------------------------------------------------------------------ applying

    async def apply_result(self, result: LLMContextSummaryResultFrame) -> None:
        """Replace the summarized messages with the summary (module docstring, step 3)."""
        if result.request_id != self._pending_id:
            logger.debug("%s: ignoring the result of another summary request", self)
            return
        config = self._pending_config or self._config.summary_config
        snapshot = self._snapshot
        self._clear_pending()
        if result.error:
            logger.warning(
                "%s: context summarization failed (%s); the context is left as it was",
                self,
                result.error,
            )
            return
        messages = list(self._context.messages)
        last = result.last_summarized_index
        keep_first = _util.leading_system_count(messages)
        # The summarized messages must still be the ones at those places. Messages the service
        # saw that came after the request's snapshot can only have been appended since.
        unchanged = (
            keep_first <= last < len(messages)
            and bool(snapshot)
            and all(messages[i] is snapshot[i] for i in range(min(last + 1, len(snapshot))))
        )
        if not unchanged:
            logger.warning(
                "%s: the context changed while its summary was made; summary not applied", self
            )
            return
        summary: dict[str, Any] = {
            "role": "user",
            "content": config.summary_message_template.format(summary=result.summary),
        }
        kept = messages[last + 1 :]
        self._context.set_messages([*messages[:keep_first], summary, *kept])
        self._summary_message = summary
        event = SummaryAppliedEvent(
            original_message_count=len(messages),
            new_message_count=keep_first + 1 + len(kept),
            summarized_message_count=last + 1 - keep_first,
            preserved_message_count=keep_first + len(kept),
        )
        logger.info(
            "%s: context summarized: %d messages became one (%d -> %d)",
            self,
            event.summarized_message_count,
            event.original_message_count,
            event.new_message_count,
        )
        await self._call_event_handler("on_summary_applied", event)
