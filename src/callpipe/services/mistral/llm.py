"""MistralLLMService: Mistral AI's Chat Completions API (OpenAI-shaped, with deviations).

Endpoint ``https://api.mistral.ai/v1/chat/completions``, bearer key from ``api_key=`` or
``MISTRAL_API_KEY``. What Mistral does differently, handled here:

- The seed is called ``random_seed``; the output limit is ``max_tokens`` (a
  ``max_completion_tokens`` setting is sent under that name); ``stream_options`` and
  ``service_tier`` are not sent (Mistral reports usage in the last chunk anyway).
- Message order rules: a ``tool`` result must be followed by an ``assistant`` message (an
  assistant message holding a single space is inserted where the next one is not), ``system``
  messages may only open the conversation (later ones are sent as ``user``), and a conversation
  ending with an ``assistant`` message is sent with ``"prefix": true`` on it, so the model
  continues that message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import (
    OpenAILLMService,
    OpenAILLMSettings,
    max_tokens_only,
)
from callpipe.services.settings import store_from

MISTRAL_BASE_URL = "https://api.mistral.ai/v1"
MISTRAL_DEFAULT_MODEL = "mistral-small-latest"


@dataclass
class MistralLLMSettings(OpenAILLMSettings):
    """``MistralLLMService.Settings``: the OpenAI settings, nothing added."""


def mistral_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` reordered and relabelled to follow Mistral's rules (module docstring)."""
    out: list[dict[str, Any]] = []
    opening = True
    for n, message in enumerate(messages):
        role = message.get("role")
        if role == "system" and not opening:
            message = {**message, "role": "user"}
        opening = opening and role == "system"
        out.append(message)
        if role == "tool":
            following = messages[n + 1].get("role") if n + 1 < len(messages) else None
            if following not in ("tool", "assistant"):
                out.append({"role": "assistant", "content": " "})
    if out and out[-1].get("role") == "assistant" and "prefix" not in out[-1]:
        out[-1] = {**out[-1], "prefix": True}
    return out


class MistralLLMService(OpenAILLMService):
    """Mistral chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else
    ``mistral-small-latest``.
    """

    supports_developer_role = False

    Settings = MistralLLMSettings
    _settings: MistralLLMSettings
    _api_key_env = "MISTRAL_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = MISTRAL_BASE_URL,
        model: str | None = None,
        settings: MistralLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, MISTRAL_BASE_URL)
        defaults = MistralLLMSettings(model=model or MISTRAL_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "MISTRAL_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        for key in ("stream_options", "service_tier"):
            body.pop(key, None)
        seed = body.pop("seed", None)
        if seed is not None:
            body["random_seed"] = seed
        max_tokens_only(body)
        body["messages"] = mistral_messages(body["messages"])
        return body
