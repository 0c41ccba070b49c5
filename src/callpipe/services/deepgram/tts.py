"""DeepgramTTSService: Deepgram Aura's streaming text-to-speech WebSocket (``/v1/speak``).

The socket is opened when the pipeline starts, with the voice and audio format as query
parameters (``model=aura-2-...&encoding=...&sample_rate=...``, plus ``speed`` and
``mip_opt_out`` when set) and the key in ``Authorization: Token <key>``. On an 8 kHz call the
audio is asked for as ``mulaw`` at 8000 Hz, what the phone line carries (half the bytes of
``linear16``; decoding G.711 is exact), else as ``linear16`` at the pipeline's output rate, so
nothing is resampled.

Deepgram's socket has no contexts: it keeps one text buffer, and its audio arrives as plain
binary messages in the order the text was sent. Each sentence of a reply goes out as a
``{"type": "Speak", "text"}`` message as soon as it is complete; the end of the reply sends
``{"type": "Flush"}``, which makes Deepgram speak what it holds and answer ``Flushed`` after the
reply's last audio. Deepgram allows 20 flushes a minute, so a reply is flushed once, at its
end, never per sentence. Audio belongs to the oldest reply not yet answered by ``Flushed``;
``Flushed`` closes that reply (``TTSStoppedFrame`` after its audio).

An interruption sends ``{"type": "Clear"}``: Deepgram empties its buffer, stops the audio and
answers ``Cleared``. Audio (and a ``Flushed``) still arriving between the ``Clear`` and its
``Cleared`` belongs to the interrupted reply and is dropped, so the caller never hears a word of
it after the barge-in; text of the next reply, sent after the ``Clear``, is kept by Deepgram.

Deepgram gives no word timing, so each reply's text (``TTSTextFrame``) follows all of the
reply's audio. ``Warning`` messages (e.g. too many flushes) are logged; ``Metadata`` is only
logged at DEBUG. A rejected key at start is a fatal ``ErrorFrame``; a dropped socket follows
the reconnect policy of :class:`~callpipe.services.websocket_service.ProviderWebsocket`, and
the replies it was generating are closed with what they had. At the end of the call the socket
gets ``{"type": "Close"}`` after the last reply was played.

Runtime settings: the voice (which is Deepgram's ``model``) and ``speed`` are query parameters,
so a change opens a new socket, *between replies*: a reply already sent to Deepgram finishes in
the old voice, and the next one waits for the new socket. If Deepgram refuses the new options
an ``ErrorFrame`` says so and the old socket stays.

Pronunciations (Pipecat 1.14's ``pronunciation_transform_ipa``) go inline as Deepgram documents
them, an escaped JSON object keeping the word (which is what Deepgram bills):
``\\{"word": "dupilumab", "pronounce": "duːpˈɪljuːmæb"\\}``
(:func:`format_deepgram_pronunciation`). Only the Aura-2 English and Spanish voices read them
(:func:`deepgram_reads_pronunciations`); with another voice the words are sent as written.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from callpipe.audio.g711 import alaw_to_pcm, ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import DEEPGRAM_TTS_URL_ENV, DEEPGRAM_URL_ENV, websocket_origin
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.utils.text.phonemes import ipa_phones, normalize_ipa, stress_before_vowels
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

DEEPGRAM_URL = "wss://api.deepgram.com"
SPEAK_PATH = "/v1/speak"
DEFAULT_VOICE = "aura-2-helena-en"
SUPPORTED_ENCODINGS = ("linear16", "mulaw", "alaw")
SAMPLE_RATES: dict[str, tuple[int, ...]] = {
    "linear16": (8000, 16000, 24000, 32000, 48000),
    "mulaw": (8000, 16000),
    "alaw": (8000, 16000),
}
"""The ``sample_rate`` values Deepgram documents for each streaming ``encoding``."""

# Aura-2 refuses IPA of more than 128 characters, or much longer than the word it replaces
# (short words get a floor rather than the ratio).
MAX_IPA_CHARS = 128
_MAX_IPA_PER_WORD_CHAR = 10
_MIN_IPA_LIMIT = 15


def format_deepgram_pronunciation(word: str, ipa: str) -> str | None:
    """``word`` as Aura-2's inline pronunciation object, stress marks just before their vowel
    (Aura-2 warns about any other place): ``\\{"word": "dupilumab", "pronounce":
    "duːpˈɪljuːmæb"\\}``. None for an empty pronunciation, or one longer than Deepgram takes
    (:data:`MAX_IPA_CHARS`, or ten characters per character of the word, at least 15)."""
    spoken = " ".join(
        "".join(stress_before_vowels(ipa_phones(w))) for w in normalize_ipa(ipa).split()
    ).strip()
    limit = min(MAX_IPA_CHARS, max(_MAX_IPA_PER_WORD_CHAR * len(word), _MIN_IPA_LIMIT))
    if not spoken or len(spoken) > limit:
        return None
    body = json.dumps({"word": word, "pronounce": spoken}, ensure_ascii=False)
    return "\\" + body[:-1] + "\\}"


def deepgram_reads_pronunciations(voice: str) -> bool:
    """Whether ``voice`` reads inline pronunciations: the Aura-2 English and Spanish voices."""
    return voice.startswith("aura-2-") and voice.endswith(("-en", "-es"))


_FLUSH = json.dumps({"type": "Flush"})
_CLEAR = json.dumps({"type": "Clear"})
_CLOSE = json.dumps({"type": "Close"})


@dataclass
class DeepgramTTSSettings(TTSSettings):
    """``DeepgramTTSService.Settings``: the voice (an Aura model name such as
    ``aura-2-thalia-en``) and ``speed``, a multiplier from 0.7 to 1.5 (``None``: the voice's
    own pace; Aura-2 English and Spanish voices)."""

    speed: float | None | NotGiven = field(default_factory=unset)


@dataclass
class _Reply:
    """A reply whose text went to Deepgram and whose ``Flushed`` has not come yet."""

    context_id: str
    flushed: bool = False
    """Its ``Flush`` was sent: the next ``Flushed`` (outside a clear) ends it."""


class DeepgramTTSService(TTSService):
    """Deepgram Aura text-to-speech over WebSocket (see the module docstring).

    1.14 style: ``DeepgramTTSService(api_key=..., settings=DeepgramTTSService.Settings(
    voice="aura-2-thalia-en"))``. ``encoding``: ``"auto"`` (the default: ``mulaw`` at 8 kHz,
    else ``linear16``) or one of :data:`SUPPORTED_ENCODINGS`. ``base_url``: a host with an
    optional scheme (``ws://``/``http://`` unencrypted, otherwise ``wss://``), else
    ``$CALLPIPE_DEEPGRAM_TTS_URL``, ``$CALLPIPE_DEEPGRAM_URL``, else Deepgram's.
    ``mip_opt_out=True`` opts out of Deepgram's Model Improvement Program.
    """

    # Deepgram sends no word timing: the base class then puts each reply's text after all of
    # the reply's audio, which is the order the caller hears them in.
    emits_word_timestamps = True
    Settings = DeepgramTTSSettings
    _settings: DeepgramTTSSettings
    SUPPORTED_ENCODINGS = SUPPORTED_ENCODINGS

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice: str | None = None,
        base_url: str | None = None,
        sample_rate: int | None = None,
        encoding: str = "auto",
        mip_opt_out: bool | None = None,
        settings: DeepgramTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        encoding = encoding.lower()
        if encoding != "auto" and encoding not in SUPPORTED_ENCODINGS:
            raise ConfigurationError(
                f"encoding={encoding!r}: Deepgram's streaming TTS sends "
                f"{', '.join(SUPPORTED_ENCODINGS)} (or pass 'auto')"
            )
        chosen = voice or DEFAULT_VOICE
        if settings is not None and isinstance(settings.voice, str) and settings.voice:
            chosen = settings.voice
        super().__init__(model=chosen, sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "DEEPGRAM_API_KEY")
        if base_url:
            self._url = websocket_origin(base_url)
        else:
            fallback = env_base_url(None, DEEPGRAM_URL_ENV, DEEPGRAM_URL)
            self._url = env_base_url(None, DEEPGRAM_TTS_URL_ENV, fallback)
        self._encoding = encoding
        self._mip_opt_out = mip_opt_out
        self._settings.apply_update(DeepgramTTSSettings(voice=chosen, speed=None))
        if settings is not None:
            self._settings.apply_update(DeepgramTTSSettings(speed=settings.speed))
        self._ws: ProviderWebsocket | None = None
        self._replies: deque[_Reply] = deque()
        """Replies sent to Deepgram and not yet answered by ``Flushed``, oldest first."""
        self._clears = 0
        """``Clear`` messages not yet answered by ``Cleared``: audio meanwhile is dropped."""
        self._stray_flushes = 0
        """Flushes of dropped replies that reached a new socket: their answers are ignored."""
        self._url_changed = False
        self._swap_task: asyncio.Task[None] | None = None
        self._idle_waiter: asyncio.Event | None = None
        """Set once the socket is idle: a reply waiting to go out in a new voice goes on."""

    @property
    def wire_encoding(self) -> str:
        """The ``encoding`` asked for."""
        if self._encoding == "auto":
            return "mulaw" if self.sample_rate == 8000 else "linear16"
        return self._encoding

    @property
    def voice(self) -> str:
        """The Aura voice in use (Deepgram's ``model`` query parameter)."""
        voice = self._settings.voice
        return voice if isinstance(voice, str) and voice else DEFAULT_VOICE

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """See :func:`format_deepgram_pronunciation`."""
        return format_deepgram_pronunciation(word, ipa)

    @property
    def supports_pronunciations(self) -> bool:
        """The voice in use reads inline pronunciations (Aura-2, English or Spanish)."""
        return deepgram_reads_pronunciations(self.voice)

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if "model" in changed and "voice" not in changed:
            # A Deepgram model is a voice: Settings(model="aura-2-...") changes the voice too.
            model = self._settings.model
            if isinstance(model, str) and model:
                self._settings.voice = model
                changed["voice"] = None
        if "voice" in changed:
            self._settings.model = self.voice
            self.set_model_name(self.voice)
        if changed.keys() & {"voice", "speed"} and self._ws is not None:
            self._url_changed = True
            self._maybe_swap()

    # ------------------------------------------------------------------ connection

    def _socket_url(self) -> str:
        speed = self._settings.speed
        query: dict[str, Any] = {
            "model": self.voice,
            "encoding": self.wire_encoding,
            "sample_rate": self.sample_rate,
            "speed": speed if is_given(speed) else None,
            "mip_opt_out": self._mip_opt_out,
        }
        return ws_url(self._url, SPEAK_PATH, query)

    def _new_socket(self, url: str) -> ProviderWebsocket:
        """A socket on ``url`` whose messages and troubles count only while it is current."""
        ws: ProviderWebsocket

        def only_current(
            handler: Callable[..., Awaitable[None]],
        ) -> Callable[..., Awaitable[None]]:
            async def call(*args: Any) -> None:
                if ws is self._ws:
                    await handler(*args)

            return call

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=url,
            headers={"Authorization": f"Token {self._api_key}"},
            on_message=only_current(self._on_message),
            on_reconnected=only_current(self._drop_replies_in_flight),
            on_failed=only_current(self._on_socket_failed),
            auth_hint="Check api_key / DEEPGRAM_API_KEY.",
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        rates = SAMPLE_RATES[self.wire_encoding]
        if self.sample_rate not in rates:
            raise ConfigurationError(
                f"Deepgram cannot produce {self.wire_encoding} audio at {self.sample_rate} Hz "
                f"(it offers {', '.join(map(str, rates))})"
            )
        self._ws = self._new_socket(self._socket_url())
        await self._ws.connect()

    async def disconnect(self) -> None:
        self._url_changed = False
        if self._idle_waiter is not None:
            self._idle_waiter.set()  # a reply waiting for the reconnect: there will be none
        await cancel_and_wait(self._swap_task)
        self._swap_task = None
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(final_message=_CLOSE)

    async def _drop_replies_in_flight(self) -> None:
        # A new socket knows nothing of the old one's text: close those replies with what
        # they had rather than wait for a Flushed that will never come.
        replies = list(self._replies)
        self._replies.clear()
        self._clears = self._stray_flushes = 0
        for reply in replies:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_replies_in_flight()

    # ------------------------------------------------------------------ settings reconnect

    def _maybe_swap(self) -> None:
        """Open a socket on the new URL once nothing is generating on the current one."""
        ws = self._ws
        if not self._url_changed or self._swap_task is not None or ws is None:
            return
        if self._replies or self._clears:
            return  # the reply in progress finishes in the old voice
        self._url_changed = False
        url = self._socket_url()
        if url != ws.url:
            self._swap_task = self.create_task(self._swap_socket(url), "settings-reconnect")
        if self._idle_waiter is not None:
            self._idle_waiter.set()

    async def _settle_socket(self) -> None:
        """Before a reply: a pending voice or speed change takes effect first. While an earlier
        reply is still generating, wait for its end (its audio comes first anyway), at most
        ``context_timeout_secs``; past that the reply goes out in the old voice."""
        self._maybe_swap()
        if self._url_changed and self._swap_task is None:
            waiter = self._idle_waiter = asyncio.Event()
            try:
                async with asyncio.timeout(self._context_timeout):
                    await waiter.wait()
            except TimeoutError:
                logger.warning(
                    "%s: an earlier reply is still generating; the new voice applies later", self
                )
                return
            finally:
                self._idle_waiter = None
        task = self._swap_task
        if task is not None:
            # Shielded: an interruption cancels this reply, not the reconnect.
            await asyncio.shield(task)

    async def _swap_socket(self, url: str) -> None:
        try:
            await self.wait_ready()
            logger.info("%s: voice or speed changed; reconnecting", self)
            new = self._new_socket(url)
            try:
                await new.connect()
            except asyncio.CancelledError:
                await new.close()
                raise
            except Exception as exc:
                await new.close()
                await self.report_error(
                    f"{self}: could not reconnect with the new settings ({exc}); "
                    "the previous voice and speed stay",
                    reason="settings",
                )
                return
            old, self._ws = self._ws, new
            if old is not None:
                await old.close(final_message=_CLOSE)
        finally:
            self._swap_task = None

    # ------------------------------------------------------------------ requests

    def _reply(self, context_id: str) -> _Reply | None:
        for reply in self._replies:
            if reply.context_id == context_id:
                return reply
        return None

    async def _send(self, context_id: str, message: str) -> bool:
        if self._ws is None or not await self._ws.send(message):
            await self.report_not_connected()
            reply = self._reply(context_id)
            if reply is not None:
                self._replies.remove(reply)
            self.context_failed(context_id)
            await self.finish_context(context_id)
            return False
        return True

    async def run_tts(self, text: str, context_id: str) -> None:
        if self._reply(context_id) is None:
            # The first text of a reply: a pending voice change goes first.
            if self._url_changed or self._swap_task is not None:
                await self._settle_socket()
            self._replies.append(_Reply(context_id))
        # Deepgram joins the texts of its buffer as they are: whole sentences get a space
        # between them; streamed text (no sentence aggregation) goes as it came.
        spoken = text.strip() + " " if self._aggregate_sentences else text
        await self._send(context_id, json.dumps({"type": "Speak", "text": spoken}))

    async def flush_context(self, context_id: str) -> None:
        reply = self._reply(context_id)
        if reply is None or not self.has_context(context_id):
            await self.finish_context(context_id)
            return
        reply.flushed = True
        if await self._send(context_id, _FLUSH) and reply not in self._replies:
            # The socket was replaced while the Flush waited for it: the new socket answers it
            # (its buffer is empty), and that answer must not end the next reply.
            self._stray_flushes += 1

    async def cancel_context(self, context_id: str) -> None:
        # One Clear for all the replies an interruption dropped (the buffer is one).
        kept = [reply for reply in self._replies if self.has_context(reply.context_id)]
        if len(kept) == len(self._replies):
            return
        self._replies = deque(kept)
        if self._ws is not None and self._ws.connected and await self._ws.send(_CLEAR, wait_secs=0):
            self._clears += 1

    async def _finish(self, context_id: str) -> None:
        await self.finish_context(context_id)
        self._maybe_swap()

    # ------------------------------------------------------------------ responses

    def _decode(self, data: bytes) -> bytes:
        encoding = self.wire_encoding
        if encoding == "mulaw":
            return ulaw_to_pcm(data)
        if encoding == "alaw":
            return alaw_to_pcm(data)
        return data

    async def _on_message(self, raw: Message) -> None:
        if isinstance(raw, bytes):
            if self._clears or not self._replies:
                return  # audio of an interrupted reply
            await self.append_audio(self._replies[0].context_id, self._decode(raw))
            return
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "Flushed":
            if self._clears:
                return  # the answer to a Flush of a reply that was cleared since
            if self._stray_flushes:
                self._stray_flushes -= 1
                return
            if self._replies and self._replies[0].flushed:
                await self._finish(self._replies.popleft().context_id)
        elif kind == "Cleared":
            self._clears = max(0, self._clears - 1)
            self._maybe_swap()
        elif kind == "Warning":
            # The SDK's model names description/code; the live API has been seen sending
            # warn_msg/warn_code. Either is read.
            code = message.get("warn_code") or message.get("code") or "warning"
            text = message.get("warn_msg") or message.get("description") or ""
            logger.warning("%s: Deepgram warning %s: %s", self, code, text)
        elif kind == "Metadata":
            logger.debug("%s: Deepgram metadata: %s", self, message)
        else:
            logger.debug("%s: unexpected Deepgram message: %s", self, message)
