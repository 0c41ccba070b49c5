"""GoogleHttpTTSService: Google Cloud Text-to-Speech over REST, a ``text:synthesize`` per sentence.

Each sentence is a ``POST {base_url}/v1/text:synthesize`` through callpipe's pooled HTTP client
(:class:`~callpipe.services._http_tts.HTTPStreamTTSService`: a 429/5xx before any audio is
retried once, a refused key is fatal, an interruption closes the request in flight). The body
is Google's JSON form of ``SynthesizeSpeechRequest``: ``input``, ``voice`` (``languageCode``,
``name``) and ``audioConfig``. The answer holds the sentence's whole audio, base64 in
``audioContent`` (the method does not stream), so a sentence's first audio comes once Google
has made all of it.

Audio is asked for at the pipeline's output rate, so nothing is resampled: on an 8 kHz call as
``MULAW`` (half the bytes of ``LINEAR16`` in an answer that is base64 JSON), else ``LINEAR16``
(``encoding=`` picks one). Google wraps both in a WAV file; its chunks are walked to the
``data`` chunk, so no header byte is ever played, and the rate and format in the header are the
ones used.

Voices, as Pipecat 1.14 treats them: a Chirp or Journey voice (the name contains ``chirp`` or
``journey``) takes plain ``text``, and ``speaking_rate`` goes in ``audioConfig.speakingRate``;
any other voice gets SSML built from the settings (``<voice>`` with its name, language and
``gender``, ``<prosody>`` with ``pitch``, ``rate`` and ``volume``, ``<emphasis>``,
``<google:style>``), the text XML-escaped. ``TTSUpdateSettingsFrame`` changes apply from the
next sentence; a ``speaking_rate`` outside 0.25 to 2.0 is refused with a warning.

Credentials, first found wins:

1. ``api_key=`` (sent as ``X-Goog-Api-Key``);
2. ``credentials=`` (a service account's JSON) or ``credentials_path=`` (its file);
3. Application Default Credentials when ``$GOOGLE_APPLICATION_CREDENTIALS`` is set;
4. ``$GOOGLE_API_KEY``;
5. other Application Default Credentials (gcloud's, a cloud machine's).

An API key needs nothing beyond callpipe's core install. The others need ``google-auth``
(``pip install 'callpipe[google]'``): it signs the service account's token request, run in a
thread at start and again shortly before the token expires, and the token goes as
``Authorization: Bearer``. Google answers a bad key with HTTP 400 ``API_KEY_INVALID``: that is
treated as a refused key (fatal), as are 401 and 403.

The address is ``base_url`` if given, else the regional endpoint of ``location``
(``https://{location}-texttospeech.googleapis.com``), else ``$CALLPIPE_GOOGLE_TTS_URL``, else
``https://texttospeech.googleapis.com``.

Pipecat 1.14's gRPC streaming ``GoogleTTSService``, ``GeminiTTSService`` and their base
``GoogleBaseTTSService`` (with ``GoogleTTSSettings`` and ``GeminiTTSSettings``) are importable
from here too; they live in :mod:`callpipe.services.google._tts_grpc`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from xml.sax.saxutils import escape

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import alaw_to_pcm, ulaw_to_pcm
from callpipe.audio.wav import (
    WAVE_FORMAT_ALAW,
    WAVE_FORMAT_MULAW,
    WAVE_FORMAT_PCM,
    is_wav,
    read_wav,
)
from callpipe.errors import ConfigurationError, MissingDependencyError, ProtocolError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import GOOGLE_TTS_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.google._auth import refresh_token
from callpipe.services.google._tts_grpc import (
    SPEAKING_RATE_RANGE,
    GeminiTTSService,
    GeminiTTSSettings,
    GoogleBaseTTSService,
    GoogleStreamTTSSettings,
    GoogleTTSService,
    GoogleTTSSettings,
    check_speaking_rate,
    drop_bad_speaking_rate,
    language_to_gemini_tts_language,
)
from callpipe.services.settings import TTSSettings, unset
from callpipe.transcriptions.language import Language, resolve_language
from callpipe.utils.types import NotGiven, is_given

if TYPE_CHECKING:
    from google.auth.credentials import Credentials as GoogleCredentials

logger = logging.getLogger(__name__)

GOOGLE_TTS_URL = "https://texttospeech.googleapis.com"
SYNTHESIZE_PATH = "/v1/text:synthesize"
DEFAULT_VOICE = "en-US-Chirp3-HD-Charon"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ENCODINGS = ("auto", "LINEAR16", "MULAW")
_PLAIN_TEXT_VOICES = ("chirp", "journey")
"""Voice name parts of the voices that take no SSML (Chirp, Chirp 3 HD, Journey)."""

# WAV format tags of the audio Google wraps in WAV.

_DEFAULT_REGION = {
    "ar": "ar-XA",
    "bg": "bg-BG",
    "bn": "bn-IN",
    "cs": "cs-CZ",
    "da": "da-DK",
    "de": "de-DE",
    "el": "el-GR",
    "en": "en-US",
    "es": "es-ES",
    "et": "et-EE",
    "fi": "fi-FI",
    "fr": "fr-FR",
    "gu": "gu-IN",
    "he": "he-IL",
    "hi": "hi-IN",
    "hr": "hr-HR",
    "hu": "hu-HU",
    "id": "id-ID",
    "it": "it-IT",
    "ja": "ja-JP",
    "kn": "kn-IN",
    "ko": "ko-KR",
    "lt": "lt-LT",
    "lv": "lv-LV",
    "ml": "ml-IN",
    "mr": "mr-IN",
    "nb": "nb-NO",
    "nl": "nl-NL",
    "no": "nb-NO",
    "pl": "pl-PL",
    "pt": "pt-BR",
    "ro": "ro-RO",
    "ru": "ru-RU",
    "sk": "sk-SK",
    "sl": "sl-SI",
    "sr": "sr-RS",
    "sv": "sv-SE",
    "sw": "sw-KE",
    "ta": "ta-IN",
    "te": "te-IN",
    "th": "th-TH",
    "tr": "tr-TR",
    "uk": "uk-UA",
    "ur": "ur-IN",
    "vi": "vi-VN",
    "zh": "cmn-CN",
}
"""The tag Google's Chirp 3 HD voice list gives each language (a base code maps here)."""
_OTHER_REGIONS = ("en-AU", "en-GB", "en-IN", "es-US", "fr-CA", "nl-BE")
_LANGUAGE_MAP = (
    _DEFAULT_REGION
    | {tag: tag for tag in (*_DEFAULT_REGION.values(), *_OTHER_REGIONS)}
    | {"zh-CN": "cmn-CN"}
)


