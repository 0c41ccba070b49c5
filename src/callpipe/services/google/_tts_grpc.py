"""GoogleTTSService and GeminiTTSService: Cloud Text-to-Speech's ``StreamingSynthesize`` (gRPC).

Each sentence is one bidirectional ``StreamingSynthesize`` call made with the official SDK
(``google-cloud-texttospeech``'s ``TextToSpeechAsyncClient``, ``pip install 'callpipe[google]'``):
the first request carries only ``streaming_config`` (the voice and the audio wanted), the second
only ``input`` (the sentence, and for Gemini its ``prompt``); then the client half-closes and
reads the ``audio_content`` chunks as Google makes them, so a sentence's first audio comes
before the rest of it is ready. The audio is asked for as headerless 16-bit ``PCM`` at the
pipeline's output rate, so nothing is decoded or resampled.

- An interruption cancels the sentence being synthesized, which cancels the call: Google stops
  sending and what it had not sent is not heard.
- ``UNAVAILABLE``, ``RESOURCE_EXHAUSTED`` or ``INTERNAL`` before any audio came is retried once;
  other failures are a non-fatal ``ErrorFrame`` and the sentence is skipped (what of it was not
  heard is not recorded as spoken). ``UNAUTHENTICATED`` or ``PERMISSION_DENIED``, or
  credentials whose token request Google refuses, are fatal (the call ends).
- ``TTSUpdateSettingsFrame`` changes (voice, language, ``speaking_rate``, Gemini's ``model``
  and ``prompt``) apply from the next sentence.

Credentials: ``credentials=`` (a service account's JSON), ``credentials_path=`` (its file) or
Application Default Credentials. Their token is fetched (in a thread) at start and again shortly
before it expires, so a refused account is reported at once. The endpoint is
``{location}-texttospeech.googleapis.com`` with ``location=``, else
``$CALLPIPE_GOOGLE_TTS_GRPC_URL`` (an ``http://host:port`` address is a fake's: no TLS, no
credentials), else ``texttospeech.googleapis.com``.

``GeminiTTSService`` runs only on this Cloud backend: Pipecat's other backend, the Gemini API
through ``google-genai`` (``api_key=`` or ``use_genai=True``), is refused with a
ConfigurationError.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import GOOGLE_TTS_GRPC_URL_ENV
from callpipe.services.google._auth import insecure_target, load_credentials, refresh_token
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.transcriptions.language import Language
from callpipe.utils.types import NOT_GIVEN, NotGiven, is_given

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud import texttospeech_v1 as tts

logger = logging.getLogger(__name__)

GOOGLE_TTS_GRPC_HOST = "texttospeech.googleapis.com"
DEFAULT_VOICE = "en-US-Chirp3-HD-Charon"
DEFAULT_GEMINI_MODEL = "gemini-3.1-flash-tts-preview"
DEFAULT_GEMINI_VOICE = "Kore"
GEMINI_SAMPLE_RATE = 24000
"""The rate Gemini's voices speak at (another rate is asked for, with a warning, as Pipecat)."""
SPEAKING_RATE_RANGE = (0.25, 2.0)
_RETRIED = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL")
_REFUSED = ("UNAUTHENTICATED", "PERMISSION_DENIED")

GEMINI_VOICES = (
    "Achernar",
    "Achird",
    "Algenib",
    "Algieba",
    "Alnilam",
    "Aoede",
    "Autonoe",
    "Callirrhoe",
    "Charon",
    "Despina",
    "Enceladus",
    "Erinome",
    "Fenrir",
    "Gacrux",
    "Iapetus",
    "Kore",
    "Laomedeia",
    "Leda",
    "Orus",
    "Puck",
    "Pulcherrima",
    "Rasalgethi",
    "Sadachbia",
    "Sadaltager",
    "Schedar",
    "Sulafat",
    "Umbriel",
    "Vindemiatrix",
    "Zephyr",
    "Zubenelgenubi",
)
"""Gemini's prebuilt voices (a designed voice's ``voice_...`` id is taken too)."""

_GEMINI_REGIONS = {"ar": "ar-EG", "ur": "ur-PK"}
"""Where Gemini's language list picks another region than the Chirp 3 HD voices'."""


