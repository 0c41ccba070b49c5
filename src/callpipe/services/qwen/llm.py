"""QwenLLMService: Qwen models on Alibaba Cloud Model Studio (DashScope, international
endpoint) through its OpenAI-compatible Chat Completions API.

Everything but the defaults is :class:`~callpipe.services.openai.llm.OpenAILLMService`: the
endpoint is ``{base_url}/chat/completions`` with a bearer key (``api_key=`` or
``QWEN_API_KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

QWEN_BASE_URL = "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
QWEN_DEFAULT_MODEL = "qwen-plus"


@dataclass
class QwenLLMSettings(OpenAILLMSettings):
    """``QwenLLMService.Settings``: the OpenAI settings, nothing added."""


class QwenLLMService(OpenAILLMService):
    """Qwen chat completions on Alibaba Cloud Model Studio.

    The model is ``settings.model``, else ``model=`` (the older form),
    else ``qwen-plus``.
    """

    supports_developer_role = False

    Settings = QwenLLMSettings
    _settings: QwenLLMSettings
    _api_key_env = "QWEN_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = QWEN_BASE_URL,
        model: str | None = None,
        settings: QwenLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, QWEN_BASE_URL)
        defaults = QwenLLMSettings(model=model or QWEN_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "QWEN_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )
