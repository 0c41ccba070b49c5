"""DeepgramFluxSTTService: Deepgram Flux, speech-to-text that decides the caller's turns itself.

Flux listens on ``/v2/listen`` (model ``flux-general-en``, or ``flux-general-multi`` for ten
languages). The caller's audio goes out in 80 ms messages (the chunk size Deepgram recommends for
Flux), ``linear16`` at the pipeline rate by default or ``mulaw`` with ``flux_encoding="mulaw"`` (the
phone line's own bytes, half the size). Flux answers with ``TurnInfo`` messages, which become:

- ``StartOfTurn``: a ``ProposedUserStartedSpeakingFrame`` (both ways). The service recommends
  :class:`~callpipe.turns.user_turn_strategies.ExternalUserTurnStrategies` in its
  ``STTMetadataFrame``, so the user aggregator turns the proposal into the user's turn and, with
  ``should_interrupt=True`` (the default), cuts the bot off. With
  ``enable_eager_end_of_turn=True`` it recommends ``EagerUserTurnStrategies`` instead (with
  Pipecat 1.14's ``eager_match_policy``, when given, as their ``match_policy``), so the
  LLM answers ``EagerEndOfTurn`` ahead of time. A bot that sets its own ``user_turn_strategies``
  keeps them.
- ``Update``: an ``InterimTranscriptionFrame`` with the turn so far (empty ones are skipped).
- ``EndOfTurn``: the final ``TranscriptionFrame`` (``finalized=True``, Flux's message as
  ``result``), then a ``ProposedUserStoppedSpeakingFrame``: the aggregator ends the turn and the
  LLM runs. With ``Settings(min_confidence=...)`` a transcript whose words' mean confidence is not
  above it is dropped (the turn still ends).
- ``EagerEndOfTurn`` / ``TurnResumed``: with ``enable_eager_end_of_turn=True`` an
  ``EagerTranscriptionFrame``, withdrawn by an ``EagerEndOfTurnCancelFrame`` when the caller
  resumes (``eager_eot_threshold`` defaults to 0.5 then, since Flux sends no prediction without
  one). callpipe has no eager turn strategy yet, so nothing answers the prediction early: the
  reply still starts at ``EndOfTurn``. The ``on_eager_end_of_turn`` / ``on_turn_resumed`` events
  fire either way.

Events: ``on_start_of_turn(service, transcript)``, ``on_update(service, transcript)``,
``on_eager_end_of_turn(service, transcript)``, ``on_turn_resumed(service)``,
``on_end_of_turn(service, transcript)``.

A turn that stops receiving audio would never end (Flux counts time in audio): while a turn is
open and no audio went out for ``max(watchdog_min_timeout, two messages)``, half a second of
silence is sent. The watchdog runs only during turns, so a quiet call costs nothing.

Settings at runtime (``STTUpdateSettingsFrame``): ``eot_threshold``, ``eager_eot_threshold``,
``eot_timeout_ms``, ``keyterm``, ``numerals`` and ``language_hints`` go out in a ``Configure``
message on the open socket (one at a time: changes made while one awaits its answer are sent
together after it). ``model``, ``redact`` and ``profanity_filter`` are read only from the
socket's URL, so they open a new socket, once the current turn has ended; a socket Flux refuses
leaves the old one in use with the old settings, and the bot gets a non-fatal ``ErrorFrame``.
A rejected ``Configure`` (``ConfigureFailure``) is reported the same way.

Errors: a rejected key is fatal (``ServiceAuthError`` at start). Flux's ``Error`` message is
reported as a non-fatal ``ErrorFrame``; drops follow the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`. A turn lives in one connection:
when it drops mid-turn, the words heard so far are pushed as an unfinalized ``TranscriptionFrame``
and the turn is proposed stopped.

At the end of the call the queued audio goes out, then ``CloseStream``: Flux transcribes what it
holds (``Update`` messages, pushed as interim transcripts before the ``EndFrame``) and closes; it
sends no ``EndOfTurn`` for a turn still open, as documented.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    EagerEndOfTurnCancelFrame,
    EagerTranscriptionFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
)
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import DEEPGRAM_FLUX_URL_ENV, DEEPGRAM_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import METRIC_MARKED, MetricMark, resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    StreamEnd,
    iso_now,
    json_object,
    socket_address,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.turns.user_turn_strategies import (
    EagerMatchPolicy,
    EagerUserTurnStrategies,
    ExternalUserTurnStrategies,
)
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

FLUX_URL = "wss://api.deepgram.com/v2/listen"
"""Deepgram's Flux endpoint (the default ``url``)."""
_PATH = "/v2/listen"
_MULTILINGUAL_MODEL = "flux-general-multi"
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})
_FLUX_LANGUAGES = {c: c for c in ("de", "en", "es", "fr", "hi", "it", "ja", "nl", "pt", "ru")}
"""Languages ``flux-general-multi`` takes as hints (Deepgram's codes)."""

