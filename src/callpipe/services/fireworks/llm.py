"""FireworksLLMService: Fireworks AI's OpenAI-compatible Chat Completions API.

Endpoint ``https://api.fireworks.ai/inference/v1/chat/completions``, bearer key from
``api_key=`` or ``FIREWORKS_API_KEY``. As in Pipecat 1.14, the request leaves out what the
service does not send there: ``seed``, ``stream_options`` (so no usage metrics) and
``service_tier``; a ``max_completion_tokens`` setting is sent as ``max_tokens`` (when
``max_tokens`` itself is not set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import (
    OpenAILLMService,
    OpenAILLMSettings,
    max_tokens_only,
)
from callpipe.services.settings import store_from

FIREWORKS_BASE_URL = "https://api.fireworks.ai/inference/v1"
FIREWORKS_DEFAULT_MODEL = "accounts/fireworks/models/nemotron-3-ultra-nvfp4"


@dataclass
class FireworksLLMSettings(OpenAILLMSettings):
    """``FireworksLLMService.Settings``: the OpenAI settings, nothing added."""


class FireworksLLMService(OpenAILLMService):
    """Fireworks AI chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else
    ``accounts/fireworks/models/nemotron-3-ultra-nvfp4``.
    """

    Settings = FireworksLLMSettings
    _settings: FireworksLLMSettings
    _api_key_env = "FIREWORKS_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str = FIREWORKS_BASE_URL,
        settings: FireworksLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, FIREWORKS_BASE_URL)
        defaults = FireworksLLMSettings(model=model or FIREWORKS_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "FIREWORKS_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        for key in ("seed", "stream_options", "service_tier"):
            body.pop(key, None)
        max_tokens_only(body)
        return body
