"""GrokLLMService: xAI's Grok models over xAI's OpenAI-compatible Chat Completions API.

Endpoint ``https://api.x.ai/v1/chat/completions``, bearer key from ``api_key=`` or
``XAI_API_KEY``. ``Settings.reasoning_effort`` is sent as the top-level ``reasoning_effort``
field when set; a value the user put in ``extra`` under that key wins, as for every field (the
same rule as Groq's service). Only some models take it (which values differs per model) and the
non-reasoning ones refuse it, so it is left out by default.

Usage: xAI counts a reasoning model's ``reasoning_tokens`` apart from ``completion_tokens``
(``total_tokens`` has both). They are added to the completion count, which everywhere else
includes them; a total that already matches prompt plus completion is taken as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven, is_given

XAI_BASE_URL = "https://api.x.ai/v1"
XAI_DEFAULT_MODEL = "grok-4.20-non-reasoning"

GrokReasoningEffort = Literal["none", "low", "medium", "high", "xhigh"]


@dataclass
class GrokLLMSettings(OpenAILLMSettings):
    """``GrokLLMService.Settings``: the OpenAI settings plus ``reasoning_effort``
    (None: the model's own default)."""

    reasoning_effort: GrokReasoningEffort | None | NotGiven = field(default_factory=unset)


class GrokLLMService(OpenAILLMService):
    """xAI Grok chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else
    ``grok-4.20-non-reasoning``.
    """

    Settings = GrokLLMSettings
    _settings: GrokLLMSettings
    _api_key_env = "XAI_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = XAI_BASE_URL,
        model: str | None = None,
        settings: GrokLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, XAI_BASE_URL)
        defaults = GrokLLMSettings(model=model or XAI_DEFAULT_MODEL, reasoning_effort=None)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "XAI_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        effort = self._settings.reasoning_effort
        if is_given(effort) and effort is not None:
            body.setdefault("reasoning_effort", effort)
        return body

    def stream_event(self, data: str) -> dict[str, Any] | None:
        chunk = super().stream_event(data)
        usage = chunk.get("usage") if chunk is not None else None
        if isinstance(usage, dict):
            _count_reasoning_in_completion(usage)
        return chunk


def _count_reasoning_in_completion(usage: dict[str, Any]) -> None:
    """Add ``usage``'s reasoning tokens to its ``completion_tokens`` when the server counted them
    apart (its total is prompt + completion + reasoning); otherwise leave it alone."""
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    total = usage.get("total_tokens")
    if not (
        isinstance(reasoning, int)
        and isinstance(prompt, int)
        and isinstance(completion, int)
        and isinstance(total, int)
    ):
        return
    if reasoning and total == prompt + completion + reasoning:
        usage["completion_tokens"] = completion + reasoning