_CONFIGURE_FIELDS = frozenset(
    {"eot_threshold", "eager_eot_threshold", "eot_timeout_ms", "keyterm", "numerals"}
    | {"language_hints"}
)
"""Settings a ``Configure`` message changes on the open socket (the SDK's ``ListenV2Configure``)."""
_CONNECTION_FIELDS = frozenset({"model", "redact", "profanity_filter"})
"""Settings only the socket's URL carries: a change opens a new socket."""
_THRESHOLDS = ("eot_threshold", "eager_eot_threshold", "eot_timeout_ms")
_DEFAULT_EAGER_EOT_THRESHOLD = 0.5


class FluxMessageType(StrEnum):
    """The ``type`` of the messages Flux sends."""

    RECEIVE_CONNECTED = "Connected"
    RECEIVE_FATAL_ERROR = "Error"
    TURN_INFO = "TurnInfo"
    CONFIGURE_SUCCESS = "ConfigureSuccess"
    CONFIGURE_FAILURE = "ConfigureFailure"


class FluxEventType(StrEnum):
    """The ``event`` of a ``TurnInfo`` message."""

    START_OF_TURN = "StartOfTurn"
    TURN_RESUMED = "TurnResumed"
    END_OF_TURN = "EndOfTurn"
    EAGER_END_OF_TURN = "EagerEndOfTurn"
    UPDATE = "Update"


@dataclass
class DeepgramFluxSTTSettings(STTSettings):
    """``DeepgramFluxSTTService.Settings`` (``None``: Flux's default).

    Parameters:
        eager_eot_threshold: Confidence at which Flux predicts the end of a turn
            (``EagerEndOfTurn``); None: no predictions. 0.3 to 0.9.
        eot_threshold: Confidence at which Flux ends a turn (Flux's default 0.7). 0.5 to 1.0.
        eot_timeout_ms: Milliseconds after speech after which a turn ends whatever the
            confidence (Flux's default 5000).
        keyterm: Words or phrases to recognize better (one ``keyterm`` parameter each).
        min_confidence: Drop a final transcript whose words' mean confidence is not above this.
        numerals: Write numbers as digits.
        profanity_filter: Mask profanity in transcripts.
        redact: ``"numbers"`` or ``"aggressive_numbers"``: remove numbers from transcripts.
        language_hints: Languages to favour (``flux-general-multi`` only; ``[]`` clears them).
    """

    eager_eot_threshold: float | None | NotGiven = field(default_factory=unset)
    eot_threshold: float | None | NotGiven = field(default_factory=unset)
    eot_timeout_ms: int | None | NotGiven = field(default_factory=unset)
    keyterm: list[str] | NotGiven = field(default_factory=unset)
    min_confidence: float | None | NotGiven = field(default_factory=unset)
    numerals: bool | None | NotGiven = field(default_factory=unset)
    profanity_filter: bool | None | NotGiven = field(default_factory=unset)
    redact: str | None | NotGiven = field(default_factory=unset)
    language_hints: list[str] | None | NotGiven = field(default_factory=unset)


