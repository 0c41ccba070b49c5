"""OLLamaLLMService: a local Ollama server through its OpenAI-compatible API.

Endpoint ``http://localhost:11434/v1/chat/completions``. Ollama needs no key; the OpenAI
clients send a placeholder (``"ollama"``), and so does this service unless given another.
No connection warm-up by default: a local server has no TLS to set up, and one that is not
running yet should not hold up the pipeline's start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

OLLAMA_BASE_URL = "http://localhost:11434/v1"
OLLAMA_DEFAULT_MODEL = "llama2"


@dataclass
class OllamaLLMSettings(OpenAILLMSettings):
    """``OLLamaLLMService.Settings``: the OpenAI settings, nothing added."""


class OLLamaLLMService(OpenAILLMService):
    """Ollama chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``llama2``.
    """

    supports_developer_role = False

    Settings = OllamaLLMSettings
    _settings: OllamaLLMSettings
    _api_key_env = ""  # a local server: no key, and no OpenAI account headers

    def __init__(
        self,
        *,
        model: str | None = None,
        base_url: str = OLLAMA_BASE_URL,
        api_key: str = "ollama",
        settings: OllamaLLMSettings | None = None,
        warmup: bool = False,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, OLLAMA_BASE_URL)
        defaults = OllamaLLMSettings(model=model or OLLAMA_DEFAULT_MODEL)
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            settings=store_from(defaults, settings),
            warmup=warmup,
            **kwargs,
        )
