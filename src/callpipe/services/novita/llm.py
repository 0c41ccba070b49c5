"""NovitaLLMService: Novita AI through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``NOVITA_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

NOVITA_BASE_URL = "https://api.novita.ai/openai"
NOVITA_DEFAULT_MODEL = "moonshotai/kimi-k2.5"


@dataclass
class NovitaLLMSettings(OpenAILLMSettings):
    """``NovitaLLMService.Settings``: the OpenAI settings, nothing added."""


class NovitaLLMService(OpenAILLMService):
    """Novita AI chat completions.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``moonshotai/kimi-k2.5``.
    """

    Settings = NovitaLLMSettings
    _settings: NovitaLLMSettings
    _api_key_env = "NOVITA_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = NOVITA_BASE_URL,
        model: str | None = None,
        settings: NovitaLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, NOVITA_BASE_URL)
        defaults = NovitaLLMSettings(model=model or NOVITA_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "NOVITA_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
