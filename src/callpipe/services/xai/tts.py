"""xAI's text to speech: :class:`XAITTSService` over the streaming socket (``wss://api.x.ai/v1/tts``)
and :class:`XAIHttpTTSService`, one ``POST https://api.x.ai/v1/tts`` per sentence.

The protocol, as xAI documents it (https://docs.x.ai/developers/model-capabilities/audio/
text-to-speech and the voice API reference):

- **Auth.** ``Authorization: Bearer <key>``; a refused key (HTTP 401/403) is fatal and names
  ``XAI_API_KEY``.
- **HTTP.** A JSON body of ``text``, ``voice_id``, ``language`` (a BCP-47 code such as ``en`` or
  ``pt-BR``, or ``auto``), ``output_format`` (``codec`` and ``sample_rate``) and, when set,
  ``speed``, ``optimize_streaming_latency`` and ``text_normalization``; the audio streams back
  headerless in the codec asked for.
- **Socket.** The same options are query parameters (``voice``, ``language``, ``codec``,
  ``sample_rate``, ..., ``with_timestamps``). The client sends ``{"type": "text.delta",
  "delta"}`` and ends an utterance with ``{"type": "text.done"}``; xAI answers with
  ``{"type": "audio.delta", "delta": <base64 audio>}`` (with ``with_timestamps``, each carries
  ``audio_timestamps``: ``graph_chars`` and their ``graph_times`` ``[start, end]`` in seconds
  from the utterance's start), then ``{"type": "audio.done"}``. ``{"type": "text.clear"}``
  drops the utterance under way; xAI acknowledges it with ``{"type": "audio.clear"}``. Errors
  are ``{"type": "error", "message"}``.

Audio format: on a phone call (8 kHz output) both ask for ``mulaw`` at 8000 Hz, half the bytes
and nothing resampled (G.711 decoding is exact for what the line carries); otherwise 16-bit
``pcm`` at the pipeline's output rate. ``encoding=`` / ``codec=`` (``pcm``, ``mulaw``,
``alaw``) pick one. xAI produces 8000, 16000, 22050, 24000, 44100 and 48000 Hz; another output
rate is a ``ConfigurationError`` at start.

The socket has no context ids, so replies take turns on it: a reply's text goes once the one
before is done. With whole sentences (the default) each sentence is its own utterance
(``text.delta`` then ``text.done`` at once), so synthesis never waits for the end of the reply;
the reply is complete when the ``audio.done`` of its last sentence came. With
``TextAggregationMode.TOKEN`` the tokens go as ``text.delta`` and the reply's end sends
``text.done``. Word timing (``with_timestamps``, on by default as in Pipecat 1.14) becomes
per-word ``TTSTextFrame``\\ s, each released once its audio went out; a reply without timing
leaves its text after all of its audio.

An interruption while a reply is generating sends ``text.clear``; audio that comes until xAI's
``audio.clear`` is dropped, and the next reply waits for that acknowledgement (at most
``clear_timeout_secs``; then the socket is replaced). Settings are URL parameters: a change
reopens the socket before the next reply (never mid-reply). A dropped socket is reopened with
the reconnect policy of :class:`~callpipe.services.websocket_service.ProviderWebsocket`; the
reply under way then ends with the audio it got.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from callpipe.audio.g711 import alaw_to_pcm, ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import XAI_API_URL_ENV, XAI_URL_ENV, base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.stt_service import socket_address
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

XAI_TTS_URL = "wss://api.x.ai/v1/tts"
"""xAI's streaming text-to-speech socket (``XAITTSService``'s default ``base_url``)."""
XAI_TTS_HTTP_URL = "https://api.x.ai/v1/tts"
"""xAI's text-to-speech endpoint (``XAIHttpTTSService``'s default ``base_url``)."""
TTS_PATH = "/v1/tts"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
"""The output rates xAI produces."""
DEFAULT_VOICE = "eve"
_AUTH_HINT = "Check api_key / XAI_API_KEY."
_TEXT_DONE = json.dumps({"type": "text.done"})
_TEXT_CLEAR = json.dumps({"type": "text.clear"})

XAICodec = Literal["pcm", "mulaw", "alaw"]
_DECODERS: dict[str, Callable[[bytes], bytes] | None] = {
    "pcm": None,
    "mulaw": ulaw_to_pcm,
    "alaw": alaw_to_pcm,
}

_TTS_CODES = "ar-EG ar-SA ar-AE bn de en es-ES es-MX fr hi id it ja ko pt-BR pt-PT ru tr vi zh"
_LANGUAGE_MAP = {code: code for code in _TTS_CODES.split()} | {
    "ar": "ar-EG",
    "es": "es-ES",
    "pt": "pt-PT",
    "cmn": "zh",
}


def language_to_xai_language(language: str) -> str:
    """xAI's text-to-speech code for a language tag: ``Language.PT_BR`` -> ``"pt-BR"``,
    ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class XAITTSSettings(TTSSettings):
    """``XAIHttpTTSService.Settings`` (``None``: xAI's default, not sent).

    Parameters:
        speed: Speaking rate from 0.7 to 1.5 (1.0 is normal).
        optimize_streaming_latency: 0, 1 or 2; higher gives the first audio sooner.
        text_normalization: Normalize numbers, dates etc. before speaking them.
    """

    speed: float | None | NotGiven = field(default_factory=unset)
    optimize_streaming_latency: int | None | NotGiven = field(default_factory=unset)
    text_normalization: bool | None | NotGiven = field(default_factory=unset)


