"""MistralSTTService: Mistral's Voxtral realtime transcription socket
(``/v1/audio/transcriptions/realtime``).

The protocol, as the ``mistralai`` SDK (``audio.realtime.connect`` and its ``RealtimeConnection``,
with the ``RealtimeTranscription*`` and ``TranscriptionStream*`` models) and Mistral's reference
give it:

- the socket opens at ``wss://api.mistral.ai/v1/audio/transcriptions/realtime?model=<model>``
  (``voxtral-mini-transcribe-realtime-2602`` by default, as in Pipecat 1.14) with
  ``Authorization: Bearer <key>``; Mistral opens the session with ``session.created``;
- the first message is ``{"type": "session.update", "session": {...}}``: ``audio_format``
  (``pcm_mulaw`` at 8000 Hz on a phone call, the line's own bytes; else ``pcm_s16le`` at the
  pipeline's rate), and when set ``target_streaming_delay_ms`` and ``language``; Mistral answers
  ``session.updated``. A session's settings are fixed once audio came;
- the caller's audio goes out as ``{"type": "input_audio.append", "audio": <base64>}``, in
  batches of 100 ms; when the caller stops speaking (VAD), the queued audio is sent, then
  ``{"type": "input_audio.flush"}``.

Mistral answers with ``transcription.text.delta`` (new text, appended to the utterance's:
each becomes an ``InterimTranscriptionFrame`` with the text so far), ``transcription.language``
(the language it hears: the language of the next transcripts) and ``transcription.done`` (the
utterance's whole text: a ``TranscriptionFrame``, ``finalized=True``, ``result`` = the
message). ``error`` messages (``{"error": {"message", "code"}}``) are non-fatal ``ErrorFrame``\\ s
but for a refused key (401/403: fatal, naming ``MISTRAL_API_KEY``).

At the end of the call (``EndFrame``) the queued audio is sent, then ``{"type":
"input_audio.end"}``; the last ``transcription.done`` is pushed before the ``EndFrame`` (bounded
by ``end_timeout_secs``). A ``CancelFrame`` closes at once. A dropped socket is reopened and
configured again (:class:`~callpipe.services.websocket_service.ProviderWebsocket`'s policy).

Settings at runtime (``STTUpdateSettingsFrame``: ``model``, ``language``) open a new socket with
them; the audio keeps going to the old one until Mistral accepted the new session, then the old
one gets the end of audio and returns its last words. If Mistral refuses, the old socket stays,
the settings go back and the bot gets a non-fatal ``ErrorFrame``.

Pipecat's constructor (``api_key``, ``base_url``, ``sample_rate``, ``target_streaming_delay_ms``,
``ttfs_p99_latency``, ``settings``) is kept. ``base_url`` is the API's origin as the SDK takes it
(``https://api.mistral.ai``; the socket uses ``wss``); when not given, ``$CALLPIPE_MISTRAL_URL``
(an origin is enough) may replace Mistral's. Differences from Pipecat 1.14: a set ``language``
is sent to Mistral (Pipecat keeps it unsent), a phone call's audio goes as μ-law, and Pipecat's
``on_connected`` / ``on_disconnected`` / ``on_connection_error`` events are not raised.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.services._env import MISTRAL_URL_ENV
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    json_object,
    message_where,
    socket_address,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket

logger = logging.getLogger(__name__)

REALTIME_PATH = "/v1/audio/transcriptions/realtime"
MISTRAL_REALTIME_URL = "wss://api.mistral.ai" + REALTIME_PATH
DEFAULT_MODEL = "voxtral-mini-transcribe-realtime-2602"
MISTRAL_TTFS_P99 = 1.89
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Mistral (seconds)."""
_FLUSH = json.dumps({"type": "input_audio.flush"})
_END = json.dumps({"type": "input_audio.end"})
_AUTH_CODES = frozenset({401, 403})
_AUTH_HINT = "Check api_key / MISTRAL_API_KEY."


@dataclass
class MistralSTTSettings(STTSettings):
    """``MistralSTTService.Settings``: the model (in the socket's URL) and the language (None:
    Mistral detects it)."""


def language_to_mistral_language(language: str) -> str:
    """Mistral's code for a language tag: its base code (``Language.EN_US`` -> ``"en"``)."""
    return str(language).replace("_", "-").split("-")[0].lower()


class _Session(SessionSocket):
    """One Mistral session: the utterance's text so far and the language heard."""

    def __init__(self, first: str, **kwargs: Any) -> None:
        super().__init__(first, **kwargs)
        self.text = ""
        self.language: str | None = None


