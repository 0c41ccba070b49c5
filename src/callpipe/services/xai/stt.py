"""XAISTTService: xAI's real-time speech-to-text WebSocket (``wss://api.x.ai/v1/stt``).

The protocol, as xAI documents it (https://docs.x.ai/developers/model-capabilities/audio/
speech-to-text and the voice API reference):

- **Handshake.** ``Authorization: Bearer <key>``; the whole session is configured by the query:
  ``sample_rate`` (8000, 16000, 22050, 24000, 44100 or 48000), ``encoding`` (``pcm``: 16-bit
  little-endian, ``mulaw`` or ``alaw``), ``language`` (a two-letter code; xAI then normalizes
  numbers and dates), ``model``, ``interim_results``, ``endpointing`` (milliseconds of silence
  that end an utterance, 0-5000), ``multichannel``, ``channels`` and ``diarize``. Booleans are
  sent as ``true``/``false``; unset options are left out (xAI's defaults apply).
- **Session.** xAI sends ``transcript.created`` once the session is ready; the caller's audio
  goes out from then on, as binary messages in the batches :class:`StreamingSTTService`
  collects (audio read before is kept queued, not dropped).
- **Results.** ``transcript.partial`` carries ``text``, ``is_final`` and ``speech_final``:
  a guess (``is_final: false``) and a locked chunk (``is_final: true``, ``speech_final:
  false``) become ``InterimTranscriptionFrame``\\ s; the end of the utterance (both true)
  restates the whole utterance and becomes one ``TranscriptionFrame`` (``finalized=True``,
  ``result`` = xAI's message). xAI ends utterances itself (``endpointing``), so nothing is sent
  when the VAD says the caller stopped.
- **End.** At the end of the call (``EndFrame``) the queued audio is sent, then
  ``{"type": "audio.done"}``; xAI answers with ``transcript.done`` (its ``text``, if any, is
  pushed as a last transcript) and closes. The ``EndFrame`` waits for it (at most
  ``end_timeout_secs``). A ``CancelFrame`` sends ``audio.done`` and closes at once.
- **Errors.** A refused key (HTTP 401/403 at the handshake) is fatal and names
  ``XAI_API_KEY``; an ``error`` message (``{"type": "error", "message"}``) is a non-fatal
  ``ErrorFrame``. A dropped socket is reopened (same query) with the reconnect policy of
  :class:`~callpipe.services.websocket_service.ProviderWebsocket`.

Settings at runtime (``STTUpdateSettingsFrame``) are all in the query: a change opens a new
socket, which takes over the audio once xAI said ``transcript.created`` on it; the old one gets
``audio.done`` and returns its last words. If the new one is refused, the old one stays, the
settings go back and the bot gets a non-fatal ``ErrorFrame``.

Differences from Pipecat 1.14: callpipe's audio is mono, so ``multichannel=True`` is refused
(``ConfigurationError``); audio is queued, not dropped, until the session is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import EndFrame
from callpipe.services._env import XAI_STT_URL_ENV, XAI_URL_ENV, specific_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    StreamEnd,
    json_object,
    message_of_type,
    socket_address,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

XAI_STT_URL = "wss://api.x.ai/v1/stt"
"""xAI's real-time speech-to-text socket (the default ``ws_url``)."""
XAI_TTFS_P99 = 2.14
"""Pipecat 1.14's default ``ttfs_p99_latency`` for xAI (seconds)."""
DEFAULT_MODEL = "grok-voice-transcribe-2.0"
STT_PATH = "/v1/stt"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
"""The ``sample_rate`` values xAI takes."""
_AUDIO_DONE = json.dumps({"type": "audio.done"})
_AUTH_HINT = "Check api_key / XAI_API_KEY."

XAISTTEncoding = Literal["pcm", "mulaw", "alaw"]
_ENCODERS: dict[str, Callable[[bytes], bytes] | None] = {
    "pcm": None,
    "mulaw": pcm_to_ulaw,
    "alaw": pcm_to_alaw,
}

_LANGUAGES = "ar bn de en es fr hi id it ja ko pt ru tr vi zh".split()
_LANGUAGE_MAP = {code: code for code in _LANGUAGES} | {"cmn": "zh"}


