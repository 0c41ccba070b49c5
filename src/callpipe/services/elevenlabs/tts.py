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
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import ELEVENLABS_URL_ENV, base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, copy_given, require_voice
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.utils.types import NOT_GIVEN, is_given

logger = logging.getLogger(__name__)

ELEVENLABS_URL = "wss://api.elevenlabs.io"
SUPPORTED_RATES = (8000, 16000, 22050, 24000, 44100)
MAX_CONTEXTS = 5
"""Open contexts ElevenLabs allows on one multi-context socket."""


def _unset() -> Any:
    return NOT_GIVEN


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

    stability: Any = field(default_factory=_unset)
    similarity_boost: Any = field(default_factory=_unset)
    style: Any = field(default_factory=_unset)
    use_speaker_boost: Any = field(default_factory=_unset)
    speed: Any = field(default_factory=_unset)
    apply_text_normalization: Any = field(default_factory=_unset)


class ElevenLabsTTSService(TTSService):
    """ElevenLabs text-to-speech over WebSocket (see the module docstring).

    1.14 style: ``settings=ElevenLabsTTSService.Settings(voice=..., stability=...)``. Runtime
    updates of the voice settings apply from the next reply; voice, model, language and
    ``apply_text_normalization`` are part of the socket URL and apply when the socket is next
    opened.

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

    @property
    def output_format(self) -> str:
        """The ``output_format`` asked for."""
        ulaw = self._encoding == "ulaw" or (self._encoding == "auto" and self.sample_rate == 8000)
        return "ulaw_8000" if ulaw else f"pcm_{self.sample_rate}"

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        delta = ElevenLabsTTSSettings(**{k: getattr(self._settings, k) for k in _VOICE_FIELDS})
        copy_given(delta, self._params, _VOICE_FIELDS)
        voice = self._settings.voice
        if isinstance(voice, str) and voice:
            self._voice_id = voice  # used when the socket is next opened
        language = self._settings.language
        self._params.language = language if isinstance(language, str) else None

    # ------------------------------------------------------------------ connection

    def _voice_settings(self) -> dict[str, Any]:
        fields = ("stability", "similarity_boost", "style", "use_speaker_boost", "speed")
        values = {name: getattr(self._params, name) for name in fields}
        return {k: v for k, v in values.items() if v is not None}

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ConfigurationError(f"ElevenLabs cannot produce {self.sample_rate} Hz PCM")
        if self.output_format.startswith("ulaw") and self.sample_rate != 8000:
            raise ConfigurationError("ElevenLabs produces u-law at 8000 Hz only")
        normalization = self._settings.apply_text_normalization
        query: dict[str, Any] = {
            "model_id": self.model_name,
            "output_format": self.output_format,
            "inactivity_timeout": self._params.inactivity_timeout,
            "auto_mode": self._auto_mode,
            "language_code": self._params.language,
            "enable_ssml_parsing": self._enable_ssml_parsing,
            "enable_logging": self._enable_logging,
            "apply_text_normalization": normalization if is_given(normalization) else None,
        }
        self._ws = ProviderWebsocket(
            owner=str(self),
            url=ws_url(self._url, f"/v1/text-to-speech/{self._voice_id}/multi-stream-input", query),
            headers={"xi-api-key": self._api_key},
            on_message=self._on_message,
            on_reconnected=self._drop_open_contexts,
            on_failed=self._on_socket_failed,
            keepalive_secs=self._keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint="Check api_key / ELEVENLABS_API_KEY.",
        )
        await self._ws.connect()

    def _keepalive(self) -> str:
        """Keep the newest open context alive (its inactivity timer is per context)."""
        live = [c for c in self._open if c in self._initialized]
        if live:
            return json.dumps({"text": "", "context_id": live[-1]})
        return json.dumps({"text": ""})

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(final_message=json.dumps({"close_socket": True}))

    async def _drop_open_contexts(self) -> None:
        self._initialized.clear()
        self._open.clear()
        for context_id in list(self._contexts):
            await self._finish(context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_open_contexts()

    # ------------------------------------------------------------------ requests

    async def _send(self, context_id: str, payload: dict[str, Any]) -> bool:
        if self._ws is None or not await self._ws.send(json.dumps(payload)):
            await self.report_error(
                f"{self}: not connected; dropping speech", reason="disconnected"
            )
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