def language_to_gemini_tts_language(language: str) -> str:
    """Gemini TTS's tag for a language (``Language.AR`` -> ``"ar-EG"``, else as for Google's
    other voices, e.g. ``Language.EN`` -> ``"en-US"``)."""
    from callpipe.services.google.tts import language_to_google_tts_language

    code = str(language)
    if code in _GEMINI_REGIONS:
        return _GEMINI_REGIONS[code]
    return language_to_google_tts_language(language)


def _sdk() -> Any:
    """The SDK's ``texttospeech_v1`` module (MissingDependencyError without it)."""
    try:
        return importlib.import_module("google.cloud.texttospeech_v1")
    except ImportError as exc:
        raise MissingDependencyError(
            "google-cloud-texttospeech (Google's streaming TTS)", "google"
        ) from exc


def _speaking_rate_ok(value: float) -> bool:
    low, high = SPEAKING_RATE_RANGE
    return low <= float(value) <= high


def check_speaking_rate(rate: object) -> None:
    """Refuse a ``speaking_rate`` Google would refuse (at construction)."""
    if isinstance(rate, int | float) and not _speaking_rate_ok(rate):
        raise ConfigurationError(f"speaking_rate={rate}: Google takes 0.25 to 2.0")


_Delta = TypeVar("_Delta", bound=TTSSettings)


def drop_bad_speaking_rate(owner: object, delta: _Delta, rate: object) -> _Delta:
    """``delta`` without its ``speaking_rate`` (``rate``) if Google would refuse it (logged):
    a settings update mid-call keeps the rest."""
    if isinstance(rate, int | float) and not _speaking_rate_ok(rate):
        logger.warning("%s: speaking_rate %s is outside 0.25 to 2.0; ignored", owner, rate)
        return dataclasses.replace(delta, speaking_rate=NOT_GIVEN)  # type: ignore[call-arg]
    return delta


@dataclass
class GoogleTTSSettings(TTSSettings):
    """``GoogleTTSService.Settings``: voice, language and ``speaking_rate`` (0.25 to 2.0; None:
    the voice's own speed)."""

    speaking_rate: float | None | NotGiven = field(default_factory=unset)


GoogleStreamTTSSettings = GoogleTTSSettings
"""Pipecat's older name of :class:`GoogleTTSSettings`."""


@dataclass
class GeminiTTSSettings(TTSSettings):
    """``GeminiTTSService.Settings``: ``model`` and ``voice`` (a Gemini voice), ``language``,
    ``prompt`` (style instructions sent with each sentence) and, for two-voice scripts,
    ``multi_speaker`` with ``speaker_configs`` (``[{"speaker_alias": "A", "speaker_id":
    "Kore"}, ...]``; a missing ``speaker_id`` is the ``voice``)."""

    prompt: str | None | NotGiven = field(default_factory=unset)
    multi_speaker: bool | NotGiven = field(default_factory=unset)
    speaker_configs: list[dict[str, Any]] | None | NotGiven = field(default_factory=unset)


class GoogleBaseTTSService(TTSService):
    """What Google's streaming TTS services share: credentials, the SDK client, one
    ``StreamingSynthesize`` per sentence (see the module docstring). Subclasses build the
    first request's config (:meth:`streaming_config`) and the input (:meth:`synthesis_input`).
    """

    key_hint = "Check the credentials' access to Cloud Text-to-Speech."

    def __init__(
        self,
        *,
        credentials: str | None = None,
        credentials_path: str | None = None,
        location: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _sdk()
        address = os.environ.get(GOOGLE_TTS_GRPC_URL_ENV, "")
        self._insecure_target = None if location else insecure_target(address)
        if location:
            self._endpoint = f"{location}-texttospeech.googleapis.com"
        elif address and self._insecure_target is None:
            self._endpoint = address.split("://", 1)[-1].rstrip("/")
        else:
            self._endpoint = GOOGLE_TTS_GRPC_HOST
        self._credentials: Credentials | None = None
        if self._insecure_target is None:
            owner = type(self).__name__
            self._credentials, _project = load_credentials(owner, credentials, credentials_path)
        self._client: tts.TextToSpeechAsyncClient | None = None
        self._refused = False
        self._language_code: str | None = None

    # ------------------------------------------------------------------ settings

    def language_to_service_language(self, language: str) -> str | None:
        # The language map is the REST service's module's, which imports this one.
        from callpipe.services.google.tts import language_to_google_tts_language

        return language_to_google_tts_language(language)

    def _set_language(self, language: Any) -> None:
        if isinstance(language, Language):
            self._language_code = self.language_to_service_language(language)
        else:  # a plain string is Google's tag already
            self._language_code = language if isinstance(language, str) and language else None

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if "language" in changed:
            self._set_language(self._settings.language)

    @property
    def endpoint(self) -> str:
        """The ``host:port`` (or host) the SDK's channel is opened to."""
        return self._insecure_target or self._endpoint

    @property
    def language_code(self) -> str | None:
        """The ``voice.language_code`` sent."""
        return self._language_code

    # ------------------------------------------------------------------ requests

    def streaming_config(self) -> tts.StreamingSynthesizeConfig:
        """The first request's ``streaming_config`` with the current settings."""
        raise NotImplementedError

    def synthesis_input(self, text: str) -> tts.StreamingSynthesisInput:
        """The ``input`` request for ``text``."""
        return _sdk().StreamingSynthesisInput(text=text)  # type: ignore[no-any-return]

    def audio_config(self, speaking_rate: Any = None) -> tts.StreamingAudioConfig:
        """Headerless 16-bit PCM at the output rate (and a speaking rate if one is set)."""
        sdk = _sdk()
        config = sdk.StreamingAudioConfig(
            audio_encoding=sdk.AudioEncoding.PCM, sample_rate_hertz=self.sample_rate
        )
        if isinstance(speaking_rate, int | float):
            config.speaking_rate = float(speaking_rate)
        return config  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ client

    def _tts_client(self) -> tts.TextToSpeechAsyncClient:
        """The SDK client, made on first use (on the running loop, which its channel binds to)."""
        if self._client is None:
            sdk = _sdk()
            if self._insecure_target is not None:
                import grpc
                from google.cloud.texttospeech_v1.services.text_to_speech.transports import (
                    TextToSpeechGrpcAsyncIOTransport,
                )

                channel = grpc.aio.insecure_channel(self._insecure_target)
                transport = TextToSpeechGrpcAsyncIOTransport(channel=channel)
                self._client = sdk.TextToSpeechAsyncClient(transport=transport)
            else:
                self._client = sdk.TextToSpeechAsyncClient(
                    credentials=self._credentials,
                    client_options={"api_endpoint": self._endpoint},
                )
        assert self._client is not None
        return self._client

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            transport: Any = client.transport  # its close() is unannotated
            await transport.close()

    async def _authorize(self) -> bool:
        """Make sure the credentials hold a token that is not about to expire (fetched in a
        thread); False when there is none (reported; a refusal is fatal)."""
        creds = self._credentials
        if self._refused:
            return False
        if creds is None:
            return True
        outcome = await refresh_token(self, creds, self.key_hint)
        self._refused = outcome == "refused"
        return outcome == "fresh"

    # ------------------------------------------------------------------ speech

    async def start(self, frame: StartFrame) -> None:
        self._tts_client()
        await self._authorize()

    async def run_tts(self, text: str, context_id: str) -> None:
        if not await self._authorize():
            self.sentence_failed(context_id)
            return
        from google.api_core.exceptions import GoogleAPICallError

        sdk = _sdk()
        first = sdk.StreamingSynthesizeRequest(streaming_config=self.streaming_config())
        second = sdk.StreamingSynthesizeRequest(input=self.synthesis_input(text))
        for attempt in range(2):
            ctx = self._contexts.get(context_id)
            before = ctx.audio_secs if ctx is not None else 0.0
            try:
                await self._stream(first, second, context_id)
            except GoogleAPICallError as exc:
                status = _status_name(exc)
                got_audio = ctx is not None and ctx.audio_secs > before
                if attempt == 0 and not got_audio and status in _RETRIED:
                    logger.info(
                        "%s: StreamingSynthesize %s (%s); retrying once", self, status, exc.message
                    )
                    continue
                self.sentence_failed(context_id)
                fatal = status in _REFUSED
                message = f"{self}: StreamingSynthesize failed: {status}: {exc.message}"
                if fatal:
                    self._refused = True
                    message = f"{message.rstrip('.')}. {self.key_hint}"
                await self.report_error(
                    message, fatal=fatal, reason="auth" if fatal else "provider"
                )
                return
            self.sentence_audio_done(context_id)
            return

    async def _stream(
        self,
        first: tts.StreamingSynthesizeRequest,
        second: tts.StreamingSynthesizeRequest,
        context_id: str,
    ) -> None:
        """One call: send the two requests, half-close, play the audio as it comes. Leaving
        early (an interruption) cancels the call."""
        import grpc

        async def requests() -> AsyncIterator[tts.StreamingSynthesizeRequest]:
            yield first
            yield second

        responses = await self._tts_client().streaming_synthesize(requests=requests())
        try:
            async for response in responses:
                if response.audio_content:
                    await self.append_audio(context_id, response.audio_content)
        finally:
            if isinstance(responses, grpc.aio.Call) and not responses.done():
                responses.cancel()


def _status_name(exc: Any) -> str:
    """The gRPC status name of an SDK error (``"UNAVAILABLE"``), ``"UNKNOWN"`` if it has none."""
    code = exc.grpc_status_code
    return str(code.name) if code is not None else "UNKNOWN"


class GoogleTTSService(GoogleBaseTTSService):
    """Google Cloud Text-to-Speech streaming over gRPC (Chirp 3 HD voices, the only ones Google
    streams; see the module docstring).

    1.14 style: ``GoogleTTSService(credentials_path="sa.json",
    settings=GoogleTTSService.Settings(voice="en-US-Chirp3-HD-Charon", language="en-US"))``.
    ``voice_cloning_key`` speaks with a Chirp 3 instant custom voice instead of ``voice``;
    ``voice_id`` and ``params`` are Pipecat's deprecated spellings (``params`` is ignored when
    ``settings`` is given, as there).
    """

    Settings = GoogleTTSSettings
    _settings: GoogleTTSSettings

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form of the settings (use ``settings=``)."""

        model_config = ConfigDict(extra="forbid")

        language: Any = Language("en")
        """A ``Language`` (sent as Google's tag for it) or Google's own tag, or None."""
        speaking_rate: float | None = None

    def __init__(
        self,
        *,
        credentials: str | None = None,
        credentials_path: str | None = None,
        location: str | None = None,
        voice_id: str | None = None,
        voice_cloning_key: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: GoogleTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            credentials=credentials,
            credentials_path=credentials_path,
            location=location,
            sample_rate=sample_rate,
            **kwargs,
        )
        self._settings.apply_update(
            GoogleTTSSettings(
                model=None, voice=voice_id or DEFAULT_VOICE, language="en-US", speaking_rate=None
            )
        )
        if params is not None and settings is None:
            self._settings.apply_update(GoogleTTSSettings(**params.model_dump(exclude_none=True)))
        if settings is not None:
            self._settings.apply_update(settings)
        check_speaking_rate(self._settings.speaking_rate)
        self._voice_cloning_key = voice_cloning_key
        self._set_language(self._settings.language)

    async def update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        if isinstance(delta, GoogleTTSSettings):
            delta = drop_bad_speaking_rate(self, delta, delta.speaking_rate)
        return await super().update_settings(delta)

    def streaming_config(self) -> tts.StreamingSynthesizeConfig:
        sdk = _sdk()
        if self._voice_cloning_key:
            voice = sdk.VoiceSelectionParams(
                language_code=self._language_code,
                voice_clone=sdk.VoiceCloneParams(voice_cloning_key=self._voice_cloning_key),
            )
        else:
            voice = sdk.VoiceSelectionParams(
                language_code=self._language_code, name=self._settings.voice or DEFAULT_VOICE
            )
        return sdk.StreamingSynthesizeConfig(  # type: ignore[no-any-return]
            voice=voice, streaming_audio_config=self.audio_config(self._settings.speaking_rate)
        )


class GeminiTTSService(GoogleBaseTTSService):
    """Gemini's TTS models over Cloud Text-to-Speech's ``StreamingSynthesize`` (see the module
    docstring): the voice is a Gemini voice (``Kore``), ``model`` the model's name and
    ``prompt`` style instructions sent with each sentence.

    1.14 style: ``GeminiTTSService(credentials_path="sa.json",
    settings=GeminiTTSService.Settings(model="gemini-2.5-flash-tts", voice="Kore",
    prompt="Say this warmly"))``. ``model``, ``voice_id`` and ``params`` are Pipecat's
    deprecated spellings. ``api_key``, ``use_genai`` and ``http_options`` select Pipecat's
    Gemini API backend, which callpipe does not provide (ConfigurationError).
    """

    Settings = GeminiTTSSettings
    _settings: GeminiTTSSettings

    GOOGLE_SAMPLE_RATE = GEMINI_SAMPLE_RATE
    AVAILABLE_VOICES = list(GEMINI_VOICES)

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form of the settings (use ``settings=``)."""

        model_config = ConfigDict(extra="forbid")

        language: Any = Language("en")
        prompt: str | None = None
        multi_speaker: bool = False
        speaker_configs: list[dict[str, Any]] | None = None

    def __init__(
        self,
        *,
        model: str | None = None,
        api_key: str | None = None,
        credentials: str | None = None,
        credentials_path: str | None = None,
        location: str | None = None,
        voice_id: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: GeminiTTSSettings | None = None,
        use_genai: bool | None = None,
        http_options: Any = None,
        **kwargs: Any,
    ) -> None:
        if use_genai or (use_genai is None and api_key is not None):
            raise ConfigurationError(
                "GeminiTTSService: the Gemini API backend (api_key= / use_genai=True) is not "
                "provided; use Google Cloud credentials (credentials= / credentials_path= / "
                "Application Default Credentials)."
            )
        super().__init__(
            credentials=credentials,
            credentials_path=credentials_path,
            location=location,
            sample_rate=sample_rate,
            **kwargs,
        )
        defaults = GeminiTTSSettings(
            model=model or DEFAULT_GEMINI_MODEL,
            voice=voice_id or DEFAULT_GEMINI_VOICE,
            language="en-US",
            prompt=None,
            multi_speaker=False,
            speaker_configs=None,
        )
        self._settings.apply_update(defaults)
        if params is not None and settings is None:
            given = params.model_dump(exclude_none=True)
            self._settings.apply_update(GeminiTTSSettings(**given))
        if settings is not None:
            self._settings.apply_update(settings)
        if isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        self._check_voice(self._settings.voice)
        self._set_language(self._settings.language)

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_gemini_tts_language(language)

    def _check_voice(self, voice: Any) -> None:
        if isinstance(voice, str) and voice not in GEMINI_VOICES and not voice.startswith("voice_"):
            logger.warning("%s: voice %r is not one of Gemini's; using it anyway", self, voice)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate != GEMINI_SAMPLE_RATE:
            logger.warning(
                "%s: Gemini voices speak at %d Hz; asking Google for %d Hz",
                self,
                GEMINI_SAMPLE_RATE,
                self.sample_rate,
            )
        await super().start(frame)

    async def update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        if is_given(delta.voice):
            self._check_voice(delta.voice)
        return await super().update_settings(delta)

    def streaming_config(self) -> tts.StreamingSynthesizeConfig:
        sdk = _sdk()
        s = self._settings
        voice = sdk.VoiceSelectionParams(language_code=self._language_code, model_name=s.model)
        speakers = s.speaker_configs if is_given(s.speaker_configs) else None
        if s.multi_speaker is True and speakers:
            voice.multi_speaker_voice_config = sdk.MultiSpeakerVoiceConfig(
                speaker_voice_configs=[
                    sdk.MultispeakerPrebuiltVoice(
                        speaker_alias=speaker["speaker_alias"],
                        speaker_id=speaker.get("speaker_id", s.voice),
                    )
                    for speaker in speakers
                ]
            )
        else:
            voice.name = s.voice
        return sdk.StreamingSynthesizeConfig(  # type: ignore[no-any-return]
            voice=voice, streaming_audio_config=self.audio_config()
        )

    def synthesis_input(self, text: str) -> tts.StreamingSynthesisInput:
        prompt = self._settings.prompt
        if isinstance(prompt, str):
            return _sdk().StreamingSynthesisInput(text=text, prompt=prompt)  # type: ignore[no-any-return]
        return super().synthesis_input(text)
