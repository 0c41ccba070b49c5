"""PerplexityLLMService: Perplexity's Sonar models over its Chat Completions API.

Endpoint ``https://api.perplexity.ai/chat/completions`` (no ``/v1``), bearer key from
``api_key=`` or ``PERPLEXITY_API_KEY``. Deprecated in Pipecat 1.14 in favour of
``PerplexityAgentHttpLLMService`` (Perplexity's Responses-style Agent API), which callpipe does
not provide.

The request is narrower than OpenAI's, as in Pipecat 1.14: model, messages and the sampling
settings ``temperature``, ``top_p``, ``max_tokens`` (a ``max_completion_tokens`` setting is
sent under that name), ``frequency_penalty`` and ``presence_penalty``. No tools, no
``stream_options``, no ``seed``. Messages are made to alternate as Sonar requires: ``system``
messages after the opening ones become ``user``, neighbours with the same role are merged into
one message of text parts, and trailing ``assistant`` messages are dropped.
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

PERPLEXITY_BASE_URL = "https://api.perplexity.ai"
PERPLEXITY_DEFAULT_MODEL = "sonar"

_SENT = (
    "model",
    "stream",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
)


@dataclass
class PerplexityLLMSettings(OpenAILLMSettings):
    """``PerplexityLLMService.Settings``: the OpenAI settings, nothing added."""


def _parts(content: Any) -> list[Any]:
    if isinstance(content, list):
        return list(content)
    return [{"type": "text", "text": str(content or "")}]


def perplexity_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` made to alternate as Sonar requires (see the module docstring)."""
    out: list[dict[str, Any]] = []
    opening = True
    for message in messages:
        role = message.get("role")
        if role == "system" and not opening:
            message = {**message, "role": "user"}
            role = "user"
        opening = opening and role == "system"
        previous = out[-1] if out else None
        if previous is not None and role != "system" and previous.get("role") == role:
            merged = _parts(previous.get("content")) + _parts(message.get("content"))
            out[-1] = {**previous, "content": merged}
        else:
            out.append(message)
    while out and out[-1].get("role") == "assistant":
        out.pop()
    return out


class PerplexityLLMService(OpenAILLMService):
    """Perplexity Sonar chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``sonar``.
    """

    supports_developer_role = False

    Settings = PerplexityLLMSettings
    _settings: PerplexityLLMSettings
    _api_key_env = "PERPLEXITY_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = PERPLEXITY_BASE_URL,
        model: str | None = None,
        settings: PerplexityLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, PERPLEXITY_BASE_URL)
        defaults = PerplexityLLMSettings(model=model or PERPLEXITY_DEFAULT_MODEL)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "PERPLEXITY_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        full = super().build_request(context, system_instruction=system_instruction)
        max_tokens_only(full)
        body = {key: full[key] for key in _SENT if key in full}
        body["messages"] = perplexity_messages(full["messages"])
        return body
