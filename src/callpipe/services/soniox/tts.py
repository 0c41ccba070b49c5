"""SonioxTTSService: Soniox's real-time text-to-speech WebSocket, one Soniox stream per reply,
with character timestamps turned into word timing.

The protocol, as Soniox documents it (https://soniox.com/docs/api-reference/tts/websocket-api)
and the ``soniox`` SDK's ``RealtimeTTS*`` models give it:

- one socket (``wss://tts-rt.soniox.com/tts-websocket``), the key in ``Authorization: Bearer``
  as the SDK sends it; up to five streams share it, each named by a client-chosen
  ``stream_id``;
- a stream begins with its configuration: ``stream_id``, ``model``, ``language``, ``voice``,
  ``audio_format``, ``sample_rate``, ``return_timestamps``, and when set ``speed``,
  ``reduce_silence`` and ``client_reference_id``;
- then ``{"text", "text_end": false, "stream_id"}`` messages, and ``{"text": "",
  "text_end": true, "stream_id"}`` at the end; ``{"stream_id", "cancel": true}`` stops a stream;
  ``{"keep_alive": true}`` every 20 seconds keeps an idle socket open;
- the server sends ``{"audio": <base64>, "audio_end", "stream_id"}`` with ``timestamps``
  (``characters``, ``character_start_times_seconds``, ``character_end_times_seconds``, from the
  stream's start), then ``{"terminated": true, "stream_id"}`` once the stream is over; a failed
  stream gets ``{"stream_id", "error_code", "error_message"}`` (an HTTP status), then
  ``terminated``, and the socket stays open.

Each reply is one stream (its ``stream_id`` is the reply's context id): its sentences go as
text messages as they come, the end of the reply sends ``text_end``, and ``terminated`` closes
it. Soniox joins a stream's texts as they are, so whole sentences are sent with a space after
them, and streamed text (``TextAggregationMode.TOKEN``) verbatim. Characters are joined into
words at whitespace (each Chinese or Japanese character is a word), and each ``TTSTextFrame``
follows its word's audio. An interruption sends ``cancel`` for the reply's stream; audio still in
flight for it is dropped by id. Settings travel in each stream's configuration, so a change
(``TTSUpdateSettingsFrame``) applies from the next reply, without reconnecting.

On a phone call (8 kHz output) the stream asks for ``pcm_mulaw`` at 8000 Hz (half the bytes;
G.711 decoding is exact for what the line carries); otherwise ``pcm_s16le`` at the output rate
when Soniox offers it (8000, 16000, 24000, 44100, 48000 Hz), else at the nearest lower one,
resampled here. ``audio_format`` (Pipecat's, ``"pcm_s16le"`` there) may force ``pcm_s16le`` or
``pcm_mulaw``; Soniox's other formats (containers, floats) are refused, as the pipeline plays
16-bit PCM.

A socket that cannot be kept is reported and its open replies closed (see
:class:`~callpipe.services.websocket_service.ProviderWebsocket`); an ``error_code`` of 401 or
403 (a refused key) or 402 (no credit left) is fatal, any other ends only its reply.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import SONIOX_TTS_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.soniox.stt import _LANGUAGE_MAP as _STT_LANGUAGE_MAP
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

SONIOX_TTS_URL = "wss://tts-rt.soniox.com/tts-websocket"
_PATH = "/tts-websocket"
"""Added to a ``url`` given without a path (e.g. ``$CALLPIPE_SONIOX_TTS_URL``)."""
DEFAULT_MODEL = "tts-rt-v2"
DEFAULT_VOICE = "Bryce"
SAMPLE_RATES = (8000, 16000, 24000, 44100, 48000)
"""The rates Soniox makes raw PCM at."""
AUDIO_FORMATS = ("pcm_s16le", "pcm_mulaw")
KEEPALIVE_SECS = 20.0
"""Soniox closes a socket idle for 20 to 30 seconds."""
_KEEPALIVE = json.dumps({"keep_alive": True})
_FATAL_CODES = frozenset({401, 402, 403})
_AUTH_HINT = "Check api_key / SONIOX_API_KEY."
_LANGUAGE_MAP = _STT_LANGUAGE_MAP | {"su": "su"}
_NO_SPACES = ("zh", "ja")
"""Languages written without spaces between words: each character is timed as a word."""


def language_to_soniox_tts_language(language: str) -> str:
    """Soniox's code for a language tag: ``Language.EN_GB`` -> ``"en"``, ``nb`` -> ``"no"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class SonioxTTSSettings(TTSSettings):
    """``SonioxTTSService.Settings``: model (``tts-rt-v2``), voice (``Bryce``; a name from
    Soniox's catalogue or a cloned voice's id), language (``en``), and, each sent when not
    None: ``speed`` (0.7 to 1.3), ``reduce_silence`` (shorter pauses between words; only models
    that support it) and ``client_reference_id`` (your id for the request in Soniox's usage
    logs)."""

    speed: float | None | NotGiven = field(default_factory=unset)
    reduce_silence: bool | None | NotGiven = field(default_factory=unset)
    client_reference_id: str | None | NotGiven = field(default_factory=unset)


