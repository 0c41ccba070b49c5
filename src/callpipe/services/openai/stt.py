"""OpenAISTTService: ``POST /audio/transcriptions`` for each VAD-bounded utterance.

When the caller stops speaking the utterance (with a short pre-roll) is sent as a WAV file in a
multipart form (``file``, ``model``, optional ``language``, ``prompt``, ``temperature`` and
``keywords[]``); the JSON answer's ``text`` becomes one ``TranscriptionFrame``. Works with
OpenAI-compatible servers (e.g. Groq, a local whisper server) through ``base_url``.

Model, language, prompt, temperature and keywords come from
``settings=OpenAISTTService.Settings(...)`` (Pipecat 1.14) or the older arguments; an
``STTUpdateSettingsFrame`` changes them from the next utterance. The language is sent as the
ISO 639-1 code the API takes (``en-US`` -> ``en``, ``nb`` -> ``no``, ``fil`` -> ``tl``); one
OpenAI does not list as supported is sent as its base code, with one warning when it is set.

The parsed JSON answer is the ``TranscriptionFrame``'s ``result`` (a dict, where Pipecat
carries the SDK's ``Transcription`` object). With ``include_prob_metrics`` it holds the
probabilities too, asked for as Pipecat asks: ``include[]=logprobs`` (per-token ``logprobs``)
for the GPT transcription models, ``response_format=verbose_json`` (``avg_logprob`` per
segment) for Whisper models; diarization models have none (a warning, once per model). An
empty transcription is dropped unless ``push_empty_transcripts``: then it is pushed as an empty
``TranscriptionFrame``, so a processor can tell that VAD heard speech the API did not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from callpipe.frames.frames import StartFrame
from callpipe.services.openai._client import OpenAIHTTPMixin
from callpipe.services.settings import STTSettings, store_from, unset
from callpipe.services.stt_service import SegmentedSTTService
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

OPENAI_TTFS_P99 = 2.01
"""Pipecat 1.14's default ``ttfs_p99_latency`` for OpenAI transcription (seconds)."""

OPENAI_STT_LANGUAGES = (
    "af ar hy az be bs bg ca zh hr cs da nl en et fi fr gl de el he hi hu is id it ja kn kk ko "
    "lv lt mk ms mr mi ne no fa pl pt ro ru sr sk sl es sw sv tl ta th tr uk ur vi cy"
).split()
"""The languages OpenAI's speech-to-text guide lists as supported (ISO 639-1 codes)."""
LANGUAGE_ALIASES = {"nb": "no", "fil": "tl", "cmn": "zh"}
"""Tags whose Whisper-style code is not their base code (Bokmål, Filipino, Mandarin)."""
_LANGUAGE_MAP = {code: code for code in OPENAI_STT_LANGUAGES} | LANGUAGE_ALIASES


def language_to_openai_language(language: str) -> str:
    """The ISO 639-1 code the transcription API takes: ``Language.PT_BR`` -> ``"pt"``.

    A language OpenAI does not list goes as its base code, logged once at WARNING.
    """
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class OpenAISTTSettings(STTSettings):
    """``OpenAISTTService.Settings``: model and language, plus ``prompt`` (style or context to
    continue), ``temperature`` (0 to 1) and ``keywords`` (words and phrases to recognize, for
    the models that take them)."""

    prompt: str | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)
    keywords: list[str] | None | NotGiven = field(default_factory=unset)


class OpenAISTTService(OpenAIHTTPMixin, SegmentedSTTService):
    """Segmented OpenAI transcription (see the module docstring).

    ``http_client``: the user's own async HTTP client (kept open; see
    :mod:`callpipe.services.openai._client`).
    """

    Settings = OpenAISTTSettings
    _settings: OpenAISTTSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        language: str | None = "en",
        prompt: str | None = None,
        temperature: float | None = None,
        settings: OpenAISTTSettings | None = None,
        organization: str | None = None,
        project: str | None = None,
        include_prob_metrics: bool = False,
        push_empty_transcripts: bool = False,
        ttfs_p99_latency: float | None = OPENAI_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        if settings is not None:
            if isinstance(settings.model, str) and settings.model:
                model = settings.model
            if is_given(settings.language):
                language = settings.language
        super().__init__(
            model=model or "gpt-4o-transcribe",
            language=language,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._init_http(
            api_key, base_url, organization=organization, project=project, http_client=http_client
        )
        defaults = OpenAISTTSettings(
            model=self.model_name,
            language=language,
            prompt=prompt,
            temperature=temperature,
            keywords=None,
        )
        self._settings = store_from(defaults, settings)
        self._service_language = self._to_service_language(self._settings.language)
        """The ``language`` field sent (the API's form of the ``language`` setting)."""
        self._include_prob_metrics = include_prob_metrics
        self._push_empty_transcripts = push_empty_transcripts
        self._no_prob_warned: str | None = None
        """The model last warned about as having no probabilities (warned once per model)."""

    def _to_service_language(self, language: object) -> str | None:
        if not isinstance(language, str) or not language:
            return None
        return self._language_code(language)

    @staticmethod
    def _language_code(language: str) -> str:
        """The API's code for a language tag (a compatible provider overrides it with its own
        list)."""
        return language_to_openai_language(language)

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if "language" in changed:
            self._service_language = self._to_service_language(self._settings.language)

    async def start(self, frame: StartFrame) -> None:
        await self._open_http()

    def _form_fields(self) -> dict[str, str | list[str]]:
        """The multipart form's text fields for the next utterance (the file goes beside them)."""
        settings = self._settings
        data: dict[str, str | list[str]] = {
            "model": self.model_name or "",
            "response_format": "json",
        }
        if self._service_language:
            data["language"] = self._service_language
        if is_given(settings.prompt) and settings.prompt:
            data["prompt"] = settings.prompt
        if is_given(settings.temperature) and settings.temperature is not None:
            data["temperature"] = str(settings.temperature)
        if is_given(settings.keywords) and settings.keywords:
            data["keywords[]"] = list(settings.keywords)  # a list field, as the SDK sends it
        if self._include_prob_metrics:
            self._ask_for_probabilities(data)
        return data

    async def run_stt(self, wav: bytes) -> str | None:
        response = await self._post_utterance(
            self._http(),
            "/audio/transcriptions",
            data=self._form_fields(),
            file=("utterance.wav", wav, "audio/wav"),
            origin=self._base_url,
            auth_hint=f"Check api_key{self._key_env_hint}.",
        )
        if response is not None:
            await self._push_answer(response.json())
        return None

    def _ask_for_probabilities(self, data: dict[str, str | list[str]]) -> None:
        model = self.model_name or ""
        if model.startswith("whisper"):
            data["response_format"] = "verbose_json"
        elif "diarize" in model:
            if self._no_prob_warned != model:
                self._no_prob_warned = model
                logger.warning(
                    "%s: %s reports no probabilities; include_prob_metrics has no effect",
                    self,
                    model,
                )
        else:
            data["include[]"] = ["logprobs"]

    async def _push_answer(self, answer: Any) -> None:
        text = answer.get("text") if isinstance(answer, dict) else None
        text = str(text).strip() if text else ""
        if not text:
            logger.debug("%s: empty transcription", self)
            if not self._push_empty_transcripts:
                return
        await self.push_transcript(text, final=True, result=answer, allow_empty=True)
