"""NebiusLLMService: Nebius Token Factory through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``NEBIUS_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

NEBIUS_BASE_URL = "https://api.tokenfactory.nebius.com/v1/"
NEBIUS_DEFAULT_MODEL = "Qwen/Qwen3-30B-A3B-Instruct-2507"


@dataclass
class NebiusLLMSettings(OpenAILLMSettings):
    """``NebiusLLMService.Settings``: the OpenAI settings, nothing added."""


class NebiusLLMService(OpenAILLMService):
    """Nebius Token Factory chat completions.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``Qwen/Qwen3-30B-A3B-Instruct-2507``.
    """

    supports_developer_role = False

    Settings = NebiusLLMSettings
    _settings: NebiusLLMSettings
    _api_key_env = "NEBIUS_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = NEBIUS_BASE_URL,
        model: str | None = None,
        settings: NebiusLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, NEBIUS_BASE_URL)
        defaults = NebiusLLMSettings(model=model or NEBIUS_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "NEBIUS_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