def wire_rate(rate: int) -> int:
    """The ``sample_rate`` asked for ``rate``: itself when offered, else the nearest lower."""
    if rate in SAMPLE_RATES:
        return rate
    return max((r for r in SAMPLE_RATES if r <= rate), default=SAMPLE_RATES[0])


@dataclass
class _Stream:
    """A reply's Soniox stream: its word being assembled across messages."""

    word: str = ""
    start: float = 0.0
    end: float = 0.0
    flushed: bool = False


class SonioxTTSService(TTSService):
    """Soniox over its real-time text-to-speech socket (see the module docstring).

    1.14 style: ``SonioxTTSService(api_key=..., settings=SonioxTTSService.Settings(
    voice="Adrian"))``. ``url``: the socket's address (Soniox's, or a regional one such as
    ``wss://tts-rt.eu.soniox.com/tts-websocket``); left at Soniox's,
    ``$CALLPIPE_SONIOX_TTS_URL`` may replace it (an origin is enough).
    """

    emits_word_timestamps = True
    Settings = SonioxTTSSettings
    _settings: SonioxTTSSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str = SONIOX_TTS_URL,
        sample_rate: int | None = None,
        audio_format: str | None = None,
        settings: SonioxTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if audio_format is not None and audio_format not in AUDIO_FORMATS:
            raise ConfigurationError(
                f"audio_format={audio_format!r}: callpipe plays 16-bit PCM; use one of "
                f"{', '.join(AUDIO_FORMATS)} (None: pcm_mulaw on an 8 kHz call)"
            )
        model = DEFAULT_MODEL
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "SONIOX_API_KEY")
        address = defaulted_base_url(url, SONIOX_TTS_URL_ENV, SONIOX_TTS_URL)
        self._url = address if urlsplit(address).path not in ("", "/") else address + _PATH
        self._audio_format = audio_format
        self._settings.apply_update(
            SonioxTTSSettings(
                model=model,
                voice=DEFAULT_VOICE,
                language="en",
                speed=None,
                reduce_silence=None,
                client_reference_id=None,
            )
        )
        if settings is not None:
            self._settings.apply_update(settings)
        self._ws: ProviderWebsocket | None = None
        self._streams: dict[str, _Stream] = {}
        """Our context id (the Soniox ``stream_id``) -> its stream, while it is open."""
        self._key_rejected = False
        """Soniox refused the key (or the account's credit): no more streams are begun."""

    # ------------------------------------------------------------------ settings

    @property
    def audio_format(self) -> str:
        """The ``audio_format`` asked for: ``pcm_mulaw`` at 8 kHz unless set, else
        ``pcm_s16le``."""
        if self._audio_format is not None:
            return self._audio_format
        return "pcm_mulaw" if self.sample_rate == 8000 else "pcm_s16le"

    @property
    def wire_rate(self) -> int:
        """The ``sample_rate`` asked for (see :func:`wire_rate`)."""
        return wire_rate(self.sample_rate)

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_soniox_tts_language(language)

    def _option(self, name: str) -> Any:
        value = getattr(self._settings, name)
        return value if is_given(value) else None

    def stream_config(self, stream_id: str) -> dict[str, Any]:
        """The configuration message of a new stream, with the current settings."""
        language = self._option("language")
        config: dict[str, Any] = {
            "stream_id": stream_id,
            "model": self._option("model") or DEFAULT_MODEL,
            "language": language_to_soniox_tts_language(language) if language else "en",
            "voice": self._option("voice") or DEFAULT_VOICE,
            "audio_format": self.audio_format,
            "sample_rate": self.wire_rate,
        }
        for name in ("speed", "reduce_silence"):
            if self._option(name) is not None:
                config[name] = self._option(name)
        config["return_timestamps"] = True
        if self._option("client_reference_id") is not None:
            config["client_reference_id"] = self._option("client_reference_id")
        return config

    def _per_character(self) -> bool:
        language = self._option("language")
        return isinstance(language, str) and language.split("-")[0].lower() in _NO_SPACES

    # ------------------------------------------------------------------ connection

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Soniox cannot produce {self.sample_rate} Hz audio")
        self._ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self._url,
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=self._drop_open_streams,
            on_failed=self._on_socket_failed,
            keepalive_secs=KEEPALIVE_SECS,
            keepalive_message=lambda: _KEEPALIVE,
            auth_hint=_AUTH_HINT,
        )
        await self._ws.connect()

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _drop_open_streams(self) -> None:
        # A new socket knows nothing of the old one's streams: close their replies.
        for context_id in list(self._streams):
            self.context_failed(context_id)
            await self._finish(context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_open_streams()

    async def _finish(self, context_id: str) -> None:
        stream = self._streams.pop(context_id, None)
        if stream is not None and stream.word:
            await self.add_word_timestamps(context_id, [(stream.word, stream.start, stream.end)])
        await self.finish_context(context_id)

    # ------------------------------------------------------------------ requests

    async def _send(self, context_id: str, message: dict[str, Any]) -> bool:
        if self._ws is None or not await self._ws.send(json.dumps(message)):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self._finish(context_id)
            return False
        return True

    async def run_tts(self, text: str, context_id: str) -> None:
        if not self.has_context(context_id):
            return  # ended already (a stream error): the rest of the reply is not spoken
        if self._key_rejected:
            self.context_failed(context_id)
            await self._finish(context_id)
            return
        if context_id not in self._streams:
            self._streams[context_id] = _Stream()
            if not await self._send(context_id, self.stream_config(context_id)):
                return
        piece = text.strip() + " " if self._aggregate_sentences else text
        message = {"text": piece, "text_end": False, "stream_id": context_id}
        await self._send(context_id, message)

    async def flush_context(self, context_id: str) -> None:
        stream = self._streams.get(context_id)
        if not self.has_context(context_id) or stream is None:
            await self.finish_context(context_id)
            return
        stream.flushed = True
        await self._send(context_id, {"text": "", "text_end": True, "stream_id": context_id})

    async def cancel_context(self, context_id: str) -> None:
        stream = self._streams.pop(context_id, None)
        if stream is not None and self._ws is not None and self._ws.connected:
            message = json.dumps({"stream_id": context_id, "cancel": True})
            await self._ws.send(message, wait_secs=0)

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        stream_id = message.get("stream_id")
        stream = self._streams.get(stream_id) if isinstance(stream_id, str) else None
        code = message.get("error_code")
        if code is not None:
            if stream is None and isinstance(stream_id, str) and code not in _FATAL_CODES:
                # About a stream we already left (cancelled, or failed before).
                logger.debug("%s: Soniox error for closed stream %s: %s", self, stream_id, message)
                return
            await self._on_error(message, stream_id if stream is not None else None)
            return
        if stream is None or not isinstance(stream_id, str):
            return  # a cancelled or finished reply's
        audio = message.get("audio")
        if isinstance(audio, str) and audio:
            pcm = base64.b64decode(audio)
            if self.audio_format == "pcm_mulaw":
                pcm = ulaw_to_pcm(pcm)
            await self.append_audio(stream_id, pcm, self.wire_rate)
        timing = message.get("timestamps")
        if isinstance(timing, dict):
            await self.add_word_timestamps(stream_id, self._words(stream, timing))
        if message.get("terminated"):
            await self._finish(stream_id)

    def _words(self, stream: _Stream, timing: dict[str, Any]) -> list[tuple[str, float, float]]:
        """The words completed by one message's characters; a word still open (no whitespace
        after it yet) stays in ``stream`` for the next message or the stream's end."""
        chars = timing.get("characters") or []
        starts = timing.get("character_start_times_seconds") or []
        ends = timing.get("character_end_times_seconds") or starts
        if not (len(chars) == len(starts) == len(ends)):
            logger.warning("%s: Soniox timestamps of unequal lengths; skipped", self)
            return []
        words: list[tuple[str, float, float]] = []
        per_character = self._per_character()
        for char, start, end in zip(chars, starts, ends, strict=True):
            char = str(char)
            if per_character:
                if char.isalnum():
                    words.append((char, float(start), float(end)))
                continue
            if char.isspace():
                if stream.word:
                    words.append((stream.word, stream.start, stream.end))
                    stream.word = ""
                continue
            if not stream.word:
                stream.start = float(start)
            stream.word += char
            stream.end = float(end)
        return words

    async def _on_error(self, message: dict[str, Any], stream_id: str | None) -> None:
        code = message.get("error_code")
        text = message.get("error_message") or "error"
        fatal = code in _FATAL_CODES
        if fatal:
            if self._key_rejected:
                return  # reported once
            self._key_rejected = True
        hint = f" {_AUTH_HINT}" if code in (401, 403) else ""
        await self.report_error(
            f"{self}: Soniox error {code}: {text}{hint}",
            fatal=fatal,
            reason="auth" if fatal else "provider",
        )
        if stream_id is not None:
            self.context_failed(stream_id)
            await self._finish(stream_id)
