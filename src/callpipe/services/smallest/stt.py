"""SmallestSTTService: Smallest AI's Pulse real-time speech-to-text WebSocket
(``wss://api.smallest.ai/waves/v1/stt/live``).

The protocol, as Smallest's Waves API reference and its ``smallestai`` SDK describe it:

- Every session option is a query parameter of the socket URL (``model``, ``language``,
  ``encoding``, ``sample_rate``, the ``true``/``false`` switches, ``numerals``, ``keywords``);
  the key goes in an ``Authorization: Bearer`` header. A bad option (e.g. ``model=pulse-pro``,
  which has no streaming worker) is refused with 400 before the upgrade.
- The caller's audio goes out as binary messages (batches of 100 ms): ``mulaw`` on an 8 kHz
  call (the line's own bytes, half the size), else ``linear16`` at the pipeline rate.
- Smallest answers ``{"type": "transcription", "transcript", "is_final", "is_last",
  "language", ...}``: non-final results become ``InterimTranscriptionFrame``\\ s, final ones
  a ``TranscriptionFrame`` (``result`` = the message; ``finalized`` when it answers our
  ``finalize``, ``from_finalize: true``). Errors are ``{"type": "error", "message"}``:
  non-fatal ``ErrorFrame``\\ s.
- When callpipe's VAD hears the caller stop, the queued audio is sent, then
  ``{"type": "finalize"}``: Smallest makes the utterance final and keeps the socket open.
- At the end of the call (``EndFrame``) the queued audio is sent, then
  ``{"type": "close_stream"}``: Smallest sends its last final (``is_last: true``) and closes; it
  is pushed before the ``EndFrame`` (bounded by ``end_timeout_secs``).

While no audio flows (the STT is muted) 100 ms of silence goes out every ``keepalive_secs`` so
the idle socket is not dropped. A rejected key (HTTP 401/403) is fatal and names
``SMALLEST_API_KEY``. Settings at runtime (``STTUpdateSettingsFrame``) are all in the query: a
change opens a new socket (make-before-break); if Smallest refuses it the old one stays.
``model="pulse-2"`` is English-only: another language is refused with a ConfigurationError at
construction, and a runtime change to one is undone with a non-fatal error.

Differences from Pipecat 1.14: ``encoding`` defaults to ``mulaw`` on an 8 kHz call (Pipecat
always asks for ``linear16``); the query is URL-encoded with our language code.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.services._env import SMALLEST_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    StreamEnd,
    json_object,
    message_where,
    restore_settings,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SMALLEST_WS_URL = "wss://api.smallest.ai"
"""Smallest's WebSocket origin (the default ``base_url``)."""
STT_PATH = "/waves/v1/stt/live"
SMALLEST_TTFS_P99 = 1.59
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Smallest (seconds)."""
ENCODINGS = ("linear16", "mulaw")
"""The encodings the pipeline's audio is sent in."""
KEY_HINT = "Check api_key / SMALLEST_API_KEY."
_FINALIZE = json.dumps({"type": "finalize"})
_CLOSE_STREAM = json.dumps({"type": "close_stream"})
_LANGUAGES = (
    "bg bn cs da de en es et fi fr gu hi hu it kn lt lv ml mr mt nl or pa pl pt ro ru sk sv ta "
    "te uk"
).split()
_LANGUAGE_MAP = {code: code for code in _LANGUAGES}


def language_to_smallest_stt_language(language: str) -> str:
    """Pulse's code for a language tag: ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


class SmallestSTTModel(StrEnum):
    """Smallest's streaming STT models."""

    PULSE = "pulse"
    PULSE_2 = "pulse-2"


@dataclass
class SmallestSTTSettings(STTSettings):
    """``SmallestSTTService.Settings``: the model, the language and Pulse's switches
    (``word_timestamps``, ``full_transcript``, ``sentence_timestamps``, ``redact_pii``,
    ``redact_pci``, ``diarize``, ``endpointing``, ``format``, ``itn_normalize``,
    ``no_format_delay``; ``emotion_detection`` and ``gender_detection`` for ``pulse-2``),
    ``numerals`` (``"auto"``, ...) and ``keywords`` (``"WORD:BOOST,..."``, left out when
    empty). Each is a query parameter of the socket."""

    word_timestamps: bool | NotGiven = field(default_factory=unset)
    full_transcript: bool | NotGiven = field(default_factory=unset)
    sentence_timestamps: bool | NotGiven = field(default_factory=unset)
    redact_pii: bool | NotGiven = field(default_factory=unset)
    redact_pci: bool | NotGiven = field(default_factory=unset)
    numerals: str | NotGiven = field(default_factory=unset)
    diarize: bool | NotGiven = field(default_factory=unset)
    endpointing: bool | NotGiven = field(default_factory=unset)
    keywords: str | NotGiven = field(default_factory=unset)
    format: bool | NotGiven = field(default_factory=unset)
    emotion_detection: bool | NotGiven = field(default_factory=unset)
    gender_detection: bool | NotGiven = field(default_factory=unset)
    itn_normalize: bool | NotGiven = field(default_factory=unset)
    no_format_delay: bool | NotGiven = field(default_factory=unset)


_SWITCHES = (
    "word_timestamps",
    "full_transcript",
    "sentence_timestamps",
    "redact_pii",
    "redact_pci",
    "numerals",
    "diarize",
    "endpointing",
    "format",
    "emotion_detection",
    "gender_detection",
    "itn_normalize",
    "no_format_delay",
)


