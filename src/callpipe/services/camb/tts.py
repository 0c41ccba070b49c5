"""CambTTSService: Camb.ai's MARS voices, one streamed ``POST /tts-stream`` per sentence.

The request, as Camb documents it (https://docs.camb.ai/api-reference/endpoint/create-tts-stream)
and its official SDK (``camb-sdk``, ``text_to_speech.tts``) sends it: ``POST
https://client.camb.ai/apis/tts-stream`` with the key in an ``x-api-key`` header and a JSON body
of ``text`` (at most 3000 characters: longer text is cut, with a warning, as in Pipecat),
``language`` (a lower-case BCP 47 locale such as ``en-us``), ``voice_id`` (an integer),
``speech_model`` and, for ``mars-instruct`` only, ``user_instructions``;
``output_configuration`` asks for ``{"format": "pcm_s16le"}``, the raw 16-bit PCM Camb
recommends for streaming. The answer is the audio as it is generated, at the model's own rate
(22050 Hz for ``mars-flash`` and ``mars-instruct``, 48000 Hz for ``mars-pro``), played as it
streams in and resampled to the call's rate.

Settings updates apply from the next sentence; an interruption closes the response in flight.
A refused key (401/403) is fatal; a 422 (a locale the model does not take, text too short) is
a non-fatal error and the sentence is skipped.

Differences from Pipecat 1.14: audio is labelled with the model's rate and resampled to the
call's (Pipecat labels it with ``sample_rate`` when one is given, which only matches the audio
at the model's rate); the request goes through callpipe's pooled HTTP client, not the SDK.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from callpipe.frames.frames import StartFrame
from callpipe.services._env import CAMB_URL_ENV, defaulted_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

CAMB_API_URL = "https://client.camb.ai/apis"
"""The base of Camb's API (the SDK's default environment)."""
STREAM_PATH = "/tts-stream"
DEFAULT_MODEL = "mars-flash"
DEFAULT_VOICE = 147320
DEFAULT_LANGUAGE = "en-us"
MAX_TEXT = 3000
MODEL_SAMPLE_RATES: dict[str, int] = {
    "mars-flash": 22050,
    "mars-pro": 48000,
    "mars-instruct": 22050,
}
"""The rate of each model's PCM (others: 22050 Hz)."""
_LOCALES = {
    "en": "en-us",
    "en-US": "en-us",
    "en-GB": "en-gb",
    "en-AU": "en-au",
    "es": "es-es",
    "es-ES": "es-es",
    "es-MX": "es-mx",
    "fr": "fr-fr",
    "fr-FR": "fr-fr",
    "fr-CA": "fr-ca",
    "de": "de-de",
    "de-DE": "de-de",
    "it": "it-it",
    "pt": "pt-pt",
    "pt-BR": "pt-br",
    "pt-PT": "pt-pt",
    "nl": "nl-nl",
    "pl": "pl-pl",
    "ru": "ru-ru",
    "ja": "ja-jp",
    "ko": "ko-kr",
    "zh": "zh-cn",
    "zh-CN": "zh-cn",
    "zh-TW": "zh-tw",
    "ar": "ar-sa",
    "hi": "hi-in",
    "tr": "tr-tr",
    "vi": "vi-vn",
    "th": "th-th",
    "id": "id-id",
    "ms": "ms-my",
    "sv": "sv-se",
    "da": "da-dk",
    "no": "no-no",
    "fi": "fi-fi",
    "cs": "cs-cz",
    "el": "el-gr",
    "he": "he-il",
    "hu": "hu-hu",
    "ro": "ro-ro",
    "sk": "sk-sk",
    "uk": "uk-ua",
    "bg": "bg-bg",
    "hr": "hr-hr",
    "sr": "sr-rs",
    "sl": "sl-si",
    "ca": "ca-es",
    "eu": "eu-es",
    "gl": "gl-es",
    "af": "af-za",
    "sw": "sw-ke",
    "ta": "ta-in",
    "te": "te-in",
    "bn": "bn-in",
    "mr": "mr-in",
    "gu": "gu-in",
    "kn": "kn-in",
    "ml": "ml-in",
    "pa": "pa-in",
    "ur": "ur-pk",
    "fa": "fa-ir",
    "tl": "tl-ph",
}
_LOCALES |= {locale: locale for locale in _LOCALES.values()}


