"""BasetenLLMService: Baseten Model APIs through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``BASETEN_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

BASETEN_BASE_URL = "https://inference.baseten.co/v1"
BASETEN_DEFAULT_MODEL = "zai-org/GLM-5.3"


@dataclass
class BasetenLLMSettings(OpenAILLMSettings):
    """``BasetenLLMService.Settings``: the OpenAI settings, nothing added."""


class BasetenLLMService(OpenAILLMService):
    """Baseten Model APIs chat completions.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``zai-org/GLM-5.3``.
    """

    supports_developer_role = False

    Settings = BasetenLLMSettings
    _settings: BasetenLLMSettings
    _api_key_env = "BASETEN_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = BASETEN_BASE_URL,
        model: str | None = None,
        settings: BasetenLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, BASETEN_BASE_URL)
        defaults = BasetenLLMSettings(model=model or BASETEN_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "BASETEN_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