class MistralSTTService(ProviderSocketSTTService):
    """Mistral's Voxtral realtime transcription (see the module docstring).

    1.14 style: ``MistralSTTService(api_key=..., settings=MistralSTTService.Settings(
    language=Language.FR))``.
    """

    Settings = MistralSTTSettings
    _settings: MistralSTTSettings
    _ws: _Session | None

    open_check_secs = 3.0
    """After a settings change, how long Mistral may take to accept the new session."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        sample_rate: int | None = None,
        target_streaming_delay_ms: int | None = None,
        ttfs_p99_latency: float | None = MISTRAL_TTFS_P99,
        settings: MistralSTTSettings | None = None,
        **kwargs: Any,
    ) -> None:
        store = MistralSTTSettings(model=DEFAULT_MODEL, language=None)
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
        self._api_key = resolve_api_key(type(self).__name__, api_key, "MISTRAL_API_KEY")
        if base_url:
            address = base_url.rstrip("/").replace("https://", "wss://", 1)
            self._url = address.replace("http://", "ws://", 1) + REALTIME_PATH
        else:
            self._url = socket_address(None, MISTRAL_URL_ENV, MISTRAL_REALTIME_URL, REALTIME_PATH)
        self._target_streaming_delay_ms = target_streaming_delay_ms

    # ------------------------------------------------------------------ description

    @property
    def audio_encoding(self) -> str:
        """The encoding streamed: ``pcm_mulaw`` on an 8 kHz call, else ``pcm_s16le``."""
        return "pcm_mulaw" if self.sample_rate == 8000 else "pcm_s16le"

    def socket_url(self) -> str:
        """The socket's URL: the model is its query."""
        model = self._settings.model if isinstance(self._settings.model, str) else DEFAULT_MODEL
        return f"{self._url}?model={model}"

    def session_update(self) -> dict[str, Any]:
        """The ``session.update`` message for the current settings (unset ones left out)."""
        session: dict[str, Any] = {
            "audio_format": {"encoding": self.audio_encoding, "sample_rate": self.sample_rate}
        }
        if self._target_streaming_delay_ms is not None:
            session["target_streaming_delay_ms"] = self._target_streaming_delay_ms
        language = self._settings.language
        if isinstance(language, str) and language:
            session["language"] = language_to_mistral_language(language)
        return {"type": "session.update", "session": session}

    # ------------------------------------------------------------------ the socket

    def _first_message(self) -> str:
        return json.dumps(self.session_update())

    def _build_socket(self) -> _Session:
        return _Session(
            self._first_message(),
            replacing=self._ws is not None,
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            auth_hint=_AUTH_HINT,
        )

    async def _session_accepted(self, ws: ProviderWebsocket) -> None:
        """Mistral answers the ``session.update`` with ``session.updated`` (or an error)."""
        assert isinstance(ws, _Session)
        await ws.wait_answer(self.open_check_secs, required=True)

    def _stream_end(self) -> StreamEnd:
        """The end of audio: Mistral sends the last ``transcription.done``."""
        return _END, _is_done

    async def _on_reconnected(self, session: _Session) -> None:
        """A new Mistral session on the same socket object: configure it first."""
        session.error_reported = False
        await session.send(session.first_message, wait_secs=0)
        session.text = ""

    async def _on_failed(self, session: _Session, message: str) -> None:
        await self._session_failed(session, message)

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        payload = pcm_to_ulaw(audio) if self.audio_encoding == "pcm_mulaw" else audio
        message = {"type": "input_audio.append", "audio": base64.b64encode(payload).decode()}
        # No wait for a reconnect: the session must be configured first.
        return await ws.send(json.dumps(message), wait_secs=0)

    async def on_user_started_speaking(self) -> None:
        if self._ws is not None:
            self._ws.text = ""

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: send what is queued, then ``input_audio.flush``."""
        await self._flush_then_send(_FLUSH)

    # ------------------------------------------------------------------ results in

    async def _on_message(self, session: _Session, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == "transcription.text.delta":
            text = message.get("text")
            if isinstance(text, str) and text:
                session.text += text
                await self.push_transcript(
                    session.text, final=False, language=session.language, result=message
                )
        elif kind == "transcription.done":
            session.text = ""
            text = message.get("text")
            language = message.get("language")
            if isinstance(language, str) and language:
                session.language = language
            if isinstance(text, str):
                await self.push_transcript(
                    text, final=True, language=session.language, result=message, finalized=True
                )
        elif kind == "transcription.language":
            language = message.get("audio_language")
            if isinstance(language, str) and language:
                session.language = language
        elif kind == "session.updated":
            session.answered.set()
        elif kind == "error":
            await self._on_error(session, message.get("error"))

    async def _on_error(self, session: _Session, error: Any) -> None:
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        text = error.get("message")
        if isinstance(text, dict):
            text = text.get("detail", text)
        said = f"[{code}] {text}"
        if session.refused_while_replacing(said):
            return
        auth = _AUTH_HINT if code in _AUTH_CODES else None
        await self._session_error(session, said, final=auth is not None, auth_hint=auth)


_is_done = message_where(
    lambda message: message.get("type") in ("transcription.done", "error"),
    '"transcription.done"',
    '"error"',
)
"""Mistral's last transcript (or an error) after the end of audio."""
