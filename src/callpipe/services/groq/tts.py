"""GroqTTSService: Groq's ``POST /audio/speech`` (Orpheus voices), WAV streamed and played.

Groq's speech endpoint (``https://api.groq.com/openai/v1/audio/speech``) takes OpenAI's JSON
body, so this is :class:`~callpipe.services.openai.tts.OpenAITTSService` with Groq's defaults
and the places where Groq differs:

- the key comes from ``api_key=`` or ``GROQ_API_KEY`` (never ``OPENAI_API_KEY``);
- the model defaults to ``canopylabs/orpheus-v1-english`` and the voice to ``autumn``
  (``canopylabs/orpheus-arabic-saudi`` has its own voices, e.g. ``fahad``);
- Groq has no raw PCM format: the body is a WAV file (``response_format="wav"``). Its header is
  read as it streams, and the samples after it are played at the rate the header states
  (resampled once per sentence only if that is not the line's rate). The request asks for the
  line's rate (``sample_rate``, one of 8000, 16000, 22050, 24000, 32000, 44100, 48000 Hz), so on
  those rates no resampling happens; at another rate Groq's default rate is resampled;
- ``speed`` is always sent (1.0 by default, as Pipecat sends it); there is no ``instructions``
  field (an ``instructions`` setting is not sent, with one warning): Orpheus takes vocal
  directions in brackets inside the text instead, e.g. ``[cheerful]``.

``Settings`` holds ``model``, ``voice``, ``language`` and ``speed`` (Pipecat 1.14's
``GroqTTSService.Settings``; the language is not sent, the model speaks its own); the older
``model_name=``, ``voice_id=`` and ``params=GroqTTSService.InputParams(language, speed)`` still
work (``params`` only when no ``settings`` is given, as in Pipecat). A
``TTSUpdateSettingsFrame`` changes them from the next sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.wav import WavStreamReader
from callpipe.errors import ConfigurationError, ProtocolError
from callpipe.services._env import GROQ_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.tts import OpenAITTSService, OpenAITTSSettings
from callpipe.services.settings import store_from

logger = logging.getLogger(__name__)

GROQ_BASE_URL = "https://api.groq.com/openai/v1"
GROQ_TTS_MODEL = "canopylabs/orpheus-v1-english"
GROQ_TTS_VOICE = "autumn"
GROQ_TTS_SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""The ``sample_rate`` values Groq's speech endpoint takes."""


@dataclass
class GroqTTSSettings(OpenAITTSSettings):
    """``GroqTTSService.Settings``: model, voice and language, plus ``speed`` (a multiplier,
    1.0 by default). ``instructions`` (from the OpenAI settings) is not sent: Groq has no such
    field."""


class GroqTTSInputParams(BaseModel):
    """The older (pre-``Settings``) way to give ``language`` and ``speed``."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = "en"
    speed: float | None = 1.0


class GroqTTSService(OpenAITTSService):
    """Groq text-to-speech over HTTP streaming (see the module docstring).

    ``output_format`` must be ``"wav"`` (Pipecat's default and the only format played here:
    the others are compressed or headerless). ``sample_rate`` is the output rate (None: the
    pipeline's).
    """

    Settings = GroqTTSSettings
    _settings: GroqTTSSettings
    _api_key_env = "GROQ_API_KEY"
    InputParams = GroqTTSInputParams  # type: ignore[assignment]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        output_format: str = "wav",
        params: GroqTTSInputParams | None = None,
        model_name: str | None = None,
        voice_id: str | None = None,
        sample_rate: int | None = None,
        settings: GroqTTSSettings | None = None,
        base_url: str = GROQ_BASE_URL,
        **kwargs: Any,
    ) -> None:
        base_url = defaulted_base_url(base_url, GROQ_URL_ENV, GROQ_BASE_URL)
        if output_format != "wav":
            raise ConfigurationError(
                f"GroqTTSService: output_format {output_format!r} is not supported; use 'wav'"
            )
        defaults = GroqTTSSettings(
            model=model_name or GROQ_TTS_MODEL,
            voice=voice_id or GROQ_TTS_VOICE,
            language="en",
            instructions=None,
            speed=1.0,
        )
        if params is not None and settings is None:
            defaults.language = params.language or "en"
            defaults.speed = params.speed
        store = store_from(defaults, settings)
        super().__init__(
            api_key=resolve_api_key(type(self).__name__, api_key, "GROQ_API_KEY"),
            base_url=base_url,
            sample_rate=sample_rate,
            settings=store,
            **kwargs,
        )
        self._settings = store  # the base copied it into an OpenAITTSSettings
        self._instructions_warned = False

    def _speech_body(self, text: str) -> dict[str, Any]:
        settings = self._settings
        body: dict[str, Any] = {
            "model": self.model_name,
            "input": text,
            "voice": settings.voice if isinstance(settings.voice, str) else GROQ_TTS_VOICE,
            "response_format": "wav",
            "speed": settings.speed if isinstance(settings.speed, float | int) else 1.0,
        }
        if self.sample_rate in GROQ_TTS_SAMPLE_RATES:
            body["sample_rate"] = self.sample_rate
        if isinstance(settings.instructions, str) and not self._instructions_warned:
            self._instructions_warned = True
            logger.warning("%s: Groq takes no instructions; they are not sent", self)
        return body

    async def _read_speech(self, response: httpx.Response, context_id: str) -> None:
        wav = WavStreamReader()
        try:
            async for chunk in response.aiter_bytes():
                pcm = wav.feed(chunk)
                if pcm:
                    self._audio_since_request = True
                    await self.append_audio(context_id, pcm, wav.sample_rate)
        except ProtocolError as exc:
            self.sentence_failed(context_id)
            await self.report_error(f"{self}: {exc}", reason="provider")
