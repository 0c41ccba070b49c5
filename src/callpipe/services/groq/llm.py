"""GroqLLMService: Groq's OpenAI-compatible Chat Completions API.

Endpoint ``https://api.groq.com/openai/v1/chat/completions``, bearer key from ``api_key=`` or
``GROQ_API_KEY``. One addition to the OpenAI service: ``Settings.reasoning_effort`` is sent as
the top-level ``reasoning_effort`` field when set. Which values a model takes differs per model
(``low`` / ``medium`` / ``high`` on GPT-OSS, ``none`` / ``default`` on ``qwen/qwen3-32b``) and
non-reasoning models refuse the field, so it is left out by default. As for every field, a value
the user put in ``extra`` under that key wins (the same rule as xAI's service).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import GROQ_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven, is_given

GROQ_BASE_URL = "https://api.groq.com/openai/v1"
GROQ_DEFAULT_MODEL = "openai/gpt-oss-120b"

GroqReasoningEffort = Literal["none", "default", "low", "medium", "high"]


@dataclass
class GroqLLMSettings(OpenAILLMSettings):
    """``GroqLLMService.Settings``: the OpenAI settings plus ``reasoning_effort``
    (None: the model's own default)."""

    reasoning_effort: GroqReasoningEffort | None | NotGiven = field(default_factory=unset)


class GroqLLMService(OpenAILLMService):
    """Groq chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else
    ``openai/gpt-oss-120b``.
    """

    Settings = GroqLLMSettings
    _settings: GroqLLMSettings
    _api_key_env = "GROQ_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = GROQ_BASE_URL,
        model: str | None = None,
        settings: GroqLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, GROQ_URL_ENV, GROQ_BASE_URL)
        defaults = GroqLLMSettings(model=model or GROQ_DEFAULT_MODEL, reasoning_effort=None)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "GROQ_API_KEY"),
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
