"""AWSPollyTTSService: Amazon Polly's ``SynthesizeSpeech``, one signed REST request per sentence.

The request (https://docs.aws.amazon.com/polly/latest/dg/API_SynthesizeSpeech.html, and the
``polly`` model botocore ships) is ``POST /v1/speech`` to ``https://polly.{region}.amazonaws.com``
with a JSON body of ``Text``, ``TextType``, ``VoiceId``, ``OutputFormat``, ``SampleRate`` (a
string), and ``Engine`` and ``LexiconNames`` when set. It is signed with AWS Signature Version 4
by botocore (service ``polly``; see :mod:`callpipe.services.aws.utils` for where the keys come
from). The answer's body is the audio itself, played as it streams in.

- Audio: ``pcm`` (16-bit mono) at 8000 Hz on a phone call, at 16000 Hz otherwise (the two rates
  Polly serves PCM at); a pipeline at another rate gets the 16 kHz audio resampled.
- Text: sent as SSML, ``<speak><lang xml:lang="...">`` around the escaped sentence, with a
  ``<prosody>`` of the ``rate``, ``volume`` and (with the ``standard`` engine only, the one that
  takes it) ``pitch`` settings when any is set.
- Errors, as AWS answers them (a JSON body with a ``message`` and the code in the
  ``x-amzn-ErrorType`` header): a 403 (``UnrecognizedClientException``,
  ``InvalidSignatureException``, ``AccessDeniedException``) refuses the keys: a fatal error, the
  call ends. Throttling (a 400 whose code is ``ThrottlingException``, as Polly documents it in
  https://docs.aws.amazon.com/polly/latest/dg/limits.html, or a 429) and a 5xx
  (``ServiceFailureException``) are retried once. Other 4xx
  (``InvalidSsmlException``, ``TextLengthExceededException``, ``EngineNotSupportedException``,
  ...) are reported as a non-fatal error and the sentence is skipped.

Settings changes (``TTSUpdateSettingsFrame``) apply from the next sentence. Where this differs
from Pipecat 1.14: Pipecat asks for 16 kHz always and sends the audio once the whole answer is
in; here it plays as it comes, at the line's rate when Polly has it. ``base_url`` (and
``$CALLPIPE_AWS_POLLY_URL``, which ``callpipe fakes`` prints) replace Polly's address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.frames.frames import StartFrame
from callpipe.services._env import AWS_POLLY_URL_ENV, base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.aws.utils import SigV4Signer, resolve_credentials
from callpipe.services.settings import TTSSettings, unset
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

PATH = "/v1/speech"
SERVICE = "polly"
DEFAULT_VOICE = "Joanna"
DEFAULT_LANGUAGE = "en-US"
PCM_RATES = (8000, 16000)
"""The rates Polly serves ``pcm`` at (16000 is its default)."""

_LANGUAGE_MAP = {
    "ar": "arb",
    "ca": "ca-ES",
    "cs": "cs-CZ",
    "cy": "cy-GB",
    "da": "da-DK",
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fi": "fi-FI",
    "fr": "fr-FR",
    "hi": "hi-IN",
    "is": "is-IS",
    "it": "it-IT",
    "ja": "ja-JP",
    "ko": "ko-KR",
    "nb": "nb-NO",
    "nl": "nl-NL",
    "no": "nb-NO",
    "pl": "pl-PL",
    "pt": "pt-PT",
    "ro": "ro-RO",
    "ru": "ru-RU",
    "sv": "sv-SE",
    "tr": "tr-TR",
    "yue": "yue-CN",
    "zh": "cmn-CN",
}
"""Polly's code for a bare language; a tag with a region (``en-GB``) is Polly's code as it is."""
_POLLY_CODES = (
    "arb ar-AE ca-ES cmn-CN cs-CZ cy-GB da-DK de-AT de-CH de-DE en-AU en-GB en-GB-WLS en-IE "
    "en-IN en-NZ en-SG en-US en-ZA es-ES es-MX es-US fi-FI fr-BE fr-CA fr-FR hi-IN is-IS it-IT "
    "ja-JP ko-KR nb-NO nl-BE nl-NL pl-PL pt-BR pt-PT ro-RO ru-RU sv-SE tr-TR yue-CN"
).split()
"""Polly's ``LanguageCode`` values (as listed in its API model)."""
_LANGUAGE_MAP |= {code: code for code in _POLLY_CODES} | {"no-NO": "nb-NO", "zh-CN": "cmn-CN"}