@dataclass
class XAIWebsocketTTSSettings(TTSSettings):
    """``XAITTSService.Settings``: those of :class:`XAITTSSettings` and ``with_timestamps``
    (ask for character timing, turned into per-word ``TTSTextFrame``\\ s). All are query
    parameters of the socket, so a change reopens it before the next reply."""

    speed: float | None | NotGiven = field(default_factory=unset)
    optimize_streaming_latency: int | None | NotGiven = field(default_factory=unset)
    text_normalization: bool | None | NotGiven = field(default_factory=unset)
    with_timestamps: bool | None | NotGiven = field(default_factory=unset)


_OPTIONS = ("speed", "optimize_streaming_latency", "text_normalization")


def _codec(service: str, codec: str | None, sample_rate: int) -> XAICodec:
    """The codec asked for: the one given, else ``mulaw`` at 8 kHz, else ``pcm``."""
    if sample_rate not in SAMPLE_RATES:
        raise ConfigurationError(
            f"{service}: xAI produces audio at {SAMPLE_RATES} Hz, not {sample_rate}"
        )
    if codec is None:
        return "mulaw" if sample_rate == 8000 else "pcm"
    if codec not in _DECODERS:
        raise ConfigurationError(
            f"{service}: codec {codec!r}; the audio is played as one of {tuple(_DECODERS)}"
        )
    return codec  # type: ignore[return-value]


def _check_codec(service: str, codec: str | None) -> None:
    if codec is not None and codec not in _DECODERS:
        raise ConfigurationError(
            f"{service}: codec {codec!r}; the audio is played as one of {tuple(_DECODERS)}"
        )


def _language_code(language: Any) -> str:
    return language_to_xai_language(language) if isinstance(language, str) and language else "auto"


# ---------------------------------------------------------------------- HTTP