def _hint_codes(hints: list[str] | None | NotGiven) -> list[str]:
    """Deepgram's codes for ``language_hints`` (``Language`` members or tags), in order, once."""
    codes: list[str] = []
    for hint in hints or []:
        code = resolve_language(str(hint), _FLUX_LANGUAGES)
        if code not in codes:
            codes.append(code)
    return codes


def _given(value: Any) -> Any:
    """``value``, or None when it was not given."""
    return value if is_given(value) else None


class DeepgramFluxSTTService(ProviderSocketSTTService):
    """Deepgram Flux streaming speech-to-text with turn detection (see the module docstring).

    1.14 style: ``DeepgramFluxSTTService(api_key=..., settings=DeepgramFluxSTTService.Settings(
    eot_threshold=0.8, keyterm=["Acme"]))``. ``url`` is the socket's address
    (``wss://api.deepgram.com/v2/listen``) or just its origin; without it,
    ``$CALLPIPE_DEEPGRAM_FLUX_URL``, then ``$CALLPIPE_DEEPGRAM_URL`` (an origin), else Deepgram's.
    ``model=`` and ``params=`` are 1.14's older spellings of the settings (``settings=`` wins).
    ``tag`` and ``mip_opt_out`` are query parameters of the socket.
    """

    Settings = DeepgramFluxSTTSettings

    class InputParams(BaseModel):
        """Pipecat's older form of the settings (use ``Settings``)."""

        eager_eot_threshold: float | None = None
        eot_threshold: float | None = None
        eot_timeout_ms: int | None = None
        keyterm: list[str] = []
        mip_opt_out: bool | None = None
        tag: list[str] = []
        min_confidence: float | None = None

    send_batch_secs = 0.08
    """Audio per message: the 80 ms chunks Deepgram recommends for Flux."""

    end_timeout_secs = 2.0
    """At the end of the call, how long Flux may take to answer ``CloseStream`` and close."""

    retire_waits_for_results = False
    """A new socket opens between turns: the old one gets ``CloseStream`` and is closed."""

    _final_message = _CLOSE_STREAM

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str | None = None,
        sample_rate: int | None = None,
        mip_opt_out: bool | None = None,
        model: str | None = None,
        flux_encoding: str = "linear16",
        tag: list[str] | None = None,
        params: InputParams | None = None,
        should_interrupt: bool = True,
        watchdog_min_timeout: float = 0.5,
        enable_eager_end_of_turn: bool = False,
        settings: DeepgramFluxSTTSettings | None = None,
        eager_match_policy: EagerMatchPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        if flux_encoding not in ("linear16", "mulaw"):
            raise ConfigurationError(
                f"flux_encoding must be 'linear16' or 'mulaw', got {flux_encoding!r}"
            )
        store = DeepgramFluxSTTSettings(
            model=model or "flux-general-en",
            language=None,
            eager_eot_threshold=None,
            eot_threshold=None,
            eot_timeout_ms=None,
            keyterm=[],
            min_confidence=None,
            numerals=None,
            profanity_filter=None,
            redact=None,
            language_hints=None,
        )
        if params is not None and settings is None:
            store.eager_eot_threshold = params.eager_eot_threshold
            store.eot_threshold = params.eot_threshold
            store.eot_timeout_ms = params.eot_timeout_ms
            store.keyterm = list(params.keyterm)
            store.min_confidence = params.min_confidence
        if params is not None:
            tag = tag if tag is not None else (list(params.tag) or None)
            mip_opt_out = mip_opt_out if mip_opt_out is not None else params.mip_opt_out
        if settings is not None:
            store.apply_update(settings)
        if enable_eager_end_of_turn and store.eager_eot_threshold is None:
            store.eager_eot_threshold = _DEFAULT_EAGER_EOT_THRESHOLD
        model_name = store.model if isinstance(store.model, str) else "flux-general-en"
        super().__init__(model=model_name, sample_rate=sample_rate, **kwargs)
        self._settings = self._flux = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "DEEPGRAM_API_KEY")
        # $CALLPIPE_DEEPGRAM_FLUX_URL first, then the general Deepgram one, then Flux's own.
        general = env_base_url(None, DEEPGRAM_URL_ENV, FLUX_URL)
        self._url = socket_address(url, DEEPGRAM_FLUX_URL_ENV, general, _PATH)
        self._encoding = flux_encoding
        self._tag = list(tag or [])
        self._mip_opt_out = mip_opt_out
        self._should_interrupt = should_interrupt
        self._watchdog_min_timeout = watchdog_min_timeout
        self._eager_enabled = enable_eager_end_of_turn
        self._strategies = (
            EagerUserTurnStrategies(
                enable_interruptions=should_interrupt, match_policy=eager_match_policy
            )
            if enable_eager_end_of_turn
            else ExternalUserTurnStrategies(enable_interruptions=should_interrupt)
        )
        self.request_id: str | None = None
        """The ``request_id`` of the open socket (Flux's ``Connected`` message)."""
        # Turn state (one turn at a time; a turn lives in one socket).
        self._in_turn = False
        self._turn_text = ""
        self._turn_language: str | None = None
        self._eager_pending = False
        self._last_sent = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        # Settings at runtime.
        self._configure_in_flight = False
        self._configure_pending: set[str] = set()
        for event in (
            "on_start_of_turn",
            "on_update",
            "on_eager_end_of_turn",
            "on_turn_resumed",
            "on_end_of_turn",
        ):
            self._register_event_handler(event)

    # ------------------------------------------------------------------ description

    @property
    def flux_settings(self) -> DeepgramFluxSTTSettings:
        """The current settings (the same object as :attr:`settings`, typed)."""
        return self._flux

    @property
    def encoding(self) -> str:
        return self._encoding

    @property
    def supports_ttfs(self) -> bool:
        """False: Flux ends turns itself, so there is no speech-end-to-transcript wait."""
        return False

    @property
    def eager_end_of_turn_enabled(self) -> bool:
        return self._eager_enabled

    def start_ttfb_metrics(self) -> MetricMark:
        """Not measured, as in 1.14: Flux ends the turn and sends its transcript at once, so
        there is no time from the end of speech to the transcript to report."""
        return METRIC_MARKED

    def service_metadata_frame(self) -> STTMetadataFrame:
        """No transcript latency to wait for, and turns left to Flux (external strategies)."""
        return STTMetadataFrame(
            service_name=self.name,
            ttfs_p99_latency=0.0,
            user_turn_strategies=self._strategies,
        )

    def _query(self) -> dict[str, Any]:
        s = self._flux
        query: dict[str, Any] = {
            "model": s.model,
            "encoding": self._encoding,
            "sample_rate": self.sample_rate,
        }
        for name in (*_THRESHOLDS, "numerals", "profanity_filter", "redact"):
            query[name] = _given(getattr(s, name))
        query["mip_opt_out"] = self._mip_opt_out
        query["keyterm"] = list(_given(s.keyterm) or [])
        query["tag"] = self._tag
        hints = _hint_codes(s.language_hints)
        if hints and s.model != _MULTILINGUAL_MODEL:
            logger.warning("%s: language_hints need %s; not sent", self, _MULTILINGUAL_MODEL)
        elif hints:
            query["language_hint"] = hints
        return query

    def socket_url(self) -> str:
        """The URL the next socket opens (options as query parameters)."""
        return ws_url(self._url, "", self._query())

    def _build_socket(self) -> ProviderWebsocket:
        return ProviderWebsocket(
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Token {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            auth_hint="Check api_key / DEEPGRAM_API_KEY.",
        )

    # ------------------------------------------------------------------ lifecycle

    def _stream_end(self) -> StreamEnd:
        """``CloseStream``: Flux answers by closing the socket (the test never matches)."""
        return _CLOSE_STREAM, _never

    async def _cancel_tasks(self) -> None:
        for task in (self._watchdog, self._switch_task):
            await cancel_and_wait(task)
        self._watchdog = self._switch_task = None

    # ------------------------------------------------------------------ audio out

    def _payload(self, pcm: bytes) -> bytes:
        return pcm_to_ulaw(pcm) if self._encoding == "mulaw" else pcm

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = asyncio.get_running_loop().time()
        return await ws.send(self._payload(audio))

    def _watchdog_secs(self) -> float:
        return max(self._watchdog_min_timeout, 2 * self.send_batch_secs)

    async def _watch_turn(self) -> None:
        """While a turn is open, keep Flux's audio clock running (see the module docstring)."""
        loop = asyncio.get_running_loop()
        threshold = self._watchdog_secs()
        while self._in_turn:
            idle = loop.time() - self._last_sent
            if idle < threshold:
                await asyncio.sleep(threshold - idle)
                continue
            ws = self._ws
            if ws is None:
                return
            logger.debug("%s: no audio for %.0f ms in a turn; sending silence", self, idle * 1000)
            silence = bytes(int(self.sample_rate * 0.5) * 2)
            self._last_sent = loop.time()
            if await ws.send(self._payload(silence), wait_secs=0):
                self._record_stt_audio_usage(len(silence))

    # ------------------------------------------------------------------ messages in

    async def _on_message(self, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == FluxMessageType.TURN_INFO:
            await self._on_turn_info(message)
        elif kind == FluxMessageType.RECEIVE_CONNECTED:
            self.request_id = message.get("request_id")
            logger.debug("%s: Flux connected (request_id=%s)", self, self.request_id)
        elif kind == FluxMessageType.CONFIGURE_SUCCESS:
            await self._configure_answered()
        elif kind == FluxMessageType.CONFIGURE_FAILURE:
            await self._configure_answered()
            await self.report_error(
                f"{self}: Flux rejected the settings update: [{message.get('code')}] "
                f"{message.get('description')}",
                reason="settings",
            )
        elif kind == FluxMessageType.RECEIVE_FATAL_ERROR:
            await self.report_error(
                f"{self}: Deepgram Flux error [{message.get('code')}] {message.get('description')}",
                reason="provider",
            )
        elif kind == "Warning":
            logger.warning(
                "%s: Flux warning [%s] %s", self, message.get("code"), message.get("description")
            )

    def _detected_language(self, message: dict[str, Any]) -> str | None:
        languages = message.get("languages")
        if isinstance(languages, list) and languages:
            return str(languages[0])
        return "en" if self._flux.model == "flux-general-en" else None

    async def _on_turn_info(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        transcript = str(message.get("transcript") or "")
        if event == FluxEventType.UPDATE:
            if transcript:
                self._turn_text = transcript
                self._turn_language = self._detected_language(message)
                await self.push_transcript(
                    transcript, final=False, language=self._turn_language, result=message
                )
                await self._call_event_handler("on_update", transcript)
        elif event == FluxEventType.START_OF_TURN:
            await self._start_of_turn(transcript)
        elif event == FluxEventType.END_OF_TURN:
            await self._end_of_turn(transcript, message)
        elif event == FluxEventType.EAGER_END_OF_TURN:
            if self._eager_enabled:
                self._eager_pending = True
                await self.push_frame(
                    EagerTranscriptionFrame(
                        transcript, "", iso_now(), self._detected_language(message), result=message
                    )
                )
            await self._call_event_handler("on_eager_end_of_turn", transcript)
        elif event == FluxEventType.TURN_RESUMED:
            if self._eager_pending:
                self._eager_pending = False
                await self.push_frame(EagerEndOfTurnCancelFrame())
            await self._call_event_handler("on_turn_resumed")

    async def _start_of_turn(self, transcript: str) -> None:
        self._in_turn = True
        self._turn_text = transcript
        self._turn_language = None
        await self.broadcast_frame(ProposedUserStartedSpeakingFrame)
        await self._call_event_handler("on_start_of_turn", transcript)
        if self._watchdog is None or self._watchdog.done():
            self._watchdog = self.create_task(self._watch_turn(), "flux-watchdog")

    async def _end_of_turn(self, transcript: str, message: dict[str, Any]) -> None:
        self._in_turn = False
        self._turn_text = ""
        self._eager_pending = False
        minimum = self._flux.min_confidence
        confidence = _mean_confidence(message)
        if (
            isinstance(minimum, int | float)
            and minimum
            and (confidence is None or confidence <= minimum)
        ):
            logger.warning(
                "%s: transcript dropped: confidence %s not above min_confidence %s",
                self,
                confidence,
                minimum,
            )
        else:
            await self.push_transcript(
                transcript,
                final=True,
                language=self._detected_language(message),
                result=message,
                finalized=True,
            )
        await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)
        await self._call_event_handler("on_end_of_turn", transcript)
        self._want_new_socket({})  # a socket asked for during the turn

    async def _end_turn_cut_short(self) -> None:
        """The socket went away mid-turn: what was heard so far ends the turn."""
        if not self._in_turn:
            return
        self._in_turn = False
        self._eager_pending = False
        text, self._turn_text = self._turn_text, ""
        await self.push_transcript(text, final=True, language=self._turn_language)
        await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)

    async def _on_reconnected(self) -> None:
        self._configure_in_flight = False
        self._configure_pending.clear()
        await self._end_turn_cut_short()

    async def _on_failed(self, message: str) -> None:
        await self._end_turn_cut_short()
        await self.report_error(message, reason="disconnected")

    # ------------------------------------------------------------------ settings at runtime

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        ignored = set(changed) - _CONFIGURE_FIELDS - _CONNECTION_FIELDS - {"min_confidence"}
        if ignored:
            logger.warning("%s: Flux has no setting for %s; ignored", self, sorted(ignored))
        if self._ws is None:
            return  # not started (or ended): the next socket is opened with these settings
        # A reconnect after a drop opens this URL: it carries every setting made so far.
        self._ws.url = self.socket_url()
        fields = set(changed) & _CONFIGURE_FIELDS
        if fields:
            self._configure_pending |= fields
            if not self._configure_in_flight:
                await self._send_configure()
        connection = {k: v for k, v in changed.items() if k in _CONNECTION_FIELDS}
        if connection:
            self._want_new_socket(connection, now=not self._in_turn)

    async def _send_configure(self) -> None:
        """One ``Configure`` with every pending field (Flux limits unanswered ones)."""
        ws = self._ws
        fields, self._configure_pending = self._configure_pending, set()
        if ws is None or not fields:
            return
        s = self._flux
        message: dict[str, Any] = {"type": "Configure"}
        thresholds = {name: getattr(s, name) for name in _THRESHOLDS if name in fields}
        if thresholds:
            message["thresholds"] = thresholds
        if "keyterm" in fields:
            message["keyterms"] = list(_given(s.keyterm) or [])
        if "numerals" in fields:
            message["numerals"] = bool(s.numerals)
        if "language_hints" in fields:
            if s.model == _MULTILINGUAL_MODEL:
                message["language_hints"] = _hint_codes(s.language_hints)
            else:
                logger.warning("%s: language_hints need %s; not sent", self, _MULTILINGUAL_MODEL)
        if len(message) == 1:
            return
        self._configure_in_flight = True
        if not await ws.send(json.dumps(message), wait_secs=0):
            self._configure_in_flight = False  # the next socket's URL carries the settings

    async def _configure_answered(self) -> None:
        self._configure_in_flight = False
        if self._configure_pending:
            await self._send_configure()

    def _socket_outdated(self) -> bool:
        """Only the URL-only settings need a new socket (the others go in ``Configure``)."""
        return any(getattr(self._flux, name) != old for name, old in self._unapplied.items())

    def _socket_replaced(self) -> None:
        self._configure_in_flight = False


def _never(raw: Message) -> bool:
    """No message ends Flux's answer to ``CloseStream``: it closes the socket instead."""
    return False


def _mean_confidence(message: dict[str, Any]) -> float | None:
    words = message.get("words")
    if not isinstance(words, list):
        return None
    values = [
        float(w["confidence"])
        for w in words
        if isinstance(w, dict) and isinstance(w.get("confidence"), int | float)
    ]
    return sum(values) / len(values) if values else None
