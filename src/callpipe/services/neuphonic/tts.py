"""NeuphonicTTSService: Neuphonic's text-to-speech WebSocket (``/speak/{lang_code}``);
NeuphonicHttpTTSService: one ``POST /sse/speak/{lang_code}`` per sentence, read as
server-sent events.

The protocol, as Neuphonic documents it (https://docs.neuphonic.com/api-reference/tts/websocket,
https://docs.neuphonic.com/api-reference/tts/sse-generator) and its SDKs (``pyneuphonic``,
``@neuphonic/neuphonic-js``) speak it:

- The socket is ``wss://api.neuphonic.com/speak/{lang_code}`` with every synthesis option a
  query parameter (``speed``, ``temperature``, ``lang_code``, ``voice_id``, ``sampling_rate``,
  ``encoding`` of ``pcm_linear`` or ``pcm_mulaw``, and ``ipa_key``); the key goes in an
  ``x-api-key`` header.
- The client sends ``{"text": ...}``. Neuphonic generates with a little lookahead, so a passage
  ends with the token ``<STOP>``, after which the server speaks all of it.
- The server answers ``{"data": {"audio": <base64>, "text", "sampling_rate"}}`` about once per
  word, and the last message of each passage carries ``"stop": true`` (what Neuphonic's
  JavaScript SDK waits for; pyneuphonic's model lets the field through unnamed).
- The HTTP endpoint takes the same options as a JSON body next to ``text`` (key in
  ``X-API-KEY``) and streams ``data:`` events of the same shape; an event with ``errors`` (and
  its ``status_code``) reports a failure.

The socket has no contexts: audio arrives in the order the text was sent. Each sentence goes
out as ``"<sentence> <STOP>"``, so its audio is complete at its ``stop``: the sentence's
``TTSTextFrame`` follows it, and a reply ends at the ``stop`` of its last sentence. With
``TextAggregationMode.TOKEN`` the text goes as it streams and the reply's end sends ``<STOP>``.
Audio belongs to the oldest reply whose ``stop`` messages have not all come.

Neuphonic has no message to cancel a passage. An interruption of a reply still generating opens
a new socket in the background (while the caller speaks) and closes the old one; audio of the
dropped reply that still arrives is not played. Settings are URL parameters: a change opens a
new socket before the next reply, once no reply is generating.

On a phone call (8 kHz output) both services ask for ``pcm_mulaw`` at 8000 Hz (half the bytes,
no resampling); otherwise ``pcm_linear`` at the pipeline's output rate when Neuphonic offers it
(8000, 16000, 22050, 24000 Hz), else at the nearest lower rate, resampled here.

Where this differs from Pipecat 1.14: Pipecat asks for ``pcm_linear`` at 22050 Hz whatever the
line, writes the query unencoded, ends a reply after a silence (it does not read ``stop``) and
reconnects at once on a settings change, even mid-reply. Each request here is the one
pyneuphonic builds for the same options (``tests/contract/test_neuphonic_contract.py``).
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

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import NEUPHONIC_API_URL_ENV, NEUPHONIC_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

NEUPHONIC_URL = "wss://api.neuphonic.com"
NEUPHONIC_API_URL = "https://api.neuphonic.com"
SAMPLE_RATES = (8000, 16000, 22050, 24000)
"""The ``sampling_rate`` values Neuphonic offers."""
ENCODINGS = ("pcm_linear", "pcm_mulaw")
STOP = "<STOP>"
KEY_HINT = "Check api_key / NEUPHONIC_API_KEY."

_LANGUAGE_MAP = {
    code: code for code in ("ar", "de", "en", "es", "fr", "hi", "nl", "pt", "ru", "zh")
}


def language_to_neuphonic_lang_code(language: str) -> str:
    """Neuphonic's ``lang_code`` for a language tag: ``Language.ES_MX`` -> ``"es"``. A language
    Neuphonic does not list goes as its base code, logged at WARNING."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class NeuphonicTTSSettings(TTSSettings):
    """``NeuphonicTTSService.Settings``: voice (Neuphonic's ``voice_id``; None: Neuphonic's
    default voice), language, and ``speed`` (a multiplier, 1.0 by default), ``temperature``
    (0 to 1) and ``ipa_key`` (``es-castilian`` or ``pt-br``: how ``<phoneme:...>`` tags are
    read), each sent when not None."""

    speed: float | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)
    ipa_key: str | None | NotGiven = field(default_factory=unset)