def language_to_aws_language(language: str) -> str:
    """Polly's language code for a language tag: ``Language.EN`` -> ``"en-US"``,
    ``Language.EN_GB`` -> ``"en-GB"`` (a tag Polly does not list passes through, logged)."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=False)


@dataclass
class AWSPollyTTSSettings(TTSSettings):
    """``AWSPollyTTSService.Settings``: ``voice`` (Polly's ``VoiceId``), ``language`` (the SSML
    ``<lang>``), ``engine`` (``standard``, ``neural``, ``long-form``, ``generative``; None:
    Polly's default, standard), ``pitch``, ``rate`` and ``volume`` (SSML ``<prosody>`` values
    such as ``"+10%"``, ``"slow"``, ``"loud"``; ``pitch`` only with ``standard``) and
    ``lexicon_names`` (pronunciation lexicons stored in the account)."""

    engine: str | None | NotGiven = field(default_factory=unset)
    pitch: str | None | NotGiven = field(default_factory=unset)
    rate: str | None | NotGiven = field(default_factory=unset)
    volume: str | None | NotGiven = field(default_factory=unset)
    lexicon_names: list[str] | None | NotGiven = field(default_factory=unset)


class AWSPollyTTSService(HTTPStreamTTSService):
    """Amazon Polly (see the module docstring).

    1.14 style: ``AWSPollyTTSService(region="eu-west-1",
    settings=AWSPollyTTSService.Settings(voice="Joanna", engine="neural"))``. ``api_key`` is the
    secret access key and ``aws_access_key_id`` its id (else ``AWS_SECRET_ACCESS_KEY`` /
    ``AWS_ACCESS_KEY_ID``, else botocore's default chain); ``aws_session_token`` for temporary
    keys; ``region`` (else ``AWS_REGION``, else ``us-east-1``). ``voice_id`` and ``params`` are
    the older forms (``settings`` wins over ``params``, as in Pipecat).
    """

    Settings = AWSPollyTTSSettings
    _settings: AWSPollyTTSSettings
    key_hint = (
        "Check aws_access_key_id / api_key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), "
        "the session token and the region."
    )

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (``settings=`` replaces it)."""

        model_config = ConfigDict(extra="forbid")

        engine: str | None = None
        language: str | None = "en"
        pitch: str | None = None
        rate: str | None = None
        volume: str | None = None
        lexicon_names: list[str] | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        aws_access_key_id: str | None = None,
        aws_session_token: str | None = None,
        region: str | None = None,
        voice_id: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: AWSPollyTTSSettings | None = None,
        base_url: str | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate=sample_rate, **kwargs)
        store = AWSPollyTTSSettings(
            model=None,
            voice=voice_id or DEFAULT_VOICE,
            language=DEFAULT_LANGUAGE,
            engine=None,
            pitch=None,
            rate=None,
            volume=None,
            lexicon_names=None,
        )
        if params is not None and settings is None:
            store.apply_update(
                AWSPollyTTSSettings(
                    engine=params.engine,
                    language=params.language or DEFAULT_LANGUAGE,
                    pitch=params.pitch,
                    rate=params.rate,
                    volume=params.volume,
                    lexicon_names=params.lexicon_names,
                )
            )
        if settings is not None:
            store.apply_update(settings)
        self._settings.apply_update(store)
        credentials = resolve_credentials(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=api_key,
            aws_session_token=aws_session_token,
            region=region,
        )
        self._signer = SigV4Signer(SERVICE, credentials)
        self.region = credentials.region
        default = f"https://polly.{credentials.region}.amazonaws.com"
        self.configure_http(_base_url(base_url, default), {}, timeout_secs=timeout_secs)

    def retryable(self, response: httpx.Response, body: bytes) -> bool:
        error_type = response.headers.get("x-amzn-ErrorType", "")
        return super().retryable(response, body) or error_type.startswith("ThrottlingException")

    def language_to_service_language(self, language: str) -> str | None:
        """Polly's code for ``language`` (see :func:`language_to_aws_language`)."""
        return language_to_aws_language(language)

    @property
    def polly_sample_rate(self) -> int:
        """The rate asked of Polly: the call's when Polly serves it, else 16000."""
        return self.sample_rate if self.sample_rate in PCM_RATES else 16000

    async def start(self, frame: StartFrame) -> None:
        await self._signer.ensure_credentials()
        self._http()

    def _http(self) -> httpx.AsyncClient:
        client = super()._http()
        client.auth = self._signer
        return client

    def ssml(self, text: str) -> str:
        """``text`` as the SSML document sent for it (see the module docstring)."""
        s = self._settings
        prosody = {
            "pitch": s.pitch if s.engine == "standard" else None,
            "rate": s.rate,
            "volume": s.volume,
        }
        attrs = "".join(
            f" {name}={quoteattr(value)}"
            for name, value in prosody.items()
            if isinstance(value, str) and value
        )
        body = escape(text)
        if attrs:
            body = f"<prosody{attrs}>{body}</prosody>"
        language = s.language
        if isinstance(language, str) and language:
            lang = quoteattr(language_to_aws_language(language))
            body = f"<lang xml:lang={lang}>{body}</lang>"
        return f"<speak>{body}</speak>"

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``SynthesizeSpeech`` body for ``text`` with the current settings."""
        s = self._settings
        body: dict[str, Any] = {
            "Text": self.ssml(text),
            "TextType": "ssml",
            "OutputFormat": "pcm",
            "VoiceId": s.voice,
            "SampleRate": str(self.polly_sample_rate),
            "Engine": s.engine,
            "LexiconNames": s.lexicon_names or None,
        }
        return {k: v for k, v in body.items() if v is not None and is_given(v)}

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        rate = self.polly_sample_rate
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, chunk, rate)


def _base_url(given: str | None, default: str) -> str:
    return base_url(given, AWS_POLLY_URL_ENV, default)
