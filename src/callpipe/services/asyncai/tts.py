"""AsyncAITTSService: Async's (async.com) text-to-speech WebSocket; AsyncAIHttpTTSService: one
streamed ``POST /text_to_speech/streaming`` per sentence.

The socket protocol, as Pipecat 1.14 speaks it and Async documents it:

- **Handshake.** ``wss://api.async.com/text_to_speech/websocket/ws?api_key=<key>&version=v1``
  (the key is a query parameter). The first message configures the whole session:
  ``{"model_id", "voice": {"mode": "id", "id"}, "output_format": {"container", "encoding",
  "sample_rate"}, "language"}``.
- **Text.** ``{"transcript", "context_id", "force"}``: each bot reply is one Async context (its
  id is ours); each sentence goes with ``force: true``, so Async speaks it at once. With
  ``TextAggregationMode.TOKEN`` the text goes as it streams (``force: false``) and the reply's
  end sends ``{"transcript": " ", "force": true}``.
- **Audio.** ``{"audio": <base64>, "context_id"}``. Async sends nothing when a context's audio
  is all sent: once a finished reply has been quiet for :attr:`AsyncAITTSService.quiet_secs`
  (as Pipecat's audio contexts do), ``{"context_id", "close_context": true, "transcript": ""}``
  frees it, and Async's ``{"final": true, "context_id"}`` ends the reply. An interruption sends
  ``close_context`` at once; audio still in flight for it is dropped by id.
- A blank ``{"transcript": " "}`` every 10 s keeps an idle socket open.

Audio is asked for at the call's output rate (16-bit PCM at 8000 Hz on a phone line), so
nothing is resampled. Async gives no word timing here: each reply's text follows its audio.

Model, voice and language are part of the session: a change (``TTSUpdateSettingsFrame``)
opens a new socket before the next reply that starts with no earlier one still open.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import (
    ASYNCAI_API_URL_ENV,
    ASYNCAI_URL_ENV,
    base_url,
    defaulted_base_url,
)
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, require_voice
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language

logger = logging.getLogger(__name__)

ASYNCAI_URL = "wss://api.async.com/text_to_speech/websocket/ws"
"""Async's speech socket (Pipecat 1.14's default ``url``)."""
ASYNCAI_API_URL = "https://api.async.com"
"""The origin of Async's HTTP API (``POST /text_to_speech/streaming``)."""
HTTP_PATH = "/text_to_speech/streaming"
WS_PATH = "/text_to_speech/websocket/ws"
DEFAULT_MODEL = "async_flash_v1.5"
_AUTH_HINT = "Check api_key / ASYNCAI_API_KEY."
_LANGUAGES = {
    code: code
    for code in (
        "en",
        "fr",
        "es",
        "de",
        "it",
        "pt",
        "nl",
        "ar",
        "ru",
        "ro",
        "ja",
        "he",
        "hy",
        "tr",
        "hi",
        "zh",
    )
}


def language_to_async_language(language: str) -> str:
    """Async's code for a language tag (its base code): ``Language.ES_MX`` -> ``"es"``. A
    language Async does not list goes as its base code, logged at WARNING."""
    return resolve_language(language, _LANGUAGES, use_base_code=True)


@dataclass
class AsyncAITTSSettings(TTSSettings):
    """``AsyncAITTSService.Settings`` and ``AsyncAIHttpTTSService.Settings``: model, voice (a
    voice id) and language."""


class _InputParams(BaseModel):
    """Pipecat's deprecated ``params=`` form (``settings=`` replaces it, and wins)."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = None


def _initial_settings(
    service: str,
    voice_id: str | None,
    model: str | None,
    params: _InputParams | None,
    settings: AsyncAITTSSettings | None,
) -> AsyncAITTSSettings:
    store = AsyncAITTSSettings(model=model or DEFAULT_MODEL, voice=None, language=None)
    if params is not None and settings is None:
        store.language = params.language
    if settings is not None:
        store.apply_update(settings)
    store.voice = require_voice(service, voice_id, settings)
    return store


def _output_format(container: str, encoding: str, sample_rate: int) -> dict[str, Any]:
    return {"container": container, "encoding": encoding, "sample_rate": sample_rate}


def _language(value: Any) -> str | None:
    return language_to_async_language(value) if isinstance(value, str) and value else None


@dataclass
class _Reply:
    """A reply sent to Async whose ``final`` has not come."""

    last_activity: float
    flushed: bool = False
    closing: bool = False
    """``close_context`` sent: the reply ends with Async's ``final``."""


