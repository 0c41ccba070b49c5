"""AzureTTSService and AzureHttpTTSService: Azure Speech synthesis over its REST API.

Pipecat 1.14 drives both through Microsoft's native Speech SDK; callpipe speaks the documented
REST endpoint instead (https://learn.microsoft.com/azure/ai-services/speech-service/rest-text-to-speech),
so nothing native is installed. Each sentence is one ``POST .../cognitiveservices/v1`` with:

- ``Ocp-Apim-Subscription-Key`` (the resource's key), ``Content-Type: application/ssml+xml``,
  ``User-Agent`` and ``X-Microsoft-OutputFormat``: ``raw-8khz-8bit-mono-mulaw`` on a phone call
  (the line's own μ-law, half the bytes, nothing resampled), else ``raw-<rate>-16bit-mono-pcm``
  at the pipeline's rate when Azure serves it (8, 16, 22.05, 24, 44.1 or 48 kHz), else at the
  next rate up (resampled once, per reply);
- an SSML body built as Pipecat builds it: ``<speak>`` in the settings' locale, ``<voice>``
  (with ``effect`` and ``parameters`` when set), a 20 ms sentence-boundary silence, optionally
  ``<lang>`` (``force_locale``), ``<mstts:express-as>`` (``style``, ``styledegree``, ``role``),
  ``<prosody>`` (``rate``, ``pitch``, ``volume``) and ``<emphasis>``; the text and every
  attribute XML-escaped.

The answer's body is the raw audio, streamed as Azure makes it: it is played as it comes.
A 401/403 is a refused key (fatal); a 429 or 5xx before any audio is retried once
(:class:`~callpipe.services._http_tts.HTTPStreamTTSService`). Settings updates apply from the
next sentence.

The two classes differ only in name (Pipecat's two SDK paths): over REST neither gets word
boundaries, so each sentence's ``TTSTextFrame`` follows its audio, where Pipecat's
``AzureTTSService`` sends words as Azure reports them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.azure.common import (
    API_KEY_ENV,
    TTS_PATH,
    language_to_azure_language,
    speech_origin,
)
from callpipe.services.settings import TTSSettings, unset
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

DEFAULT_VOICE = "en-US-SaraNeural"
PCM_RATES = {
    8000: "raw-8khz-16bit-mono-pcm",
    16000: "raw-16khz-16bit-mono-pcm",
    22050: "raw-22050hz-16bit-mono-pcm",
    24000: "raw-24khz-16bit-mono-pcm",
    44100: "raw-44100hz-16bit-mono-pcm",
    48000: "raw-48khz-16bit-mono-pcm",
}
"""Azure's raw 16-bit PCM output formats by sample rate."""
MULAW_8K = "raw-8khz-8bit-mono-mulaw"
USER_AGENT = "callpipe"

_TEXT_ENTITIES = {'"': "&quot;", "'": "&apos;"}


def output_format(sample_rate: int) -> tuple[str, int]:
    """The ``X-Microsoft-OutputFormat`` for a pipeline rate, and the rate Azure sends at."""
    if sample_rate == 8000:
        return MULAW_8K, 8000
    served = min((r for r in PCM_RATES if r >= sample_rate), default=48000)
    return PCM_RATES[served], served


@dataclass
class AzureTTSSettings(TTSSettings):
    """``AzureTTSService.Settings`` / ``AzureHttpTTSService.Settings``: the voice, its locale
    (``language``) and the SSML options (each left out of the SSML when None):

    ``effect`` (``<voice effect>``, e.g. ``"eq_telecomhp8k"`` for phone lines),
    ``voice_parameters`` (``<voice parameters>`` of HD voices), ``force_locale`` (wrap the
    text in ``<lang xml:lang>``), ``style``, ``style_degree`` and ``role``
    (``<mstts:express-as>``, only with a style), ``rate``, ``pitch`` and ``volume``
    (``<prosody>``), ``emphasis`` (``<emphasis level>``).
    """

    effect: str | None | NotGiven = field(default_factory=unset)
    emphasis: str | None | NotGiven = field(default_factory=unset)
    force_locale: bool | NotGiven = field(default_factory=unset)
    pitch: str | None | NotGiven = field(default_factory=unset)
    rate: str | None | NotGiven = field(default_factory=unset)
    role: str | None | NotGiven = field(default_factory=unset)
    style: str | None | NotGiven = field(default_factory=unset)
    style_degree: str | None | NotGiven = field(default_factory=unset)
    voice_parameters: str | None | NotGiven = field(default_factory=unset)
    volume: str | None | NotGiven = field(default_factory=unset)


def _opt(value: object) -> str | None:
    """A set, non-empty option as text (None: leave it out)."""
    if not is_given(value) or value is None or value == "":
        return None
    return str(value)


