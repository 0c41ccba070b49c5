"""CrusoeLLMService: Crusoe Managed Inference through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``CRUSOE_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

CRUSOE_BASE_URL = "https://api.inference.crusoecloud.com/v1/"
CRUSOE_DEFAULT_MODEL = "openai/gpt-oss-120b"


@dataclass
class CrusoeLLMSettings(OpenAILLMSettings):
    """``CrusoeLLMService.Settings``: the OpenAI settings, nothing added."""


class CrusoeLLMService(OpenAILLMService):
    """Crusoe Managed Inference chat completions.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``openai/gpt-oss-120b``.
    """

    supports_developer_role = False

    Settings = CrusoeLLMSettings
    _settings: CrusoeLLMSettings
    _api_key_env = "CRUSOE_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = CRUSOE_BASE_URL,
        model: str | None = None,
        settings: CrusoeLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, CRUSOE_BASE_URL)
        defaults = CrusoeLLMSettings(model=model or CRUSOE_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "CRUSOE_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
