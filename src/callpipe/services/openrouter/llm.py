"""OpenRouterLLMService: OpenRouter's OpenAI-compatible Chat Completions API.

Endpoint ``https://openrouter.ai/api/v1/chat/completions``, bearer key from ``api_key=`` or
``OPENROUTER_API_KEY``. Two additions to the OpenAI service:

- ``Settings.provider`` (:class:`OpenRouterProviderPreferences` or a dict) is sent as the
  ``provider`` routing object (which upstream providers may serve the request, in what order);
  unset or None, OpenRouter routes as it likes.
- For Gemini models (``"gemini"`` in the model name) only the first ``system`` message is kept
  as one; later ones are sent as ``user``, as Gemini accepts a single system instruction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven, is_given

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
OPENROUTER_DEFAULT_MODEL = "openai/gpt-4.1"


class OpenRouterProviderPreferences(BaseModel):
    """OpenRouter's ``provider`` routing object; unset fields are not sent, and fields not
    listed here are passed through."""

    model_config = ConfigDict(extra="allow")

    order: list[str] | None = None
    allow_fallbacks: bool | None = None
    require_parameters: bool | None = None
    data_collection: Literal["allow", "deny"] | str | None = None
    zdr: bool | None = None
    enforce_distillable_text: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[str] | None = None
    sort: Literal["price", "throughput", "latency"] | str | dict[str, Any] | None = None
    preferred_min_throughput: float | dict[str, float] | None = None
    preferred_max_latency: float | dict[str, float] | None = None
    max_price: dict[str, float] | None = None


@dataclass
class OpenRouterLLMSettings(OpenAILLMSettings):
    """``OpenRouterLLMService.Settings``: the OpenAI settings plus ``provider`` routing."""

    provider: OpenRouterProviderPreferences | dict[str, Any] | None | NotGiven = field(
        default_factory=unset
    )

    def __post_init__(self) -> None:
        if isinstance(self.provider, dict):
            self.provider = OpenRouterProviderPreferences(**self.provider)


class OpenRouterLLMService(OpenAILLMService):
    """OpenRouter chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``openai/gpt-4.1``.
    """

    supports_developer_role = False

    Settings = OpenRouterLLMSettings
    _api_key_env = "OPENROUTER_API_KEY"
    ProviderPreferences = OpenRouterProviderPreferences
    _settings: OpenRouterLLMSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str = OPENROUTER_BASE_URL,
        settings: OpenRouterLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, OPENROUTER_BASE_URL)
        defaults = OpenRouterLLMSettings(model=model or OPENROUTER_DEFAULT_MODEL, provider=None)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "OPENROUTER_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        provider = self._settings.provider
        if is_given(provider) and provider is not None:
            preferences = OpenRouterProviderPreferences.model_validate(provider)
            body["provider"] = preferences.model_dump(exclude_none=True)
        if "gemini" in str(body.get("model", "")).lower():
            seen_system = False
            messages: list[dict[str, Any]] = []
            for message in body["messages"]:
                if message.get("role") == "system":
                    if seen_system:
                        message = {**message, "role": "user"}
                    seen_system = True
                messages.append(message)
            body["messages"] = messages
        return body
