"""CartesiaTTSService: Cartesia's TTS WebSocket with contexts, continuations and word timestamps.

One socket, opened when the pipeline starts, authenticated the way Cartesia's docs and official
SDK do (``Authorization: Bearer <key>`` and a ``Cartesia-Version`` header). Each bot reply is one
Cartesia context: every sentence is sent as an input with ``continue: true`` (prosody carries
across sentences) and ``max_buffer_delay_ms: 0`` (we send whole sentences: without it Cartesia
buffers text lacking end punctuation for up to 3 s), the end of the reply sends an empty
``continue: false`` input, and the server's ``done`` closes the context.

A Cartesia context expires about a second after its last audio. When the next sentence of a
reply comes later than that (a slow LLM, a tool call), it is sent on a fresh Cartesia context
that continues the same reply; an "expired" error for a context resends its last sentence on a
fresh one. Nothing of the reply is lost either way.

Audio is requested at the pipeline's output rate, so nothing is resampled; at 8 kHz it comes as
``pcm_mulaw`` (half the bytes on the wire; G.711 decoding is exact for what the phone line
carries). Word timestamps put each ``TTSTextFrame`` right after the audio of its word. Speed and
emotion of ``params`` go in ``generation_config`` for sonic-3 models and in the voice's
``__experimental_controls`` for older ones. Pipecat 1.14's ``generation_config`` setting (a
:class:`GenerationConfig` or a dict of ``volume``, ``speed``, ``emotion``) is sent as given in
every request's ``generation_config``, its fields winning over those from ``params``; the
``pronunciation_dict_id`` setting is sent as the request's ``pronunciation_dict_id`` (sonic-3).
An interruption sends ``{"context_id", "cancel": true}``; audio still in flight for a cancelled
context is dropped by id.

With ``aggregate_sentences=False`` the LLM's text is sent as it streams, verbatim (Cartesia
joins a context's inputs as they are), and Cartesia's own buffering decides when to speak.
``extra_headers`` are added to the handshake's (a header of the same name replaces ours, as in
Pipecat). The WebSocket only streams ``raw`` audio, so ``container`` can only be ``raw``.

The ``language`` setting (a :class:`~callpipe.transcriptions.language.Language` or any BCP 47
tag) is sent as the ISO 639-1 code Cartesia documents for its sonic-3 models (``es`` for
``es-MX``, ``no`` for ``nb``, ``tl`` for ``fil``); a language Cartesia does not list is sent as
its base code, with one warning when it is set.

Pronunciations (Pipecat 1.14's ``pronunciation_transform_ipa``) go inline as Cartesia documents
them: each word as a ``<<…>>`` block of ``|``-separated IPA phones, stress marks their own
element just before the vowel they stress (:func:`format_cartesia_pronunciation`). Every Sonic
model reads them, except ``sonic-2024-10-19`` in a language other than English
(:func:`cartesia_reads_pronunciations`); with a model that cannot, the words are spoken as
written.

:class:`CartesiaHttpTTSService` (Pipecat 1.14's HTTP form) posts each sentence to ``/tts/bytes``
and plays the raw audio as the body streams in; see its docstring.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import (
    CARTESIA_API_URL_ENV,
    CARTESIA_URL_ENV,
    base_url,
    defaulted_base_url,
)
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, copy_given, require_voice, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.text.phonemes import ipa_phones, normalize_ipa, stress_before_vowels
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

CARTESIA_URL = "wss://api.cartesia.ai"
_WS_PATH = "/tts/websocket"
"""Appended to ``url`` unless it ends with it (Pipecat 1.14 takes the socket's whole URL)."""
CARTESIA_VERSION = "2026-03-01"
DEFAULT_MODEL = "sonic-3"
"""Cartesia's documented sonic-3 id. sonic-2 stopped serving Italian, Dutch, Polish, Russian,
Swedish, Turkish and Hindi on 2026-06-01 (Cartesia's API changes page). Pipecat 1.14 defaults to
an id Cartesia's docs do not list."""
SUPPORTED_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
SONIC3_SPEEDS = {"slowest": 0.6, "slow": 0.8, "normal": 1.0, "fast": 1.2, "fastest": 1.5}

CARTESIA_LANGUAGES = (
    "en fr de es pt zh ja hi it ko nl pl ru sv tr tl bg ro ar cs el fi hr ms sk da ta uk hu no "
    "vi bn th he ka id te gu kn ml mr pa"
).split()
"""The ``language`` codes Cartesia documents for sonic-3 (ISO 639-1; sonic-2 takes fewer)."""
_LANGUAGE_MAP = {code: code for code in CARTESIA_LANGUAGES} | {
    "nb": "no",  # Cartesia's Norwegian is "no"
    "fil": "tl",  # and its Filipino/Tagalog "tl"
    "cmn": "zh",
}


def language_to_cartesia_language(language: str) -> str:
    """Cartesia's code for a language tag: ``Language.ES_MX`` -> ``"es"`` (a plain ``str``).

    A language Cartesia does not list goes as its base code, logged once at WARNING.
    """
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def format_cartesia_pronunciation(word: str, ipa: str) -> str | None:
    """``ipa`` as Cartesia's inline phonemes: one ``<<…>>`` block per word of the IPA, its
    phones between ``|`` and each stress mark an element just before its vowel
    (``mɛtˈfɔɹmɪn`` -> ``<<m|ɛ|t|f|ˈ|ɔ|ɹ|m|ɪ|n>>``); None for an empty pronunciation. The block
    replaces ``word``, which is not used."""
    del word
    blocks = []
    for spoken in normalize_ipa(ipa).split():
        phones = stress_before_vowels(ipa_phones(spoken))
        if phones:
            blocks.append("<<" + "|".join(phones) + ">>")
    return " ".join(blocks) or None


PRONUNCIATIONS_ENGLISH_ONLY_MODELS = frozenset({"sonic-2024-10-19"})
"""Sonic models that read inline phonemes in English only (Cartesia's custom pronunciation
guide)."""


def cartesia_reads_pronunciations(model: str | None, language: str | None) -> bool:
    """Whether ``model`` reads inline ``<<…>>`` phonemes in ``language`` (Cartesia's code, None:
    unset). Every model of the Sonic family does, ``sonic-2024-10-19`` in English only."""
    if not model or not model.startswith("sonic"):
        return False
    if model in PRONUNCIATIONS_ENGLISH_ONLY_MODELS:
        return (language or "en") == "en"
    return True


Encoding = Literal["auto", "pcm_s16le", "pcm_mulaw"]
STREAMING_CONTAINER = "raw"
"""The WebSocket's only ``output_format.container`` (``wav``, ``mp3``: the /tts/bytes API)."""


@dataclass
class _Reply:
    """The Cartesia contexts one reply was spoken on (a new one after an expiry)."""

    ids: list[str] = field(default_factory=list)
    offsets: dict[str, float] = field(default_factory=dict)
    last_text: str = ""
    last_audio_at: float | None = None
    awaiting_audio: bool = False
    flushed: bool = False
    sent: list[str] = field(default_factory=list)
    """All the reply's text sent so far: a reply none of whose audio went out is spoken again
    on a new socket after a drop."""


class GenerationConfig(BaseModel):
    """A request's ``generation_config`` (sonic-3 models; ``None``: Cartesia's default).

    ``volume`` 0.5 to 2.0 and ``speed`` 0.6 to 1.5 are multipliers of the voice's own;
    ``emotion`` is one emotion name, e.g. ``"content"`` or ``"excited"``.
    """

    volume: float | None = None
    speed: float | None = None
    emotion: str | None = None


def _config_fields(value: Any) -> dict[str, Any]:
    """The fields set in a ``generation_config`` setting (a :class:`GenerationConfig` or dict)."""
    if isinstance(value, GenerationConfig):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if v is not None}
    return {}


