"""LLMSwitcher (Pipecat 1.14): a :class:`ServiceSwitcher` for LLM services.

Functions registered on the switcher are registered on every LLM it holds, so a tool keeps
working after a switch. Tools listed in an ``LLMContext`` need nothing more: callpipe's LLM
services look their handlers up in the context at each call.

``run_inference`` (a one-shot completion outside the pipeline) goes to the active LLM.
"""

from __future__ import annotations

from typing import Any, Protocol, cast, overload, runtime_checkable

from callpipe.errors import ConfigurationError
from callpipe.pipeline.service_switcher import (
    ServiceSwitcher,
    ServiceSwitcherStrategyManual,
    StrategyType,
)
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.utils.context.llm_context_summarization import SummaryLLM


@runtime_checkable
class _RegistersFunctions(SummaryLLM, Protocol):
    """What the switcher needs of an LLM service (``callpipe.services`` sits above this layer,
    so the class itself cannot be named here)."""

    def register_function(
        self,
        function_name: str | None,
        handler: Any,
        *,
        cancel_on_interruption: bool | None = None,
        timeout_secs: float | None = None,
    ) -> None: ...


class LLMSwitcher(ServiceSwitcher[StrategyType]):
    """Switches between LLM services; ``LLMSwitcher(llms=[openai_llm, backup_llm])``."""

    @overload
    def __init__(
        self: LLMSwitcher[ServiceSwitcherStrategyManual], llms: list[FrameProcessor]
    ) -> None: ...

    @overload
    def __init__(self, llms: list[FrameProcessor], strategy_type: type[StrategyType]) -> None: ...

    def __init__(
        self, llms: list[FrameProcessor], strategy_type: type[StrategyType] | None = None
    ) -> None:
        for llm in llms:
            if not isinstance(llm, _RegistersFunctions):
                raise ConfigurationError(f"LLMSwitcher: {llm} is not an LLM service")
        if strategy_type is None:
            strategy_type = cast(type[StrategyType], ServiceSwitcherStrategyManual)
        super().__init__(llms, strategy_type)

    @property
    def llms(self) -> list[FrameProcessor]:
        """The LLM services held, in the order given."""
        return self.services

    @property
    def active_llm(self) -> FrameProcessor:
        """The LLM service frames go to now."""
        return self.strategy.active_service

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """One completion on ``context`` by the active LLM, outside the pipeline (see
        ``LLMService.run_inference``)."""
        llm = self.active_llm
        assert isinstance(llm, _RegistersFunctions)  # checked at construction
        return await llm.run_inference(
            context,
            max_tokens=max_tokens,
            system_instruction=system_instruction,
            response_schema=response_schema,
        )

    def register_function(
        self,
        function_name: str | None,
        handler: Any,
        *,
        cancel_on_interruption: bool | None = None,
        timeout_secs: float | None = None,
    ) -> None:
        """Register ``handler`` for ``function_name`` (``None``: any function) on every LLM,
        active or not (same arguments as ``LLMService.register_function``)."""
        for llm in self.llms:
            assert isinstance(llm, _RegistersFunctions)  # checked at construction
            llm.register_function(
                function_name,
                handler,
                cancel_on_interruption=cancel_on_interruption,
                timeout_secs=timeout_secs,
            )
