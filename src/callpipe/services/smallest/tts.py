"""SmallestTTSService: Smallest AI's Lightning text-to-speech WebSocket
(``wss://api.smallest.ai/waves/v1/tts/live``).

The protocol, as Smallest's Waves API reference and its ``smallestai`` SDK describe it:

- The key goes in an ``Authorization: Bearer`` header; the socket stays open across requests.
- Each request is one JSON message carrying its own options: ``voice_id``, ``text``,
  ``model`` (``lightning_v3.1`` or ``lightning_v3.1_pro``), ``language``, ``sample_rate``
  (8000, 16000, 24000 or 44100), ``speed``, ``word_timestamps``, ``max_buffer_flush_ms``,
  ``output_format``, ``continue`` and ``flush``. Text sent with ``continue: true`` is buffered
  and joined with what follows (one continuous generation, prosody kept); a last request with
  empty text and ``flush: true`` (``continue: false``) makes the server finish it.
- The server answers ``{"status": "chunk", "data": {"audio": <base64>}}``,
  ``{"status": "word_timestamp", "data": {"word", "start", "end"}}`` (when asked, for the
  voices that have them) and ``{"status": "complete"}`` once the generation is all sent.
  Failures are ``{"status": "error", "message"}``.

Each reply of the bot is one such generation: its sentences go with ``continue: true`` and its
end sends the flush; the reply is complete at ``complete``. The socket has no contexts (answers
carry no id of ours), so replies take turns: a reply's text is sent once the reply before it is
complete (its audio is generated faster than it plays, so nothing is heard waiting). Word times
restart at each request of a generation (a new ``request_id``); they are moved onto the reply's
timeline. Voices without word timing get each reply's text after its audio.

Smallest has no message to stop a generation: an interruption of a reply still generating opens
a new socket in the background (while the caller speaks) and closes the old one. Every setting
travels in each request, so a change (``TTSUpdateSettingsFrame``) applies from the next request
without reconnecting. Smallest closes a socket idle for 60 s; it is reopened then (its
``Connection timed out`` notice is not an error when no reply is generating).

On a phone call the socket asks for 8000 Hz PCM (no resampling); ``output_format="ulaw"``
asks for µ-law instead (half the bytes, decoded here). A pipeline rate Smallest does not offer
is asked at the nearest lower one and resampled here.

Differences from Pipecat 1.14, following Smallest's reference and SDK: the buffer bound goes as
``max_buffer_flush_ms`` (Pipecat writes ``max_buffer_delay_ms``), a reply ends with
``flush: true`` and no ``context_id`` is sent (the documented request has none); replies take
turns instead of sharing the socket; no keep-alive text is sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import SMALLEST_URL_ENV, defaulted_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.stt_service import json_object
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SMALLEST_WS_URL = "wss://api.smallest.ai"
TTS_PATH = "/waves/v1/tts/live"
SAMPLE_RATES = (8000, 16000, 24000, 44100)
"""The ``sample_rate`` values Smallest offers."""
OUTPUT_FORMATS = ("pcm", "ulaw")
KEY_HINT = "Check api_key / SMALLEST_API_KEY."
_LANGUAGES = (
    "ar bn de el en es fi fr gu hi id it ja kn ko ml mr ms nl no or pa pl pt ru sv ta te tr vi zh"
).split()
_LANGUAGE_MAP = {code: code for code in _LANGUAGES}


def language_to_smallest_tts_language(language: str) -> str:
    """Lightning's code for a language tag: ``Language.PT_BR`` -> ``"pt"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


class SmallestTTSModel(StrEnum):
    """Smallest's Lightning models."""

    LIGHTNING_V3_1 = "lightning_v3.1"
    LIGHTNING_V3_1_PRO = "lightning_v3.1_pro"


DEFAULT_VOICES = {
    SmallestTTSModel.LIGHTNING_V3_1.value: "sophia",
    SmallestTTSModel.LIGHTNING_V3_1_PRO.value: "meher",
}
"""The voice used when none is given, per model (as in Pipecat 1.14)."""


@dataclass
class SmallestTTSSettings(TTSSettings):
    """``SmallestTTSService.Settings``: model, voice (``voice_id``), language, and ``speed``
    (0.5 to 2.0), ``math_notation`` (read ``2 + 2`` as words) and ``content_filter``
    (``"reject"`` or ``"flag"``: Smallest's profanity check), each sent when not None."""

    speed: float | None | NotGiven = field(default_factory=unset)
    math_notation: bool | None | NotGiven = field(default_factory=unset)
    content_filter: Literal["reject", "flag"] | str | None | NotGiven = field(default_factory=unset)


