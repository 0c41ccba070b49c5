"""DeepSeekLLMService: DeepSeek's OpenAI-compatible Chat Completions API.

Endpoint ``https://api.deepseek.com/v1/chat/completions``, bearer key from ``api_key=`` or
``DEEPSEEK_API_KEY``. Differences from the OpenAI service, after DeepSeek's API docs and
Pipecat 1.14:

- ``Settings.thinking`` is sent as ``{"thinking": {"type": ...}}``. It defaults to
  ``disabled``: with thinking on, the model reasons before every answer and the caller waits.
  ``None`` sends nothing (DeepSeek's own default, which is on).
- ``max_tokens`` is the output limit (a ``max_completion_tokens`` setting is sent under that
  name); ``seed`` and ``service_tier`` are not sent.
- Every earlier assistant message carries a ``reasoning_content`` field (empty when none was
  kept), which DeepSeek's thinking mode expects in multi-turn requests with tools.
- Structured output (``response_schema``) is refused: DeepSeek has no JSON-schema mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import (
    OpenAILLMService,
    OpenAILLMSettings,
    max_tokens_only,
)
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven, is_given

DEEPSEEK_BASE_URL = "https://api.deepseek.com/v1"
DEEPSEEK_DEFAULT_MODEL = "deepseek-flash"


class DeepSeekThinkingConfig(BaseModel):
    """The ``thinking`` request object: ``type`` is ``"enabled"`` or ``"disabled"``."""

    type: Literal["enabled", "disabled"] | str


@dataclass
class DeepSeekLLMSettings(OpenAILLMSettings):
    """``DeepSeekLLMService.Settings``: the OpenAI settings plus ``thinking`` (a
    :class:`DeepSeekThinkingConfig` or the same as a dict)."""

    thinking: DeepSeekThinkingConfig | None | NotGiven = field(default_factory=unset)

    def __post_init__(self) -> None:
        value: Any = self.thinking
        if isinstance(value, dict):
            self.thinking = DeepSeekThinkingConfig(**value)


class DeepSeekLLMService(OpenAILLMService):
    """DeepSeek chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``deepseek-flash``.
    """

    supports_developer_role = False

    Settings = DeepSeekLLMSettings
    _api_key_env = "DEEPSEEK_API_KEY"
    ThinkingConfig = DeepSeekThinkingConfig
    supports_response_schema = False
    _settings: DeepSeekLLMSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = DEEPSEEK_BASE_URL,
        model: str | None = None,
        settings: DeepSeekLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, DEEPSEEK_BASE_URL)
        defaults = DeepSeekLLMSettings(
            model=model or DEEPSEEK_DEFAULT_MODEL,
            thinking=DeepSeekThinkingConfig(type="disabled"),
        )
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "DEEPSEEK_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        for key in ("seed", "service_tier"):
            body.pop(key, None)
        max_tokens_only(body)
        body["messages"] = [
            {**message, "reasoning_content": ""}
            if message.get("role") == "assistant" and "reasoning_content" not in message
            else message
            for message in body["messages"]
        ]
        thinking = self._settings.thinking
        if is_given(thinking) and thinking is not None:
            body["thinking"] = thinking.model_dump(exclude_none=True)
        return body
