"""TogetherLLMService: Together AI's OpenAI-compatible Chat Completions API.

Endpoint ``https://api.together.xyz/v1/chat/completions``, bearer key from ``api_key=`` or
``TOGETHER_API_KEY``. ``Settings.reasoning`` (e.g. ``{"enabled": False}``, for the models with
a reasoning switch) is sent as the top-level ``reasoning`` object when set; left unset, the
model decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven, is_given

TOGETHER_BASE_URL = "https://api.together.xyz/v1"
TOGETHER_DEFAULT_MODEL = "zai-org/GLM-5.2"


@dataclass
class TogetherLLMSettings(OpenAILLMSettings):
    """``TogetherLLMService.Settings``: the OpenAI settings plus the ``reasoning`` switch."""

    reasoning: dict[str, Any] | None | NotGiven = field(default_factory=unset)


class TogetherLLMService(OpenAILLMService):
    """Together AI chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``zai-org/GLM-5.2``.
    """

    supports_developer_role = False

    Settings = TogetherLLMSettings
    _settings: TogetherLLMSettings
    _api_key_env = "TOGETHER_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = TOGETHER_BASE_URL,
        model: str | None = None,
        settings: TogetherLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, TOGETHER_BASE_URL)
        defaults = TogetherLLMSettings(model=model or TOGETHER_DEFAULT_MODEL, reasoning=None)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "TOGETHER_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        reasoning = self._settings.reasoning
        if is_given(reasoning) and reasoning is not None:
            body["reasoning"] = dict(reasoning)
        return body