def language_to_xai_stt_language(language: str) -> str:
    """xAI's speech-to-text code for a language tag: ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class XAISTTSettings(STTSettings):
    """``XAISTTService.Settings`` (``None``: xAI's default, not sent). Every field is part of
    the socket's query, so a change opens a new socket.

    Parameters:
        interim_results: Send partial transcripts (about every 500 ms).
        endpointing: Milliseconds of silence (0-5000) that end an utterance.
        multichannel: Transcribe interleaved channels apart (refused here: the audio is mono).
        channels: Number of interleaved channels (2-8) with ``multichannel``.
        diarize: Mark each word with its speaker.
    """

    interim_results: bool | NotGiven = field(default_factory=unset)
    endpointing: int | None | NotGiven = field(default_factory=unset)
    multichannel: bool | None | NotGiven = field(default_factory=unset)
    channels: int | None | NotGiven = field(default_factory=unset)
    diarize: bool | None | NotGiven = field(default_factory=unset)


_QUERY_FIELDS = ("model", "interim_results", "endpointing", "multichannel", "channels", "diarize")


class _Session(ProviderWebsocket):
    """One xAI socket and whether its session is ready (``transcript.created``)."""

    def __init__(
        self, *, on_event: Callable[[_Session, Message], Awaitable[None]], **kwargs: Any
    ) -> None:
        super().__init__(
            on_message=lambda raw: on_event(self, raw), on_reconnected=self._reopened, **kwargs
        )
        self.ready = asyncio.Event()
        """Set once xAI said ``transcript.created`` (cleared when the socket is reopened)."""
        self.refusal: str | None = None
        """The error xAI sent before the session was ready."""

    async def _reopened(self) -> None:
        self.ready.clear()  # a new session: its audio waits for its transcript.created


class XAISTTService(ProviderSocketSTTService):
    """xAI real-time speech-to-text (see the module docstring).

    1.14 style: ``XAISTTService(api_key=..., settings=XAISTTService.Settings(
    language=Language.EN, endpointing=300))``. ``ws_url`` is the socket's address; left at
    xAI's, ``$CALLPIPE_XAI_STT_URL``, else ``$CALLPIPE_XAI_URL``, may replace it (an origin is
    enough: ``/v1/stt`` is added).
    """

    Settings = XAISTTSettings
    _settings: XAISTTSettings
    _ws: _Session | None

    end_timeout_secs = 2.0
    """At the end of the call, how long xAI may take to answer ``audio.done``."""

    open_check_secs = 3.0
    """After a settings change, how long a new socket may take to say ``transcript.created``."""

    _final_message: Message | None = _AUDIO_DONE

    def __init__(
        self,
        *,
        api_key: str | None = None,
        ws_url: str = XAI_STT_URL,
        sample_rate: int | None = None,
        encoding: XAISTTEncoding = "pcm",
        settings: XAISTTSettings | None = None,
        ttfs_p99_latency: float | None = XAI_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        if encoding not in _ENCODERS:
            raise ConfigurationError(
                f"XAISTTService: encoding={encoding!r}; xAI takes one of {tuple(_ENCODERS)}"
            )
        store = XAISTTSettings(
            model=DEFAULT_MODEL,
            language="en",
            interim_results=True,
            endpointing=None,
            multichannel=None,
            channels=None,
            diarize=None,
        )
        if settings is not None:
            store.apply_update(settings)
        if store.multichannel is True:
            raise ConfigurationError(
                "XAISTTService: multichannel=True needs interleaved channels; the audio is mono"
            )
        super().__init__(
            model=store.model if isinstance(store.model, str) else DEFAULT_MODEL,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "XAI_API_KEY")
        given = ws_url if ws_url != XAI_STT_URL else None
        address = specific_base_url(given, XAI_STT_URL_ENV, XAI_URL_ENV, XAI_STT_URL)
        self._url = socket_address(address, XAI_URL_ENV, XAI_STT_URL, STT_PATH)
        self._encoding: XAISTTEncoding = encoding
        self._encode = _ENCODERS[encoding]

    @property
    def encoding(self) -> XAISTTEncoding:
        """The audio encoding streamed to xAI."""
        return self._encoding

    def language_to_service_language(self, language: str) -> str | None:
        """xAI's code for ``language`` (see :func:`language_to_xai_stt_language`)."""
        return language_to_xai_stt_language(language)

    # ------------------------------------------------------------------ the socket

    def socket_url(self) -> str:
        """The socket's URL for the current settings (unset options left out)."""
        s = self._settings
        if self.sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(
                f"XAISTTService: xAI takes audio at {SAMPLE_RATES} Hz, not {self.sample_rate}"
            )
        query: dict[str, Any] = {"sample_rate": self.sample_rate, "encoding": self._encoding}
        if isinstance(s.language, str) and s.language:
            query["language"] = language_to_xai_stt_language(s.language)
        values = s.given_fields()
        for name in _QUERY_FIELDS:
            value = values.get(name)
            if value is None:
                continue
            query[name] = str(value).lower() if isinstance(value, bool) else value
        return ws_url(self._url, "", query)

    def _build_socket(self) -> _Session:
        return _Session(
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_event=self._on_message,
            on_failed=self._on_socket_failed,
            auth_hint=_AUTH_HINT,
        )

    async def _session_accepted(self, ws: ProviderWebsocket) -> None:
        """A socket opened for new settings takes over once xAI said ``transcript.created``."""
        assert isinstance(ws, _Session)
        try:
            async with asyncio.timeout(self.open_check_secs):
                await ws.ready.wait()
        except TimeoutError:
            raise ConnectionError(
                ws.refusal or "xAI did not start the session (no transcript.created)"
            ) from None

    async def stop(self, frame: EndFrame) -> None:
        """The queued audio goes out once the session is ready (a call may end before)."""
        ws = self._ws
        if ws is not None and not ws.ready.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.end_timeout_secs):
                    await ws.ready.wait()
        await super().stop(frame)

    def _stream_end(self) -> StreamEnd:
        """``audio.done``: xAI sends ``transcript.done``, then closes."""
        return _AUDIO_DONE, _is_done

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None or not ws.ready.is_set():
            return False  # stays queued until the session is ready
        payload = self._encode(audio) if self._encode is not None else audio
        return await ws.send(payload, wait_secs=0)

    # ------------------------------------------------------------------ results in

    async def _on_message(self, ws: _Session, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == "transcript.partial":
            final = bool(message.get("is_final")) and bool(message.get("speech_final"))
            await self.push_transcript(
                str(message.get("text") or ""), final=final, result=message, finalized=final
            )
        elif kind == "transcript.created":
            ws.ready.set()
        elif kind == "transcript.done":
            await self.push_transcript(
                str(message.get("text") or ""), final=True, result=message, finalized=True
            )
        elif kind == "error":
            said = str(message.get("message") or message)
            if ws is not self._ws and not ws.ready.is_set():
                ws.refusal = f"xAI error: {said}"  # a replacement socket: its opener reports
                return
            await self.report_error(f"{self}: xAI error: {said}", reason="provider")


_is_done = message_of_type("transcript.done")
"""xAI's ``transcript.done``: its answer to ``audio.done``."""
