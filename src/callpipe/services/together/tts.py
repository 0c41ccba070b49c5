"""TogetherTTSService: Together AI's text-to-speech WebSocket (``/v1/audio/speech/websocket``).

The protocol, as Together documents it (https://docs.together.ai/reference/audio-speech-websocket):

- **Handshake.** ``wss://api.together.ai/v1/audio/speech/websocket`` with the options as query
  parameters (``model``, ``voice``, ``response_format=pcm``, ``language``, and
  ``max_partial_length`` when set; percent-encoded, so a blended Kokoro voice such as
  ``af_bella(2)+af_heart(1)`` keeps its ``+``) and ``Authorization: Bearer <key>``. Together
  answers ``session.created``. ``Settings.extra_params`` (model options such as
  ``pronunciation_dict``) go in a ``{"type": "tts_session.updated", "session": {...}}`` sent
  first on each socket.
- **Text.** ``{"type": "input_text_buffer.append", "text"}`` then
  ``{"type": "input_text_buffer.commit"}`` for each sentence of a reply, as soon as it is
  complete: Together synthesizes each as one item.
- **Audio.** ``conversation.item.audio_output.delta`` (``delta``: base64 16-bit mono PCM at
  24 kHz, Together's only rate for streamed speech; resampled to the call's rate by the base
  class) and ``conversation.item.audio_output.done`` once an item is spoken.

Together's socket has no contexts: it keeps one text buffer and speaks its items in order. So
audio belongs to the oldest reply that still has items to hear, and a reply ends (its
``TTSStoppedFrame`` after its audio) once it was flushed and each of its items answered with
``done``. Together gives no word timing: each reply's text follows all of its audio.

An interruption while only dropped replies are still being spoken replaces the socket (in
the background, while the caller speaks): ``input_text_buffer.clear`` does not stop the text
already being synthesized, and nothing would tell its late audio from the next reply's. The
next reply waits for the new socket.

Errors: ``conversation.item.tts.failed`` loses that item (a non-fatal ``ErrorFrame``; the reply
goes on without its text in the context); an ``error`` event is a non-fatal ``ErrorFrame`` (the
replies under way close with what they had and a new socket is opened, since which text the
error cost is unknown), except a rejected key (``invalid_api_key``, or HTTP 401/403 at the
handshake): fatal, naming ``TOGETHER_API_KEY``. A dropped socket follows the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`; the replies it was speaking
close with what they had.

Settings at runtime are query parameters: a change opens a new socket before the next reply
that starts with no earlier one still being spoken (a reply never changes voice mid-way).

Differences from Pipecat 1.14: ``sample_rate`` defaults to the pipeline's output rate (the
24 kHz audio is resampled); ``response_format=pcm`` is asked for explicitly; the session update
is sent only when ``extra_params`` are set (the voice is already in the query); each sentence
is committed (as Pipecat does), in ``TextAggregationMode.TOKEN`` too, where every chunk is
then an item of its own.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import TOGETHER_URL_ENV, base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

TOGETHER_TTS_URL = "wss://api.together.ai/v1/audio/speech/websocket"
"""Together's speech socket (Pipecat 1.14's default ``url``)."""
TOGETHER_TTS_SAMPLE_RATE = 24000
"""The rate of the 16-bit mono PCM Together streams (the only one it offers)."""
SPEECH_PATH = "/audio/speech/websocket"
DEFAULT_MODEL = "hexgrad/Kokoro-82M"
DEFAULT_VOICE = "af_heart"
AUTH_CODES = frozenset({"invalid_api_key", "missing_api_key"})
_AUTH_HINT = "Check api_key / TOGETHER_API_KEY."
_COMMIT = json.dumps({"type": "input_text_buffer.commit"})
_LANGUAGES = {code: code for code in ("en", "es", "fr", "hi", "it", "ja", "pt", "zh")}
_LANGUAGES |= {"zh-HK": "zh-hk", "zh-hk": "zh-hk"}


def language_to_together_language(language: str) -> str:
    """Together's code for a language tag (ISO 639-1, ``zh-hk``): ``Language.EN_US`` -> ``en``."""
    return resolve_language(language, _LANGUAGES, use_base_code=True)


@dataclass
class TogetherTTSSettings(TTSSettings):
    """``TogetherTTSService.Settings`` (``None``: Together's default, not sent).

    Parameters:
        max_partial_length: Characters Together buffers before it starts speaking.
        extra_params: Model options for the session (e.g. ``{"pronunciation_dict":
            ["<source>/<replacement>"]}``), sent in a ``tts_session.updated`` message.
    """

    max_partial_length: int | None | NotGiven = field(default_factory=unset)
    extra_params: dict[str, Any] | None | NotGiven = field(default_factory=unset)