class AsyncAITTSService(TTSService):
    """Async over its WebSocket (see the module docstring).

    1.14 style: ``AsyncAITTSService(api_key=..., settings=AsyncAITTSService.Settings(
    voice="<voice id>"))``. ``voice_id``, ``model`` and ``params`` are the older forms.
    ``url``: the socket's address (left at Async's, ``$CALLPIPE_ASYNCAI_URL``, an origin, may
    replace it). ``encoding`` and ``container`` go in the session's
    ``output_format`` (``pcm_s16le`` and ``raw``; ``pcm_mulaw`` is decoded too).
    """

    # No word timing: the base class puts each reply's text after all of its audio.
    emits_word_timestamps = True
    Settings = AsyncAITTSSettings
    _settings: AsyncAITTSSettings
    InputParams = _InputParams

    quiet_secs = 2.0
    """Seconds a finished reply's audio must have been quiet before its context is closed."""
    keepalive_secs = 10.0

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        version: str = "v1",
        url: str = ASYNCAI_URL,
        model: str | None = None,
        sample_rate: int | None = None,
        encoding: str = "pcm_s16le",
        container: str = "raw",
        params: _InputParams | None = None,
        settings: AsyncAITTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        store = _initial_settings(name, voice_id, model, params, settings)
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._api_key = resolve_api_key(name, api_key, "ASYNCAI_API_KEY")
        self._version = version
        env_origin = base_url(None, ASYNCAI_URL_ENV, "")
        self._url = env_origin + WS_PATH if url == ASYNCAI_URL and env_origin else url
        self._encoding = encoding
        self._container = container
        self._ws: ProviderWebsocket | None = None
        self._stale = False
        """A session setting changed: open a new socket before the next reply."""
        self._replies: dict[str, _Reply] = {}
        self._closer: asyncio.Task[None] | None = None

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_async_language(language)

    # ------------------------------------------------------------------ the socket

    def socket_url(self) -> str:
        """The socket's URL: the key and the API version are query parameters."""
        sep = "&" if "?" in self._url else "?"
        return f"{self._url}{sep}{urlencode({'api_key': self._api_key, 'version': self._version})}"

    def init_message(self) -> dict[str, Any]:
        """The session's first message, for the current settings."""
        s = self._settings
        return {
            "model_id": s.model,
            "voice": {"mode": "id", "id": s.voice},
            "output_format": _output_format(self._container, self._encoding, self.sample_rate),
            "language": _language(s.language),
        }

    def _new_socket(self) -> ProviderWebsocket:
        ws: ProviderWebsocket

        async def on_message(raw: Message) -> None:
            if ws is self._ws:
                await self._on_message(raw)

        async def reconnected() -> None:
            if ws is self._ws:
                # A new session: configure it, and close the replies the old one was speaking.
                await ws.send(json.dumps(self.init_message()), wait_secs=0)
                await self._drop_open_replies()

        async def failed(message: str) -> None:
            if ws is self._ws:
                await self.report_error(message, reason="disconnected")
                await self._drop_open_replies()

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self.socket_url(),
            on_message=on_message,
            on_reconnected=reconnected,
            on_failed=failed,
            keepalive_secs=self.keepalive_secs,
            keepalive_message=lambda: json.dumps({"transcript": " "}),
            auth_hint=_AUTH_HINT,
        )
        return ws

    async def _open(self) -> None:
        ws = self._new_socket()
        self._ws = ws
        await ws.connect()
        await ws.send(json.dumps(self.init_message()), wait_secs=0)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Async cannot produce {self.sample_rate} Hz audio")
        await self._open()

    async def disconnect(self) -> None:
        await cancel_and_wait(self._closer)
        self._closer = None
        ws, self._ws = self._ws, None
        self._replies.clear()
        if ws is not None:
            await ws.close()

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if {"model", "voice", "language"} & changed.keys():
            self._stale = True

    async def _drop_open_replies(self) -> None:
        for context_id in list(self._replies):
            self.context_failed(context_id)
            await self.finish_context(context_id)

    # ------------------------------------------------------------------ requests

    async def _send(self, context_id: str, payload: dict[str, Any]) -> bool:
        if self._ws is None or not await self._ws.send(json.dumps(payload)):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self.finish_context(context_id)
            return False
        return True

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if reply is None:
            if self._stale and not self._replies and self._ws is not None:
                self._stale = False
                logger.info("%s: session settings changed; reconnecting", self)
                old = self._ws
                await old.close()
                await self._open()
            reply = self._replies[context_id] = _Reply(self.clock.now())
        reply.last_activity = self.clock.now()
        force = self._aggregate_sentences
        message = {"transcript": text, "context_id": context_id, "force": force}
        await self._send(context_id, message)

    async def flush_context(self, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if reply is None or not self.has_context(context_id):
            await self.finish_context(context_id)
            return
        reply.flushed = True
        reply.last_activity = self.clock.now()
        if not self._aggregate_sentences:
            message = {"transcript": " ", "context_id": context_id, "force": True}
            if not await self._send(context_id, message):
                return
        if self._closer is None:
            self._closer = self.create_task(self._close_quiet_replies(), "asyncai-close")

    async def _close_context(self, context_id: str) -> None:
        if self._ws is not None and self._ws.connected:
            close = {"context_id": context_id, "close_context": True, "transcript": ""}
            await self._ws.send(json.dumps(close), wait_secs=0)

    async def cancel_context(self, context_id: str) -> None:
        if self._replies.pop(context_id, None) is not None:
            await self._close_context(context_id)

    async def finish_context(self, context_id: str | None) -> None:
        """Close a reply: ours (Async's ``final``, a lost socket) or the base class's when Async
        never answered (``context_timeout_secs``)."""
        if context_id is not None:
            self._replies.pop(context_id, None)
        await super().finish_context(context_id)

    async def _close_quiet_replies(self) -> None:
        """Close the context of each finished reply once its audio has been quiet long enough;
        runs only while such a reply is waiting."""
        while True:
            now = self.clock.now()
            next_due: float | None = None
            for context_id, reply in list(self._replies.items()):
                if not reply.flushed or reply.closing:
                    continue
                due = reply.last_activity + self.quiet_secs
                if due <= now:
                    reply.closing = True
                    await self._close_context(context_id)
                else:
                    next_due = due if next_due is None else min(next_due, due)
            if next_due is None:
                self._closer = None
                return
            await asyncio.sleep(max(0.01, next_due - now))

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        context_id = message.get("context_id")
        reply = self._replies.get(context_id) if isinstance(context_id, str) else None
        if message.get("final") is True:
            if reply is not None:
                await self.finish_context(context_id)
            return
        audio = message.get("audio")
        if isinstance(audio, str) and audio and reply is not None:
            reply.last_activity = self.clock.now()
            data = base64.b64decode(audio)
            pcm = ulaw_to_pcm(data) if self._encoding == "pcm_mulaw" else data
            await self.append_audio(context_id, pcm)
            return
        error = message.get("error") or message.get("message")
        if error:
            await self.report_error(f"{self}: Async error: {error}", reason="provider")


class AsyncAIHttpTTSService(HTTPStreamTTSService):
    """Async over HTTP: one ``POST /text_to_speech/streaming`` per sentence, played as it
    streams in.

    The request carries ``x-api-key`` and ``version`` headers and a JSON body of ``model_id``,
    ``transcript``, ``voice`` (``{"mode": "id", "id"}``), ``output_format`` (``raw``
    ``pcm_s16le`` at the call's output rate: no resampling) and ``language``. Pipecat reads the
    whole answer before playing it; here each chunk plays as it comes. An interruption closes
    the response in flight.

    ``url``: the API's origin (left at Async's, ``$CALLPIPE_ASYNCAI_API_URL`` may replace it).
    ``aiohttp_session`` (Pipecat's, required there) is accepted and
    not used: requests go through callpipe's pooled client.
    """

    Settings = AsyncAITTSSettings
    _settings: AsyncAITTSSettings
    InputParams = _InputParams
    key_hint = _AUTH_HINT

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        aiohttp_session: Any = None,
        model: str | None = None,
        url: str = ASYNCAI_API_URL,
        version: str = "v1",
        sample_rate: int | None = None,
        encoding: str = "pcm_s16le",
        container: str = "raw",
        params: _InputParams | None = None,
        settings: AsyncAITTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        name = type(self).__name__
        store = _initial_settings(name, voice_id, model, params, settings)
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._api_key = resolve_api_key(name, api_key, "ASYNCAI_API_KEY")
        self._encoding = encoding
        self._container = container
        headers = {"x-api-key": self._api_key, "version": version}
        origin = defaulted_base_url(url, ASYNCAI_API_URL_ENV, ASYNCAI_API_URL)
        self.configure_http(origin, headers, timeout_secs=timeout_secs)

    def can_generate_metrics(self) -> bool:
        return True

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_async_language(language)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Async cannot produce {self.sample_rate} Hz audio")
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/text_to_speech/streaming`` body for ``text`` with the current settings."""
        s = self._settings
        return {
            "model_id": s.model,
            "transcript": text,
            "voice": {"mode": "id", "id": s.voice},
            "output_format": _output_format(self._container, self._encoding, self.sample_rate),
            "language": _language(s.language),
        }

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, HTTP_PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        ulaw = self._encoding == "pcm_mulaw"
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, ulaw_to_pcm(chunk) if ulaw else chunk)
