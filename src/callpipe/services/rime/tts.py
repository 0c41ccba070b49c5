"""RimeTTSService: Rime's JSON WebSocket (``/ws3``, or the older ``/ws2``) with word timestamps;
RimeHttpTTSService: one streamed ``POST /v1/rime-tts`` per sentence (see its docstring).

The protocol, as Rime documents it (https://docs.rime.ai/api-reference/coda/websockets-json,
https://docs.rime.ai/docs/websockets-segment):

- Every synthesis option is a query parameter of the socket URL (``speaker``, ``modelId``,
  ``audioFormat``, ``samplingRate``, ``lang``, ``segment``, ...); the key goes in an
  ``Authorization: Bearer`` header.
- The client sends ``{"text", "contextId"}`` and the operations ``{"operation": "flush"}``
  (synthesize what is buffered), ``"clear"`` (drop what is buffered) and ``"eos"``.
- The server answers ``{"type": "chunk", "data": <base64 audio>, "contextId"}``,
  ``{"type": "timestamps", "word_timestamps": {"words", "start", "end"}, "contextId"}`` (seconds
  from the start of that synthesis run), ``{"type": "done", "contextId"}`` once a run's audio is
  all sent, and ``{"type": "error", "message"}`` (the socket stays open).

Rime keeps one text buffer per socket and tags each run's events with the newest ``contextId``
it had when the run was requested; flushes sent while a run is under way are merged into one
run with one ``done``. So each piece of text of a reply goes with its own id
(``<reply>-<n>``): audio of any of them belongs to the reply (audio of an interrupted reply is
dropped by id), and the reply is complete when a ``done`` carries the id of its last piece.
With whole sentences (the default) each sentence is flushed at once, so synthesis never waits
for Rime's own sentence detection; with ``TextAggregationMode.TOKEN`` text goes as it streams
and the reply's end sends the flush.

On a phone call (8 kHz output) the socket asks for ``mulaw`` at 8000 Hz: half the bytes, no
resampling (G.711 decoding is exact for what the line carries); otherwise 16-bit PCM at the
pipeline's output rate. Words arrive per run; a punctuation token (Rime may send ``"."`` as a
word) is joined to the word before it, and each ``TTSTextFrame`` follows its audio. Rime sends
timestamps only for English and Spanish: other languages get their text after the reply's audio.

Replies take turns: a reply's text is sent once the replies before it are done (their text
would otherwise join the same run, tagged with the newer id). That costs nothing audible, since
the earlier audio plays first anyway and Rime generates faster than real time.

An interruption of a reply whose audio is all here sends ``clear``. Rime documents that
``clear`` stops neither the run under way nor one already requested, so when the dropped reply
is still generating the socket is replaced instead (in the background, while the caller
speaks); its audio that still arrives is dropped by id.

Settings are all URL parameters: a change (``TTSUpdateSettingsFrame``) reconnects the socket,
at once when no reply is generating, else before the next reply that starts once the earlier
ones are done (a reply is never cut off or switched mid-way).

Where Pipecat 1.14 and Rime's docs differ, this follows the docs: booleans are sent as
``true``/``false`` (Pipecat sends ``reduceLatency=True``), the query is URL-encoded, and
:meth:`RimeTTSService.PAUSE_TAG` writes whole milliseconds (``<200>``, not ``<200.0>``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import RIME_API_URL_ENV, RIME_URL_ENV, base_url
from callpipe.services._env import base_url as env_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, require_voice, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

RIME_URL = "wss://users-ws.rime.ai/ws3"
"""Rime's flagship JSON socket (all models); ``/ws2`` is the older one (Mist v1/v2 only)."""
DEFAULT_PATH = "/ws3"
"""Added to a ``url`` given without a path (e.g. ``CALLPIPE_RIME_URL`` of ``callpipe fakes``)."""
DEFAULT_MODEL = "coda"
RIME_API_URL = "https://users.rime.ai"
"""The origin of Rime's HTTP API (``POST /v1/rime-tts``)."""
HTTP_PATH = "/v1/rime-tts"