def language_to_google_tts_language(language: str) -> str:
    """Google's tag for a language: ``Language.EN`` -> ``"en-US"``, ``Language.ZH`` ->
    ``"cmn-CN"``. A language Google's voice list lacks goes through as its own tag (logged)."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=False)


@dataclass
class GoogleHttpTTSSettings(TTSSettings):
    """``GoogleHttpTTSService.Settings``: voice and language, and how the voice speaks.

    ``pitch`` (``"+2st"``, ``"-10%"``), ``rate`` (``"slow"``, ``"125%"``), ``volume``
    (``"loud"``, ``"+6dB"``), ``emphasis``, ``gender`` and ``google_style`` go into the SSML of
    voices that take SSML; ``speaking_rate`` (0.25 to 2.0) is the Chirp and Journey voices'
    speed, sent in ``audioConfig``. ``None``: the voice's own.
    """

    pitch: str | None | NotGiven = field(default_factory=unset)
    rate: str | None | NotGiven = field(default_factory=unset)
    speaking_rate: float | None | NotGiven = field(default_factory=unset)
    volume: str | None | NotGiven = field(default_factory=unset)
    emphasis: Literal["strong", "moderate", "reduced", "none"] | None | NotGiven = field(
        default_factory=unset
    )
    gender: Literal["male", "female", "neutral"] | None | NotGiven = field(default_factory=unset)
    google_style: (
        Literal["apologetic", "calm", "empathetic", "firm", "lively"] | None | NotGiven
    ) = field(default_factory=unset)


def takes_plain_text(voice: str) -> bool:
    """True for the voices that refuse SSML (Chirp, Chirp 3 HD and Journey)."""
    name = voice.lower()
    return any(part in name for part in _PLAIN_TEXT_VOICES)


def wav_payload(audio: bytes) -> tuple[int, int, bytes] | None:
    """``(format tag, sample rate, data)`` of a mono WAV file; None if ``audio`` is not one.

    Raises ProtocolError for a WAV file without a format or data, or with more channels."""
    if not is_wav(audio):
        return None
    fmt, data = read_wav(audio)
    if fmt.channels != 1:
        raise ProtocolError(f"Google's WAV audio has {fmt.channels} channels, not 1")
    return fmt.tag, fmt.sample_rate, data


def _load_google_credentials(
    credentials: str | None, credentials_path: str | None
) -> GoogleCredentials:
    """Service account credentials from JSON or a file, else Application Default Credentials."""
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.oauth2 import service_account
    except ImportError as exc:
        raise MissingDependencyError("google-auth (Google Cloud credentials)", "google") from exc
    scopes = list(SCOPES)
    # google-auth leaves these two constructors unannotated.
    account: Any = service_account.Credentials
    try:
        if credentials:
            found: GoogleCredentials = account.from_service_account_info(
                json.loads(credentials), scopes=scopes
            )
        elif credentials_path:
            found = account.from_service_account_file(credentials_path, scopes=scopes)
        else:
            found, _project = google.auth.default(scopes=scopes)
    except (ValueError, OSError, DefaultCredentialsError) as exc:
        raise ConfigurationError(
            f"GoogleHttpTTSService: unusable Google credentials: {exc}"
        ) from exc
    return found


def _resolve_credentials(
    api_key: str | None, credentials: str | None, credentials_path: str | None
) -> tuple[str | None, GoogleCredentials | None]:
    """``(API key, google-auth credentials)``, one of them set (see the module docstring)."""
    if api_key:
        return api_key, None
    if credentials or credentials_path:
        return None, _load_google_credentials(credentials, credentials_path)
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return None, _load_google_credentials(None, None)
    key = os.environ.get("GOOGLE_API_KEY")
    if key:
        return key, None
    try:
        import google.auth  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "GoogleHttpTTSService: no credentials. Pass api_key=... or set GOOGLE_API_KEY, or "
            "pass credentials / credentials_path (a service account; pip install "
            "'callpipe[google]')."
        ) from None
    return None, _load_google_credentials(None, None)


class GoogleHttpTTSService(HTTPStreamTTSService):
    """Google Cloud Text-to-Speech over REST (see the module docstring).

    1.14 style: ``GoogleHttpTTSService(credentials_path="sa.json",
    settings=GoogleHttpTTSService.Settings(voice="en-US-Chirp3-HD-Charon", language="en-US"))``
    or, with a key, ``GoogleHttpTTSService(api_key=..., settings=...)``.

    ``api_key``, ``base_url``, ``encoding`` (``"auto"``, ``"LINEAR16"`` or ``"MULAW"``) and
    ``timeout_secs`` are callpipe's; the rest are Pipecat's (``voice_id`` and ``params`` are its
    deprecated spellings; ``params`` is ignored when ``settings`` is given, as there).
    """

    Settings = GoogleHttpTTSSettings
    _settings: GoogleHttpTTSSettings
    key_hint = "Check api_key / GOOGLE_API_KEY, or the credentials' access to Text-to-Speech."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form of the settings (use ``settings=``)."""

        model_config = ConfigDict(extra="forbid")

        pitch: str | None = None
        rate: str | None = None
        speaking_rate: float | None = None
        volume: str | None = None
        emphasis: Literal["strong", "moderate", "reduced", "none"] | None = None
        language: Any = Language("en")
        """A ``Language`` (sent as Google's tag for it) or Google's own tag, or None."""
        gender: Literal["male", "female", "neutral"] | None = None
        google_style: Literal["apologetic", "calm", "empathetic", "firm", "lively"] | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        credentials: str | None = None,
        credentials_path: str | None = None,
        location: str | None = None,
        voice_id: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: GoogleHttpTTSSettings | None = None,
        base_url: str | None = None,
        encoding: str = "auto",
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        if encoding not in ENCODINGS:
            raise ConfigurationError(f"encoding={encoding!r}: use one of {', '.join(ENCODINGS)}")
        super().__init__(sample_rate=sample_rate, **kwargs)
        defaults = GoogleHttpTTSSettings(
            model=None,
            voice=voice_id or DEFAULT_VOICE,
            language="en-US",
            pitch=None,
            rate=None,
            speaking_rate=None,
            volume=None,
            emphasis=None,
            gender=None,
            google_style=None,
        )
        self._settings.apply_update(defaults)
        if params is not None and settings is None:  # as in Pipecat: settings= replaces params
            self._settings.apply_update(
                GoogleHttpTTSSettings(**params.model_dump(exclude_none=True))
            )
        if settings is not None:
            self._settings.apply_update(settings)
        check_speaking_rate(self._settings.speaking_rate)
        self._encoding = encoding
        self._language_code: str | None = None
        self._set_language(self._settings.language)

        key, self._credentials = _resolve_credentials(api_key, credentials, credentials_path)
        self._auth_failed = False
        headers: dict[str, str] = {}
        if key:
            headers["X-Goog-Api-Key"] = key
        quota_project = self._credentials.quota_project_id if self._credentials else None
        if quota_project:
            headers["X-Goog-User-Project"] = quota_project  # billed project of user credentials

        if base_url:
            url = base_url
        elif location:
            url = f"https://{location}-texttospeech.googleapis.com"
        else:
            url = env_base_url(None, GOOGLE_TTS_URL_ENV, GOOGLE_TTS_URL)
        self.configure_http(url, headers, timeout_secs=timeout_secs)

    # ------------------------------------------------------------------ settings

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_google_tts_language(language)

    def _set_language(self, language: Any) -> None:
        if isinstance(language, Language):
            self._language_code = language_to_google_tts_language(language)
        else:  # a plain string is Google's tag already, as in Pipecat
            self._language_code = language if isinstance(language, str) and language else None

    async def update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        if isinstance(delta, GoogleHttpTTSSettings):
            delta = drop_bad_speaking_rate(self, delta, delta.speaking_rate)
        return await super().update_settings(delta)

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if "language" in changed:
            self._set_language(self._settings.language)

    @property
    def wire_encoding(self) -> str:
        """The ``audioConfig.audioEncoding`` requested."""
        if self._encoding == "auto":
            return "MULAW" if self.sample_rate == 8000 else "LINEAR16"
        return self._encoding

    @property
    def voice(self) -> str:
        voice = self._settings.voice
        return voice if isinstance(voice, str) and voice else DEFAULT_VOICE

    # ------------------------------------------------------------------ requests

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``text:synthesize`` body for ``text`` with the current settings."""
        voice: dict[str, Any] = {"name": self.voice}
        if self._language_code:
            voice["languageCode"] = self._language_code
        config: dict[str, Any] = {
            "audioEncoding": self.wire_encoding,
            "sampleRateHertz": self.sample_rate,
        }
        if takes_plain_text(self.voice):
            synthesis_input = {"text": text}
            rate = self._settings.speaking_rate
            if isinstance(rate, int | float):
                config["speakingRate"] = float(rate)
        else:
            synthesis_input = {"ssml": self.ssml(text)}
        return {"input": synthesis_input, "voice": voice, "audioConfig": config}

    def ssml(self, text: str) -> str:
        """``text`` as SSML carrying the voice settings (for voices that take SSML)."""
        s = self._settings
        voice = [("name", self.voice), ("language", self._language_code), ("gender", s.gender)]
        prosody = [("pitch", s.pitch), ("rate", s.rate), ("volume", s.volume)]
        elements: list[tuple[str, list[tuple[str, Any]]]] = [
            ("voice", voice),
            ("prosody", prosody),
            ("emphasis", [("level", s.emphasis)]),
            ("google:style", [("name", s.google_style)]),
        ]
        inner = escape(text)
        for tag, attributes in reversed(elements):
            given = [(name, str(value)) for name, value in attributes if _set(value)]
            if tag == "voice" or given:
                attrs = "".join(
                    f' {name}="{escape(value, {chr(34): "&quot;"})}"' for name, value in given
                )
                inner = f"<{tag}{attrs}>{inner}</{tag}>"
        return f"<speak>{inner}</speak>"

    # ------------------------------------------------------------------ credentials

    def rejects_credentials(self, status: int, body: bytes) -> bool:
        # Google answers a key it does not know with 400 INVALID_ARGUMENT, API_KEY_INVALID.
        return super().rejects_credentials(status, body) or (
            status == 400 and b"API_KEY_INVALID" in body
        )

    async def _authorize(self) -> bool:
        """Put a valid OAuth token on the client (credentials only); False if there is none."""
        creds = self._credentials
        if creds is None:
            return True
        if self._auth_failed:
            return False
        outcome = await refresh_token(self, creds, self.key_hint)
        if outcome != "fresh":
            self._auth_failed = outcome == "refused"
            return False
        self._http().headers["Authorization"] = f"Bearer {creds.token}"
        return True

    # ------------------------------------------------------------------ speech

    async def start(self, frame: StartFrame) -> None:
        self._http()
        await self._authorize()

    async def run_tts(self, text: str, context_id: str) -> None:
        if not await self._authorize():
            self.sentence_failed(context_id)  # no token: nothing of it is spoken
            return
        await self.stream_speech(context_id, SYNTHESIZE_PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        try:
            answer = json.loads(await response.aread())
            audio = base64.b64decode(answer.get("audioContent", ""), validate=True)
            pcm, rate = self._pcm(audio)
        except (ValueError, AttributeError, binascii.Error, ProtocolError) as exc:
            self.sentence_failed(context_id)
            await self.report_error(
                f"{self}: unreadable answer from Google: {exc}", reason="provider"
            )
            return
        await self.append_audio(context_id, pcm, rate)

    def _pcm(self, audio: bytes) -> tuple[bytes, int]:
        """16-bit PCM and its rate from an ``audioContent`` (a WAV file, or bare samples)."""
        wav = wav_payload(audio)
        if wav is None:  # headerless: the encoding and rate asked for
            tag = WAVE_FORMAT_MULAW if self.wire_encoding == "MULAW" else WAVE_FORMAT_PCM
            rate, data = self.sample_rate, audio
        else:
            tag, rate, data = wav
        if tag == WAVE_FORMAT_MULAW:
            return ulaw_to_pcm(data), rate
        if tag == WAVE_FORMAT_ALAW:
            return alaw_to_pcm(data), rate
        if tag == WAVE_FORMAT_PCM:
            return data, rate
        raise ProtocolError(f"Google's WAV audio is in format {tag}, not PCM or G.711")


def _set(value: Any) -> bool:
    """A settings value that is given and not empty."""
    return is_given(value) and value is not None and value != ""


__all__ = [
    "DEFAULT_VOICE",
    "ENCODINGS",
    "GOOGLE_TTS_URL",
    "GeminiTTSService",
    "GeminiTTSSettings",
    "GoogleBaseTTSService",
    "GoogleHttpTTSService",
    "GoogleHttpTTSSettings",
    "GoogleStreamTTSSettings",
    "GoogleTTSService",
    "GoogleTTSSettings",
    "SCOPES",
    "SPEAKING_RATE_RANGE",
    "SYNTHESIZE_PATH",
    "language_to_gemini_tts_language",
    "language_to_google_tts_language",
    "takes_plain_text",
    "wav_payload",
]
