"""TogetherSTTService: Together AI's real-time transcription WebSocket (``/v1/realtime``).

The protocol, as Together documents it (https://docs.together.ai/reference/audio-transcriptions-realtime,
the ``/realtime`` operation of its OpenAPI description):

- **Handshake.** ``wss://api.together.ai/v1/realtime?model=...&input_audio_format=pcm_s16le_16000``
  with ``Authorization: Bearer <key>`` and ``OpenAI-Beta: realtime=v1``. The socket is opened
  with ``turn_detection=none``: Together's own VAD is off, so a transcript comes only when the
  client commits the audio buffer (callpipe's VAD decides the turns, as in Pipecat 1.14).
- **Audio.** ``{"type": "input_audio_buffer.append", "audio": <base64>}``: 16-bit PCM at
  16 kHz, the one ``input_audio_format`` Together takes. On an 8 kHz phone call the caller's
  audio is resampled to 16 kHz per batch of 100 ms (one resampler call per batch, nothing per
  20 ms packet).
- **End of a turn.** When the caller stops speaking, the queued audio is sent, then
  ``{"type": "input_audio_buffer.commit"}`` (only when audio went out since the last commit).
- **Results.** ``conversation.item.input_audio_transcription.delta`` (``delta``: the partial
  text) becomes an ``InterimTranscriptionFrame``;
  ``conversation.item.input_audio_transcription.completed`` (``transcript``) a final
  ``TranscriptionFrame`` (``finalized=True``: it answers a commit). ``session.created``,
  ``transcription_session.updated`` and ``input_audio_buffer.committed`` are only logged.
- **Errors.** ``conversation.item.input_audio_transcription.failed`` (``error``: ``message``,
  ``type``, ``code``) is a non-fatal ``ErrorFrame``; so is an ``error`` event, except a
  rejected key (``invalid_api_key``, ``missing_api_key``, or HTTP 401/403 at the handshake):
  fatal, naming ``TOGETHER_API_KEY``. A dropped socket follows the reconnect policy of
  :class:`~callpipe.services.websocket_service.ProviderWebsocket`.

At the end of the call (``EndFrame``) audio not yet committed is committed and its transcript
pushed before the ``EndFrame`` (bounded by ``end_timeout_secs``). A ``CancelFrame`` closes at
once.

Settings at runtime (``STTUpdateSettingsFrame``): the ``model`` is in the socket's query, so a
new model opens a new socket (make-before-break, see
:class:`~callpipe.services.stt_service.ProviderSocketSTTService`). Together's realtime socket
takes no language, so ``language`` only labels the transcripts.

Differences from Pipecat 1.14: the query is the documented one (Pipecat adds an undocumented
``intent=transcription``); the partial text is read from the documented ``delta`` field (Pipecat
reads ``transcript``); audio at another rate than 16 kHz is resampled (Pipecat labels any rate
``pcm_s16le_16000``); an empty buffer is never committed.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from callpipe.audio.resample import StreamResampler
from callpipe.services._env import TOGETHER_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    json_object,
    message_where,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url

logger = logging.getLogger(__name__)

TOGETHER_WS_URL = "wss://api.together.ai/v1"
"""Together's socket base URL (Pipecat 1.14's default ``base_url``)."""
REALTIME_PATH = "/realtime"
DEFAULT_MODEL = "openai/whisper-large-v3"
INPUT_AUDIO_FORMAT = "pcm_s16le_16000"
INPUT_RATE = 16000
"""The rate Together's realtime transcription takes (its one ``input_audio_format``)."""
TOGETHER_TTFS_P99 = 1.0
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Together (seconds)."""
DELTA = "conversation.item.input_audio_transcription.delta"
COMPLETED = "conversation.item.input_audio_transcription.completed"
FAILED = "conversation.item.input_audio_transcription.failed"
AUTH_CODES = frozenset({"invalid_api_key", "missing_api_key"})
_AUTH_HINT = "Check api_key / TOGETHER_API_KEY."
_COMMIT = json.dumps({"type": "input_audio_buffer.commit"})


@dataclass
class TogetherSTTSettings(STTSettings):
    """``TogetherSTTService.Settings``: ``model`` (a Together transcription model, e.g.
    ``openai/whisper-large-v3``) and ``language`` (a label for the transcripts only)."""


class TogetherSTTService(ProviderSocketSTTService):
    """Together AI real-time transcription (see the module docstring).

    1.14 style: ``TogetherSTTService(api_key=..., settings=TogetherSTTService.Settings(
    model="openai/whisper-large-v3", language=Language.EN))``. ``base_url``: the socket's base
    URL (``/realtime`` is added); left at Together's, ``$CALLPIPE_TOGETHER_URL`` may replace it.
    """

    Settings = TogetherSTTSettings
    _settings: TogetherSTTSettings
    _ws: SessionSocket | None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        sample_rate: int | None = None,
        base_url: str = TOGETHER_WS_URL,
        settings: TogetherSTTSettings | None = None,
        ttfs_p99_latency: float | None = TOGETHER_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = TogetherSTTSettings(model=DEFAULT_MODEL, language="en")
        if settings is not None:
            store.apply_update(settings)
        super().__init__(
            model=store.model if isinstance(store.model, str) else DEFAULT_MODEL,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "TOGETHER_API_KEY")
        self._base_url = defaulted_base_url(base_url, TOGETHER_URL_ENV, TOGETHER_WS_URL)
        self._resampler: StreamResampler | None = None
        self._uncommitted = False
        """Audio went out since the last commit."""
        self._commit_pending = False
        """A commit went out and its transcript has not come yet."""

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: str) -> str:
        """Together's realtime socket takes no language: the tag as it is."""
        return str(language)

    # ------------------------------------------------------------------ the socket

    def socket_url(self) -> str:
        model = self._settings.model
        query = {
            "model": model if isinstance(model, str) and model else DEFAULT_MODEL,
            "input_audio_format": INPUT_AUDIO_FORMAT,
            "turn_detection": "none",
        }
        return ws_url(self._base_url, REALTIME_PATH, query)

    def _build_socket(self) -> SessionSocket:
        return SessionSocket(
            b"",
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}", "OpenAI-Beta": "realtime=v1"},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._session_failed,
            auth_hint=_AUTH_HINT,
        )

    def _stream_end(self) -> StreamEnd | None:
        """A commit, when a transcript is still due: one was asked for, or audio went out
        since the last commit."""
        if not self._commit_pending and not self._uncommitted:
            return None
        return _COMMIT, _is_answer

    def _socket_replaced(self) -> None:
        self._uncommitted = self._commit_pending = False
        if self._resampler is not None:
            self._resampler.reset()

    async def _on_reconnected(self, ws: SessionSocket) -> None:
        # A new session starts with an empty buffer.
        ws.error_reported = False
        self._uncommitted = self._commit_pending = False

    # ------------------------------------------------------------------ audio out

    def _to_input_rate(self, pcm: bytes) -> bytes:
        if self.sample_rate == INPUT_RATE:
            return pcm
        resampler = self._resampler
        if resampler is None or resampler.in_rate != self.sample_rate:
            resampler = self._resampler = StreamResampler(
                self.sample_rate, INPUT_RATE, clear_after_secs=None
            )
        return resampler.resample(pcm)

    @staticmethod
    def audio_message(pcm16k: bytes) -> str:
        """The ``input_audio_buffer.append`` message carrying ``pcm16k``."""
        audio = base64.b64encode(pcm16k).decode("ascii")
        return json.dumps({"type": "input_audio_buffer.append", "audio": audio})

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        pcm = self._to_input_rate(audio)
        if pcm and not await ws.send(self.audio_message(pcm), wait_secs=0):
            return False
        self._uncommitted = True
        return True

    async def _end_turn(self, ws: ProviderWebsocket, message: Message, *, wait_secs: float) -> bool:
        """The queued audio (and the resampler's tail), then a commit if audio went out since
        the last one (Together refuses to commit an empty buffer)."""
        await self.flush_audio()
        if self._resampler is not None:
            tail = self._resampler.flush()
            if tail:
                await ws.send(self.audio_message(tail), wait_secs=wait_secs)
        if not self._uncommitted:
            return True
        if not await ws.send(message, wait_secs=wait_secs):
            return False
        self._uncommitted = False
        self._commit_pending = True
        return True

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: the queued audio, then ``input_audio_buffer.commit``."""
        await self._flush_then_send(_COMMIT)

    # ------------------------------------------------------------------ results in

    async def _on_message(self, ws: SessionSocket, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == DELTA:
            delta = message.get("delta")
            if isinstance(delta, str):
                await self.push_transcript(delta, final=False, result=message)
        elif kind == COMPLETED:
            if ws is self._ws:
                self._commit_pending = False
            transcript = message.get("transcript")
            if isinstance(transcript, str):
                await self.push_transcript(transcript, final=True, result=message, finalized=True)
        elif kind == FAILED:
            if ws is self._ws:
                self._commit_pending = False
            await self._session_error(ws, _describe(message.get("error")), final=False)
        elif kind == "error":
            error = message.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            auth = _AUTH_HINT if code in AUTH_CODES else None
            await self._session_error(ws, _describe(error), final=auth is not None, auth_hint=auth)
        else:
            logger.debug("%s: %s", self, kind)


def _describe(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error or "")
    return f"[{error.get('code') or error.get('type') or ''}] {error.get('message') or ''}".strip()


_is_answer = message_where(
    lambda message: message.get("type") in (COMPLETED, FAILED, "error"),
    "transcription.completed",
    "transcription.failed",
    '"error"',
)
"""The answer to the last commit: its transcript, or an error."""