class _NeuphonicParams(BaseModel):
    """Pipecat's deprecated ``params=`` form (``settings=`` replaces it and wins over it)."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = "en"
    speed: float | None = 1.0


def _initial_settings(
    voice_id: str | None, params: _NeuphonicParams | None, settings: NeuphonicTTSSettings | None
) -> NeuphonicTTSSettings:
    store = NeuphonicTTSSettings(
        voice=voice_id, language="en", speed=1.0, temperature=None, ipa_key=None
    )
    if params is not None and settings is None:
        if params.language is not None:
            store.language = params.language
        if params.speed is not None:
            store.speed = params.speed
    if settings is not None:
        store.apply_update(settings)
    return store


def _check_encoding(encoding: str | None) -> str | None:
    if encoding is None or encoding == "auto":
        return None
    if encoding not in ENCODINGS:
        raise ConfigurationError(
            f"encoding={encoding!r}: Neuphonic sends {', '.join(ENCODINGS)} (or pass None)"
        )
    return encoding


class _NeuphonicOptions:
    """What both services ask Neuphonic for: the rate, the encoding and the options."""

    _settings: NeuphonicTTSSettings
    _encoding: str | None

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError  # the TTS service's (this class comes after it in the bases)

    @property
    def wire_rate(self) -> int:
        """The ``sampling_rate`` asked for: the output rate when Neuphonic offers it, else the
        nearest lower one it does (resampled here)."""
        rate = self.sample_rate
        return (
            rate
            if rate in SAMPLE_RATES
            else max((r for r in SAMPLE_RATES if r <= rate), default=8000)
        )

    @property
    def wire_encoding(self) -> str:
        """``pcm_mulaw`` at 8 kHz (a phone call) unless ``encoding`` says otherwise."""
        if self._encoding is not None:
            return self._encoding
        return "pcm_mulaw" if self.sample_rate == 8000 else "pcm_linear"

    @property
    def lang_code(self) -> str:
        language = self._settings.language
        return language_to_neuphonic_lang_code(language) if isinstance(language, str) else "en"

    def options(self) -> dict[str, Any]:
        """The synthesis options (URL query or body), the unset ones left out."""
        s = self._settings
        found: dict[str, Any] = {
            "speed": s.speed,
            "temperature": s.temperature,
            "lang_code": self.lang_code,
            "voice_id": s.voice or None,
            "sampling_rate": self.wire_rate,
            "encoding": self.wire_encoding,
            "ipa_key": s.ipa_key,
        }
        return {k: v for k, v in found.items() if v is not None and is_given(v)}

    def decode(self, audio: bytes) -> bytes:
        return ulaw_to_pcm(audio) if self.wire_encoding == "pcm_mulaw" else audio


@dataclass
class _Reply:
    """A reply whose text went to Neuphonic and whose ``stop`` messages have not all come."""

    context_id: str
    passages: deque[str] = field(default_factory=deque)
    """The text of each ``<STOP>`` sent and not yet answered (in order)."""
    streamed: str = ""
    """Token mode: the text sent since the last ``<STOP>``."""
    flushed: bool = False


class NeuphonicTTSService(TTSService, _NeuphonicOptions):
    """Neuphonic over its WebSocket (see the module docstring).

    1.14 style: ``NeuphonicTTSService(api_key=..., settings=NeuphonicTTSService.Settings(
    voice="<voice id>"))``. ``url``: the socket's origin (Neuphonic's, else
    ``$CALLPIPE_NEUPHONIC_URL``); ``/speak/{lang_code}`` is added. ``encoding``: None (the
    default: ``pcm_mulaw`` at 8 kHz, else ``pcm_linear``) or one of :data:`ENCODINGS`.
    ``voice_id`` and ``params`` are the older forms.
    """

    # Audio comes without word timing: each passage's text is released at its `stop`.
    emits_word_timestamps = True
    Settings = NeuphonicTTSSettings
    _settings: NeuphonicTTSSettings
    InputParams = _NeuphonicParams

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        url: str | None = None,
        sample_rate: int | None = None,
        encoding: str | None = None,
        params: _NeuphonicParams | None = None,
        settings: NeuphonicTTSSettings | None = None,
        keepalive_secs: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "NEUPHONIC_API_KEY")
        self._url = env_base_url(url, NEUPHONIC_URL_ENV, NEUPHONIC_URL)
        self._encoding = _check_encoding(encoding)
        self._keepalive_secs = keepalive_secs
        self._settings.apply_update(_initial_settings(voice_id, params, settings))
        self._ws: ProviderWebsocket | None = None
        self._replies: deque[_Reply] = deque()
        """Replies sent on the current socket and not yet ended, oldest first."""
        self._reconnect_pending = False
        self._swap_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        """Set while no reply is generating on the socket."""
        self._idle.set()

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_neuphonic_lang_code(language)

    def socket_url(self) -> str:
        """The socket URL for the current settings (every option is a query parameter)."""
        return ws_url(self._url, f"/speak/{self.lang_code}", self.options())

    # ------------------------------------------------------------------ connection

    def _new_socket(self) -> ProviderWebsocket:
        """A socket whose messages and troubles count only while it is the current one."""
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
            headers={"x-api-key": self._api_key},
            on_message=only_current(self._on_message),
            on_reconnected=only_current(self._drop_in_flight),
            on_failed=only_current(self._on_failed),
            keepalive_secs=self._keepalive_secs or None,
            keepalive_message=lambda: json.dumps({"text": ""}),
            auth_hint=KEY_HINT,
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Neuphonic cannot produce {self.sample_rate} Hz audio")
        self._ws = self._new_socket()
        await self._ws.connect()

    async def disconnect(self) -> None:
        self._reconnect_pending = False
        await cancel_and_wait(self._swap_task)
        self._swap_task = None
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _drop_in_flight(self) -> None:
        """A new socket knows nothing of the old one's text: close its replies as they are."""
        replies = list(self._replies)
        self._replies.clear()
        for reply in replies:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)
        self._idle.set()

    async def _on_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_in_flight()

    # ------------------------------------------------------------------ socket swaps

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if self._ws is None:
            return  # not started: the socket opens with the new settings
        self._reconnect_pending = True
        self._maybe_swap()

    def _maybe_swap(self, *, interrupted: bool = False) -> None:
        """Replace the socket in the background when nothing is generating on it, for a
        settings change or (``interrupted``) to stop Neuphonic generating dropped replies."""
        if self._ws is None or self._swap_task is not None:
            return
        if any(self.has_context(r.context_id) for r in self._replies):
            return  # a live reply finishes on this socket
        if self._reconnect_pending or interrupted:
            self._reconnect_pending = False
            self._swap_task = self.create_task(self._swap(interrupted), "neuphonic-reconnect")

    async def _swap(self, interrupted: bool) -> None:
        try:
            old = self._ws
            if old is not None and old.url == self.socket_url() and not interrupted:
                return
            new = self._new_socket()
            try:
                await new.connect()
            except Exception as exc:
                await new.close()
                if not interrupted:
                    await self.report_error(
                        f"{self}: could not reconnect with the new settings ({exc}); the "
                        "previous ones stay",
                        reason="settings",
                    )
                return  # after an interruption the old socket goes on; its late audio is dropped
            self._ws = new
            self._replies.clear()  # only dropped replies were left on the old socket
            self._idle.set()
            if old is not None:
                await old.close()
        finally:
            self._swap_task = None

    async def _take_socket(self) -> None:
        """Before a new reply: a settings change waits for the replies still generating (at
        most past the base class's own timeout), then the reconnect under way is awaited."""
        if self._reconnect_pending and not self._idle.is_set():
            try:
                async with asyncio.timeout(self._context_timeout + 1.0):
                    await self._idle.wait()
            except TimeoutError:
                logger.warning("%s: an earlier reply is still generating; going on", self)
        self._maybe_swap()
        task = self._swap_task
        if task is not None:
            await asyncio.shield(task)  # an interruption cancels this reply, not the reconnect

    # ------------------------------------------------------------------ requests

    def _reply(self, context_id: str) -> _Reply | None:
        for reply in self._replies:
            if reply.context_id == context_id:
                return reply
        return None

    async def _send(self, reply: _Reply, text: str) -> bool:
        if self._ws is None or not await self._ws.send(json.dumps({"text": text})):
            await self.report_not_connected()
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)
            return False
        return True

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._reply(context_id)
        if reply is None:
            await self._take_socket()
            reply = _Reply(context_id)
            self._replies.append(reply)
            self._idle.clear()
        if self._aggregate_sentences:
            sentence = text.strip()
            reply.passages.append(sentence)
            await self._send(reply, f"{sentence} {STOP}")
        else:
            reply.streamed += text
            await self._send(reply, text)

    async def flush_context(self, context_id: str) -> None:
        reply = self._reply(context_id)
        if reply is None or not self.has_context(context_id):
            await self.finish_context(context_id)
            return
        reply.flushed = True
        if not self._aggregate_sentences:
            reply.passages.append(reply.streamed.strip())
            reply.streamed = ""
            await self._send(reply, f" {STOP}")
        elif not reply.passages:
            await self.finish_context(reply.context_id)  # every sentence's audio is here already

    async def cancel_context(self, context_id: str) -> None:
        # An interruption cancels its replies one by one: the first call handles them all.
        # A dropped reply gets no more text; text streamed without its <STOP> is ended now, so
        # that Neuphonic does not speak it with the next reply's. Replies still generating stay
        # in line until their `stop`s come (their audio is not played: the base class forgot
        # their contexts), unless a new socket replaces this one first.
        generating = False
        for reply in list(self._replies):
            if self.has_context(reply.context_id):
                continue
            if not reply.flushed:
                reply.flushed = True
                if reply.streamed.strip() and self._ws is not None:
                    reply.passages.append("")
                    reply.streamed = ""
                    await self._ws.send(json.dumps({"text": f" {STOP}"}), wait_secs=0)
            if reply.passages:
                generating = True
            else:
                self._replies.remove(reply)
        if generating:
            self._maybe_swap(interrupted=True)
        elif not self._replies:
            self._idle.set()
            self._maybe_swap()

    async def finish_context(self, context_id: str | None) -> None:
        """Close a reply: ours (its last ``stop``, a send failure, a drop) or the base class's
        when Neuphonic never ended it (``context_timeout_secs``): it leaves the line either way,
        so later audio goes to the replies after it."""
        reply = self._reply(context_id) if context_id is not None else None
        if reply is not None:
            self._replies.remove(reply)
        await super().finish_context(context_id)
        if not self._replies:
            self._idle.set()
            self._maybe_swap()

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        if message.get("errors"):
            code = message.get("status_code", "error")
            await self.report_error(
                f"{self}: Neuphonic error {code}: {message['errors']}", reason="provider"
            )
            return
        data = message.get("data")
        if not isinstance(data, dict) or not self._replies:
            return
        reply = self._replies[0]
        audio = data.get("audio")
        if isinstance(audio, str) and audio:
            rate = data.get("sampling_rate")
            await self.append_audio(
                reply.context_id,
                self.decode(base64.b64decode(audio)),
                rate if isinstance(rate, int) and rate > 0 else self.wire_rate,
            )
        if data.get("stop") is True:
            passage = reply.passages.popleft() if reply.passages else ""
            ctx = self._contexts.get(reply.context_id)
            if passage and ctx is not None:
                # The sentence's text follows its last audio.
                await self.add_word_timestamps(
                    reply.context_id, [(passage, ctx.audio_secs, ctx.audio_secs)]
                )
            if reply.flushed and not reply.passages:
                await self.finish_context(reply.context_id)


