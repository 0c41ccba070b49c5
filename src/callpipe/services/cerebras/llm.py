"""CerebrasLLMService: Cerebras through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``CEREBRAS_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

CEREBRAS_BASE_URL = "https://api.cerebras.ai/v1"
CEREBRAS_DEFAULT_MODEL = "gpt-oss-120b"


@dataclass
class CerebrasLLMSettings(OpenAILLMSettings):
    """``CerebrasLLMService.Settings``: the OpenAI settings, nothing added."""


class CerebrasLLMService(OpenAILLMService):
    """Cerebras chat completions.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``gpt-oss-120b``.
    """

    Settings = CerebrasLLMSettings
    _settings: CerebrasLLMSettings
    _api_key_env = "CEREBRAS_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = CEREBRAS_BASE_URL,
        model: str | None = None,
        settings: CerebrasLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, CEREBRAS_BASE_URL)
        defaults = CerebrasLLMSettings(model=model or CEREBRAS_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "CEREBRAS_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