def language_to_camb_language(language: str) -> str:
    """Camb's locale for a language tag: ``Language.ES_MX`` -> ``"es-mx"``, ``"en"`` ->
    ``"en-us"``. A language Camb's list lacks goes as its base code, logged at WARNING."""
    return resolve_language(language, _LOCALES, use_base_code=True)


@dataclass
class CambTTSSettings(TTSSettings):
    """``CambTTSService.Settings``: model (``speech_model``), voice (Camb's integer voice id),
    language, and ``user_instructions`` (sent to ``mars-instruct`` only; at most 1000
    characters)."""

    voice: int | NotGiven = field(default_factory=unset)  # type: ignore[assignment]
    user_instructions: str | None | NotGiven = field(default_factory=unset)


class CambTTSService(HTTPStreamTTSService):
    """Camb.ai MARS speech over ``POST /tts-stream`` (see the module docstring).

    1.14 style: ``CambTTSService(api_key=..., settings=CambTTSService.Settings(voice=147320,
    model="mars-flash"))``. ``voice_id``, ``model`` and ``params`` are the older forms
    (``settings`` wins). ``timeout``: the read timeout in seconds (Camb recommends 60).
    ``base_url``: the API's base (Camb's, ``https://client.camb.ai/apis``; left at it,
    ``$CALLPIPE_CAMB_URL`` may replace it).
    """

    Settings = CambTTSSettings
    _settings: CambTTSSettings
    key_hint = "Check api_key / CAMB_API_KEY."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (``settings=`` replaces it)."""

        model_config = ConfigDict(extra="forbid")

        language: str | None = "en"
        user_instructions: str | None = Field(default=None, max_length=1000)

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: int | None = None,
        model: str | None = None,
        timeout: float = 60.0,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: CambTTSSettings | None = None,
        base_url: str = CAMB_API_URL,
        **kwargs: Any,
    ) -> None:
        store = CambTTSSettings(
            model=model or DEFAULT_MODEL,
            voice=voice_id if voice_id is not None else DEFAULT_VOICE,
            language=DEFAULT_LANGUAGE,
            user_instructions=None,
        )
        if params is not None and settings is None:
            if params.language is not None:
                store.language = params.language
            if params.user_instructions is not None:
                store.user_instructions = params.user_instructions
        if settings is not None:
            store.apply_update(settings)
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "CAMB_API_KEY")
        api = defaulted_base_url(base_url, CAMB_URL_ENV, CAMB_API_URL)
        self.configure_http(api, {"x-api-key": self._api_key}, timeout_secs=timeout)

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_camb_language(language)

    @property
    def model_sample_rate(self) -> int:
        """The rate of the PCM the current model streams."""
        return MODEL_SAMPLE_RATES.get(str(self._settings.model), 22050)

    async def start(self, frame: StartFrame) -> None:
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/tts-stream`` body for ``text`` with the current settings."""
        s = self._settings
        if len(text) > MAX_TEXT:
            logger.warning("%s: text over %d characters; cutting it", self, MAX_TEXT)
            text = text[:MAX_TEXT]
        language = s.language if isinstance(s.language, str) else DEFAULT_LANGUAGE
        body: dict[str, Any] = {
            "text": text,
            "language": language_to_camb_language(language),
            "voice_id": s.voice,
            "speech_model": s.model,
            "output_configuration": {"format": "pcm_s16le"},
        }
        if s.model == "mars-instruct" and isinstance(s.user_instructions, str):
            body["user_instructions"] = s.user_instructions
        return body

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, STREAM_PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        rate = self.model_sample_rate
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, chunk, rate)