@dataclass
class _Reply:
    """A reply whose text went to Together and whose audio is not all here yet."""

    context_id: str
    items: int = 0
    """Items committed whose ``done`` has not come."""
    flushed: bool = False
    """No more text: the reply ends with its last item's ``done``."""
    dropped: bool = False
    """Interrupted: its audio still coming is discarded (by the base class)."""


class TogetherTTSService(TTSService):
    """Together AI text-to-speech over WebSocket (see the module docstring).

    1.14 style: ``TogetherTTSService(api_key=..., settings=TogetherTTSService.Settings(
    model="canopylabs/orpheus-3b-0.1-ft", voice="tara"))``. ``url``: the socket's address; left
    at Together's, ``$CALLPIPE_TOGETHER_URL`` (the ``.../v1`` base) may replace it.
    """

    # No word timing: the base class puts each reply's text after all of its audio.
    emits_word_timestamps = True
    Settings = TogetherTTSSettings
    _settings: TogetherTTSSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str = TOGETHER_TTS_URL,
        sample_rate: int | None = None,
        settings: TogetherTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        store = TogetherTTSSettings(
            model=DEFAULT_MODEL,
            voice=DEFAULT_VOICE,
            language="en",
            max_partial_length=None,
            extra_params=None,
        )
        if settings is not None:
            store.apply_update(settings)
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "TOGETHER_API_KEY")
        env_base = base_url(None, TOGETHER_URL_ENV, "")
        if url == TOGETHER_TTS_URL and env_base:
            url = env_base + SPEECH_PATH
        self._url = url
        self._ws: ProviderWebsocket | None = None
        self._replies: deque[_Reply] = deque()
        """Replies sent to Together whose audio is not all here, oldest first."""
        self._reconnect: asyncio.Task[None] | None = None
        """A new socket opening (after an interruption, or for new settings)."""

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: str) -> str:
        return language_to_together_language(language)

    # ------------------------------------------------------------------ the socket

    def socket_url(self) -> str:
        """The socket's URL for the current settings."""
        s = self._settings
        params: dict[str, Any] = {
            "model": s.model if isinstance(s.model, str) and s.model else DEFAULT_MODEL,
            "voice": s.voice if isinstance(s.voice, str) and s.voice else DEFAULT_VOICE,
            "response_format": "pcm",
        }
        if isinstance(s.language, str) and s.language:
            params["language"] = language_to_together_language(s.language)
        if isinstance(s.max_partial_length, int):
            params["max_partial_length"] = s.max_partial_length
        return f"{self._url}?{urlencode(params, quote_via=quote, safe='/')}"

    def _session_message(self) -> str | None:
        extra = self._settings.extra_params
        if not isinstance(extra, dict) or not extra:
            return None
        session = {"voice": self._settings.voice, "extra_params": extra}
        return json.dumps({"type": "tts_session.updated", "session": session})

    def _new_socket(self) -> ProviderWebsocket:
        """A socket for the current settings whose messages count only while it is current."""
        ws: ProviderWebsocket

        def only_current(handler: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
            async def call(*args: Any) -> None:
                if ws is self._ws:
                    await handler(*args)

            return call

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=only_current(self._on_message),
            on_reconnected=only_current(self._on_reconnected),
            on_failed=only_current(self._on_socket_failed),
            auth_hint=_AUTH_HINT,
        )
        return ws

    async def _open(self, ws: ProviderWebsocket) -> None:
        await ws.connect()
        session = self._session_message()
        if session is not None:
            await ws.send(session, wait_secs=0)

    async def start(self, frame: StartFrame) -> None:
        self._ws = self._new_socket()
        await self._open(self._ws)

    async def disconnect(self) -> None:
        await cancel_and_wait(self._reconnect)
        self._reconnect = None
        ws, self._ws = self._ws, None
        self._replies.clear()
        if ws is not None:
            await ws.close()

    async def _on_reconnected(self) -> None:
        # A new session knows nothing of the old one's items: those replies close with what
        # they had; the session's options go first.
        await self._drop_replies_in_flight()
        session = self._session_message()
        if session is not None and self._ws is not None:
            await self._ws.send(session, wait_secs=0)

    async def _drop_replies_in_flight(self) -> None:
        replies = list(self._replies)
        self._replies.clear()
        for reply in replies:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_replies_in_flight()

    def _replace_socket(self) -> None:
        """Open a new socket in the background; the old one is forgotten at once (its late
        messages are ignored) and closed."""
        old, self._ws = self._ws, None
        previous = self._reconnect
        self._reconnect = self.create_task(self._reopen(old, previous), "reconnect")

    async def _reopen(
        self, old: ProviderWebsocket | None, previous: asyncio.Task[None] | None
    ) -> None:
        await cancel_and_wait(previous)
        if old is not None:
            await old.close()
        new = self._new_socket()
        try:
            await self._open(new)
        except asyncio.CancelledError:
            await new.close()
            raise
        except Exception as exc:
            await new.close()
            await self.report_error(f"{self}: could not reconnect ({exc})", reason="disconnected")
            return
        self._ws = new

    async def _ready_socket(self) -> ProviderWebsocket | None:
        """Before a reply: the socket, reopened first when the settings changed and no
        earlier reply is still being spoken, or when one is opening."""
        ws = self._ws
        if ws is not None and ws.url != self.socket_url() and not self._replies:
            logger.info("%s: settings changed; reconnecting", self)
            self._replace_socket()
        task = self._reconnect
        if task is not None and not task.done():
            await asyncio.shield(task)  # an interruption cancels this reply, not the reconnect
        return self._ws

    # ------------------------------------------------------------------ requests

    def _reply(self, context_id: str) -> _Reply | None:
        for reply in self._replies:
            if reply.context_id == context_id:
                return reply
        return None

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._reply(context_id)
        if reply is None:
            ws = await self._ready_socket()
            reply = _Reply(context_id)
            self._replies.append(reply)
        else:
            ws = self._ws
        append = json.dumps({"type": "input_text_buffer.append", "text": text})
        if ws is None or not await ws.send(append) or not await ws.send(_COMMIT):
            await self.report_not_connected()
            self.sentence_failed(context_id)
            return
        reply.items += 1

    async def flush_context(self, context_id: str) -> None:
        reply = self._reply(context_id)
        if reply is None:
            await self.finish_context(context_id)
            return
        reply.flushed = True
        await self._maybe_finish(reply)

    async def _maybe_finish(self, reply: _Reply) -> None:
        if reply.items <= 0 and (reply.flushed or reply.dropped):
            if reply in self._replies:
                self._replies.remove(reply)
            await self.finish_context(reply.context_id)

    async def cancel_context(self, context_id: str) -> None:
        reply = self._reply(context_id)
        if reply is None:
            return
        reply.dropped = True
        if reply.items <= 0:
            self._replies.remove(reply)
            return
        if all(r.dropped for r in self._replies if r.items > 0):
            # Only interrupted replies are being spoken: a new socket stops them at once
            # (clearing the buffer would not stop what Together is already synthesizing).
            self._replies = deque(r for r in self._replies if not r.dropped)
            self._replace_socket()
        # Otherwise (an uninterruptible reply is being spoken before it) its items are heard
        # out and counted; the base class discards their audio.

    # ------------------------------------------------------------------ responses

    def _speaking(self) -> _Reply | None:
        """The reply the next item's audio belongs to."""
        for reply in self._replies:
            if reply.items > 0:
                return reply
        return None

    async def _on_message(self, raw: Message) -> None:
        if isinstance(raw, bytes):
            return
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "conversation.item.audio_output.delta":
            reply = self._speaking()
            delta = message.get("delta")
            if reply is not None and isinstance(delta, str):
                pcm = base64.b64decode(delta)
                await self.append_audio(reply.context_id, pcm, TOGETHER_TTS_SAMPLE_RATE)
        elif kind == "conversation.item.audio_output.done":
            await self._item_done()
        elif kind == "conversation.item.tts.failed":
            reply = self._speaking()
            if reply is not None:
                self.context_failed(reply.context_id)
            await self.report_error(
                f"{self}: Together could not speak a sentence {_describe(message.get('error'))}",
                reason="provider",
            )
            await self._item_done()
        elif kind == "error":
            error = message.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            if code in AUTH_CODES:
                await self.report_error(
                    f"{self}: Together rejected the credentials {_describe(error)}. {_AUTH_HINT}",
                    fatal=True,
                    reason="auth",
                )
                return
            await self.report_error(
                f"{self}: Together's error {_describe(error)}", reason="provider"
            )
            # Which text the error cost is unknown: the replies under way close with what they
            # had, and a new session starts clean.
            await self._drop_replies_in_flight()
            self._replace_socket()
        else:
            logger.debug("%s: %s", self, kind)

    async def _item_done(self) -> None:
        reply = self._speaking()
        if reply is None:
            return
        reply.items -= 1
        await self._maybe_finish(reply)


def _describe(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error or "")
    return f"[{error.get('code') or error.get('type') or ''}] {error.get('message') or ''}".strip()
