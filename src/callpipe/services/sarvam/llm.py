"""SarvamLLMService: Sarvam AI's OpenAI-compatible Chat Completions API.

Endpoint ``https://api.sarvam.ai/v2/chat/completions`` (``/v1`` for the
``sarvam-105b-conversations`` model), key from ``api_key=`` or ``SARVAM_API_KEY``, sent both as
the bearer token and in Sarvam's own ``api-subscription-key`` header. The model is
``sarvam-105b`` by default and must be one Sarvam serves (``SUPPORTED_MODELS``); another name is
refused at construction.

What differs from the OpenAI service:

- ``stream_options``, ``max_completion_tokens`` and ``service_tier`` are not sent, and a
  ``developer`` message goes out as a ``user`` one (Sarvam knows no such role).
- ``Settings.reasoning_effort`` (``low`` / ``medium`` / ``high``) is sent on the reasoning models;
  ``Settings.wiki_grounding`` (Sarvam's grounding on Wikipedia) on the models that offer it.
- A request the model cannot take (an image for a model without vision, one of the two settings
  above on a model without it) is not sent: a non-fatal ``ErrorFrame`` says why, so an
  ``LLMSwitcher`` can try another service. (A ``tool_choice`` without tools, which Sarvam refuses,
  is never sent: the OpenAI service leaves it out.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.errors import ConfigurationError
from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.llm_service import ToolCall
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven

SARVAM_LLM_URL = "https://api.sarvam.ai"
"""Sarvam's API origin; the version path follows from the model."""
SARVAM_DEFAULT_MODEL = "sarvam-105b"

SUPPORTED_MODELS = frozenset(
    {"deepseekv4.1-flash", "gemma4", "glm5.3", "sarvam-105b", "sarvam-105b-conversations"}
)
VISION_MODELS = frozenset({"gemma4"})
REASONING_MODELS = frozenset({"deepseekv4.1-flash", "gemma4", "glm5.3", "sarvam-105b"})
WIKI_GROUNDING_MODELS = frozenset({"gemma4", "sarvam-105b"})
V1_MODELS = frozenset({"sarvam-105b-conversations"})

SarvamReasoningEffort = Literal["low", "medium", "high"]


@dataclass
class SarvamLLMSettings(OpenAILLMSettings):
    """``SarvamLLMService.Settings``: the OpenAI settings plus ``wiki_grounding`` and
    ``reasoning_effort`` (None: not sent)."""

    wiki_grounding: bool | None | NotGiven = field(default_factory=unset)
    reasoning_effort: SarvamReasoningEffort | None | NotGiven = field(default_factory=unset)


def sarvam_base_url(model: str) -> str:
    """The base URL Sarvam serves ``model`` under."""
    return f"{SARVAM_LLM_URL}/{'v1' if model in V1_MODELS else 'v2'}"


class SarvamLLMService(OpenAILLMService):
    """Sarvam chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``sarvam-105b``;
    ``base_url`` None: chosen from the model at construction.
    """

    supports_developer_role = False

    Settings = SarvamLLMSettings
    _settings: SarvamLLMSettings
    _api_key_env = "SARVAM_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        model: str | None = None,
        settings: SarvamLLMSettings | None = None,
        default_headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        store = store_from(
            SarvamLLMSettings(
                model=model or SARVAM_DEFAULT_MODEL, wiki_grounding=None, reasoning_effort=None
            ),
            settings,
        )
        chosen = store.model
        if not isinstance(chosen, str) or chosen not in SUPPORTED_MODELS:
            raise ConfigurationError(
                f"SarvamLLMService: unsupported model {chosen!r}; one of "
                f"{', '.join(sorted(SUPPORTED_MODELS))}"
            )
        key = resolve_api_key(type(self).__name__, api_key, "SARVAM_API_KEY")
        headers = {"api-subscription-key": key, **(default_headers or {})}
        super().__init__(
            api_key=key,
            base_url=env_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, sarvam_base_url(chosen)),
            settings=store,
            default_headers=headers,
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        for key in ("stream_options", "max_completion_tokens", "service_tier"):
            body.pop(key, None)
        body["messages"] = [
            {**m, "role": "user"} if m.get("role") == "developer" else m for m in body["messages"]
        ]
        s, model = self._settings, self.model_name
        if model in WIKI_GROUNDING_MODELS and isinstance(s.wiki_grounding, bool):
            body.setdefault("wiki_grounding", s.wiki_grounding)
        if model in REASONING_MODELS and isinstance(s.reasoning_effort, str):
            body.setdefault("reasoning_effort", s.reasoning_effort)
        return body

    def request_problem(self, body: dict[str, Any]) -> str | None:
        """Why Sarvam would refuse ``body`` for the current model (None: it would not)."""
        model, s = self.model_name, self._settings
        if model not in VISION_MODELS and any(
            isinstance(part, dict) and part.get("type") == "image_url"
            for message in body["messages"]
            if isinstance(message.get("content"), list)
            for part in message["content"]
        ):
            return f"Sarvam model {model!r} does not take images"
        if isinstance(s.reasoning_effort, str) and model not in REASONING_MODELS:
            return f"Sarvam model {model!r} does not take reasoning_effort"
        if isinstance(s.wiki_grounding, bool) and model not in WIKI_GROUNDING_MODELS:
            return f"Sarvam model {model!r} does not take wiki_grounding"
        return None

    async def run_completion(self, context: ChatContext) -> list[ToolCall]:
        problem = self.request_problem(self.build_request(context))
        if problem is not None:
            await self.push_error(f"{self}: {problem}")
            return []
        return await super().run_completion(context)

    async def run_inference(
        self,
        context: Any,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict[str, Any] | None = None,
    ) -> str | None:
        """As the OpenAI service's, but a request Sarvam would refuse is not sent: a
        non-fatal ``ErrorFrame`` and None."""
        body = self.build_request(context, system_instruction=system_instruction)
        problem = self.request_problem(body)
        if problem is not None:
            await self.push_error(f"{self}: {problem}")
            return None
        return await super().run_inference(
            context,
            max_tokens=max_tokens,
            system_instruction=system_instruction,
            response_schema=response_schema,
        )
