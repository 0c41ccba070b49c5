"""SmallestLLMService: Electron, Smallest AI's LLM, over the Waves API's OpenAI-compatible Chat
Completions endpoint.

Endpoint ``https://api.smallest.ai/waves/v1/chat/completions``, bearer key from ``api_key=`` or
``SMALLEST_API_KEY``; the model is ``electron`` unless ``settings.model`` says otherwise.
Everything else is :class:`~callpipe.services.openai.llm.OpenAILLMService`'s (callpipe sends
the system prompt as a ``system`` message, the role Electron takes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

SMALLEST_BASE_URL = "https://api.smallest.ai/waves/v1"
SMALLEST_DEFAULT_MODEL = "electron"


@dataclass
class SmallestLLMSettings(OpenAILLMSettings):
    """``SmallestLLMService.Settings``: the OpenAI settings (nothing of Smallest's own)."""


class SmallestLLMService(OpenAILLMService):
    """Smallest AI's Electron through its OpenAI-compatible API (see the module docstring)."""

    supports_developer_role = False

    Settings = SmallestLLMSettings
    _settings: SmallestLLMSettings
    _api_key_env = "SMALLEST_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = SMALLEST_BASE_URL,
        settings: SmallestLLMSettings | None = None,
        default_headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, SMALLEST_BASE_URL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "SMALLEST_API_KEY"),
            base_url=base_url,
            settings=store_from(SmallestLLMSettings(model=SMALLEST_DEFAULT_MODEL), settings),
            default_headers=default_headers,
            **kwargs,
        )