class XAIHttpTTSService(HTTPStreamTTSService):
    """xAI over HTTP (see the module docstring).

    1.14 style: ``XAIHttpTTSService(api_key=..., settings=XAIHttpTTSService.Settings(
    voice="ara"))``. ``base_url`` is the endpoint's full URL; left at xAI's,
    ``$CALLPIPE_XAI_API_URL`` (an origin) may replace it. ``aiohttp_session`` (Pipecat's) is
    accepted and not used: requests go through callpipe's pooled client.
    """

    Settings = XAITTSSettings
    _settings: XAITTSSettings
    key_hint = "Check api_key / XAI_API_KEY."

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = XAI_TTS_HTTP_URL,
        sample_rate: int | None = None,
        encoding: str | None = None,
        aiohttp_session: Any = None,
        settings: XAITTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        _check_codec(type(self).__name__, encoding)
        model = settings.model if settings is not None and isinstance(settings.model, str) else None
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "XAI_API_KEY")
        store = XAITTSSettings(
            model=None,
            voice=DEFAULT_VOICE,
            language="en",
            speed=None,
            optimize_streaming_latency=None,
            text_normalization=None,
        )
        if settings is not None:
            store.apply_update(settings)
        self._settings = store
        given = base_url if base_url != XAI_TTS_HTTP_URL else None
        if given is None:
            given = _env_origin(XAI_API_URL_ENV)
        split = urlsplit(given or XAI_TTS_HTTP_URL)
        self._api_origin = f"{split.scheme}://{split.netloc}"
        self._path = split.path.rstrip("/") or TTS_PATH
        self._encoding = encoding
        self._timeout = timeout_secs
        self._configure()

    @property
    def encoding(self) -> XAICodec:
        """The codec asked for (see the module docstring)."""
        return _codec(type(self).__name__, self._encoding, self.sample_rate)

    def language_to_service_language(self, language: str) -> str | None:
        """xAI's code for ``language`` (see :func:`language_to_xai_language`)."""
        return language_to_xai_language(language)

    def _configure(self) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        self.configure_http(self._api_origin, headers, timeout_secs=self._timeout)

    async def start(self, frame: StartFrame) -> None:
        _codec(type(self).__name__, self._encoding, self.sample_rate)  # a rate xAI produces
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/v1/tts`` body for ``text`` with the current settings."""
        s = self._settings
        body: dict[str, Any] = {
            "text": text,
            "voice_id": s.voice,
            "language": _language_code(s.language),
            "output_format": {"codec": self.encoding, "sample_rate": self.sample_rate},
        }
        values = s.given_fields()
        for name in _OPTIONS:
            if values.get(name) is not None:
                body[name] = values[name]
        return body

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, self._path, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        decode = _DECODERS[self.encoding]
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, decode(chunk) if decode is not None else chunk)


def _env_origin(env_var: str) -> str | None:
    value = base_url(None, env_var, "")
    return value or None


# ---------------------------------------------------------------------- the socket


@dataclass
class _Reply:
    """The reply generating on the socket: its utterances and the word being timed."""

    context_id: str
    sent: int = 0
    """Utterances ended with ``text.done``."""
    done: int = 0
    """Utterances xAI finished (``audio.done``)."""
    open_text: bool = False
    """Token mode: text went out that no ``text.done`` ended yet."""
    flushed: bool = False
    """No more text for this reply."""
    run_start: float | None = None
    """Where the utterance being spoken starts in the reply's audio (seconds)."""
    word: str = ""
    word_start: float = 0.0
    word_end: float = 0.0


