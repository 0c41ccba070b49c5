"""InceptionLLMService: Inception's Mercury models over their OpenAI-compatible API.

Endpoint ``https://api.inceptionlabs.ai/v1/chat/completions``, bearer key from ``api_key=`` or
``INCEPTION_API_KEY``. ``Settings.reasoning_effort`` is sent as ``reasoning_effort`` when set,
and ``Settings.realtime`` (default True: a shorter wait for the first block of the diffusion
model's answer) as ``realtime``; None leaves either out, and a value in ``extra`` wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.processors.aggregators.llm_context import ChatContext
from callpipe.services._env import OPENAI_COMPATIBLE_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from, unset
from callpipe.utils.types import NotGiven, is_given

INCEPTION_BASE_URL = "https://api.inceptionlabs.ai/v1"
INCEPTION_DEFAULT_MODEL = "mercury-2"


@dataclass
class InceptionLLMSettings(OpenAILLMSettings):
    """``InceptionLLMService.Settings``: the OpenAI settings plus ``reasoning_effort`` and
    ``realtime``."""

    reasoning_effort: Literal["instant", "low", "medium", "high"] | None | NotGiven = field(
        default_factory=unset
    )
    realtime: bool | None | NotGiven = field(default_factory=unset)


class InceptionLLMService(OpenAILLMService):
    """Inception Mercury chat completions (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else ``mercury-2``.
    """

    supports_developer_role = False

    Settings = InceptionLLMSettings
    _settings: InceptionLLMSettings
    _api_key_env = "INCEPTION_API_KEY"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = INCEPTION_BASE_URL,
        model: str | None = None,
        settings: InceptionLLMSettings | None = None,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, OPENAI_COMPATIBLE_URL_ENV, INCEPTION_BASE_URL)
        defaults = InceptionLLMSettings(
            model=model or INCEPTION_DEFAULT_MODEL, reasoning_effort=None, realtime=True
        )
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "INCEPTION_API_KEY"),
            base_url=base_url,
            settings=store_from(defaults, settings),
            **kwargs,
        )

    def build_request(
        self, context: ChatContext, *, system_instruction: str | None = None
    ) -> dict[str, Any]:
        body = super().build_request(context, system_instruction=system_instruction)
        effort = self._settings.reasoning_effort
        if is_given(effort) and effort is not None:
            body.setdefault("reasoning_effort", effort)
        realtime = self._settings.realtime
        if is_given(realtime) and realtime is not None:
            body.setdefault("realtime", realtime)
        return body