class AzureBaseTTSService(HTTPStreamTTSService):
    """What both Azure TTS services are (see the module docstring)."""

    Settings = AzureTTSSettings
    _settings: AzureTTSSettings
    key_hint = f"Check api_key / {API_KEY_ENV}."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (``settings=`` replaces it)."""

        model_config = ConfigDict(extra="forbid")

        emphasis: str | None = None
        language: str | None = "en-US"
        pitch: str | None = None
        rate: str | None = None
        role: str | None = None
        style: str | None = None
        style_degree: str | None = None
        volume: str | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        region: str | None = None,
        private_endpoint: str | None = None,
        voice: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: AzureTTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate=sample_rate, **kwargs)
        name = type(self).__name__
        self._api_key = resolve_api_key(name, api_key, API_KEY_ENV)
        if region and private_endpoint:
            logger.warning("%s: both region and private_endpoint given; region is ignored", name)
        self._origin, prefix = speech_origin(name, "tts", region, private_endpoint)
        self._path = prefix + TTS_PATH
        store = AzureTTSSettings(
            voice=voice or DEFAULT_VOICE,
            language="en-US",
            effect=None,
            emphasis=None,
            force_locale=False,
            pitch=None,
            rate=None,
            role=None,
            style=None,
            style_degree=None,
            voice_parameters=None,
            volume=None,
        )
        if params is not None and settings is None:
            store.apply_update(
                AzureTTSSettings(
                    language=params.language or "en-US",
                    emphasis=params.emphasis,
                    pitch=params.pitch,
                    rate=params.rate,
                    role=params.role,
                    style=params.style,
                    style_degree=params.style_degree,
                    volume=params.volume,
                )
            )
        if settings is not None:
            store.apply_update(settings)
        self._settings.apply_update(store)
        self._timeout = timeout_secs
        self._served_rate = 0
        self._configure()

    @property
    def output_format(self) -> str:
        """The ``X-Microsoft-OutputFormat`` asked for at the current output rate."""
        return output_format(self.sample_rate)[0]

    def _configure(self) -> None:
        fmt, self._served_rate = output_format(self.sample_rate)
        headers = {
            "Ocp-Apim-Subscription-Key": self._api_key,
            "Content-Type": "application/ssml+xml",
            "X-Microsoft-OutputFormat": fmt,
            "User-Agent": USER_AGENT,
        }
        self.configure_http(self._origin, headers, timeout_secs=self._timeout)

    def language_to_service_language(self, language: str) -> str | None:
        """Azure's locale for ``language`` (see :func:`language_to_azure_language`)."""
        return language_to_azure_language(language)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Azure cannot produce {self.sample_rate} Hz audio")
        await self.disconnect()  # the output rate is known now: the format follows it
        self._configure()
        self._http()

    def ssml(self, text: str) -> str:
        """The SSML document for ``text`` with the current settings."""
        s = self._settings
        language = s.language if isinstance(s.language, str) and s.language else "en-US"
        locale = quoteattr(language_to_azure_language(language))
        voice = f"name={quoteattr(str(s.voice))}"
        if effect := _opt(s.effect):
            voice += f" effect={quoteattr(effect)}"
        if parameters := _opt(s.voice_parameters):
            voice += f" parameters={quoteattr(parameters)}"
        opening = [
            f"<speak version='1.0' xml:lang={locale} "
            "xmlns='http://www.w3.org/2001/10/synthesis' "
            "xmlns:mstts='http://www.w3.org/2001/mstts'>",
            f"<voice {voice}>",
            "<mstts:silence type='Sentenceboundary' value='20ms'/>",
        ]
        closing = ["</speak>", "</voice>"]
        if s.force_locale is True:
            opening.append(f"<lang xml:lang={locale}>")
            closing.append("</lang>")
        if style := _opt(s.style):
            express = f"<mstts:express-as style={quoteattr(style)}"
            if degree := _opt(s.style_degree):
                express += f" styledegree={quoteattr(degree)}"
            if role := _opt(s.role):
                express += f" role={quoteattr(role)}"
            opening.append(express + ">")
            closing.append("</mstts:express-as>")
        prosody = [
            f"{name}={quoteattr(value)}"
            for name, value in (
                ("rate", _opt(s.rate)),
                ("pitch", _opt(s.pitch)),
                ("volume", _opt(s.volume)),
            )
            if value is not None
        ]
        if prosody:
            opening.append(f"<prosody {' '.join(prosody)}>")
            closing.append("</prosody>")
        if emphasis := _opt(s.emphasis):
            opening.append(f"<emphasis level={quoteattr(emphasis)}>")
            closing.append("</emphasis>")
        body = escape(text, _TEXT_ENTITIES)
        return "".join(opening) + body + "".join(reversed(closing))

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, self._path, self.ssml(text).encode(), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        ulaw = self.output_format == MULAW_8K
        rate = self._served_rate
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, ulaw_to_pcm(chunk) if ulaw else chunk, rate)


class AzureHttpTTSService(AzureBaseTTSService):
    """Azure TTS, one streamed REST request per sentence (see the module docstring).

    ``api_key`` (else ``$AZURE_SPEECH_API_KEY``), ``region`` (else ``$AZURE_SPEECH_REGION``)
    or ``private_endpoint`` (a custom-domain origin, which wins over ``region``;
    ``$CALLPIPE_AZURE_SPEECH_URL`` stands for one). ``voice`` and ``params`` are Pipecat's
    older forms of ``settings=``.
    """


class AzureTTSService(AzureBaseTTSService):
    """Pipecat's streaming Azure TTS, here the same REST requests as
    :class:`AzureHttpTTSService`: audio streams as it comes, but without word boundaries each
    sentence's text follows its audio (see the module docstring)."""