def _initial_settings(settings: SmallestTTSSettings | None) -> SmallestTTSSettings:
    model = SmallestTTSModel.LIGHTNING_V3_1_PRO.value
    if settings is not None and isinstance(settings.model, str) and settings.model:
        model = settings.model
    store = SmallestTTSSettings(
        model=model,
        voice=DEFAULT_VOICES.get(model, DEFAULT_VOICES[SmallestTTSModel.LIGHTNING_V3_1_PRO]),
        language="en",
        speed=None,
        math_notation=None,
        content_filter=None,
    )
    if settings is not None:
        store.apply_update(settings)
    return store


@dataclass
class _Reply:
    """The reply generating on the socket."""

    context_id: str
    flushed: bool = False
    request_id: str | None = None
    """The request whose word times are coming (they restart at each request)."""
    offset: float = 0.0
    """Where that request's audio starts in the reply."""
    request_end: float = 0.0
    """The last word end seen in that request."""


class SmallestTTSService(TTSService):
    """Smallest AI Lightning over its WebSocket (see the module docstring).

    1.14 style: ``SmallestTTSService(api_key=..., settings=SmallestTTSService.Settings(
    voice="sophia", model="lightning_v3.1"))``. ``base_url``: the socket's origin
    (``wss://api.smallest.ai``, or ``$CALLPIPE_SMALLEST_URL`` when left at that).
    ``output_format``: ``"pcm"`` or ``"ulaw"``. ``word_timestamps``: ask for word timing
    (per-word text frames); off, each sentence's text is pushed as it is sent.
    ``max_buffer_delay_ms``: how long Smallest may hold buffered text (0-5000).
    """

    emits_word_timestamps = True
    Settings = SmallestTTSSettings
    _settings: SmallestTTSSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = SMALLEST_WS_URL,
        sample_rate: int | None = None,
        output_format: str = "pcm",
        word_timestamps: bool = True,
        max_buffer_delay_ms: int | None = None,
        settings: SmallestTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if output_format not in OUTPUT_FORMATS:
            raise ConfigurationError(
                f"SmallestTTSService: output_format={output_format!r}; the pipeline plays one "
                f"of {OUTPUT_FORMATS}"
            )
        super().__init__(sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "SMALLEST_API_KEY")
        self._base_url = defaulted_base_url(base_url, SMALLEST_URL_ENV, SMALLEST_WS_URL)
        self._output_format = output_format
        self._word_timestamps = word_timestamps
        self.emits_word_timestamps = word_timestamps
        self._max_buffer_delay_ms = max_buffer_delay_ms
        self._settings.apply_update(_initial_settings(settings))
        if isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        self._ws: ProviderWebsocket | None = None
        self._reply: _Reply | None = None
        """The reply generating on the socket (None: the socket is idle)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._swap_task: asyncio.Task[None] | None = None

    @property
    def wire_rate(self) -> int:
        """The ``sample_rate`` asked for: the output rate when offered, else the nearest lower
        one Smallest offers (resampled here)."""
        rate = self.sample_rate
        if rate in SAMPLE_RATES:
            return rate
        return max((r for r in SAMPLE_RATES if r <= rate), default=SAMPLE_RATES[0])

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_smallest_tts_language(language)

    def socket_url(self) -> str:
        return self._base_url + TTS_PATH

    def request(self, text: str, *, more: bool) -> dict[str, Any]:
        """One request for the current settings: ``more`` text to come (``continue``), else
        the reply's end (``flush``)."""
        s = self._settings
        language = s.language if isinstance(s.language, str) and s.language else "en"
        message: dict[str, Any] = {
            "voice_id": s.voice or DEFAULT_VOICES[SmallestTTSModel.LIGHTNING_V3_1_PRO],
            "text": text,
            "model": s.model,
            "language": language_to_smallest_tts_language(language),
            "sample_rate": self.wire_rate,
            "continue": more,
            "flush": not more,
            "output_format": self._output_format,
        }
        if isinstance(s.speed, int | float):
            message["speed"] = s.speed
        if isinstance(s.math_notation, bool):
            message["math_notation"] = s.math_notation
        if isinstance(s.content_filter, str) and s.content_filter:
            message["content_filter"] = {"enabled": True, "action": s.content_filter}
        if self._word_timestamps:
            message["word_timestamps"] = True
        if self._max_buffer_delay_ms is not None:
            message["max_buffer_flush_ms"] = self._max_buffer_delay_ms
        return message

    # ------------------------------------------------------------------ connection

    def _new_socket(self) -> ProviderWebsocket:
        ws: ProviderWebsocket

        async def on_message(raw: Message) -> None:
            if ws is self._ws:
                await self._on_message(raw)

        async def on_reconnected() -> None:
            if ws is self._ws:
                await self._drop_reply()

        async def on_failed(message: str) -> None:
            if ws is self._ws:
                await self.report_error(message, reason="disconnected")
                await self._drop_reply()

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=on_message,
            on_reconnected=on_reconnected,
            on_failed=on_failed,
            auth_hint=KEY_HINT,
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate < SAMPLE_RATES[0]:
            raise ConfigurationError(f"Smallest cannot produce {self.sample_rate} Hz audio")
        self._ws = self._new_socket()
        await self._ws.connect()

    async def disconnect(self) -> None:
        await cancel_and_wait(self._swap_task)
        self._swap_task = None
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _drop_reply(self) -> None:
        """The socket's generation is gone (a new socket knows nothing of it): what of the
        reply did not come as audio was never spoken."""
        reply, self._reply = self._reply, None
        self._idle.set()
        if reply is not None:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)

    async def _swap(self) -> None:
        """A new socket replaces the one still generating a dropped reply."""
        try:
            new = self._new_socket()
            try:
                await new.connect()
            except Exception as exc:
                await new.close()
                logger.info("%s: could not open a new socket (%s); keeping the old one", self, exc)
                return  # the old socket goes on; the dropped reply's audio is not played
            old, self._ws = self._ws, new
            await self._drop_reply()
            if old is not None:
                await old.close()
        finally:
            self._swap_task = None

    async def _take_turn(self) -> None:
        """Before a new reply: the one before it completes first (at most past the base
        class's own timeout), and a socket swap under way is awaited."""
        if not self._idle.is_set():
            try:
                async with asyncio.timeout(self._context_timeout + 1.0):
                    await self._idle.wait()
            except TimeoutError:
                logger.warning("%s: the previous reply did not complete; going on", self)
                await self._drop_reply()
        task = self._swap_task
        if task is not None:
            await asyncio.shield(task)  # an interruption cancels this reply, not the swap

    # ------------------------------------------------------------------ requests

    async def _send(self, reply: _Reply, message: dict[str, Any]) -> None:
        if self._ws is None or not await self._ws.send(json.dumps(message)):
            await self.report_not_connected()
            if self._reply is reply:
                await self._drop_reply()
            else:
                self.context_failed(reply.context_id)
                await self.finish_context(reply.context_id)

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._reply
        if reply is None or reply.context_id != context_id:
            await self._take_turn()
            if not self.has_context(context_id):
                return  # interrupted while waiting
            reply = self._reply = _Reply(context_id)
            self._idle.clear()
        if self._aggregate_sentences:
            text = text.strip() + " "  # the sentences of a reply are joined by Smallest
        await self._send(reply, self.request(text, more=True))

    async def flush_context(self, context_id: str) -> None:
        reply = self._reply
        if reply is None or reply.context_id != context_id:
            await self.finish_context(context_id)  # no text went out for it
            return
        reply.flushed = True
        await self._send(reply, self.request("", more=False))

    async def cancel_context(self, context_id: str) -> None:
        reply = self._reply
        if reply is None or self.has_context(reply.context_id) or self._swap_task is not None:
            return
        self._swap_task = self.create_task(self._swap(), "smallest-reconnect")

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json_object(raw)
        status = message.get("status")
        reply = self._reply
        if status == "error":
            text = str(message.get("message") or message.get("error") or message)
            if reply is None and "timed out" in text.lower():
                logger.info("%s: Smallest closed the idle socket (%s)", self, text)
                return
            await self.report_error(f"{self}: Smallest error: {text}", reason="provider")
            await self._drop_reply()
            return
        if reply is None:
            return
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        if status == "chunk":
            audio = data.get("audio")
            if isinstance(audio, str) and audio:
                pcm = base64.b64decode(audio)
                if self._output_format == "ulaw":
                    pcm = ulaw_to_pcm(pcm)
                await self.append_audio(reply.context_id, pcm, self.wire_rate)
        elif status == "word_timestamp":
            await self._word(reply, message.get("request_id"), data)
        elif status == "complete":
            self._reply = None
            self._idle.set()
            await self.finish_context(reply.context_id)

    async def _word(self, reply: _Reply, request_id: Any, data: dict[str, Any]) -> None:
        word, start, end = data.get("word"), data.get("start"), data.get("end")
        if not isinstance(word, str) or not isinstance(start, int | float):
            return
        if request_id != reply.request_id:
            if reply.request_id is not None:
                reply.offset += reply.request_end
                reply.request_end = 0.0
            reply.request_id = request_id if isinstance(request_id, str) else None
        stop = float(end) if isinstance(end, int | float) else float(start)
        reply.request_end = max(reply.request_end, stop)
        await self.add_word_timestamps(
            reply.context_id, [(word, reply.offset + start, reply.offset + stop)]
        )
