"""ElevenLabsTTSService: ElevenLabs' multi-context streaming WebSocket.

One socket (``/v1/text-to-speech/{voice_id}/multi-stream-input``), opened at pipeline start,
asking for audio at the pipeline's output rate: ``ulaw_8000`` on an 8 kHz phone call (half the
bytes; G.711 decoding is exact for what the line carries), else ``pcm_<rate>``. ``auto_mode`` is
on when whole sentences are sent (the default): ElevenLabs then generates each as soon as it
arrives instead of waiting for its chunk schedule; with ``aggregate_sentences=False`` text goes
out as it comes and the chunk schedule is needed, so it is off unless asked for. Other socket
options are query parameters too: ``enable_ssml_parsing``, ``enable_logging``,
``apply_text_normalization``, ``language_code``, ``inactivity_timeout``. Each bot reply is a
context, opened with ``{"text": " ", "context_id", "voice_settings"?,
"pronunciation_dictionary_locators"?}``; the end of the reply sends a flush and ``close_context``,
and the server's final message (``isFinal``, or ``is_final`` as the SDK's model also allows)
closes it after the last audio. The keep-alive names the open context (a context-less one keeps
no context alive). ElevenLabs allows five open contexts per socket: older ones are closed
before a new one would exceed that. Character alignment is turned into words, each
``TTSTextFrame`` following its audio. An interruption closes the context; audio still arriving
for it is dropped by id.

``language_code`` is ISO 639-1 (``Language.PT_BR`` goes as ``pt``) and only some models take it
(:data:`MODEL_LANGUAGES`): for another model, or a language the model does not list, it is left
out (one WARNING) rather than have ElevenLabs refuse the socket.

Runtime settings: voice settings (stability, speed, ...) go in each context's first message, so
they apply from the next reply. Voice, model, language and ``apply_text_normalization`` are in
the URL: when a change alters the URL the socket is replaced, *between replies*. A reply whose
text already reached ElevenLabs finishes on the old socket in the old voice (its remaining
sentences too, since a context cannot move to another socket); once no reply is generating on
it, a new socket is opened in the background on the new URL and the old one closed with
``close_socket``. A reply that starts while an earlier one is still generating waits for that
(up to ``context_timeout_secs``; past it the reply goes on the old socket and the change
follows after it). So the caller never hears a reply cut off or a voice change mid-reply, and
the reconnect is usually done while the previous reply is still playing. If the new socket
cannot be opened (an unknown voice, say) an ``ErrorFrame`` says so and the old one stays.

Pronunciations (Pipecat 1.14's ``pronunciation_transform_ipa``) go as SSML phoneme tags,
``<phoneme alphabet="ipa" ph="mɛtˈfɔɹmɪn">Metformin</phoneme>``, one per word
(:func:`format_elevenlabs_pronunciation`). ElevenLabs reads them only with the models of
:data:`ELEVENLABS_PHONEME_MODELS` (others skip the word silently) and, on this socket, only with
``enable_ssml_parsing=True``; otherwise the words are sent as written.

:class:`ElevenLabsHttpTTSService` (Pipecat 1.14's HTTP form) posts each sentence to
``/v1/text-to-speech/{voice_id}/stream/with-timestamps``; see its docstring.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import (
    ELEVENLABS_API_URL_ENV,
    ELEVENLABS_URL_ENV,
    base_url,
    defaulted_base_url,
)
from callpipe.services._http_tts import HTTPStreamTTSService, json_lines
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, copy_given, require_voice, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.text.phonemes import normalize_ipa
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

ELEVENLABS_URL = "wss://api.elevenlabs.io"
SUPPORTED_RATES = (8000, 16000, 22050, 24000, 44100)
MAX_CONTEXTS = 5
"""Open contexts ElevenLabs allows on one multi-context socket."""
CLOSE_SOCKET = json.dumps({"close_socket": True})

V2_5_LANGUAGES = frozenset(
    "ar bg cs da de el en es fi fil fr hi hr hu id it ja ko ms nl no pl pt ro ru sk sv ta tr uk "
    "vi zh".split()
)
"""``language_code`` values of the Flash and Turbo v2.5 models (ElevenLabs' 32 languages)."""
V3_LANGUAGES = V2_5_LANGUAGES | frozenset(
    "af as az be bn bs ca ceb cy et fa ga gl gu ha he hy is jv ka kk kn ky lb ln lt lv mk ml mr "
    "ne ny pa ps sd sl so sr sw te th ur".split()
)
"""``language_code`` values of the Eleven v3 models (their 70+ languages)."""
V4_LANGUAGES = V3_LANGUAGES | frozenset("ast mi mn mt my oc or tg uz yue".split())
"""``language_code`` values of the Eleven v4 models (as Pipecat 1.14 lists them)."""
MODEL_LANGUAGES: dict[str, frozenset[str]] = {
    "eleven_flash_v2_5": V2_5_LANGUAGES,
    "eleven_turbo_v2_5": V2_5_LANGUAGES,
    "eleven_v3": V3_LANGUAGES,
    "eleven_v3_conversational": V3_LANGUAGES,
    "eleven_v4": V4_LANGUAGES,
    "eleven_v4_turbo": V4_LANGUAGES,
}
"""Models that take a ``language_code`` and the codes each accepts. Others (e.g.
``eleven_multilingual_v2``, which detects the language from the text) are sent none."""
_LANGUAGE_MAP = {code: code for code in V4_LANGUAGES} | {
    "nb": "no",  # Norwegian Bokmål: ElevenLabs' Norwegian
    "cmn": "zh",
    "tl": "fil",  # Tagalog: ElevenLabs' Filipino
    "jw": "jv",  # the old code for Javanese
}


ELEVENLABS_PHONEME_MODELS = frozenset(
    {"eleven_flash_v2", "eleven_turbo_v2", "eleven_monolingual_v1"}
)
"""The models that read SSML ``<phoneme>`` tags, as ElevenLabs' help center lists them (Eleven
Flash v2, Turbo v2 and English v1; English only). Others skip a tagged word silently."""


def format_elevenlabs_pronunciation(word: str, ipa: str) -> str | None:
    """``word`` in SSML phoneme tags saying ``ipa``:
    ``<phoneme alphabet="ipa" ph="mɛtˈfɔɹmɪn">Metformin</phoneme>``. A tag holds one word, so a
    phrase gets a tag per word and needs as many words of IPA (None otherwise, or when empty)."""
    words = word.split()
    spoken = normalize_ipa(ipa).split()
    if not words or len(words) != len(spoken):
        return None
    return " ".join(
        f'<phoneme alphabet="ipa" ph="{html.escape(ph)}">{html.escape(w, quote=False)}</phoneme>'
        for w, ph in zip(words, spoken, strict=True)
    )


def language_to_elevenlabs_language(language: str) -> str:
    """ElevenLabs' ISO 639-1 code for a language tag: ``Language.PT_BR`` -> ``"pt"`` (a plain
    ``str``). A language ElevenLabs does not list goes as its base code, logged at WARNING."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def model_language_code(
    model: str, language: str | None, warned: set[tuple[str, str]], owner: object = "ElevenLabs"
) -> str | None:
    """The ``language_code`` to send with ``model``: ISO 639-1, and only where the model takes
    that language (else None, with one WARNING per model and code noted in ``warned``)."""
    if not language:
        return None
    code = language_to_elevenlabs_language(language)
    accepted = MODEL_LANGUAGES.get(model)
    if accepted is not None and code in accepted:
        return code
    if (model, code) not in warned:
        warned.add((model, code))
        reason = "does not list it" if accepted is not None else "takes no language_code"
        logger.warning("%s: language %s not sent: %s %s", owner, code, model, reason)
    return None


def output_format_for(encoding: str, sample_rate: int) -> str:
    """The ``output_format`` for an ``encoding`` choice (``auto``: u-law at 8 kHz) and rate."""
    ulaw = encoding == "ulaw" or (encoding == "auto" and sample_rate == 8000)
    return "ulaw_8000" if ulaw else f"pcm_{sample_rate}"


_VOICE_FIELDS = ("stability", "similarity_boost", "style", "use_speaker_boost", "speed")


class PronunciationDictionaryLocator(BaseModel):
    """A pronunciation dictionary (and its version) for ElevenLabs to apply to every context.

    Pipecat 1.14 deprecates these in favour of client-side text replacement (a dictionary
    substitution changes the spoken words, so word timing no longer matches the text sent);
    they still work here, and word timing then follows ElevenLabs' normalized alignment.
    """

    pronunciation_dictionary_id: str
    version_id: str


def _locators(
    values: Sequence[PronunciationDictionaryLocator | Mapping[str, Any]] | None,
) -> list[PronunciationDictionaryLocator]:
    """Locator objects from locators, dicts or objects with the same two attributes."""
    result: list[PronunciationDictionaryLocator] = []
    for value in values or ():
        if isinstance(value, PronunciationDictionaryLocator):
            result.append(value)
        elif isinstance(value, Mapping):
            result.append(PronunciationDictionaryLocator.model_validate(dict(value)))
        else:
            result.append(
                PronunciationDictionaryLocator.model_validate(value, from_attributes=True)
            )
    return result


@dataclass
class ElevenLabsTTSSettings(TTSSettings):
    """``ElevenLabsTTSService.Settings``: voice, model, language and the voice settings."""

    stability: Any = field(default_factory=unset)
    similarity_boost: Any = field(default_factory=unset)
    style: Any = field(default_factory=unset)
    use_speaker_boost: Any = field(default_factory=unset)
    speed: Any = field(default_factory=unset)
    apply_text_normalization: Any = field(default_factory=unset)

    URL_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"voice", "model", "language", "apply_text_normalization"}
    )
    """In the socket URL: a change that alters the URL replaces the socket between replies."""
    VOICE_SETTINGS_FIELDS: ClassVar[frozenset[str]] = frozenset(_VOICE_FIELDS)
    """In each context's first message: a change applies from the next reply."""


class ElevenLabsTTSService(TTSService):
    """ElevenLabs text-to-speech over WebSocket (see the module docstring).

    1.14 style: ``settings=ElevenLabsTTSService.Settings(voice=..., stability=...)``. Runtime
    updates of the voice settings apply from the next reply; voice, model, language and
    ``apply_text_normalization`` are part of the socket URL, and changing them reconnects
    between replies (see the module docstring).

    The socket options ``auto_mode``, ``enable_ssml_parsing``, ``enable_logging`` and
    ``pronunciation_dictionary_locators`` are taken as arguments (as in Pipecat 1.14) or in
    ``params``; an argument wins over ``params``.
    """

    emits_word_timestamps = True
    Settings = ElevenLabsTTSSettings
    _settings: ElevenLabsTTSSettings

    class InputParams(BaseModel):
        model_config = ConfigDict(extra="forbid")

        language: str | None = None
        stability: float | None = None
        similarity_boost: float | None = None
        style: float | None = None
        use_speaker_boost: bool | None = None
        speed: float | None = None
        inactivity_timeout: int = 180
        auto_mode: bool | None = None
        """None: on when whole sentences are sent (``aggregate_sentences``, the default)."""
        enable_ssml_parsing: bool | None = None
        enable_logging: bool | None = None
        """False: zero retention mode (enterprise accounts): ElevenLabs keeps no history."""
        apply_text_normalization: Literal["auto", "on", "off"] | None = None
        pronunciation_dictionary_locators: list[PronunciationDictionaryLocator] | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        model: str | None = None,
        url: str | None = None,
        sample_rate: int | None = None,
        auto_mode: bool | None = None,
        enable_ssml_parsing: bool | None = None,
        enable_logging: bool | None = None,
        pronunciation_dictionary_locators: (
            Sequence[PronunciationDictionaryLocator | Mapping[str, Any]] | None
        ) = None,
        params: InputParams | None = None,
        keepalive_secs: float = 15.0,
        encoding: Literal["auto", "pcm", "ulaw"] = "auto",
        settings: ElevenLabsTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if settings is not None and isinstance(settings.model, str) and model is None:
            model = settings.model
        super().__init__(model=model or "eleven_flash_v2_5", sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "ELEVENLABS_API_KEY")
        self._voice_id = require_voice(type(self).__name__, voice_id, settings)
        self._url = base_url(url, ELEVENLABS_URL_ENV, ELEVENLABS_URL)
        self._params = params or ElevenLabsTTSService.InputParams()
        if settings is not None:
            copy_given(settings, self._params, ("language", *_VOICE_FIELDS))
        normalization: Any = self._params.apply_text_normalization
        if settings is not None and is_given(settings.apply_text_normalization):
            normalization = settings.apply_text_normalization
        self._settings.apply_update(
            ElevenLabsTTSSettings(
                voice=self._voice_id,
                language=self._params.language,
                apply_text_normalization=normalization,
            )
        )
        if auto_mode is None:
            auto_mode = self._params.auto_mode
        # Without sentences (aggregate_sentences=False) the server's chunk schedule has to
        # gather enough text for natural speech, so auto mode is off unless asked for.
        self._auto_mode = self._aggregate_sentences if auto_mode is None else auto_mode
        self._enable_ssml_parsing = (
            self._params.enable_ssml_parsing if enable_ssml_parsing is None else enable_ssml_parsing
        )
        self._enable_logging = (
            self._params.enable_logging if enable_logging is None else enable_logging
        )
        self._pronunciation_dictionaries = _locators(
            self._params.pronunciation_dictionary_locators
            if pronunciation_dictionary_locators is None
            else pronunciation_dictionary_locators
        )
        self._keepalive_secs = keepalive_secs
        self._encoding = encoding
        self._ws: ProviderWebsocket | None = None
        self._initialized: set[str] = set()
        self._open: list[str] = []
        """Contexts opened on the socket and not closed by us yet, oldest first."""
        self._partial: dict[str, tuple[str, float, float]] = {}
        self._reconnect_pending = False
        """A URL-level setting changed since the socket was opened (see ``_maybe_swap``)."""
        self._swap_task: asyncio.Task[None] | None = None
        self._swap_waiter: asyncio.Event | None = None
        self._retired: ProviderWebsocket | None = None
        self._language_warned: set[tuple[str, str]] = set()

    @property
    def output_format(self) -> str:
        """The ``output_format`` asked for."""
        return output_format_for(self._encoding, self.sample_rate)

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """See :func:`format_elevenlabs_pronunciation`."""
        return format_elevenlabs_pronunciation(word, ipa)

    @property
    def supports_pronunciations(self) -> bool:
        """Phoneme tags are read: a model of :data:`ELEVENLABS_PHONEME_MODELS`, and the socket
        opened with ``enable_ssml_parsing=True``."""
        return self.model_name in ELEVENLABS_PHONEME_MODELS and bool(self._enable_ssml_parsing)

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        delta = ElevenLabsTTSSettings(**{k: getattr(self._settings, k) for k in _VOICE_FIELDS})
        copy_given(delta, self._params, _VOICE_FIELDS)  # sent with the next context
        voice = self._settings.voice
        if isinstance(voice, str) and voice:
            self._voice_id = voice
        language = self._settings.language
        self._params.language = language if isinstance(language, str) else None
        if self._ws is not None and changed.keys() & ElevenLabsTTSSettings.URL_FIELDS:
            self._reconnect_pending = True
            self._maybe_swap()

    def language_to_service_language(self, language: str) -> str | None:
        """ElevenLabs' code for ``language`` (see :func:`language_to_elevenlabs_language`)."""
        return language_to_elevenlabs_language(language)

    # ------------------------------------------------------------------ connection

    def _voice_settings(self) -> dict[str, Any]:
        fields = ("stability", "similarity_boost", "style", "use_speaker_boost", "speed")
        values = {name: getattr(self._params, name) for name in fields}
        return {k: v for k, v in values.items() if v is not None}

    def _language_code(self) -> str | None:
        """The ``language_code`` to send: ISO 639-1, and only where the model takes it."""
        return model_language_code(
            self.model_name or "", self._params.language, self._language_warned, self
        )

    def _socket_url(self) -> str:
        """The socket URL for the current settings."""
        normalization = self._settings.apply_text_normalization
        query: dict[str, Any] = {
            "model_id": self.model_name,
            "output_format": self.output_format,
            "inactivity_timeout": self._params.inactivity_timeout,
            "auto_mode": self._auto_mode,
            "language_code": self._language_code(),
            "enable_ssml_parsing": self._enable_ssml_parsing,
            "enable_logging": self._enable_logging,
            "apply_text_normalization": normalization if is_given(normalization) else None,
        }
        path = f"/v1/text-to-speech/{self._voice_id}/multi-stream-input"
        return ws_url(self._url, path, query)

    def _new_socket(self, url: str) -> ProviderWebsocket:
        """A socket on ``url``; its drop and failure callbacks act only while it is the current
        one (a retired socket's troubles are not the call's)."""
        ws: ProviderWebsocket

        async def reconnected() -> None:
            if ws is self._ws:
                await self._drop_open_contexts()

        async def failed(message: str) -> None:
            if ws is self._ws:
                await self._on_socket_failed(message)

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=url,
            headers={"xi-api-key": self._api_key},
            on_message=self._on_message,
            on_reconnected=reconnected,
            on_failed=failed,
            keepalive_secs=self._keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint="Check api_key / ELEVENLABS_API_KEY.",
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ConfigurationError(f"ElevenLabs cannot produce {self.sample_rate} Hz PCM")
        if self.output_format.startswith("ulaw") and self.sample_rate != 8000:
            raise ConfigurationError("ElevenLabs produces u-law at 8000 Hz only")
        self._ws = self._new_socket(self._socket_url())
        await self._ws.connect()

    # ------------------------------------------------------------------ settings reconnect

    def _socket_busy(self) -> bool:
        """A reply is still generating on the socket (its text was sent, its end not heard)."""
        return any(context_id in self._contexts for context_id in self._initialized)

    def _maybe_swap(self) -> None:
        """Replace the socket if a URL-level setting changed and nothing is generating on it.

        Called on the change, at the end of each context, after an interruption and before a
        new context is opened; the swap runs in its own task (this may be the receive loop).
        """
        ws = self._ws
        if not self._reconnect_pending or self._swap_task is not None or ws is None:
            return
        if self._socket_busy():
            return
        self._reconnect_pending = False
        url = self._socket_url()
        if url != ws.url:  # e.g. pt-BR -> pt-PT is "pt" both times: nothing to do
            self._swap_task = self.create_task(self._swap_socket(url), "settings-reconnect")
        if self._swap_waiter is not None:
            self._swap_waiter.set()

    async def _settle_socket(self) -> None:
        """Before a new context: let a pending URL change take effect first."""
        self._maybe_swap()
        if self._reconnect_pending and self._swap_task is None:
            # An earlier reply is still generating on the old socket: wait for its end.
            waiter = self._swap_waiter = asyncio.Event()
            try:
                async with asyncio.timeout(self._context_timeout):
                    await waiter.wait()
            except TimeoutError:
                logger.warning(
                    "%s: an earlier reply is still generating; the new voice/model/language "
                    "applies after this reply",
                    self,
                )
                return
            finally:
                self._swap_waiter = None
        task = self._swap_task
        if task is not None:
            # Shielded: an interruption cancels this reply, not the reconnect.
            await asyncio.shield(task)

    async def _swap_socket(self, url: str) -> None:
        """Open a socket on ``url``, make it the current one and close the old one (idle)."""
        done = False
        try:
            await self.wait_ready()  # a change during start(): let its socket open first
            logger.info("%s: voice/model/language changed; reconnecting", self)
            new = self._new_socket(url)
            try:
                await new.connect()
            except asyncio.CancelledError:
                await new.close()
                raise
            except Exception as exc:
                await new.close()
                await self.report_error(
                    f"{self}: could not reconnect with the new settings ({exc}); "
                    "the previous voice/model/language stay",
                    reason="settings",
                )
                done = True
                return
            old, self._ws = self._ws, new
            self._initialized.clear()  # only contexts that ended or were dropped are left
            self._open.clear()
            if old is not None:
                self._retired = old
                await old.close(final_message=CLOSE_SOCKET)
                self._retired = None
            done = True
        finally:
            self._swap_task = None
            if done:
                self._maybe_swap()  # another change came while this one was made

    def _keepalive(self) -> str:
        """Keep the newest open context alive (its inactivity timer is per context)."""
        live = [c for c in self._open if c in self._initialized]
        if live:
            return json.dumps({"text": "", "context_id": live[-1]})
        return json.dumps({"text": ""})

    async def disconnect(self) -> None:
        self._reconnect_pending = False
        if self._swap_waiter is not None:
            self._swap_waiter.set()  # a reply waiting for the reconnect: there will be none
        await cancel_and_wait(self._swap_task)
        retired, self._retired = self._retired, None
        if retired is not None:
            await retired.close()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(final_message=CLOSE_SOCKET)

    async def _drop_open_contexts(self) -> None:
        self._initialized.clear()
        self._open.clear()
        for context_id in list(self._contexts):
            self.context_failed(context_id)
            await self._finish(context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_open_contexts()

    # ------------------------------------------------------------------ requests

    async def _send(self, context_id: str, payload: dict[str, Any]) -> bool:
        if self._ws is None or not await self._ws.send(json.dumps(payload)):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self._finish(context_id)
            return False
        return True

    async def _close_on_socket(self, context_id: str) -> None:
        if context_id in self._open:
            self._open.remove(context_id)
        if self._ws is not None and self._ws.connected:
            payload = json.dumps({"context_id": context_id, "close_context": True})
            await self._ws.send(payload, wait_secs=0)

    async def _open_context(self, context_id: str) -> bool:
        if self._reconnect_pending or self._swap_task is not None:
            await self._settle_socket()
        # Stay under ElevenLabs' limit: the oldest open contexts are closed (they belong to
        # replies that were interrupted or abandoned; their audio is dropped by id).
        while len(self._open) >= MAX_CONTEXTS - 1:
            oldest = self._open[0]
            logger.info("%s: closing context %s to stay within %d", self, oldest, MAX_CONTEXTS)
            await self._close_on_socket(oldest)
            if self.has_context(oldest) and oldest != context_id:
                await self._finish(oldest)
        self._initialized.add(context_id)
        self._open.append(context_id)
        init: dict[str, Any] = {"text": " ", "context_id": context_id}
        settings = self._voice_settings()
        if settings:
            init["voice_settings"] = settings
        if self._pronunciation_dictionaries:
            init["pronunciation_dictionary_locators"] = [
                locator.model_dump() for locator in self._pronunciation_dictionaries
            ]
        return await self._send(context_id, init)

    async def run_tts(self, text: str, context_id: str) -> None:
        if context_id not in self._initialized and not await self._open_context(context_id):
            return
        payload: dict[str, Any] = {"text": text.strip() + " ", "context_id": context_id}
        if not self._auto_mode and self._aggregate_sentences:
            payload["flush"] = True  # a whole sentence: generate it now, not on the schedule
        await self._send(context_id, payload)

    async def flush_context(self, context_id: str) -> None:
        if not self.has_context(context_id):
            return
        if context_id not in self._initialized:
            await self._finish(context_id)
            return
        if await self._send(context_id, {"context_id": context_id, "flush": True}):
            if context_id in self._open:
                self._open.remove(context_id)
            await self._send(context_id, {"context_id": context_id, "close_context": True})

    async def cancel_context(self, context_id: str) -> None:
        self._initialized.discard(context_id)
        self._partial.pop(context_id, None)
        await self._close_on_socket(context_id)
        if self._reconnect_pending:
            self._maybe_swap()

    async def _finish(self, context_id: str | None) -> None:
        if context_id is None:
            return
        partial = self._partial.pop(context_id, None)
        if partial is not None:
            await self.add_word_timestamps(context_id, [partial])
        self._initialized.discard(context_id)
        if context_id in self._open:
            self._open.remove(context_id)
        await self.finish_context(context_id)
        if self._reconnect_pending:
            self._maybe_swap()

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        context_id = message.get("contextId") or message.get("context_id")
        if message.get("error") or (message.get("message") and not message.get("audio")):
            error = message.get("error") or message.get("message")
            await self.report_error(f"{self}: ElevenLabs error: {error}", reason="provider")
            if context_id:
                self.context_failed(context_id)
                await self._finish(context_id)
            return
        if not self.has_context(context_id):
            return  # an interrupted reply: drop its audio
        assert context_id is not None
        offset = self._contexts[context_id].audio_secs
        # With pronunciation dictionaries the original-text alignment restarts and overlaps
        # where words were substituted; the normalized one follows what is spoken.
        keys = ("alignment", "normalizedAlignment")
        if self._pronunciation_dictionaries:
            keys = keys[::-1]
        alignment = message.get(keys[0]) or message.get(keys[1])
        audio = message.get("audio")
        if audio:
            data = base64.b64decode(audio)
            await self.append_audio(
                context_id, ulaw_to_pcm(data) if self.output_format.startswith("ulaw") else data
            )
        if isinstance(alignment, dict):
            await self.add_word_timestamps(context_id, self._words(context_id, alignment, offset))
        if message.get("isFinal") or message.get("is_final"):
            await self._finish(context_id)

    def _words(
        self, context_id: str, alignment: dict[str, Any], offset: float
    ) -> list[tuple[str, float, float]]:
        """Complete words from character timing (times restart at 0 in every message)."""
        chars = alignment.get("chars") or []
        starts = alignment.get("charStartTimesMs") or []
        durations = alignment.get("charDurationsMs") or []
        words: list[tuple[str, float, float]] = []
        word, start, end = self._partial.pop(context_id, ("", 0.0, 0.0))
        for char, start_ms, duration_ms in zip(chars, starts, durations, strict=False):
            char_start = offset + float(start_ms) / 1000
            char_end = char_start + float(duration_ms) / 1000
            if char.isspace():
                if word:
                    words.append((word, start, end))
                word = ""
                continue
            if not word:
                start = char_start
            word += char
            end = char_end
        if word:
            self._partial[context_id] = (word, start, end)
        return words


# ---------------------------------------------------------------------- HTTP (streamed)

ELEVENLABS_API_URL = "https://api.elevenlabs.io"
HTTP_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""The ``pcm_<rate>`` formats of the HTTP text-to-speech endpoints."""
CONTEXT_UNSUPPORTED_MODELS = frozenset({"eleven_v3", "eleven_v3_conversational"})
"""Models that refuse ``previous_text`` (Pipecat 1.14 leaves it out for these too)."""


@dataclass
class ElevenLabsHttpTTSSettings(TTSSettings):
    """``ElevenLabsHttpTTSService.Settings``: voice, model and language, the voice settings,
    ``optimize_streaming_latency`` (0 to 4, a query parameter) and ``apply_text_normalization``
    (``"auto"``, ``"on"`` or ``"off"``). All apply from the next sentence."""

    optimize_streaming_latency: int | None | NotGiven = field(default_factory=unset)
    stability: float | None | NotGiven = field(default_factory=unset)
    similarity_boost: float | None | NotGiven = field(default_factory=unset)
    style: float | None | NotGiven = field(default_factory=unset)
    use_speaker_boost: bool | None | NotGiven = field(default_factory=unset)
    speed: float | None | NotGiven = field(default_factory=unset)
    apply_text_normalization: Literal["auto", "on", "off"] | None | NotGiven = field(
        default_factory=unset
    )


_HTTP_PARAM_FIELDS = ("language", "optimize_streaming_latency", *_VOICE_FIELDS)


def _alignment_words(
    alignment: Mapping[str, Any], offset: float, partial: tuple[str, float, float]
) -> tuple[list[tuple[str, float, float]], tuple[str, float, float]]:
    """Complete words of one chunk's character timing (seconds from the request's start, moved
    by ``offset``), and the word still open at its end (``partial`` is the one before it)."""
    chars = alignment.get("characters") or []
    starts = alignment.get("character_start_times_seconds") or []
    ends = alignment.get("character_end_times_seconds") or []
    words: list[tuple[str, float, float]] = []
    word, start, end = partial
    for char, char_start, char_end in zip(chars, starts, ends, strict=False):
        if str(char).isspace():
            if word:
                words.append((word, start, end))
            word = ""
            continue
        if not word:
            start = offset + float(char_start)
        word += str(char)
        end = offset + float(char_end)
    return words, (word, start, end)


class ElevenLabsHttpTTSService(HTTPStreamTTSService):
    """ElevenLabs text-to-speech over HTTP, one streamed request per sentence, with word timing.

    Each sentence is posted to ``/v1/text-to-speech/{voice_id}/stream/with-timestamps`` (the key
    in ``xi-api-key``), the endpoint Pipecat 1.14 uses: the answer is one JSON object per line,
    ``{"audio_base64", "alignment", "normalized_alignment"}``, with character times counted
    from the start of the request's audio; they are turned into words, each ``TTSTextFrame``
    following its audio. The query carries ``output_format`` (``ulaw_8000`` on an 8 kHz call,
    where Pipecat asks for ``pcm_8000``; else ``pcm_<rate>``; ``encoding="pcm"`` or ``"ulaw"``
    chooses), ``optimize_streaming_latency`` and ``enable_logging`` when set. The body carries
    ``text``, ``model_id``, ``voice_settings`` (the settings among ``stability``,
    ``similarity_boost``, ``style``, ``use_speaker_boost``, ``speed`` that are set),
    ``language_code`` (only for models that take the language, as for the WebSocket service),
    ``apply_text_normalization``, ``pronunciation_dictionary_locators``, and ``previous_text``:
    the sentences of the same reply already spoken, for continuous prosody (not for the Eleven
    v3 models, which refuse it). ``next_text`` is not sent: the next sentence is not known yet.
    Pronunciations go as SSML phoneme tags, read with the models of
    :data:`ELEVENLABS_PHONEME_MODELS` (this endpoint has no ``enable_ssml_parsing`` switch).

    ``base_url``: the API's origin; left at ElevenLabs', ``$CALLPIPE_ELEVENLABS_API_URL``
    replaces it. ``aiohttp_session`` (required in Pipecat) is accepted and not used: requests
    go through callpipe's pooled client. Settings updates apply from the next sentence; an
    interruption closes the response in flight.
    """

    emits_word_timestamps = True
    Settings = ElevenLabsHttpTTSSettings
    _settings: ElevenLabsHttpTTSSettings
    key_hint = "Check api_key / ELEVENLABS_API_KEY."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``)."""

        model_config = ConfigDict(extra="forbid")

        language: str | None = None
        optimize_streaming_latency: int | None = None
        stability: float | None = None
        similarity_boost: float | None = None
        style: float | None = None
        use_speaker_boost: bool | None = None
        speed: float | None = None
        apply_text_normalization: Literal["auto", "on", "off"] | None = None
        pronunciation_dictionary_locators: list[PronunciationDictionaryLocator] | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        aiohttp_session: Any = None,
        model: str | None = None,
        base_url: str = ELEVENLABS_API_URL,
        sample_rate: int | None = None,
        enable_logging: bool | None = None,
        pronunciation_dictionary_locators: (
            Sequence[PronunciationDictionaryLocator | Mapping[str, Any]] | None
        ) = None,
        params: InputParams | None = None,
        settings: ElevenLabsHttpTTSSettings | None = None,
        encoding: Literal["auto", "pcm", "ulaw"] = "auto",
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or "eleven_flash_v2_5", sample_rate=sample_rate, **kwargs)
        name = type(self).__name__
        api_key = resolve_api_key(name, api_key, "ELEVENLABS_API_KEY")
        defaults = ElevenLabsHttpTTSSettings(
            voice=require_voice(name, voice_id, settings),
            language=None,
            optimize_streaming_latency=None,
            stability=None,
            similarity_boost=None,
            style=None,
            use_speaker_boost=None,
            speed=None,
            apply_text_normalization=None,
        )
        if params is not None and settings is None:  # as in Pipecat: settings= replaces params
            for field_name in _HTTP_PARAM_FIELDS:
                setattr(defaults, field_name, getattr(params, field_name))
            defaults.apply_text_normalization = params.apply_text_normalization
            if pronunciation_dictionary_locators is None:
                pronunciation_dictionary_locators = params.pronunciation_dictionary_locators
        self._settings.apply_update(defaults)
        if settings is not None:
            self._settings.apply_update(settings)
        self._enable_logging = enable_logging
        self._pronunciation_dictionaries = _locators(pronunciation_dictionary_locators)
        self._encoding = encoding
        self._language_warned: set[tuple[str, str]] = set()
        self._previous: tuple[str, str] = ("", "")
        """(context id, text of that reply already spoken): ``previous_text``'s source."""
        self.configure_http(
            defaulted_base_url(base_url, ELEVENLABS_API_URL_ENV, ELEVENLABS_API_URL),
            {"xi-api-key": api_key},
            timeout_secs=timeout_secs,
        )

    @property
    def output_format(self) -> str:
        """The ``output_format`` asked for."""
        return output_format_for(self._encoding, self.sample_rate)

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """See :func:`format_elevenlabs_pronunciation`."""
        return format_elevenlabs_pronunciation(word, ipa)

    @property
    def supports_pronunciations(self) -> bool:
        """Phoneme tags are read: a model of :data:`ELEVENLABS_PHONEME_MODELS`."""
        return self.model_name in ELEVENLABS_PHONEME_MODELS

    def language_to_service_language(self, language: str) -> str | None:
        """ElevenLabs' code for ``language`` (see :func:`language_to_elevenlabs_language`)."""
        return language_to_elevenlabs_language(language)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in HTTP_RATES:
            raise ConfigurationError(f"ElevenLabs cannot produce {self.sample_rate} Hz PCM")
        if self.output_format.startswith("ulaw") and self.sample_rate != 8000:
            raise ConfigurationError("ElevenLabs produces u-law at 8000 Hz only")
        self._http()

    def _given(self, name: str) -> Any:
        value = getattr(self._settings, name)
        return value if is_given(value) else None

    def request(self, text: str, previous_text: str = "") -> tuple[dict[str, str], dict[str, Any]]:
        """``(query, body)`` of the request for ``text`` with the current settings."""
        query = {"output_format": self.output_format}
        latency = self._given("optimize_streaming_latency")
        if latency is not None:
            query["optimize_streaming_latency"] = str(latency)
        if self._enable_logging is not None:
            query["enable_logging"] = str(self._enable_logging).lower()
        model = self.model_name or ""
        body: dict[str, Any] = {"text": text, "model_id": model}
        if previous_text and model not in CONTEXT_UNSUPPORTED_MODELS:
            body["previous_text"] = previous_text
        voice_settings = {k: self._given(k) for k in _VOICE_FIELDS}
        voice_settings = {k: v for k, v in voice_settings.items() if v is not None}
        if voice_settings:
            body["voice_settings"] = voice_settings
        if self._pronunciation_dictionaries:
            body["pronunciation_dictionary_locators"] = [
                locator.model_dump() for locator in self._pronunciation_dictionaries
            ]
        normalization = self._given("apply_text_normalization")
        if normalization is not None:
            body["apply_text_normalization"] = normalization
        language = self._given("language")
        code = model_language_code(
            model, language if isinstance(language, str) else None, self._language_warned, self
        )
        if code:
            body["language_code"] = code
        return query, body

    async def run_tts(self, text: str, context_id: str) -> None:
        reply, spoken = self._previous
        if reply != context_id:
            spoken = ""
        query, body = self.request(text, spoken)
        path = f"/v1/text-to-speech/{self._settings.voice}/stream/with-timestamps"
        if await self.stream_speech(context_id, path, body, self._read, params=query):
            self._previous = (context_id, f"{spoken} {text}".strip())

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        ctx = self._contexts.get(context_id)
        offset = ctx.audio_secs if ctx is not None else 0.0
        ulaw = self.output_format.startswith("ulaw")
        # With pronunciation dictionaries the original-text alignment can overlap where words
        # were substituted; the normalized one follows what is spoken.
        keys = ("alignment", "normalized_alignment")
        if self._pronunciation_dictionaries:
            keys = keys[::-1]
        partial: tuple[str, float, float] = ("", 0.0, 0.0)
        async for message in json_lines(response, self):
            audio = message.get("audio_base64")
            if isinstance(audio, str) and audio:
                data = base64.b64decode(audio)
                await self.append_audio(context_id, ulaw_to_pcm(data) if ulaw else data)
            alignment = message.get(keys[0]) or message.get(keys[1])
            if isinstance(alignment, dict):
                words, partial = _alignment_words(alignment, offset, partial)
                await self.add_word_timestamps(context_id, words)
        if partial[0]:
            await self.add_word_timestamps(context_id, [partial])
