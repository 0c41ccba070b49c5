"""GladiaSTTService: Gladia's live speech-to-text (v2 API).

A Gladia session starts with an HTTP request: ``POST /v2/live`` (the key in ``x-gladia-key``,
``?region=`` when one is chosen) whose JSON body is the whole configuration: ``encoding``,
``bit_depth``, ``sample_rate``, ``channels``, ``model`` (``solaria-1``), the endpointing
knobs, ``language_config``, ``pre_processing``, ``realtime_processing``, ``messages_config``
and ``custom_metadata``, unset ones left out. Gladia answers with the session's ``id`` and a
WebSocket ``url`` carrying a session token; the service connects there (no key on the socket)
when the pipeline starts. The caller's audio goes out as binary messages of 100 ms:
``wav/ulaw`` (8 bits) on an 8 kHz call, the phone line's own bytes, else ``wav/pcm`` (16 bits)
at the pipeline rate.

Gladia answers with ``transcript`` messages: ``data.is_final`` false is a partial result (an
``InterimTranscriptionFrame``; Gladia sends them only with
``messages_config.receive_partial_transcripts``), true the utterance's final text (a
``TranscriptionFrame`` with ``data.utterance.language``; ``result`` is the message). Gladia ends
utterances itself, after ``endpointing`` seconds of silence; at callpipe's VAD stop the queued
audio is sent at once so that nothing waits in the batch. With translation on, each
``translation`` message whose language differs from the original becomes a
``TranslationFrame``.

Turns, as in Pipecat 1.14: with ``Settings(enable_vad=True)`` Gladia's ``speech_start`` and
``speech_end`` become ``ProposedUserStartedSpeakingFrame`` / ``ProposedUserStoppedSpeakingFrame``
and the service recommends :class:`~callpipe.turns.user_turn_strategies.ExternalUserTurnStrategies`
in its ``STTMetadataFrame``; otherwise they are ignored and callpipe's VAD decides.

At the end of the call (``EndFrame``) the queued audio is sent, then ``{"type":
"stop_recording"}``: Gladia sends its last transcripts, then its end-of-session results
(``post_transcript``, ...) and closes; the last transcript is pushed before the ``EndFrame``
(bounded by ``end_timeout_secs``). A ``CancelFrame`` closes at once.

A dropped socket is reopened at the same session URL (Gladia keeps the session for a
reconnect), with the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`. Settings at runtime
(``STTUpdateSettingsFrame``) that change the request body start a new session: the audio keeps
going to the old one until the new socket is open, then the old one gets ``stop_recording`` and
returns its last words. If Gladia refuses the new configuration, the old session stays, the
settings go back and the bot gets a non-fatal ``ErrorFrame``.

Errors: a refused key (401/403 on the session request or the socket) is fatal and names
``GLADIA_API_KEY``; another refusal (e.g. 422, an invalid option) is a non-fatal
``ErrorFrame`` (a 429 or 5xx is tried once more first). An audio chunk Gladia reports it could
not take is a non-fatal ``ErrorFrame``.

Connection events (Pipecat 1.14's, run in a task): ``on_connected`` when the session's socket
opens (again after a reconnect), ``on_disconnected`` when it closes or drops, and
``on_connection_error`` with the error's text when the session request fails (refused, or no
answer after the retry) or the socket's handshake is refused or its reconnect gives up. A new
session for changed settings is no new connection.

Differences from Pipecat 1.14: ``encoding`` and ``bit_depth`` default to the line's format (µ-law
on an 8 kHz call) rather than 16-bit PCM; ``messages_config`` asks for no per-chunk
acknowledgments unless you set ``receive_acknowledgments`` (the service does not use them);
``custom_metadata`` is sent only when given; a ``language`` setting is sent as
``language_config.languages`` when no ``language_config`` is given (Pipecat sends neither);
``max_buffer_size`` is accepted and not used (the audio queue is bounded by
``max_buffer_secs``).

While no audio flows (the STT is muted), an empty audio chunk goes out every ``keepalive_secs``
so that Gladia keeps the session, as Pipecat does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.errors import ConfigurationError, ServiceAuthError
from callpipe.frames.frames import STTMetadataFrame, TranslationFrame
from callpipe.services._env import GLADIA_URL_ENV
from callpipe.services._http import error_message, is_retryable
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.gladia.config import (
    GladiaInputParams,
    LanguageConfig,
    MessagesConfig,
    PreProcessingConfig,
    RealtimeProcessingConfig,
)
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    iso_now,
    message_where,
    socket_address,
)
from callpipe.services.websocket_service import HandshakeError, Message
from callpipe.transcriptions.language import resolve_language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.http_pool import pooled_transport
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

GLADIA_URL = "https://api.gladia.io/v2/live"
"""Gladia's session endpoint (the default ``url``)."""
GLADIA_TTFS_P99 = 1.49
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Gladia (seconds)."""
DEFAULT_MODEL = "solaria-1"
_PATH = "/v2/live"
_STOP_RECORDING = json.dumps({"type": "stop_recording"})
_KEEPALIVE = json.dumps({"type": "audio_chunk", "data": {"chunk": ""}})
"""An empty audio chunk: keeps a session that hears nothing (a muted STT) open."""
_AUTH_HINT = "Check api_key / GLADIA_API_KEY."
_BIT_DEPTHS = {"wav/pcm": 16, "wav/ulaw": 8, "wav/alaw": 8}
"""The encodings the pipeline's 16-bit PCM is sent as, with their bit depth."""
_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw "
    "he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt "
    "my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl tr "
    "tt uk ur uz vi yi yo zh"
).split()
_LANGUAGE_MAP = {code: code for code in _LANGUAGES} | {"jv": "jw", "nb": "no", "fil": "tl"}

StartSession = Callable[[str], Awaitable[tuple[str, str]]]
"""Starts a Gladia session for a request body: its ``(id, socket URL)``."""


def language_to_gladia_language(language: str) -> str:
    """Gladia's code for a language tag: ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class GladiaSTTSettings(STTSettings):
    """``GladiaSTTService.Settings`` (``None``: Gladia's default, not sent).

    Parameters:
        language_config: Languages to expect (:class:`LanguageConfig`).
        custom_metadata: Your own fields, stored with the session.
        endpointing: Seconds of silence that end an utterance.
        maximum_duration_without_endpointing: Longest utterance (seconds) without silence.
        pre_processing: Audio clean-up (:class:`PreProcessingConfig`).
        realtime_processing: Add-ons (:class:`RealtimeProcessingConfig`).
        messages_config: Which messages Gladia sends (:class:`MessagesConfig`).
        enable_vad: Let Gladia's speech events decide the caller's turns (not sent to Gladia).
    """

    language_config: LanguageConfig | None | NotGiven = field(default_factory=unset)
    custom_metadata: dict[str, Any] | None | NotGiven = field(default_factory=unset)
    endpointing: float | None | NotGiven = field(default_factory=unset)
    maximum_duration_without_endpointing: int | None | NotGiven = field(default_factory=unset)
    pre_processing: PreProcessingConfig | None | NotGiven = field(default_factory=unset)
    realtime_processing: RealtimeProcessingConfig | None | NotGiven = field(default_factory=unset)
    messages_config: MessagesConfig | None | NotGiven = field(default_factory=unset)
    enable_vad: bool | None | NotGiven = field(default_factory=unset)


def _defaults() -> GladiaSTTSettings:
    return GladiaSTTSettings(
        model=DEFAULT_MODEL,
        language=None,
        language_config=None,
        custom_metadata=None,
        endpointing=None,
        maximum_duration_without_endpointing=5,
        pre_processing=None,
        realtime_processing=None,
        messages_config=None,
        enable_vad=False,
    )


class _Session(SessionSocket):
    """One Gladia session: its request body, then its socket. The first :meth:`connect` starts
    the session over HTTP; the socket (and every reconnect) opens at the URL Gladia gave."""

    def __init__(self, init_body: str, *, start_session: StartSession, **kwargs: Any) -> None:
        # Gladia takes its settings in the HTTP request: nothing goes first on the socket.
        super().__init__("", **kwargs)
        self.init_body = init_body
        self.session_id: str | None = None
        self._start_session = start_session

    async def connect(self) -> None:
        """Start the session (the first time), then open its socket. A refused or failed
        session request is a connection error, as a refused handshake is."""
        if self.session_id is None:
            try:
                self.session_id, self.url = await self._start_session(self.init_body)
            except Exception as exc:
                await self._tell_error(str(exc) or type(exc).__name__)
                raise
        await super().connect()


class GladiaSTTService(ProviderSocketSTTService):
    """Gladia live speech-to-text (see the module docstring).

    1.14 style: ``GladiaSTTService(api_key=..., settings=GladiaSTTService.Settings(
    language_config=LanguageConfig(languages=["en"])))``. ``url`` is the session endpoint;
    when not given, ``$CALLPIPE_GLADIA_URL`` (an origin is enough), else Gladia's.
    """

    Settings = GladiaSTTSettings
    _settings: GladiaSTTSettings
    _ws: _Session | None

    end_timeout_secs = 2.0
    """At the end of the call, how long Gladia may take to finish after ``stop_recording``."""

    session_timeout_secs = 10.0
    """How long the session request may take."""

    keepalive_secs = 5.0
    """Idle time (no audio sent) after which an empty audio chunk goes out, as Pipecat
    sends one."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        region: Literal["us-west", "eu-west"] | None = None,
        url: str | None = None,
        encoding: str | None = None,
        bit_depth: int | None = None,
        channels: int = 1,
        sample_rate: int | None = None,
        model: str | None = None,
        params: GladiaInputParams | None = None,
        max_buffer_size: int = 1024 * 1024 * 20,
        should_interrupt: bool = True,
        settings: GladiaSTTSettings | None = None,
        ttfs_p99_latency: float | None = GLADIA_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        if model is not None:
            store.model = model
        if params is not None and settings is None:
            logger.warning("GladiaSTTService: params is deprecated; use settings=")
            encoding = params.encoding if params.encoding is not None else encoding
            bit_depth = params.bit_depth if params.bit_depth is not None else bit_depth
            channels = params.channels if params.channels is not None else channels
            store.custom_metadata = params.custom_metadata
            store.endpointing = params.endpointing
            store.maximum_duration_without_endpointing = params.maximum_duration_without_endpointing
            store.pre_processing = params.pre_processing
            store.realtime_processing = params.realtime_processing
            store.messages_config = params.messages_config
            store.enable_vad = params.enable_vad
            if params.language_config is not None:
                store.language_config = params.language_config
        if settings is not None:
            store.apply_update(settings)
        if encoding is not None and encoding not in _BIT_DEPTHS:
            raise ConfigurationError(
                f"GladiaSTTService: encoding={encoding!r}; the pipeline's audio is sent as one "
                f"of {tuple(_BIT_DEPTHS)}"
            )
        if bit_depth is not None and encoding is not None and bit_depth != _BIT_DEPTHS[encoding]:
            raise ConfigurationError(
                f"GladiaSTTService: {encoding} is sent with bit_depth={_BIT_DEPTHS[encoding]}"
            )
        if channels != 1:
            raise ConfigurationError("GladiaSTTService: the audio is mono (channels=1)")
        super().__init__(
            model=store.model if isinstance(store.model, str) else DEFAULT_MODEL,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "GLADIA_API_KEY")
        self._region = region
        self._url = socket_address(url, GLADIA_URL_ENV, GLADIA_URL, _PATH)
        self._encoding = encoding
        self._bit_depth = bit_depth
        self._max_buffer_size = max_buffer_size
        self._should_interrupt = should_interrupt
        self._client: httpx.AsyncClient | None = None
        self._last_sent = 0.0

    # ------------------------------------------------------------------ description

    @property
    def encoding(self) -> str:
        """The audio encoding streamed to Gladia."""
        if self._encoding is not None:
            return self._encoding
        return "wav/ulaw" if self.sample_rate == 8000 else "wav/pcm"

    @property
    def session_id(self) -> str | None:
        """The live session's id (None before it started)."""
        return self._ws.session_id if self._ws is not None else None

    def service_metadata_frame(self) -> STTMetadataFrame:
        """With Gladia's speech events deciding the turns, the external strategies are
        recommended."""
        frame = super().service_metadata_frame()
        if self._settings.enable_vad is True:
            frame.user_turn_strategies = ExternalUserTurnStrategies(
                enable_interruptions=self._should_interrupt
            )
        return frame

    def init_request(self) -> dict[str, Any]:
        """The body of ``POST /v2/live`` for the current settings (unset options left out)."""
        s = self._settings
        body: dict[str, Any] = {
            "encoding": self.encoding,
            "bit_depth": _BIT_DEPTHS[self.encoding],
            "sample_rate": self.sample_rate,
            "channels": 1,
            "model": s.model if isinstance(s.model, str) else DEFAULT_MODEL,
        }
        if isinstance(s.custom_metadata, dict):
            body["custom_metadata"] = dict(s.custom_metadata)
        if isinstance(s.endpointing, int | float):
            body["endpointing"] = s.endpointing
        if isinstance(s.maximum_duration_without_endpointing, int | float):
            body["maximum_duration_without_endpointing"] = s.maximum_duration_without_endpointing
        if isinstance(s.language_config, LanguageConfig):
            body["language_config"] = s.language_config.model_dump(exclude_none=True)
        elif isinstance(s.language, str):
            body["language_config"] = {"languages": [language_to_gladia_language(s.language)]}
        if isinstance(s.pre_processing, PreProcessingConfig):
            body["pre_processing"] = s.pre_processing.model_dump(exclude_none=True)
        if isinstance(s.realtime_processing, RealtimeProcessingConfig):
            body["realtime_processing"] = s.realtime_processing.model_dump(exclude_none=True)
        messages = {"receive_acknowledgments": False}
        if isinstance(s.messages_config, MessagesConfig):
            messages |= s.messages_config.model_dump(exclude_none=True)
        body["messages_config"] = messages
        return body

    def socket_url(self) -> str:
        """The session endpoint (the socket's own URL comes from Gladia's answer)."""
        return self._url

    # ------------------------------------------------------------------ the session

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"x-gladia-key": self._api_key, "content-type": "application/json"},
                timeout=httpx.Timeout(self.session_timeout_secs, connect=5.0),
                transport=pooled_transport(),
            )
        return self._client

    async def _start_session(self, init_body: str) -> tuple[str, str]:
        """``POST /v2/live``: the session's id and socket URL. A network error, 429 or 5xx is
        tried once more; a refused key raises ServiceAuthError, another refusal
        HandshakeError."""
        params = {"region": self._region} if self._region else None
        response: httpx.Response | None = None
        for attempt in range(2):
            try:
                response = await self._http().post(self._url, params=params, content=init_body)
            except httpx.HTTPError as exc:
                if attempt == 0:
                    continue
                raise ConnectionError(
                    f"{self}: the session request failed: {type(exc).__name__}: {exc}"
                ) from None
            if response.status_code in (200, 201):
                break
            if is_retryable(response.status_code) and attempt == 0:
                continue
            status = response.status_code
            reason = _refusal_reason(response)
            if status in (401, 403):
                raise ServiceAuthError(
                    f"{self}: Gladia rejected the credentials (HTTP {status}: {reason}). "
                    f"{_AUTH_HINT}"
                )
            raise HandshakeError(
                f"{self}: Gladia refused the session (HTTP {status}: {reason})",
                status=status,
                reason=reason,
                retryable=is_retryable(status),
            )
        assert response is not None
        answer = response.json()
        return str(answer["id"]), str(answer["url"])

    def _build_socket(self) -> _Session:
        return _Session(
            json.dumps(self.init_request()),
            start_session=self._start_session,
            owner=str(self),
            url=self._url,
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            keepalive_secs=self.keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint=_AUTH_HINT,
        )

    def _keepalive(self) -> Message | None:
        if time.monotonic() - self._last_sent < self.keepalive_secs:
            return None
        return _KEEPALIVE

    def _socket_outdated(self) -> bool:
        """Out of date when the current settings make another request body."""
        ws = self._ws
        return ws is None or ws.init_body != json.dumps(self.init_request())

    def _settings_reverted(self) -> None:
        self._sync_model_and_language()  # the live socket keeps its session's URL

    def _stream_end(self) -> StreamEnd:
        """``stop_recording``: Gladia sends its last transcripts, its end results, then closes."""
        return _STOP_RECORDING, _is_session_end

    async def _on_reconnected(self, stream: _Session) -> None:
        stream.error_reported = False

    async def _on_failed(self, stream: _Session, message: str) -> None:
        await self._propose_turn_end()
        await self._session_failed(stream, message)

    async def disconnect(self) -> None:
        await super().disconnect()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        encoding = self.encoding
        if encoding == "wav/ulaw":
            audio = pcm_to_ulaw(audio)
        elif encoding == "wav/alaw":
            audio = pcm_to_alaw(audio)
        return await ws.send(audio, wait_secs=0)

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: the queued audio goes out now (Gladia ends the utterance itself)."""
        await self.flush_audio()

    # ------------------------------------------------------------------ results in

    async def _on_message(self, stream: _Session, raw: Message) -> None:
        if isinstance(raw, bytes):
            return
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        data = message.get("data")
        if kind == "transcript" and isinstance(data, dict):
            utterance = data.get("utterance") or {}
            language = utterance.get("language")
            await self.push_transcript(
                str(utterance.get("text") or ""),
                final=bool(data.get("is_final")),
                language=language if isinstance(language, str) else None,
                result=message,
            )
        elif kind == "speech_start":
            if self._settings.enable_vad is True:
                await self._propose_turn_start()
        elif kind == "speech_end":
            await self._propose_turn_end()  # only open with enable_vad
        elif kind == "translation":
            await self._on_translation(message)
        elif kind in ("audio_chunk", "stop_recording") and message.get("acknowledged") is False:
            error = message.get("error") or {}
            said = error.get("message") if isinstance(error, dict) else None
            await self.report_error(
                f"{self}: Gladia did not take the {kind} message: {said or 'unknown error'}",
                reason="provider",
            )

    async def _on_translation(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if not isinstance(data, dict):
            error = message.get("error") or {}
            said = error.get("message") if isinstance(error, dict) else None
            await self.report_error(
                f"{self}: Gladia's translation failed: {said or 'unknown error'}",
                reason="provider",
            )
            return
        translated = data.get("translated_utterance") or {}
        language = translated.get("language")
        text = str(translated.get("text") or "").strip()
        if text and language != data.get("original_language"):
            await self.push_frame(TranslationFrame(text, "", iso_now(), language))


def _refusal_reason(response: httpx.Response) -> str:
    """Gladia's reason for refusing a session: its ``message`` and ``validation_errors``."""
    reason = error_message(response.status_code, response.content)
    try:
        problems = response.json().get("validation_errors")
    except (ValueError, AttributeError):
        return reason
    if isinstance(problems, list) and problems:
        reason += ": " + "; ".join(str(p) for p in problems)[:300]
    return reason


_SESSION_END_TYPES = frozenset({"post_transcript", "post_final_transcript", "end_session"})
_is_session_end = message_where(
    lambda message: message.get("type") in _SESSION_END_TYPES,
    '"post_transcript"',
    '"post_final_transcript"',
    '"end_session"',
)
"""Gladia's results after ``stop_recording`` (its close also ends the wait)."""
