"""GroqSTTService: Whisper on Groq, one ``POST /audio/transcriptions`` per VAD-bounded utterance.

Groq's transcription endpoint (``https://api.groq.com/openai/v1/audio/transcriptions``) takes
the same multipart form as OpenAI's, so this is :class:`~callpipe.services.openai.stt.
OpenAISTTService` with Groq's defaults and the few places where Groq differs:

- the key comes from ``api_key=`` or ``GROQ_API_KEY`` (never ``OPENAI_API_KEY``, and no
  ``OpenAI-Organization`` / ``OpenAI-Project`` headers from the OpenAI environment variables);
- the model defaults to ``whisper-large-v3-turbo`` and the language to English;
- the language is sent as one of the codes Groq lists (Whisper's set: ``yue`` for Cantonese,
  ``haw``, ``la`` and the rest); another goes as its base code, with one warning;
- ``include_prob_metrics`` asks for ``response_format=verbose_json`` (``avg_logprob`` per
  segment), whatever the model;
- Groq has no ``keywords`` field: a ``keywords`` setting is not sent (one warning); put such
  words in ``prompt``.

``Settings`` holds ``model``, ``language``, ``prompt`` and ``temperature`` (Pipecat 1.14's
``GroqSTTService.Settings``); an ``STTUpdateSettingsFrame`` changes them from the next utterance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from callpipe.services._env import GROQ_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.stt import LANGUAGE_ALIASES, OpenAISTTService, OpenAISTTSettings
from callpipe.services.settings import store_from
from callpipe.transcriptions.language import resolve_language

logger = logging.getLogger(__name__)

GROQ_BASE_URL = "https://api.groq.com/openai/v1"
GROQ_STT_MODEL = "whisper-large-v3-turbo"
GROQ_TTFS_P99 = 1.54
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Groq transcription (seconds)."""

GROQ_STT_LANGUAGES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no "
    "th ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw "
    "gl mr pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl "
    "mg as tt haw ln ha ba jv su yue"
).split()
"""The ``language`` values Groq's transcription API lists (the ``groq`` SDK's own list)."""
_LANGUAGE_MAP = {code: code for code in GROQ_STT_LANGUAGES} | LANGUAGE_ALIASES


def language_to_groq_language(language: str) -> str:
    """The code Groq's transcription API takes: ``Language.PT_BR`` -> ``"pt"``.

    A language Groq does not list goes as its base code, logged once at WARNING.
    """
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class GroqSTTSettings(OpenAISTTSettings):
    """``GroqSTTService.Settings``: model and language, plus ``prompt`` (style or context to
    continue) and ``temperature`` (0 to 1). ``keywords`` (from the OpenAI settings) is not
    sent: Groq has no such field."""


class GroqSTTService(OpenAISTTService):
    """Segmented Groq Whisper transcription (see the module docstring).

    The model is ``settings.model``, else ``model=`` (the older form), else
    ``whisper-large-v3-turbo``; ``http_client``, ``include_prob_metrics`` and
    ``push_empty_transcripts`` work as for :class:`OpenAISTTService`.
    """

    Settings = GroqSTTSettings
    _settings: GroqSTTSettings
    _api_key_env = "GROQ_API_KEY"

    def __init__(
        self,
        *,
        model: str | None = None,
        api_key: str | None = None,
        base_url: str = GROQ_BASE_URL,
        language: str | None = "en",
        prompt: str | None = None,
        temperature: float | None = None,
        settings: GroqSTTSettings | None = None,
        ttfs_p99_latency: float | None = GROQ_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, GROQ_URL_ENV, GROQ_BASE_URL)
        defaults = GroqSTTSettings(
            model=model or GROQ_STT_MODEL,
            language=language,
            prompt=prompt,
            temperature=temperature,
            keywords=None,
        )
        store = store_from(defaults, settings)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "GROQ_API_KEY"),
            base_url=base_url,
            settings=store,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store  # the base copied it into an OpenAISTTSettings
        self._keywords_warned = False

    @staticmethod
    def _language_code(language: str) -> str:
        return language_to_groq_language(language)

    def _form_fields(self) -> dict[str, str | list[str]]:
        data = super()._form_fields()
        if data.pop("keywords[]", None) and not self._keywords_warned:
            self._keywords_warned = True
            logger.warning("%s: Groq takes no keywords; they are not sent (use prompt)", self)
        return data

    def _ask_for_probabilities(self, data: dict[str, str | list[str]]) -> None:
        data["response_format"] = "verbose_json"