_LANGUAGE_MAP = {
    "ar": "ara",
    "de": "ger",
    "en": "eng",
    "es": "spa",
    "fr": "fra",
    "hi": "hin",
    "it": "ita",
    "ja": "jpn",
    "pt": "por",
}
"""Rime's three-letter ``lang`` codes (accepted by every model; Coda also takes ``en`` etc.)."""
_LANGUAGE_MAP |= {code: code for code in _LANGUAGE_MAP.values()} | {"deu": "ger"}


def language_to_rime_language(language: str) -> str:
    """Rime's ``lang`` code for a language tag: ``Language.ES_MX`` -> ``"spa"``. A language Rime
    does not list goes as its base code, logged at WARNING."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


CLEAR = json.dumps({"operation": "clear"})
FLUSH = json.dumps({"operation": "flush"})

_CODA_FIELDS = ("repetition_penalty", "temperature", "top_p", "timeScaleFactor")
_MIST_FIELDS = (
    "reduceLatency",
    "pauseBetweenBrackets",
    "phonemizeBetweenBrackets",
    "noTextNormalization",
    "saveOovs",
    "inlineSpeedAlpha",
)


@dataclass
class RimeTTSSettings(TTSSettings):
    """``RimeTTSService.Settings``: voice (Rime's ``speaker``), model, language and Rime's
    socket options, each sent (when not None) as the URL parameter of the same name.

    ``segment`` (``"bySentence"``, ``"immediate"``, ``"never"``) and ``speedAlpha`` go to
    every model; ``repetition_penalty``, ``temperature``, ``top_p`` and ``timeScaleFactor``
    only to ``coda``; ``reduceLatency``, ``pauseBetweenBrackets``, ``phonemizeBetweenBrackets``,
    ``noTextNormalization``, ``saveOovs`` and ``inlineSpeedAlpha`` only to the Mist models.
    """

    segment: str | None | NotGiven = field(default_factory=unset)
    speedAlpha: float | None | NotGiven = field(default_factory=unset)
    reduceLatency: bool | None | NotGiven = field(default_factory=unset)
    pauseBetweenBrackets: bool | None | NotGiven = field(default_factory=unset)
    phonemizeBetweenBrackets: bool | None | NotGiven = field(default_factory=unset)
    noTextNormalization: bool | None | NotGiven = field(default_factory=unset)
    saveOovs: bool | None | NotGiven = field(default_factory=unset)
    inlineSpeedAlpha: str | None | NotGiven = field(default_factory=unset)
    repetition_penalty: float | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)
    top_p: float | None | NotGiven = field(default_factory=unset)
    timeScaleFactor: float | None | NotGiven = field(default_factory=unset)

    _aliases: ClassVar[dict[str, str]] = {"speaker": "voice", "voice_id": "voice"}


@dataclass
class _Reply:
    """The pieces of one reply sent to Rime, and where its current synthesis run started."""

    ids: list[str] = field(default_factory=list)
    done_id: str | None = None
    """The id of the newest ``done`` received for this reply."""
    flushed: bool = False
    run_start: float | None = None
    """Seconds of the reply's audio before the current run (None: the next event starts one)."""
    held: tuple[str, float, float] | None = None
    """The last word, kept until the next one shows it is not followed by punctuation."""


class RimeTTSService(TTSService):
    """Rime over its JSON WebSocket (see the module docstring).

    1.14 style: ``RimeTTSService(api_key=..., settings=RimeTTSService.Settings(voice="astra",
    model="coda"))``. ``url``: the socket's address (``wss://users-ws.rime.ai/ws3``; ``/ws3``
    is added to one without a path). ``voice_id``, ``model`` and ``params`` are the older forms
    (``settings`` wins over ``params``, as in Pipecat).
    """

    emits_word_timestamps = True
    Settings = RimeTTSSettings
    _settings: RimeTTSSettings

    class InputParams(BaseModel):
        """The older form of the settings (``settings=`` wins over these)."""

        model_config = ConfigDict(extra="forbid")

        language: str | None = "en"
        segment: str | None = None
        speed_alpha: float | None = None
        repetition_penalty: float | None = None
        temperature: float | None = None
        top_p: float | None = None
        reduce_latency: bool | None = None
        pause_between_brackets: bool | None = None
        phonemize_between_brackets: bool | None = None
        no_text_normalization: bool | None = None
        save_oovs: bool | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        url: str | None = None,
        model: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: RimeTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if settings is not None and isinstance(settings.model, str) and model is None:
            model = settings.model
        super().__init__(model=model or DEFAULT_MODEL, sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "RIME_API_KEY")
        voice = require_voice(type(self).__name__, voice_id, settings)
        url = base_url(url, RIME_URL_ENV, RIME_URL)
        self._url = url if urlsplit(url).path not in ("", "/") else url + DEFAULT_PATH
        older = _from_params(params) if params is not None else None
        self._settings.apply_update(_initial_settings(voice, self.model_name, older, settings))
        self._ws: ProviderWebsocket | None = None
        self._replies: dict[str, _Reply] = {}
        self._owner: dict[str, str] = {}
        """Rime ``contextId`` -> our reply context id."""
        self._reconnect_pending = False
        """A setting changed while a reply was generating: reconnect once none is."""
        self._swap_task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        """Set while no reply is generating on the socket."""
        self._idle.set()

    # ------------------------------------------------------------------ settings

    @property
    def audio_format(self) -> str:
        """The ``audioFormat`` asked for: ``mulaw`` at 8 kHz (a phone call), else ``pcm``."""
        return "mulaw" if self.sample_rate == 8000 else "pcm"

    def language_to_service_language(self, language: str) -> str | None:
        """Rime's code for ``language`` (see :func:`language_to_rime_language`)."""
        return language_to_rime_language(language)

    def socket_url(self) -> str:
        """The socket URL for the current settings (every option is a query parameter)."""
        s = self._settings
        language = s.language
        query: dict[str, Any] = {
            "speaker": s.voice,
            "modelId": self.model_name,
            "audioFormat": self.audio_format,
            "samplingRate": self.sample_rate,
            "lang": language_to_rime_language(language) if isinstance(language, str) else None,
            "segment": s.segment,
            "speedAlpha": s.speedAlpha,
        }
        for name in _CODA_FIELDS if self.model_name == "coda" else _MIST_FIELDS:
            query[name] = getattr(s, name)
        url = ws_url(self._url, "", {k: v for k, v in query.items() if is_given(v)})
        return url

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        if self._ws is None:
            return  # not started: the socket opens with the new settings
        self._reconnect_pending = True
        self._maybe_swap()

    def _maybe_swap(self, *, interrupted: bool = False) -> None:
        """Replace the socket in the background, if nothing is generating on it, when a
        setting changed or (``interrupted``) to stop Rime generating a dropped reply."""
        if self._ws is None or self._swap_task is not None or self._replies:
            return
        if self._reconnect_pending or interrupted:
            self._reconnect_pending = False
            self._swap_task = self.create_task(self._swap(interrupted), "rime-reconnect")

    async def _swap(self, interrupted: bool) -> None:
        """Open a socket on the current settings' URL, make it the current one, close the old."""
        try:
            old = self._ws
            if old is not None and old.url == self.socket_url() and not interrupted:
                return
            logger.debug(
                "%s: reconnecting (%s)", self, "interrupted" if interrupted else "settings"
            )
            new = self._new_socket()
            try:
                await new.connect()
            except Exception as exc:
                await new.close()
                if interrupted:
                    if old is not None:
                        await old.send(CLEAR, wait_secs=0)
                    return  # the old socket goes on; its late audio is dropped by id
                await self.report_error(
                    f"{self}: could not reconnect with the new settings ({exc}); the previous "
                    "ones stay",
                    reason="settings",
                )
                return
            self._ws = new
            if old is not None:
                await old.close()
        finally:
            self._swap_task = None

    # ------------------------------------------------------------------ text helpers

    @staticmethod
    def SPELL(text: str) -> str:
        """``text`` to be spelled out letter by letter (Rime's ``spell()`` markup)."""
        return f"spell({text})"

    @staticmethod
    def PAUSE_TAG(seconds: float) -> str:
        """A pause of ``seconds`` (Rime's ``<milliseconds>`` markup)."""
        return f"<{round(seconds * 1000)}>"

    # ------------------------------------------------------------------ connection

    def _new_socket(self) -> ProviderWebsocket:
        ws: ProviderWebsocket

        async def reconnected() -> None:
            if ws is self._ws:
                await self._drop_open_replies()

        async def failed(message: str) -> None:
            if ws is self._ws:
                await self.report_error(message, reason="disconnected")
                await self._drop_open_replies()

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=reconnected,
            on_failed=failed,
            auth_hint="Check api_key / RIME_API_KEY.",
        )
        return ws

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Rime cannot produce {self.sample_rate} Hz audio")
        self._ws = self._new_socket()
        await self._ws.connect()

    async def disconnect(self) -> None:
        self._reconnect_pending = False
        await cancel_and_wait(self._swap_task)
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _drop_open_replies(self) -> None:
        # A new socket knows nothing of the old one's text: close the replies, don't wait.
        for context_id in list(self._replies):
            self.context_failed(context_id)
            await self._finish(context_id)

    # ------------------------------------------------------------------ requests

    async def _send(self, context_id: str, message: str) -> bool:
        if self._ws is None or not await self._ws.send(message):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self._finish(context_id)
            return False
        return True

    async def _take_socket(self) -> None:
        """Before a new reply: wait for the replies still generating (Rime has one buffer per
        socket, and text of two replies merged into one run would be tagged with the newer
        one's id), then for a reconnect under way."""
        if not self._idle.is_set():
            try:
                # Past the base class's own timeout, which closes a reply Rime never ended.
                async with asyncio.timeout(self._context_timeout + 1.0):
                    await self._idle.wait()
            except TimeoutError:
                logger.warning("%s: an earlier reply is still generating; going on", self)
        self._maybe_swap()
        task = self._swap_task
        if task is not None:
            await asyncio.shield(task)  # an interruption cancels this reply, not the reconnect

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if reply is None:
            await self._take_socket()
            reply = self._replies[context_id] = _Reply()
            self._idle.clear()
        rime_id = f"{context_id}-{len(reply.ids)}"
        reply.ids.append(rime_id)
        self._owner[rime_id] = context_id
        # Rime joins a buffer's texts as they are: whole sentences get a space between them,
        # streamed text goes verbatim.
        piece = text.strip() + " " if self._aggregate_sentences else text
        if not await self._send(context_id, json.dumps({"text": piece, "contextId": rime_id})):
            return
        if self._aggregate_sentences:
            await self._send(context_id, FLUSH)  # a whole sentence: speak it now

    async def flush_context(self, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if not self.has_context(context_id) or reply is None or not reply.ids:
            await self._finish(context_id)
            return
        reply.flushed = True
        if reply.done_id == reply.ids[-1]:
            await self._finish(context_id)  # its last run is over already
        elif not self._aggregate_sentences:
            await self._send(context_id, FLUSH)

    async def cancel_context(self, context_id: str) -> None:
        # An interruption cancels its replies one by one: the first call handles them all.
        dropped = [c for c in self._replies if c == context_id or c not in self._contexts]
        generating = False
        for cid in dropped:
            reply = self._replies.pop(cid)
            for rime_id in reply.ids:
                self._owner.pop(rime_id, None)
            generating |= bool(reply.ids) and reply.done_id != reply.ids[-1]
        if not dropped:
            return
        if not self._replies:
            self._idle.set()
            if generating:
                # Rime documents that `clear` stops neither the run under way nor one
                # requested after it (which a later flush would merge with): replace the
                # socket instead, now, while the caller speaks.
                self._maybe_swap(interrupted=True)
                return
        if self._ws is not None and self._ws.connected:
            await self._ws.send(CLEAR, wait_secs=0)

    async def _finish(self, context_id: str) -> None:
        await self.finish_context(context_id)

    async def finish_context(self, context_id: str | None) -> None:
        """Close a reply: ours (its last ``done``, an error, a drop) or the base class's when
        Rime never answered (``context_timeout_secs``); later replies may then go."""
        reply = self._replies.pop(context_id, None) if context_id is not None else None
        if reply is not None:
            for rime_id in reply.ids:
                self._owner.pop(rime_id, None)
            if reply.held is not None:
                await self.add_word_timestamps(context_id, [reply.held])
        await super().finish_context(context_id)
        if reply is not None and not self._replies:
            self._idle.set()
            self._maybe_swap()

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "error":
            await self._on_error(str(message.get("message") or "error"))
            return
        rime_id = message.get("contextId")
        context_id = self._owner.get(rime_id) if isinstance(rime_id, str) else None
        reply = self._replies.get(context_id) if context_id is not None else None
        if context_id is None or reply is None:
            return  # an interrupted or finished reply, or text we did not tag
        if reply.run_start is None and kind in ("chunk", "timestamps"):
            # A run's first event: its times count from the audio of the runs before it.
            ctx = self._contexts.get(context_id)
            reply.run_start = ctx.audio_secs if ctx is not None else 0.0
        if kind == "chunk":
            data = message.get("data")
            if isinstance(data, str) and data:
                audio = base64.b64decode(data)
                await self.append_audio(
                    context_id, ulaw_to_pcm(audio) if self.audio_format == "mulaw" else audio
                )
        elif kind == "timestamps":
            timing = message.get("word_timestamps")
            if isinstance(timing, dict):
                words = self._words(reply, timing)
                await self.add_word_timestamps(context_id, words)
        elif kind == "done":
            reply.run_start = None
            reply.done_id = rime_id
            if reply.held is not None:
                held, reply.held = reply.held, None
                await self.add_word_timestamps(context_id, [held])
            if reply.flushed and rime_id == reply.ids[-1]:
                await self._finish(context_id)

    def _words(self, reply: _Reply, timing: dict[str, Any]) -> list[tuple[str, float, float]]:
        """The complete words of a timestamps event, punctuation tokens joined to the word
        before them; the last word is held back until the next event or the run's end."""
        offset = reply.run_start or 0.0
        words: list[tuple[str, float, float]] = []
        held = reply.held
        for word, start, end in zip(
            timing.get("words") or [],
            timing.get("start") or [],
            timing.get("end") or [],
            strict=False,
        ):
            token = str(word).strip()
            if not token:
                continue
            if held is not None and not any(c.isalnum() for c in token):
                held = (held[0] + token, held[1], offset + float(end))
                continue
            if held is not None:
                words.append(held)
            held = (token, offset + float(start), offset + float(end))
        reply.held = held
        return words

    async def _on_error(self, text: str) -> None:
        """Rime refused a message (the socket stays open). Errors name no context: the newest
        reply is the one that sent it, and is closed rather than left waiting for a ``done``."""
        await self.report_error(f"{self}: Rime error: {text}", reason="provider")
        if self._replies:
            context_id = next(reversed(self._replies))
            self.context_failed(context_id)
            await self._finish(context_id)


_OPTION_FIELDS = (
    "language",
    "segment",
    "speedAlpha",
    *_CODA_FIELDS,
    *_MIST_FIELDS,
)


def _from_params(params: RimeTTSService.InputParams) -> RimeTTSSettings:
    """The settings the older ``params`` stand for."""
    return RimeTTSSettings(
        language=params.language,
        segment=params.segment,
        speedAlpha=params.speed_alpha,
        repetition_penalty=params.repetition_penalty,
        temperature=params.temperature,
        top_p=params.top_p,
        reduceLatency=params.reduce_latency,
        pauseBetweenBrackets=params.pause_between_brackets,
        phonemizeBetweenBrackets=params.phonemize_between_brackets,
        noTextNormalization=params.no_text_normalization,
        saveOovs=params.save_oovs,
    )


def _initial_settings(
    voice: str,
    model: str | None,
    older: RimeTTSSettings | None,
    settings: RimeTTSSettings | None,
    **defaults: Any,
) -> RimeTTSSettings:
    """A service's settings at its start: every option None (or as in ``defaults``), then
    ``older`` (what ``params`` stands for; ignored when ``settings`` is given, as in Pipecat),
    then ``settings``; the voice and model as the service resolved them."""
    options: dict[str, Any] = dict.fromkeys(_OPTION_FIELDS)
    store = RimeTTSSettings(voice=voice, **(options | defaults))
    if older is not None and settings is None:
        store.apply_update(older)
    if settings is not None:
        store.apply_update(settings)
    store.voice = voice
    store.model = model
    return store


def _from_http_params(params: RimeHttpTTSService.InputParams) -> RimeTTSSettings:
    """The settings ``RimeHttpTTSService``'s older ``params`` stand for."""
    return RimeTTSSettings(
        language=params.language,
        speedAlpha=params.speed_alpha,
        reduceLatency=params.reduce_latency,
        pauseBetweenBrackets=params.pause_between_brackets,
        phonemizeBetweenBrackets=params.phonemize_between_brackets,
        inlineSpeedAlpha=params.inline_speed_alpha or None,
    )


class RimeHttpTTSService(HTTPStreamTTSService):
    """Rime over HTTP: one ``POST /v1/rime-tts`` per sentence, the audio played as it streams.

    The request (https://docs.rime.ai/api-reference/coda/http) carries the key as
    ``Authorization: Bearer`` and ``Accept: audio/PCMU`` on an 8 kHz call (μ-law at 8000 Hz, so
    nothing is resampled), else ``audio/L16`` (16-bit PCM; Pipecat sends its deprecated alias
    ``audio/pcm``), and a JSON body of ``text``, ``speaker``, ``modelId``, ``samplingRate``
    (the pipeline's output rate), ``lang`` and the settings that are set (the Coda options only
    to ``coda``, the Mist ones only to the others). The endpoint gives no word timing: each
    sentence's ``TTSTextFrame`` follows its audio. Settings updates apply from the next sentence;
    an interruption closes the response in flight.

    ``base_url``: the API's origin (Rime's, else ``$CALLPIPE_RIME_API_URL``).
    ``aiohttp_session`` (Pipecat's, required there) is accepted and not used: requests go
    through callpipe's pooled client.
    """

    Settings = RimeTTSSettings
    _settings: RimeTTSSettings
    key_hint = "Check api_key / RIME_API_KEY."

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (``settings=`` replaces it)."""

        model_config = ConfigDict(extra="forbid")

        language: str | None = "en"
        pause_between_brackets: bool | None = False
        phonemize_between_brackets: bool | None = False
        inline_speed_alpha: str | None = None
        speed_alpha: float | None = 1.0
        reduce_latency: bool | None = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        aiohttp_session: Any = None,
        model: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: RimeTTSSettings | None = None,
        base_url: str | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        if settings is not None and isinstance(settings.model, str) and model is None:
            model = settings.model
        super().__init__(model=model or DEFAULT_MODEL, sample_rate=sample_rate, **kwargs)
        name = type(self).__name__
        self._api_key = resolve_api_key(name, api_key, "RIME_API_KEY")
        voice = require_voice(name, voice_id, settings)
        older = _from_http_params(params) if params is not None else None
        store = _initial_settings(voice, self.model_name, older, settings, language="en")
        self._settings.apply_update(store)
        self._api_base = env_base_url(base_url, RIME_API_URL_ENV, RIME_API_URL)
        self._timeout = timeout_secs
        self._configure()

    @property
    def audio_format(self) -> str:
        """The ``Accept`` type asked for: ``audio/PCMU`` at 8 kHz (a phone call), else
        ``audio/L16``."""
        return "audio/PCMU" if self.sample_rate == 8000 else "audio/L16"

    def _configure(self) -> None:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": self.audio_format}
        self.configure_http(self._api_base, headers, timeout_secs=self._timeout)

    def language_to_service_language(self, language: str) -> str | None:
        """Rime's code for ``language`` (see :func:`language_to_rime_language`)."""
        return language_to_rime_language(language)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Rime cannot produce {self.sample_rate} Hz audio")
        await self.disconnect()  # the output rate is known now: the Accept type follows it
        self._configure()
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/v1/rime-tts`` body for ``text`` with the current settings."""
        s = self._settings
        language = s.language
        body: dict[str, Any] = {
            "text": text,
            "speaker": s.voice,
            "modelId": self.model_name,
            "samplingRate": self.sample_rate,
            "lang": language_to_rime_language(language) if isinstance(language, str) else None,
            "speedAlpha": s.speedAlpha,
            "inlineSpeedAlpha": s.inlineSpeedAlpha,
        }
        for name in _CODA_FIELDS if self.model_name == "coda" else _MIST_FIELDS:
            body[name] = getattr(s, name)
        return {k: v for k, v in body.items() if v is not None and is_given(v)}

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, HTTP_PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        ulaw = self.audio_format == "audio/PCMU"
        async for chunk in response.aiter_bytes():
            await self.append_audio(context_id, ulaw_to_pcm(chunk) if ulaw else chunk)
