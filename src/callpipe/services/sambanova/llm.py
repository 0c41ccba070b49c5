"""SambaNovaLLMService: SambaNova through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``SAMBANOVA_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

SAMBANOVA_BASE_URL = "https://api.sambanova.ai/v1"
SAMBANOVA_DEFAULT_MODEL = "Meta-Llama-3.3-70B-Instruct"


@dataclass
class SambaNovaLLMSettings(OpenAILLMSettings):
    """``SambaNovaLLMService.Settings``: the OpenAI settings, nothing added."""


class SambaNovaLLMService(OpenAILLMService):
    """SambaNova chat completions.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``Meta-Llama-3.3-70B-Instruct``.
    """

    supports_developer_role = False

    Settings = SambaNovaLLMSettings
    _settings: SambaNovaLLMSettings
    _api_key_env = "SAMBANOVA_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = SAMBANOVA_BASE_URL,
        model: str | None = None,
        settings: SambaNovaLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, SAMBANOVA_BASE_URL)
        defaults = SambaNovaLLMSettings(model=model or SAMBANOVA_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "SAMBANOVA_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