@dataclass
class CartesiaTTSSettings(TTSSettings):
    """``CartesiaTTSService.Settings``: voice, model, language, plus Cartesia's
    ``generation_config`` and ``pronunciation_dict_id`` (sent with every request)."""

    generation_config: GenerationConfig | Mapping[str, Any] | None | NotGiven = field(
        default_factory=unset
    )
    pronunciation_dict_id: str | None | NotGiven = field(default_factory=unset)


def _wire_encoding(encoding: str, sample_rate: int) -> str:
    """The ``output_format.encoding`` for an ``encoding`` argument: ``"auto"`` is μ-law on an
    8 kHz call (no resampling, half the bytes), else 16-bit PCM."""
    if encoding == "auto":
        return "pcm_mulaw" if sample_rate == 8000 else "pcm_s16le"
    return encoding


class CartesiaTTSService(TTSService):
    """Cartesia Sonic over WebSocket (see the module docstring).

    1.14 style: ``CartesiaTTSService(api_key=..., settings=CartesiaTTSService.Settings(
    voice="...", model="sonic-3"))``; updates of the voice, model, language,
    ``generation_config`` and ``pronunciation_dict_id`` (``TTSUpdateSettingsFrame``) apply
    from the next sentence, as each one is a request.

    ``url``: the socket's address, ``wss://api.cartesia.ai/tts/websocket`` as Pipecat takes it,
    or just its origin (``/tts/websocket`` is then appended).
    """

    emits_word_timestamps = True
    Settings = CartesiaTTSSettings
    _settings: CartesiaTTSSettings

    class InputParams(BaseModel):
        model_config = ConfigDict(extra="forbid")

        language: str | None = "en"
        speed: str | float | None = None
        emotion: list[str] | None = None
        volume: float | None = None
        """sonic-3 only: 0.5 to 2.0."""
        generation_config: GenerationConfig | None = None
        """Pipecat 1.14's form of the sonic-3 controls; its fields win over the ones above."""
        pronunciation_dict_id: str | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        model: str | None = None,
        url: str | None = None,
        cartesia_version: str = CARTESIA_VERSION,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        encoding: Encoding = "auto",
        container: str = STREAMING_CONTAINER,
        max_buffer_delay_ms: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        context_expiry_secs: float = 0.8,
        settings: CartesiaTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if container != STREAMING_CONTAINER:
            raise ConfigurationError(
                f"container={container!r}: Cartesia's WebSocket streams raw audio only (wav "
                "and mp3 are containers of its /tts/bytes API); use container='raw'"
            )
        if settings is not None and isinstance(settings.model, str) and model is None:
            model = settings.model
        super().__init__(model=model or DEFAULT_MODEL, sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "CARTESIA_API_KEY")
        self._voice_id = require_voice(type(self).__name__, voice_id, settings)
        self._url = base_url(url, CARTESIA_URL_ENV, CARTESIA_URL)
        self._version = cartesia_version
        self._extra_headers = dict(extra_headers or {})
        self._params = params or CartesiaTTSService.InputParams()
        self._encoding = encoding
        if max_buffer_delay_ms is None and self._aggregate_sentences:
            # Whole sentences: generate at once (Cartesia's default holds text 3 s).
            max_buffer_delay_ms = 0
        self._max_buffer_delay_ms = max_buffer_delay_ms
        self._expiry_secs = context_expiry_secs
        self._service_language: str | None = None
        """The ``language`` code sent (Cartesia's form of the ``language`` setting)."""
        self._ws: ProviderWebsocket | None = None
        self._replies: dict[str, _Reply] = {}
        self._owner: dict[str, str] = {}
        """Cartesia context id -> our reply context id."""
        if settings is not None:
            copy_given(settings, self._params, ("language",))
        self._settings.apply_update(
            CartesiaTTSSettings(
                voice=self._voice_id,
                language=self._params.language,
                generation_config=self._params.generation_config,
                pronunciation_dict_id=self._params.pronunciation_dict_id,
            )
        )
        if settings is not None:  # settings= wins over params, field by field
            self._settings.apply_update(
                CartesiaTTSSettings(
                    generation_config=settings.generation_config,
                    pronunciation_dict_id=settings.pronunciation_dict_id,
                )
            )
        self._set_language(self._params.language)

    def _set_language(self, language: str | None) -> None:
        self._params.language = language
        self._service_language = language_to_cartesia_language(language) if language else None

    @property
    def wire_encoding(self) -> str:
        """The ``output_format.encoding`` requested."""
        return _wire_encoding(self._encoding, self.sample_rate)

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """See :func:`format_cartesia_pronunciation`."""
        return format_cartesia_pronunciation(word, ipa)

    @property
    def supports_pronunciations(self) -> bool:
        """The model and language in use read inline phonemes (see
        :func:`cartesia_reads_pronunciations`)."""
        return cartesia_reads_pronunciations(self.model_name, self._service_language)

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        voice = self._settings.voice
        if isinstance(voice, str) and voice:
            self._voice_id = voice
        if "language" in changed:
            language = self._settings.language
            self._set_language(language if isinstance(language, str) else None)

    # ------------------------------------------------------------------ connection

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ConfigurationError(f"Cartesia cannot produce {self.sample_rate} Hz audio")
        self._ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self._url if self._url.endswith(_WS_PATH) else self._url + _WS_PATH,
            headers=self._handshake_headers(),
            on_message=self._on_message,
            on_reconnected=self._resend_or_drop_open_contexts,
            on_failed=self._on_socket_failed,
            auth_hint="Check api_key / CARTESIA_API_KEY.",
        )
        await self._ws.connect()

    def _handshake_headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key}", "Cartesia-Version": self._version}
        replaced = {name.lower() for name in self._extra_headers}
        # Header names are case-insensitive: an extra header replaces ours, never doubles it.
        headers = {k: v for k, v in headers.items() if k.lower() not in replaced}
        return headers | self._extra_headers

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _resend_or_drop_open_contexts(self) -> None:
        """After a reconnect: a reply none of whose audio has gone out yet (it waits behind the
        one playing) is sent again, whole, on the new socket, so the caller hears it once and
        complete; the one cut mid-speech is closed."""
        for context_id in list(self._contexts):
            reply = self._replies.get(context_id)
            if reply is None or not reply.sent or not self.restart_context(context_id):
                self.context_failed(context_id)
                await self._finish(context_id)
                continue
            reply.ids.clear()
            cid = self._new_cartesia_context(context_id, reply)
            reply.awaiting_audio = True
            logger.info("%s: socket replaced; sending an unheard reply again as %s", self, cid)
            text = "".join(reply.sent)
            await self._send(context_id, self._request(cid, text, more=not reply.flushed))

    async def _drop_open_contexts(self) -> None:
        # A new socket knows nothing of the old contexts: close them rather than wait forever.
        for context_id in list(self._contexts):
            self.context_failed(context_id)
            await self._finish(context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_open_contexts()

    async def _finish(self, context_id: str) -> None:
        reply = self._replies.pop(context_id, None)
        for cid in reply.ids if reply is not None else ():
            self._owner.pop(cid, None)
        await self.finish_context(context_id)

    # ------------------------------------------------------------------ requests

    def _controls(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(generation_config, __experimental_controls)`` for the model in use."""
        speed, emotion = self._params.speed, self._params.emotion
        if (self.model_name or "").startswith("sonic-3"):
            config: dict[str, Any] = {}
            if isinstance(speed, str):
                speed = SONIC3_SPEEDS.get(speed)
            if speed is not None:
                config["speed"] = float(speed)
            if emotion:
                config["emotion"] = emotion[0].split(":")[0]
            if self._params.volume is not None:
                config["volume"] = self._params.volume
            return config, {}
        controls: dict[str, Any] = {}
        if speed is not None:
            controls["speed"] = speed
        if emotion:
            controls["emotion"] = emotion
        return {}, controls

    def _request(self, context_id: str, transcript: str, *, more: bool) -> dict[str, Any]:
        config, controls = self._controls()
        config |= _config_fields(self._settings.generation_config)
        voice: dict[str, Any] = {"mode": "id", "id": self._voice_id}
        if controls:
            voice["__experimental_controls"] = controls
        request: dict[str, Any] = {
            "model_id": self.model_name,
            "transcript": transcript,
            "voice": voice,
            "context_id": context_id,
            "output_format": {
                "container": STREAMING_CONTAINER,
                "encoding": self.wire_encoding,
                "sample_rate": self.sample_rate,
            },
            "add_timestamps": True,
            "continue": more,
        }
        if self._max_buffer_delay_ms is not None:
            request["max_buffer_delay_ms"] = self._max_buffer_delay_ms
        if config:
            request["generation_config"] = config
        if self._service_language:
            request["language"] = self._service_language
        dictionary = self._settings.pronunciation_dict_id
        if isinstance(dictionary, str) and dictionary:
            request["pronunciation_dict_id"] = dictionary
        return request

    async def _send(self, context_id: str, payload: dict[str, Any]) -> None:
        if self._ws is None or not await self._ws.send(json.dumps(payload)):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self._finish(context_id)

    def _new_cartesia_context(self, context_id: str, reply: _Reply) -> str:
        cid = context_id if not reply.ids else f"{context_id}-{len(reply.ids)}"
        reply.ids.append(cid)
        reply.offsets[cid] = self._contexts[context_id].audio_secs
        reply.last_audio_at = None
        self._owner[cid] = context_id
        return cid

    def _expired(self, reply: _Reply) -> bool:
        """True when the current Cartesia context may have expired (idle since its audio)."""
        if reply.awaiting_audio or reply.last_audio_at is None:
            return False
        return self.clock.now() - reply.last_audio_at > self._expiry_secs

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._replies.setdefault(context_id, _Reply())
        if not reply.ids:
            cid = self._new_cartesia_context(context_id, reply)
        elif self._expired(reply):
            old = reply.ids[-1]
            cid = self._new_cartesia_context(context_id, reply)
            logger.debug("%s: context %s idle past expiry; continuing on %s", self, old, cid)
        else:
            cid = reply.ids[-1]
        # Inputs of a context are concatenated verbatim: keep a space between sentences, and
        # send streamed text (no sentence aggregation) as it came, spaces and all.
        reply.last_text = text.strip() + " " if self._aggregate_sentences else text
        reply.awaiting_audio = True
        reply.sent.append(reply.last_text)
        await self._send(context_id, self._request(cid, reply.last_text, more=True))

    async def flush_context(self, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if not self.has_context(context_id) or reply is None or not reply.ids:
            await self.finish_context(context_id)
            return
        reply.flushed = True
        if self._expired(reply):
            # Its audio is all here and the context is gone: the reply is complete.
            await self._finish(context_id)
            return
        await self._send(context_id, self._request(reply.ids[-1], "", more=False))

    async def cancel_context(self, context_id: str) -> None:
        reply = self._replies.pop(context_id, None)
        if reply is None:
            return
        for cid in reply.ids:
            self._owner.pop(cid, None)
            if self._ws is not None and self._ws.connected:
                await self._ws.send(json.dumps({"context_id": cid, "cancel": True}), wait_secs=0)

    # ------------------------------------------------------------------ responses

    def _decode(self, data: str) -> bytes:
        raw = base64.b64decode(data)
        return ulaw_to_pcm(raw) if self.wire_encoding == "pcm_mulaw" else raw

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        cid = message.get("context_id")
        context_id = self._owner.get(cid) if isinstance(cid, str) else None
        reply = self._replies.get(context_id) if context_id is not None else None
        kind = message.get("type")
        if kind == "error":
            await self._on_error(message, context_id, reply, cid)
            return
        if context_id is None or reply is None:
            return  # a cancelled or finished reply
        current = bool(reply.ids) and cid == reply.ids[-1]
        if kind == "chunk":
            data = message.get("data")
            if data:
                if current:
                    reply.last_audio_at = self.clock.now()
                    reply.awaiting_audio = False
                await self.append_audio(context_id, self._decode(data))
        elif kind == "timestamps":
            timing = message.get("word_timestamps") or {}
            offset = reply.offsets.get(str(cid), 0.0)
            words = zip(
                timing.get("words", []),
                timing.get("start", []),
                timing.get("end", []),
                strict=False,
            )
            await self.add_word_timestamps(
                context_id, [(w, offset + float(s), offset + float(e)) for w, s, e in words]
            )
        elif kind == "flush_done":
            if current:
                reply.awaiting_audio = False
        elif kind == "done" and current:
            if reply.flushed:
                await self._finish(context_id)
            else:
                # Cartesia ended the context early (e.g. expired): the reply goes on a new one.
                reply.awaiting_audio = False
                reply.last_audio_at = self.clock.now() - self._expiry_secs - 1.0

    async def _on_error(
        self, message: dict[str, Any], context_id: str | None, reply: _Reply | None, cid: Any
    ) -> None:
        title = message.get("title") or message.get("error_code") or "error"
        detail = message.get("message") or message.get("error") or ""
        text = f"{title}: {detail}" if detail else str(title)
        if context_id is None or reply is None:
            if cid is None:
                await self.report_error(f"{self}: Cartesia error: {text}", reason="provider")
            return
        if cid != reply.ids[-1]:
            # About a context this reply already left behind (e.g. it expired): not our problem.
            logger.debug("%s: Cartesia error for retired context %s: %s", self, cid, text)
            return
        expired = "expire" in text.lower() or "context has closed" in text.lower()
        if expired and reply.last_text:
            # The context timed out before our next sentence: speak it on a fresh context.
            logger.info("%s: Cartesia context %s expired; continuing on a new one", self, cid)
            new = self._new_cartesia_context(context_id, reply)
            await self._send(context_id, self._request(new, reply.last_text, more=True))
            if reply.flushed:
                await self._send(context_id, self._request(new, "", more=False))
            return
        await self.report_error(f"{self}: Cartesia error: {text}", reason="provider")
        self.context_failed(context_id)
        await self._finish(context_id)


# ---------------------------------------------------------------------- HTTP (/tts/bytes)

CARTESIA_API_URL = "https://api.cartesia.ai"
HTTP_ENCODINGS = ("auto", "pcm_s16le", "pcm_mulaw")


class CartesiaHttpTTSService(HTTPStreamTTSService):
    """Cartesia Sonic over HTTP: one ``POST /tts/bytes`` per sentence, audio read as it streams.

    The request carries ``Cartesia-Version`` and the key in ``X-API-Key`` (as Pipecat sends it;
    ``extra_headers`` may replace either), and a body of ``model_id``, ``transcript``, ``voice``
    (``{"mode": "id", "id"}``), ``output_format`` (``raw`` at the pipeline's output rate:
    ``pcm_mulaw`` on an 8 kHz call unless ``encoding`` says otherwise, else ``pcm_s16le``),
    ``language`` (Cartesia's code, as for the WebSocket service), and the ``generation_config``
    and ``pronunciation_dict_id`` settings when set. Each sentence's ``TTSTextFrame`` follows its
    audio (the bytes endpoint gives no word timing). Settings updates apply from the next
    sentence; an interruption closes the response in flight.

    ``base_url``: the API's origin; left at Cartesia's, ``$CALLPIPE_CARTESIA_API_URL`` replaces
    it. ``aiohttp_session`` (Pipecat's) is accepted and not used: requests go through callpipe's
    pooled client. ``container`` can only be ``raw`` (a WAV header or MP3 frames would be played
    as samples).
    """

    Settings = CartesiaTTSSettings
    _settings: CartesiaTTSSettings
    key_hint = "Check api_key / CARTESIA_API_KEY."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``)."""

        model_config = ConfigDict(extra="forbid")

        language: str | None = "en"
        generation_config: GenerationConfig | None = None
        pronunciation_dict_id: str | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        model: str | None = None,
        base_url: str = CARTESIA_API_URL,
        cartesia_version: str | None = None,
        aiohttp_session: Any = None,
        sample_rate: int | None = None,
        encoding: str = "auto",
        container: str = STREAMING_CONTAINER,
        params: InputParams | None = None,
        extra_headers: Mapping[str, str] | None = None,
        settings: CartesiaTTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        if container != STREAMING_CONTAINER:
            raise ConfigurationError(
                f"container={container!r}: CartesiaHttpTTSService plays raw audio only; "
                "use container='raw'"
            )
        if encoding not in HTTP_ENCODINGS:
            raise ConfigurationError(
                f"encoding={encoding!r}: use one of {', '.join(HTTP_ENCODINGS)}"
            )
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or DEFAULT_MODEL, sample_rate=sample_rate, **kwargs)
        name = type(self).__name__
        api_key = resolve_api_key(name, api_key, "CARTESIA_API_KEY")
        defaults = CartesiaTTSSettings(
            voice=require_voice(name, voice_id, settings),
            language="en",
            generation_config=None,
            pronunciation_dict_id=None,
        )
        if params is not None and settings is None:  # as in Pipecat: settings= replaces params
            defaults.language = params.language
            defaults.generation_config = params.generation_config
            defaults.pronunciation_dict_id = params.pronunciation_dict_id
        self._settings.apply_update(defaults)
        if settings is not None:
            self._settings.apply_update(settings)
        self._encoding = encoding
        self._service_language: str | None = None
        self._set_language(self._settings.language)
        headers = {
            "Cartesia-Version": cartesia_version or CARTESIA_VERSION,
            "X-API-Key": api_key,
        }
        replaced = {header.lower() for header in extra_headers or {}}
        headers = {k: v for k, v in headers.items() if k.lower() not in replaced}
        self.configure_http(
            defaulted_base_url(base_url, CARTESIA_API_URL_ENV, CARTESIA_API_URL),
            headers | dict(extra_headers or {}),
            timeout_secs=timeout_secs,
        )

    def _set_language(self, language: Any) -> None:
        code = language if isinstance(language, str) and language else None
        self._service_language = language_to_cartesia_language(code) if code else None

    @property
    def wire_encoding(self) -> str:
        """The ``output_format.encoding`` requested."""
        return _wire_encoding(self._encoding, self.sample_rate)

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """See :func:`format_cartesia_pronunciation`."""
        return format_cartesia_pronunciation(word, ipa)

    @property
    def supports_pronunciations(self) -> bool:
        """The model and language in use read inline phonemes (see
        :func:`cartesia_reads_pronunciations`)."""
        return cartesia_reads_pronunciations(self.model_name, self._service_language)

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if "language" in changed:
            self._set_language(self._settings.language)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ConfigurationError(f"Cartesia cannot produce {self.sample_rate} Hz audio")
        self._http()

    def request_body(self, transcript: str) -> dict[str, Any]:
        """The ``/tts/bytes`` body for ``transcript`` with the current settings."""
        body: dict[str, Any] = {
            "model_id": self.model_name,
            "transcript": transcript,
            "voice": {"mode": "id", "id": self._settings.voice},
            "output_format": {
                "container": STREAMING_CONTAINER,
                "encoding": self.wire_encoding,
                "sample_rate": self.sample_rate,
            },
        }
        if self._service_language:
            body["language"] = self._service_language
        config = _config_fields(self._settings.generation_config)
        if config:
            body["generation_config"] = config
        dictionary = self._settings.pronunciation_dict_id
        if isinstance(dictionary, str) and dictionary:
            body["pronunciation_dict_id"] = dictionary
        return body

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, "/tts/bytes", self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        ulaw = self.wire_encoding == "pcm_mulaw"
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, ulaw_to_pcm(chunk) if ulaw else chunk)
