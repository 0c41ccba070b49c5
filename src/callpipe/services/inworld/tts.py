"""InworldTTSService: Inworld's bidirectional WebSocket with contexts; InworldHttpTTSService: one
streamed ``POST /tts/v1/voice:stream`` per sentence.

The protocol, as Inworld documents it
(https://docs.inworld.ai/api-reference/ttsAPI/texttospeech/synthesize-speech-websocket,
https://docs.inworld.ai/api-reference/ttsAPI/texttospeech/synthesize-speech-stream,
https://docs.inworld.ai/docs/tts/capabilities/generating-audio):

- The key goes as ``Authorization: Basic <key>`` (the key Inworld's portal shows is already
  Base64), on the socket's handshake and on every HTTP request.
- The socket (``wss://api.inworld.ai/tts/v1/voice:streamBidirectional``) carries up to five
  *contexts*, each with its own voice, model, audio format and text buffer. The client sends
  ``{"create": {...}, "contextId"}``, ``{"send_text": {"text", "flush_context"?}, "contextId"}``
  (at most 1,000 characters), ``{"flush_context": {}, "contextId"}`` and
  ``{"close_context": {}, "contextId"}`` (a flush, then the close).
- The server answers ``{"result": {"contextId", "status": {"code", "message", "details"}, ...}}``
  with one of ``contextCreated``, ``audioChunk`` (``audioContent`` in Base64, ``usage`` and
  ``timestampInfo.wordAlignment``: ``words``, ``wordStartTimeSeconds``,
  ``wordEndTimeSeconds``, in seconds from the start of that generation), ``flushCompleted``
  (a generation ended) and ``contextClosed``. A non-zero ``status.code`` is an error.
- The HTTP endpoint takes ``text``, ``voiceId``, ``modelId``, ``audioConfig``
  (``audioEncoding``, ``sampleRateHertz``, ``speakingRate``) and the options below, and answers
  newline-delimited JSON objects ``{"result": {"audioContent", "timestampInfo"?}}`` (or
  ``{"error": {...}}`` when the stream fails).

Audio formats: ``PCM`` is 16-bit samples without a header; ``LINEAR16`` puts a WAV header on
every chunk; ``WAV`` puts one on the first chunk of each HTTP response and of each socket
generation; ``MULAW``/``ALAW`` are G.711. On a phone call (8 kHz output) both services ask for
``MULAW`` at 8000 Hz (half the bytes, nothing resampled), else ``PCM`` at the pipeline's output
rate; ``encoding=`` overrides that. Any chunk that starts with a WAV header is read with
:mod:`callpipe.audio.wav` (its format tag says what the samples are).

One Inworld context per reply, named by the reply's context id. A reply's first sentence opens
it (``create`` carries the current settings, so a settings update applies from the next reply
without reconnecting); its end sends ``close_context``, and the reply is complete at
``contextClosed``. In ``autoMode`` (the default with whole sentences) Inworld decides when to
synthesize; without it, each whole sentence is sent with ``flush_context`` so it is spoken at
once, and streamed tokens wait for Inworld's buffer thresholds or the reply's end. An
interruption sends ``close_context`` for the dropped reply; its audio still arriving is dropped
by id. Word times restart at 0 with each generation: they are counted from the reply's audio
already received when the generation's first event came.

Where this differs from Pipecat 1.14: ``encoding`` defaults to what the line carries rather
than ``PCM`` always; WAV headers are walked to their data rather than cut at 44 bytes; a socket
settings update does not reconnect (contexts carry their own configuration); and no keepalive
with an empty ``send_text`` is sent (the docs define none, Pipecat's draws an error when no
context is open; Inworld closes a socket idle for ten minutes, and the service reconnects).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import alaw_to_pcm, ulaw_to_pcm
from callpipe.audio.wav import WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, is_wav, read_wav
from callpipe.errors import ConfigurationError, ProtocolError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import INWORLD_API_URL_ENV, INWORLD_URL_ENV, base_url
from callpipe.services._http_tts import HTTPStreamTTSService, json_lines
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.text.phonemes import normalize_ipa
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

INWORLD_URL = "wss://api.inworld.ai/tts/v1/voice:streamBidirectional"
SOCKET_PATH = "/tts/v1/voice:streamBidirectional"
"""Added to a ``url`` given without a path (e.g. ``CALLPIPE_INWORLD_URL`` of ``callpipe fakes``)."""
INWORLD_API_URL = "https://api.inworld.ai"
STREAM_PATH = "/tts/v1/voice:stream"
SYNC_PATH = "/tts/v1/voice"
DEFAULT_MODEL = "inworld-tts-2"
DEFAULT_VOICE = "Ashley"
ENCODINGS = ("PCM", "LINEAR16", "WAV", "MULAW", "ALAW")
"""The ``audioEncoding`` values these services can play (Inworld also serves MP3, OGG_OPUS and
FLAC)."""
_KEY_HINT = "Check api_key / INWORLD_API_KEY."
_NOT_FOUND = 5
"""gRPC's NOT_FOUND: a message for a context Inworld already closed."""

_LANGUAGE_MAP = {
    "ar": "ar-SA",
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fr": "fr-FR",
    "he": "he-IL",
    "hi": "hi-IN",
    "it": "it-IT",
    "ja": "ja-JP",
    "ko": "ko-KR",
    "nl": "nl-NL",
    "pl": "pl-PL",
    "pt": "pt-BR",
    "ru": "ru-RU",
    "zh": "zh-CN",
}


def language_to_inworld_language(language: str) -> str:
    """Inworld's BCP-47 tag for a language: ``Language.ES`` -> ``"es-ES"``; a regional tag
    (``"es-MX"``) and a language Inworld does not list pass through as they are."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=False)


def format_inworld_pronunciation(word: str, ipa: str) -> str | None:
    """``ipa`` as Inworld reads inline IPA: between slashes (``/kriːt/``), one word only, in one
    notation (:func:`~callpipe.utils.text.phonemes.normalize_ipa`: ``ʧ`` is ``tʃ``, ``'`` is
    ``ˈ``); None for an empty pronunciation or one of several words. ``word`` is replaced, so
    unused."""
    del word
    cleaned = normalize_ipa(ipa)
    return f"/{cleaned}/" if cleaned and " " not in cleaned else None


@dataclass
class InworldTTSSettings(TTSSettings):
    """``InworldTTSService.Settings`` / ``InworldHttpTTSService.Settings``: voice (Inworld's
    ``voiceId``), model (``modelId``), language (a BCP-47 tag is sent), ``speaking_rate``
    (``audioConfig.speakingRate``, 0.5 to 1.5), ``temperature`` and ``delivery_mode``
    (``"STABLE"``, ``"BALANCED"`` or ``"CREATIVE"``; ``inworld-tts-2`` only). None: Inworld's
    default."""

    speaking_rate: float | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)
    delivery_mode: Literal["STABLE", "BALANCED", "CREATIVE"] | None | NotGiven = field(
        default_factory=unset
    )

    _aliases: ClassVar[dict[str, str]] = {
        "voice_id": "voice",
        "voiceId": "voice",
        "modelId": "model",
    }

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> Self:
        """As the base class, also taking the older nested ``audioConfig.speakingRate``."""
        flat = dict(settings)
        nested = flat.pop("audioConfig", None)
        if isinstance(nested, Mapping) and "speakingRate" in nested:
            flat.setdefault("speaking_rate", nested["speakingRate"])
        return super().from_mapping(flat)


def _given(value: Any) -> bool:
    return value is not None and is_given(value)


def _check_encoding(encoding: str | None) -> str | None:
    if encoding is None:
        return None
    upper = encoding.upper()
    if upper not in ENCODINGS:
        raise ConfigurationError(
            f"Inworld encoding {encoding!r}: callpipe plays {', '.join(ENCODINGS)}"
        )
    return upper


def _decode(audio: bytes, encoding: str) -> bytes:
    """16-bit PCM from one chunk of ``encoding`` (a leading WAV header is read and dropped)."""
    if is_wav(audio):
        fmt, audio = read_wav(audio)
        encoding = {WAVE_FORMAT_MULAW: "MULAW", WAVE_FORMAT_ALAW: "ALAW"}.get(fmt.tag, "PCM")
    if encoding == "MULAW":
        return ulaw_to_pcm(audio)
    if encoding == "ALAW":
        return alaw_to_pcm(audio)
    return audio


def _words(info: Any, offset: float) -> list[tuple[str, float, float]]:
    """``(word, start, end)`` of a ``timestampInfo``, shifted by ``offset`` seconds."""
    alignment = info.get("wordAlignment") if isinstance(info, dict) else None
    if not isinstance(alignment, dict):
        return []
    return [
        (str(word), offset + float(start), offset + float(end))
        for word, start, end in zip(
            alignment.get("words") or [],
            alignment.get("wordStartTimeSeconds") or [],
            alignment.get("wordEndTimeSeconds") or [],
            strict=False,
        )
    ]


def audio_encoding_for(encoding: str | None, sample_rate: int) -> str:
    """The ``audioEncoding`` to ask for: ``encoding`` when given, else ``MULAW`` at 8 kHz (a phone
    call) and ``PCM`` otherwise."""
    if encoding is not None:
        return encoding
    return "MULAW" if sample_rate == 8000 else "PCM"


def synthesis_config(
    settings: InworldTTSSettings, encoding: str, sample_rate: int, transport: str | None
) -> dict[str, Any]:
    """``voiceId``, ``modelId``, ``audioConfig`` and the options that are set, with word
    timestamps asked for (``timestampTransportStrategy`` is ``transport``)."""
    s = settings
    audio: dict[str, Any] = {"audioEncoding": encoding, "sampleRateHertz": sample_rate}
    if _given(s.speaking_rate):
        audio["speakingRate"] = s.speaking_rate
    config: dict[str, Any] = {"voiceId": s.voice, "modelId": s.model, "audioConfig": audio}
    if _given(s.temperature):
        config["temperature"] = s.temperature
    if _given(s.delivery_mode):
        config["deliveryMode"] = s.delivery_mode
    if isinstance(s.language, str) and s.language:
        config["language"] = language_to_inworld_language(s.language)
    config["timestampType"] = "WORD"
    if transport is not None:
        config["timestampTransportStrategy"] = transport
    return config


def _initial_settings(
    voice_id: str | None,
    model: str | None,
    params_rate: float | None,
    params_temperature: float | None,
    settings: InworldTTSSettings | None,
) -> InworldTTSSettings:
    """Pipecat's order: defaults, then ``voice_id``/``model``, then the older params (only
    without ``settings``), then ``settings``."""
    store = InworldTTSSettings(
        model=DEFAULT_MODEL,
        voice=DEFAULT_VOICE,
        language=None,
        speaking_rate=None,
        temperature=None,
        delivery_mode=None,
    )
    if voice_id is not None:
        store.voice = voice_id
    if model is not None:
        store.model = model
    if settings is None:
        if params_rate is not None:
            store.speaking_rate = params_rate
        if params_temperature is not None:
            store.temperature = params_temperature
    else:
        store.apply_update(settings)
    return store


# ---------------------------------------------------------------------- WebSocket


@dataclass
class _Reply:
    """One reply's Inworld context."""

    texts: int = 0
    """``send_text`` messages sent."""
    closing: bool = False
    """``close_context`` sent: the reply ends at ``contextClosed``."""
    generation_start: float | None = None
    """Seconds of the reply's audio before the current generation (None: the next event
    starts one)."""


class _InworldOptions:
    """What both services ask Inworld for: the audio encoding, the language tag and the
    synthesis options of the current settings. (The pronunciation form is on each service:
    the base class's ``format_pronunciation`` would shadow one here, as it comes first.)"""

    _settings: InworldTTSSettings
    _encoding: str | None
    _timestamp_transport: Literal["ASYNC", "SYNC"] | None

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError  # the TTS service's (this class comes after it in the bases)

    @property
    def audio_encoding(self) -> str:
        """The ``audioEncoding`` asked for (see :func:`audio_encoding_for`)."""
        return audio_encoding_for(self._encoding, self.sample_rate)

    def language_to_service_language(self, language: str) -> str | None:
        """Inworld's tag for ``language`` (see :func:`language_to_inworld_language`)."""
        return language_to_inworld_language(language)

    def synthesis_config(self) -> dict[str, Any]:
        """The synthesis options of the current settings (see :func:`synthesis_config`)."""
        return synthesis_config(
            self._settings, self.audio_encoding, self.sample_rate, self._timestamp_transport
        )


class InworldTTSService(TTSService, _InworldOptions):
    """Inworld over its bidirectional WebSocket (see the module docstring).

    1.14 style: ``InworldTTSService(api_key=..., settings=InworldTTSService.Settings(
    voice="Ashley", model="inworld-tts-2"))``. ``url``: the socket's address (Inworld's, else
    ``$CALLPIPE_INWORLD_URL``; the documented path is added to one without a path).
    ``auto_mode`` (None: on with whole sentences), ``apply_text_normalization`` (``"ON"`` /
    ``"OFF"``) and ``timestamp_transport_strategy`` go into each context's ``create``.
    """

    emits_word_timestamps = True
    Settings = InworldTTSSettings
    _settings: InworldTTSSettings

    class InputParams(BaseModel):
        """The older form of the settings (``settings=`` wins over these)."""

        model_config = ConfigDict(extra="forbid")

        temperature: float | None = None
        speaking_rate: float | None = None
        apply_text_normalization: str | None = None
        max_buffer_delay_ms: int | None = None
        buffer_char_threshold: int | None = None
        auto_mode: bool | None = True
        timestamp_transport_strategy: Literal["ASYNC", "SYNC"] | None = "ASYNC"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        model: str | None = None,
        url: str | None = None,
        sample_rate: int | None = None,
        encoding: str | None = None,
        auto_mode: bool | None = None,
        apply_text_normalization: str | None = None,
        timestamp_transport_strategy: Literal["ASYNC", "SYNC"] | None = "ASYNC",
        params: InputParams | None = None,
        settings: InworldTTSSettings | None = None,
        aggregate_sentences: bool | None = None,
        text_aggregation_mode: Any = None,
        append_trailing_space: bool = True,
        **kwargs: Any,
    ) -> None:
        if auto_mode is None:
            auto_mode = aggregate_sentences is not False and text_aggregation_mode in (
                None,
                "sentence",
            )
        buffer_delay: int | None = None
        buffer_chars: int | None = None
        if params is not None:
            if settings is None:
                if params.apply_text_normalization is not None:
                    apply_text_normalization = params.apply_text_normalization
                if params.timestamp_transport_strategy is not None:
                    timestamp_transport_strategy = params.timestamp_transport_strategy
                if params.auto_mode is not None:
                    auto_mode = params.auto_mode
            buffer_delay = params.max_buffer_delay_ms
            buffer_chars = params.buffer_char_threshold
        store = _initial_settings(
            voice_id,
            model,
            params.speaking_rate if params else None,
            params.temperature if params else None,
            settings,
        )
        super().__init__(
            model=str(store.model),
            sample_rate=sample_rate,
            aggregate_sentences=aggregate_sentences,
            text_aggregation_mode=text_aggregation_mode,
            **kwargs,
        )
        self._settings.apply_update(store)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "INWORLD_API_KEY")
        address = base_url(url, INWORLD_URL_ENV, INWORLD_URL)
        self._url = address if urlsplit(address).path not in ("", "/") else address + SOCKET_PATH
        self._encoding = _check_encoding(encoding)
        self._auto_mode = auto_mode
        self._apply_text_normalization = apply_text_normalization
        self._timestamp_transport = timestamp_transport_strategy
        self._max_buffer_delay_ms = buffer_delay or 3000
        self._buffer_char_threshold = buffer_chars or 250
        self._append_trailing_space = append_trailing_space
        self._ws: ProviderWebsocket | None = None
        self._replies: dict[str, _Reply] = {}

    @property
    def url(self) -> str:
        return self._url

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """IPA between slashes (see :func:`format_inworld_pronunciation`)."""
        return format_inworld_pronunciation(word, ipa)

    def create_message(self, context_id: str) -> dict[str, Any]:
        """The ``create`` message opening ``context_id`` with the current settings."""
        config = self.synthesis_config()
        if self._apply_text_normalization is not None:
            config["applyTextNormalization"] = self._apply_text_normalization
        config["autoMode"] = self._auto_mode
        config["maxBufferDelayMs"] = self._max_buffer_delay_ms
        config["bufferCharThreshold"] = self._buffer_char_threshold
        return {"create": config, "contextId": context_id}

    # ------------------------------------------------------------------ connection

    def _new_socket(self) -> ProviderWebsocket:
        ws: ProviderWebsocket

        async def reconnected() -> None:
            if ws is self._ws:
                await self._drop_open_replies()

        async def failed(message: str) -> None:
            if ws is self._ws:
                await self.report_error(message, reason="disconnected")
                await self._drop_open_replies()

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self._url,
            headers={"Authorization": f"Basic {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=reconnected,
            on_failed=failed,
            auth_hint=_KEY_HINT,
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Inworld cannot produce {self.sample_rate} Hz audio")
        self._ws = self._new_socket()
        await self._ws.connect()

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _drop_open_replies(self) -> None:
        # A new socket has none of the old one's contexts: close the replies, don't wait.
        for context_id in list(self._replies):
            self.context_failed(context_id)
            await self.finish_context(context_id)

    # ------------------------------------------------------------------ requests

    async def _send(self, context_id: str, message: dict[str, Any]) -> bool:
        if self._ws is None or not await self._ws.send(json.dumps(message)):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self.finish_context(context_id)
            return False
        return True

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if reply is None:
            reply = self._replies[context_id] = _Reply()
            if not await self._send(context_id, self.create_message(context_id)):
                return
        if self._aggregate_sentences:
            piece = text.strip() + (" " if self._append_trailing_space else "")
        else:
            piece = text
        send_text: dict[str, Any] = {"text": piece}
        if self._aggregate_sentences and not self._auto_mode:
            send_text["flush_context"] = {}  # a whole sentence: speak it now
        reply.texts += 1
        await self._send(context_id, {"send_text": send_text, "contextId": context_id})

    async def flush_context(self, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if not self.has_context(context_id) or reply is None or not reply.texts:
            if reply is not None and self._ws is not None:
                await self._ws.send(json.dumps(_close(context_id)), wait_secs=0)
            await self.finish_context(context_id)
            return
        reply.closing = True
        await self._send(context_id, _close(context_id))  # flushes, then closes

    async def cancel_context(self, context_id: str) -> None:
        # An interruption cancels its replies one by one; each closes its Inworld context.
        dropped = [c for c in self._replies if c == context_id or c not in self._contexts]
        for cid in dropped:
            reply = self._replies.pop(cid)
            if not reply.closing and self._ws is not None and self._ws.connected:
                await self._ws.send(json.dumps(_close(cid)), wait_secs=0)

    async def finish_context(self, context_id: str | None) -> None:
        """Close a reply: at ``contextClosed``, an error or a drop, or the base class's when
        Inworld never answered (``context_timeout_secs``)."""
        if context_id is not None:
            self._replies.pop(context_id, None)
        await super().finish_context(context_id)

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("%s: a message that is not JSON", self)
            return
        if not isinstance(message, dict):
            return
        result = message.get("result")
        if not isinstance(result, dict):
            error = message.get("error")
            if error is not None:
                await self.report_error(f"{self}: Inworld error: {error}", reason="provider")
            return
        context_id = result.get("contextId")
        reply = self._replies.get(context_id) if isinstance(context_id, str) else None
        status = result.get("status")
        if isinstance(status, dict) and status.get("code", 0) != 0:
            await self._on_error(context_id, reply, status)
            return
        if reply is None or not isinstance(context_id, str):
            return  # an interrupted or finished reply
        chunk = result.get("audioChunk")
        if isinstance(chunk, dict):
            ctx = self._contexts.get(context_id)
            if reply.generation_start is None:
                reply.generation_start = ctx.audio_secs if ctx is not None else 0.0
            data = chunk.get("audioContent")
            if isinstance(data, str) and data:
                await self._audio(context_id, data)
            words = _words(chunk.get("timestampInfo"), reply.generation_start)
            if words:
                await self.add_word_timestamps(context_id, words)
        if "flushCompleted" in result:
            reply.generation_start = None
        if "contextClosed" in result:
            await self.finish_context(context_id)

    async def _audio(self, context_id: str, data: str) -> None:
        try:
            pcm = _decode(base64.b64decode(data), self.audio_encoding)
        except (binascii.Error, ProtocolError) as exc:
            await self.report_error(f"{self}: unreadable audio from Inworld: {exc}")
            return
        await self.append_audio(context_id, pcm)

    async def _on_error(
        self, context_id: Any, reply: _Reply | None, status: dict[str, Any]
    ) -> None:
        text = str(status.get("message") or "error")
        if status.get("code") == _NOT_FOUND and reply is None:
            logger.debug("%s: context %s is already gone: %s", self, context_id, text)
            return
        await self.report_error(
            f"{self}: Inworld error {status.get('code')}: {text}", reason="provider"
        )
        if reply is not None and isinstance(context_id, str):
            self.context_failed(context_id)
            await self.finish_context(context_id)


def _close(context_id: str) -> dict[str, Any]:
    return {"close_context": {}, "contextId": context_id}


# ---------------------------------------------------------------------- HTTP


class InworldHttpTTSService(HTTPStreamTTSService, _InworldOptions):
    """Inworld over HTTP: one ``POST /tts/v1/voice:stream`` per sentence, the audio played as the
    newline-delimited JSON answer streams in, words timed by ``timestampInfo``.

    ``streaming=False`` posts to ``/tts/v1/voice`` instead (one JSON answer with all the
    audio). ``base_url``: the API's origin (Inworld's, else ``$CALLPIPE_INWORLD_API_URL``).
    ``aiohttp_session`` (Pipecat's, required there) is accepted and not used: requests go
    through callpipe's pooled client. Settings updates apply from the next sentence; an
    interruption closes the response in flight.
    """

    emits_word_timestamps = True
    Settings = InworldTTSSettings
    _settings: InworldTTSSettings
    key_hint = _KEY_HINT

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (``settings=`` replaces it)."""

        model_config = ConfigDict(extra="forbid")

        temperature: float | None = None
        speaking_rate: float | None = None
        timestamp_transport_strategy: Literal["ASYNC", "SYNC"] | None = "ASYNC"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        aiohttp_session: Any = None,
        voice_id: str | None = None,
        model: str | None = None,
        streaming: bool = True,
        sample_rate: int | None = None,
        encoding: str | None = None,
        timestamp_transport_strategy: Literal["ASYNC", "SYNC"] | None = "ASYNC",
        params: InputParams | None = None,
        settings: InworldTTSSettings | None = None,
        base_url: str | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        if params is not None and settings is None and params.timestamp_transport_strategy:
            timestamp_transport_strategy = params.timestamp_transport_strategy
        store = _initial_settings(
            voice_id,
            model,
            params.speaking_rate if params else None,
            params.temperature if params else None,
            settings,
        )
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings.apply_update(store)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "INWORLD_API_KEY")
        self._encoding = _check_encoding(encoding)
        self._timestamp_transport = timestamp_transport_strategy
        self._streaming = streaming
        self._api_base = _api_base(base_url)
        self._timeout = timeout_secs
        self.configure_http(self._api_base, self._headers_for_key(), timeout_secs=timeout_secs)

    def _headers_for_key(self) -> dict[str, str]:
        return {"Authorization": f"Basic {self._api_key}"}

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """IPA between slashes (see :func:`format_inworld_pronunciation`)."""
        return format_inworld_pronunciation(word, ipa)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Inworld cannot produce {self.sample_rate} Hz audio")
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The request body for ``text`` with the current settings."""
        return {"text": text, **self.synthesis_config()}

    async def run_tts(self, text: str, context_id: str) -> None:
        ctx = self._contexts.get(context_id)
        offset = ctx.audio_secs if ctx is not None else 0.0

        async def read(response: httpx.Response, cid: str) -> None:
            if self._streaming:
                await self._read_stream(response, cid, offset)
            else:
                await self._read_whole(response, cid, offset)

        path = STREAM_PATH if self._streaming else SYNC_PATH
        await self.stream_speech(context_id, path, self.request_body(text), read)

    async def _result(self, context_id: str, result: dict[str, Any], offset: float) -> None:
        data = result.get("audioContent")
        if isinstance(data, str) and data:
            try:
                pcm = _decode(base64.b64decode(data), self.audio_encoding)
            except (binascii.Error, ProtocolError) as exc:
                self.sentence_failed(context_id)
                await self.report_error(f"{self}: unreadable audio from Inworld: {exc}")
                return
            await self.append_audio(context_id, pcm)
        words = _words(result.get("timestampInfo"), offset)
        if words:
            await self.add_word_timestamps(context_id, words)

    async def _read_stream(self, response: httpx.Response, context_id: str, offset: float) -> None:
        async for message in json_lines(response, self):
            if message.get("error") is not None:
                self.sentence_failed(context_id)  # the rest of the sentence never comes
                await self.report_error(
                    f"{self}: Inworld stream error: {message['error']}", reason="provider"
                )
                return
            result = message.get("result")
            if isinstance(result, dict):
                await self._result(context_id, result, offset)

    async def _read_whole(self, response: httpx.Response, context_id: str, offset: float) -> None:
        try:
            message = json.loads(await response.aread())
        except ValueError:
            message = None
        if not isinstance(message, dict) or "audioContent" not in message:
            self.sentence_failed(context_id)
            await self.report_error(f"{self}: no audioContent in Inworld's answer")
            return
        await self._result(context_id, message, offset)


def _api_base(explicit: str | None) -> str:
    return base_url(explicit, INWORLD_API_URL_ENV, INWORLD_API_URL)