class XAITTSService(TTSService):
    """xAI over its streaming socket (see the module docstring).

    1.14 style: ``XAITTSService(api_key=..., settings=XAITTSService.Settings(voice="ara",
    language=Language.EN))``. ``base_url`` is the socket's address; left at xAI's,
    ``$CALLPIPE_XAI_URL`` (an origin is enough: ``/v1/tts`` is added) may replace it.
    """

    emits_word_timestamps = True
    Settings = XAIWebsocketTTSSettings
    _settings: XAIWebsocketTTSSettings

    clear_timeout_secs = 2.0
    """After ``text.clear``, how long the next reply waits for ``audio.clear``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = XAI_TTS_URL,
        sample_rate: int | None = None,
        codec: str | None = None,
        settings: XAIWebsocketTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        _check_codec(type(self).__name__, codec)
        model = settings.model if settings is not None and isinstance(settings.model, str) else None
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "XAI_API_KEY")
        store = XAIWebsocketTTSSettings(
            model=None,
            voice=DEFAULT_VOICE,
            language="en",
            speed=None,
            optimize_streaming_latency=None,
            text_normalization=None,
            with_timestamps=True,
        )
        if settings is not None:
            store.apply_update(settings)
        self._settings = store
        given = base_url if base_url != XAI_TTS_URL else None
        self._url = socket_address(given, XAI_URL_ENV, XAI_TTS_URL, TTS_PATH)
        self._codec = codec
        self._ws: ProviderWebsocket | None = None
        self._reply: _Reply | None = None
        self._clearing = False
        """``text.clear`` went out and ``audio.clear`` did not come yet."""
        self._idle = asyncio.Event()
        """Set while nothing generates on the socket (a reply, or a clear under way)."""
        self._idle.set()
        self._swap_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ settings

    @property
    def codec(self) -> XAICodec:
        """The codec asked for (see the module docstring)."""
        return _codec(type(self).__name__, self._codec, self.sample_rate)

    def language_to_service_language(self, language: str) -> str | None:
        """xAI's code for ``language`` (see :func:`language_to_xai_language`)."""
        return language_to_xai_language(language)

    def socket_url(self) -> str:
        """The socket URL for the current settings (every option is a query parameter)."""
        s = self._settings
        query: dict[str, Any] = {
            "voice": s.voice,
            "language": _language_code(s.language),
            "codec": self.codec,
            "sample_rate": self.sample_rate,
        }
        values = s.given_fields()
        for name in (*_OPTIONS, "with_timestamps"):
            query[name] = values.get(name)
        return ws_url(self._url, "", {k: v for k, v in query.items() if is_given(v)})

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """The new settings apply from the next reply (the socket is reopened then); with
        nothing generating, the socket is reopened now, in the background."""
        if self._ws is not None and self._idle.is_set():
            self._start_swap()

    # ------------------------------------------------------------------ connection

    def _new_socket(self) -> ProviderWebsocket:
        ws: ProviderWebsocket

        async def on_message(raw: Message) -> None:
            if ws is self._ws:
                await self._on_message(raw)

        async def reconnected() -> None:
            if ws is self._ws:
                self._clearing = False
                await self._drop_reply()

        async def failed(message: str) -> None:
            if ws is self._ws:
                await self.report_error(message, reason="disconnected")
                self._clearing = False
                await self._drop_reply()

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=on_message,
            on_reconnected=reconnected,
            on_failed=failed,
            auth_hint=_AUTH_HINT,
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        self._ws = self._new_socket()
        await self._ws.connect()

    async def disconnect(self) -> None:
        await cancel_and_wait(self._swap_task)
        self._swap_task = None
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    def _start_swap(self, *, force: bool = False) -> asyncio.Task[None] | None:
        """Reopen the socket in the background when its URL is out of date (or ``force``)."""
        if self._swap_task is not None and not self._swap_task.done():
            return self._swap_task
        if self._ws is None or (not force and self._ws.url == self.socket_url()):
            return None
        self._swap_task = self.create_task(self._swap(force), "xai-reconnect")
        return self._swap_task

    async def _swap(self, force: bool) -> None:
        new = self._new_socket()
        try:
            await new.connect()
        except Exception as exc:
            await new.close()
            if not force:
                await self.report_error(
                    f"{self}: could not reopen the socket with the new settings ({exc}); the "
                    "previous ones stay",
                    reason="settings",
                )
                return
            await self.report_error(f"{self}: could not reopen the socket: {exc}", reason="network")
            return
        old, self._ws = self._ws, new
        self._clearing = False
        if self._reply is None:
            self._idle.set()
        if old is not None:
            await old.close()

    async def _take_socket(self) -> None:
        """Before a new reply: wait for the one before (and a clear under way), then reopen
        the socket if the settings changed."""
        if not self._idle.is_set():
            wait = self.clear_timeout_secs if self._reply is None else self._context_timeout + 1.0
            try:
                async with asyncio.timeout(wait):
                    await self._idle.wait()
            except TimeoutError:
                if self._reply is not None:
                    logger.warning("%s: an earlier reply is still generating; going on", self)
                    await self.finish_context(self._reply.context_id)
                else:
                    logger.warning("%s: no audio.clear from xAI; reopening the socket", self)
                    task = self._start_swap(force=True)
                    if task is not None:
                        await asyncio.shield(task)
                self._idle.set()
        task = self._start_swap()
        if task is not None:
            await asyncio.shield(task)  # an interruption cancels this reply, not the reconnect

    async def _send(self, context_id: str, message: str) -> bool:
        if self._ws is None or not await self._ws.send(message):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self.finish_context(context_id)
            return False
        return True

    # ------------------------------------------------------------------ requests

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._reply
        if reply is None or reply.context_id != context_id:
            await self._take_socket()
            reply = self._reply = _Reply(context_id)
            self._idle.clear()
        piece = text.strip() if self._aggregate_sentences else text
        delta = json.dumps({"type": "text.delta", "delta": piece})
        if not await self._send(context_id, delta):
            return
        if not self._aggregate_sentences:
            reply.open_text = True
            return
        reply.sent += 1  # counted before sending: the answer may come at once
        if not await self._send(context_id, _TEXT_DONE):  # a whole sentence: speak it now
            reply.sent -= 1

    async def flush_context(self, context_id: str) -> None:
        reply = self._reply
        if not self.has_context(context_id) or reply is None or reply.context_id != context_id:
            await self.finish_context(context_id)
            return
        reply.flushed = True
        if reply.open_text:
            reply.open_text = False
            reply.sent += 1
            if not await self._send(context_id, _TEXT_DONE):
                return
        if reply.done >= reply.sent:
            await self.finish_context(context_id)  # its last utterance is over already

    async def cancel_context(self, context_id: str) -> None:
        reply = self._reply
        if reply is None or (reply.context_id != context_id and reply.context_id in self._contexts):
            return
        self._reply = None
        generating = reply.open_text or reply.done < reply.sent
        ws = self._ws
        if generating and ws is not None and ws.connected:
            self._clearing = True  # its audio still coming is dropped until audio.clear
            if await ws.send(_TEXT_CLEAR, wait_secs=0):
                return
            self._clearing = False
        self._idle.set()

    async def finish_context(self, context_id: str | None) -> None:
        """Close a reply: ours (its last ``audio.done``, an error, a drop) or the base class's
        when xAI never answered (``context_timeout_secs``); the next reply may then go."""
        reply = self._reply
        if reply is not None and reply.context_id == context_id:
            self._reply = None
            await self._release_word(reply)
            if not self._clearing:
                self._idle.set()
                self._start_swap()
        await super().finish_context(context_id)

    async def _drop_reply(self) -> None:
        """The socket was reopened or lost: the reply under way gets no more audio."""
        reply = self._reply
        if reply is not None:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)
        else:
            self._idle.set()

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        if isinstance(raw, bytes):
            return
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "audio.clear":
            if self._clearing:
                self._clearing = False
                if self._reply is None:
                    self._idle.set()
            return
        if kind == "error":
            await self._on_error(str(message.get("message") or message.get("error") or message))
            return
        reply = self._reply
        if self._clearing or reply is None:
            return  # audio of an interrupted reply
        if kind == "audio.delta":
            ctx = self._contexts.get(reply.context_id)
            if reply.run_start is None:
                reply.run_start = ctx.audio_secs if ctx is not None else 0.0
            timing = message.get("audio_timestamps")
            if isinstance(timing, dict):
                await self._add_timing(reply, timing)
            data = message.get("delta")
            if isinstance(data, str) and data:
                audio = base64.b64decode(data)
                decode = _DECODERS[self.codec]
                await self.append_audio(
                    reply.context_id, decode(audio) if decode is not None else audio
                )
        elif kind == "audio.done":
            await self._release_word(reply)
            reply.run_start = None
            reply.done += 1
            if reply.flushed and reply.done >= reply.sent:
                await self.finish_context(reply.context_id)

    async def _add_timing(self, reply: _Reply, timing: dict[str, Any]) -> None:
        """Character timing to words (split at spaces); a word may go on in the next delta,
        so the last one is held until a space, the utterance's end or the reply's."""
        chars = timing.get("graph_chars")
        times = timing.get("graph_times")
        if not isinstance(chars, list) or not isinstance(times, list) or len(chars) != len(times):
            return
        offset = reply.run_start or 0.0
        words: list[tuple[str, float, float]] = []
        for char, span in zip(chars, times, strict=True):
            if not isinstance(span, list) or len(span) != 2:
                continue
            start, end = offset + float(span[0]), offset + float(span[1])
            if str(char).isspace():
                if reply.word:
                    words.append((reply.word, reply.word_start, reply.word_end))
                    reply.word = ""
                continue
            if not reply.word:
                reply.word_start = start
            reply.word += str(char)
            reply.word_end = end
        if words:
            await self.add_word_timestamps(reply.context_id, words)

    async def _release_word(self, reply: _Reply) -> None:
        if reply.word:
            word, reply.word = reply.word, ""
            await self.add_word_timestamps(
                reply.context_id, [(word, reply.word_start, reply.word_end)]
            )

    async def _on_error(self, text: str) -> None:
        """xAI refused something (the socket stays open): the reply under way gets no more
        audio and is closed rather than left waiting for its ``audio.done``."""
        await self.report_error(f"{self}: xAI error: {text}", reason="provider")
        reply = self._reply
        if reply is not None:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)