def _defaults() -> SmallestSTTSettings:
    return SmallestSTTSettings(
        model=SmallestSTTModel.PULSE.value,
        language="en",
        word_timestamps=False,
        full_transcript=False,
        sentence_timestamps=False,
        redact_pii=False,
        redact_pci=False,
        numerals="auto",
        diarize=False,
        endpointing=True,
        keywords="",
        format=True,
        emotion_detection=True,
        gender_detection=True,
        itn_normalize=False,
        no_format_delay=False,
    )


def pulse_2_problem(model: Any, language: Any) -> str | None:
    """Why ``model`` cannot take ``language`` (``pulse-2`` is English-only); None: it can."""
    if model == SmallestSTTModel.PULSE_2 and isinstance(language, str) and language:
        if language.split("-")[0].lower() != "en":
            return f"model 'pulse-2' is English-only, got language {language!r}"
    return None


class SmallestSTTService(ProviderSocketSTTService):
    """Smallest AI Pulse real-time speech-to-text (see the module docstring).

    1.14 style: ``SmallestSTTService(api_key=..., settings=SmallestSTTService.Settings(
    language=Language.EN))``. ``base_url``: the socket's origin (``wss://api.smallest.ai``, or
    ``$CALLPIPE_SMALLEST_URL`` when left at that); ``/waves/v1/stt/live`` is added.
    ``encoding``: None (``mulaw`` at 8 kHz, else ``linear16``) or one of :data:`ENCODINGS`.
    """

    Settings = SmallestSTTSettings
    _settings: SmallestSTTSettings

    keepalive_secs = 5.0
    """Idle time after which silence goes out to keep the socket open."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = SMALLEST_WS_URL,
        encoding: str | None = None,
        sample_rate: int | None = None,
        settings: SmallestSTTSettings | None = None,
        ttfs_p99_latency: float | None = SMALLEST_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        if settings is not None:
            store.apply_update(settings)
        problem = pulse_2_problem(store.model, store.language)
        if problem:
            raise ConfigurationError(f"SmallestSTTService: {problem}")
        if encoding is not None and encoding not in ENCODINGS:
            raise ConfigurationError(
                f"SmallestSTTService: encoding={encoding!r}; the pipeline's audio is sent as "
                f"one of {ENCODINGS}"
            )
        super().__init__(
            model=store.model if isinstance(store.model, str) else SmallestSTTModel.PULSE.value,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "SMALLEST_API_KEY")
        self._base_url = defaulted_base_url(base_url, SMALLEST_URL_ENV, SMALLEST_WS_URL)
        self._encoding = encoding
        self._last_sent = 0.0

    # ------------------------------------------------------------------ description

    @property
    def encoding(self) -> str:
        """The encoding the audio is streamed in."""
        if self._encoding is not None:
            return self._encoding
        return "mulaw" if self.sample_rate == 8000 else "linear16"

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_smallest_stt_language(language)

    def query(self) -> dict[str, Any]:
        """The socket's query for the current settings."""
        s = self._settings
        values = s.given_fields()
        language = values.get("language")
        query: dict[str, Any] = {
            "model": values.get("model") or SmallestSTTModel.PULSE.value,
            "language": language_to_smallest_stt_language(language) if language else "en",
            "encoding": self.encoding,
            "sample_rate": self.sample_rate,
        }
        for name in _SWITCHES:
            if values.get(name) is not None:
                query[name] = values[name]
        if values.get("keywords"):  # an empty value would be one empty keyword
            query["keywords"] = values["keywords"]
        return query

    def socket_url(self) -> str:
        return ws_url(self._base_url, STT_PATH, self.query())

    # ------------------------------------------------------------------ the socket

    def _build_socket(self) -> ProviderWebsocket:
        return ProviderWebsocket(
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_failed=self._on_socket_failed,
            keepalive_secs=self.keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint=KEY_HINT,
        )

    _final_message = _CLOSE_STREAM

    def _stream_end(self) -> StreamEnd:
        """``close_stream``: Smallest sends its last final (``is_last``), then closes."""
        return _CLOSE_STREAM, _is_last

    def _keepalive(self) -> Message | None:
        if time.monotonic() - self._last_sent < self.keepalive_secs:
            return None
        self._last_sent = time.monotonic()
        silence = b"\x00\x00" * (self.sample_rate // 10)
        return pcm_to_ulaw(silence) if self.encoding == "mulaw" else silence

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        payload = pcm_to_ulaw(audio) if self.encoding == "mulaw" else audio
        return await ws.send(payload, wait_secs=0)  # a reconnect keeps the batch queued

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: the queued audio out, then ``finalize``."""
        await self._flush_then_send(_FINALIZE)

    # ------------------------------------------------------------------ results in

    async def _on_message(self, raw: Message) -> None:
        message = json_object(raw)
        if message.get("type") == "error" or ("message" in message and "transcript" not in message):
            await self.report_error(
                f"{self}: Smallest error: {message.get('message', message)}", reason="provider"
            )
            return
        text = message.get("transcript")
        if not isinstance(text, str):
            text = message.get("transcription")
        if not isinstance(text, str) or not text.strip():
            return
        language = message.get("language")
        await self.push_transcript(
            text.strip(),
            final=message.get("is_final") is True,
            language=language if isinstance(language, str) and language else self._language,
            result=message,
            finalized=message.get("from_finalize") is True,
        )

    # ------------------------------------------------------------------ settings at runtime

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Every setting is in the query: a new socket; ``pulse-2`` with another language than
        English is undone."""
        problem = pulse_2_problem(self._settings.model, self._settings.language)
        if problem:
            restore_settings(self._settings, changed)
            self._sync_model_and_language()
            await self.report_error(f"{self}: {problem}; settings unchanged", reason="settings")
            return
        await super().apply_settings(changed)


_is_last = message_where(lambda message: message.get("is_last") is True, '"is_last"')
"""Smallest's last result (after ``close_stream``)."""