class NeuphonicHttpTTSService(HTTPStreamTTSService, _NeuphonicOptions):
    """Neuphonic over HTTP: one ``POST /sse/speak/{lang_code}`` per sentence, its server-sent
    events played as they come (see the module docstring).

    ``url``: the API's origin (Neuphonic's, else ``$CALLPIPE_NEUPHONIC_API_URL``).
    ``aiohttp_session`` (Pipecat's, required there) is accepted and not used: requests go
    through callpipe's pooled client. Settings updates apply from the next sentence; an
    interruption closes the response in flight.
    """

    Settings = NeuphonicTTSSettings
    _settings: NeuphonicTTSSettings
    InputParams = _NeuphonicParams
    key_hint = KEY_HINT

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        aiohttp_session: Any = None,
        url: str | None = None,
        sample_rate: int | None = None,
        encoding: str | None = None,
        params: _NeuphonicParams | None = None,
        settings: NeuphonicTTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        super().__init__(sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "NEUPHONIC_API_KEY")
        self._encoding = _check_encoding(encoding)
        self._settings.apply_update(_initial_settings(voice_id, params, settings))
        api_base = env_base_url(url, NEUPHONIC_API_URL_ENV, NEUPHONIC_API_URL)
        self.configure_http(api_base, {"X-API-KEY": self._api_key}, timeout_secs=timeout_secs)

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_neuphonic_lang_code(language)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Neuphonic cannot produce {self.sample_rate} Hz audio")
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/sse/speak`` body for ``text`` with the current settings."""
        return {"text": text, **self.options()}

    async def run_tts(self, text: str, context_id: str) -> None:
        path = f"/sse/speak/{self.lang_code}"
        await self.stream_speech(context_id, path, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # `event:` lines, blank separators, comments
            payload = line[5:].strip()
            if not payload or payload == "[DONE]":
                continue
            try:
                event = json.loads(payload)
            except ValueError:
                logger.warning("%s: unreadable event from Neuphonic: %.200s", self, payload)
                continue
            if not isinstance(event, dict):
                continue
            if event.get("errors"):
                self.sentence_failed(context_id)  # the rest of the sentence never comes
                code = event.get("status_code", "error")
                await self.report_error(
                    f"{self}: Neuphonic error {code}: {event['errors']}", reason="provider"
                )
                return
            data = event.get("data")
            if not isinstance(data, dict):
                continue
            audio = data.get("audio")
            if isinstance(audio, str) and audio:
                rate = data.get("sampling_rate")
                await self.append_audio(
                    context_id,
                    self.decode(base64.b64decode(audio)),
                    rate if isinstance(rate, int) and rate > 0 else self.wire_rate,
                )
