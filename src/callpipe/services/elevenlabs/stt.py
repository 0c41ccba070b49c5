"""ElevenLabsRealtimeSTTService: ElevenLabs Scribe realtime (``/v1/speech-to-text/realtime``).

One socket per call, opened when the pipeline starts, with the key in the ``xi-api-key`` header
and the stream's options in the query, as ElevenLabs' docs and SDK build it: ``model_id``
(``scribe_v2_realtime`` by default, as in Pipecat 1.14), ``audio_format``, ``commit_strategy``,
``language_code`` (left out: ElevenLabs detects the language), ``include_timestamps``, one
``keyterms`` parameter per term, ``no_verbatim``, ``filter_background_audio``, and the VAD
options (``vad_silence_threshold_secs``, ``vad_threshold``, ``min_speech_duration_ms``,
``min_silence_duration_ms``) with ``commit_strategy=vad``. ``include_language_detection`` and
``enable_logging`` are sent only when true, as Pipecat does.

On an 8 kHz call the audio goes as ``ulaw_8000`` (the phone line's own bytes, half the size),
otherwise as ``pcm_<rate>``. Each batch :class:`StreamingSTTService` collects (100 ms) is one
``input_audio_chunk`` message: ``{"message_type", "audio_base_64", "commit": false,
"sample_rate"}``.

``commit_strategy=CommitStrategy.MANUAL`` (the default) lets the pipeline's VAD decide: when the
caller stops, the queued audio is sent, then a chunk with ``"commit": true``, and ElevenLabs
answers with the ``committed_transcript`` (a ``TranscriptionFrame`` marked ``finalized``).
A turn that ends before the socket is open is committed once it opens, after the audio queued
meanwhile.
With ``CommitStrategy.VAD`` ElevenLabs commits on its own silence detection.
``partial_transcript`` messages become ``InterimTranscriptionFrame``\\ s. With
``include_timestamps`` or ``include_language_detection`` ElevenLabs follows each commit with a
``committed_transcript_with_timestamps`` message (words, ``language_code``): that one is pushed,
the plain one is not, so each commit is one frame.

At the end of the call (``EndFrame``) the queued audio is sent and committed; the transcript is
pushed before the ``EndFrame`` (at most ``end_timeout_secs``). A ``CancelFrame`` closes at once.
While no audio flows (a muted STT) a tenth of a second of silence is sent every
``keepalive_secs``, so the socket is not closed for inactivity.

A settings update opens a socket with the new query (the old one commits what it heard first);
if ElevenLabs refuses it, the old socket stays, the settings go back, and the bot gets a
non-fatal ``ErrorFrame``. Error messages (``error``, ``input_error``, ``quota_exceeded``, ...)
become ``ErrorFrame``\\ s; ``auth_error`` and a refused key at the handshake are fatal.

``ElevenLabsSTTService`` is Pipecat 1.14's request/response form: each VAD-bounded utterance is
posted as a WAV file to ``/v1/speech-to-text`` (a multipart form of ``file``, ``model_id``
(``scribe_v2``), ``language_code``, ``tag_audio_events``, repeated ``keyterms``,
``no_verbatim``), and the answer's ``text`` becomes one ``TranscriptionFrame`` labelled with its
``language_code``. It sends with callpipe's pooled HTTP client; Pipecat's ``aiohttp_session``
is accepted and not used.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
from pydantic import BaseModel

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import (
    ELEVENLABS_API_URL_ENV,
    ELEVENLABS_STT_URL_ENV,
    ELEVENLABS_URL_ENV,
    defaulted_base_url,
    specific_base_url,
    websocket_origin,
)
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.elevenlabs.tts import ELEVENLABS_URL, language_to_elevenlabs_language
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SegmentedSTTService,
    StreamEnd,
    json_object,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.utils.http_pool import pooled_transport
from callpipe.utils.types import NOT_GIVEN, NotGiven, is_given

logger = logging.getLogger(__name__)

ELEVENLABS_TTFS_P99 = 2.01
"""Pipecat 1.14's default ``ttfs_p99_latency`` for ElevenLabs' HTTP transcription (seconds)."""
ELEVENLABS_API_URL = "https://api.elevenlabs.io"
ELEVENLABS_REALTIME_TTFS_P99 = 0.41
"""Pipecat 1.14's default ``ttfs_p99_latency`` for ElevenLabs realtime STT (seconds)."""
DEFAULT_MODEL = "scribe_v2_realtime"
_PATH = "/v1/speech-to-text/realtime"
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
"""Sample rates of the ``pcm_<rate>`` audio formats."""

ERROR_TYPES = frozenset(
    {
        "error",
        "auth_error",
        "quota_exceeded",
        "commit_throttled",
        "unaccepted_terms",
        "rate_limited",
        "queue_overflow",
        "resource_exhausted",
        "session_time_limit_exceeded",
        "input_error",
        "invalid_request",
        "chunk_size_exceeded",
        "insufficient_audio_activity",
        "transcriber_error",
    }
)
"""``message_type`` values of the error messages the SDK's ``ReceiveTranscription`` lists."""


class CommitStrategy(StrEnum):
    """Who ends a transcript segment: the pipeline's VAD (``MANUAL``) or ElevenLabs' (``VAD``)."""

    MANUAL = "manual"
    VAD = "vad"


def audio_format_from_sample_rate(sample_rate: int) -> str:
    """The ``audio_format`` sent for the pipeline's rate: μ-law at 8 kHz, else ``pcm_<rate>``."""
    if sample_rate == 8000:
        return "ulaw_8000"
    if sample_rate in PCM_RATES:
        return f"pcm_{sample_rate}"
    raise ConfigurationError(
        f"ElevenLabs realtime STT takes audio at {', '.join(map(str, PCM_RATES))} Hz, "
        f"not {sample_rate}; set sample_rate= to one of them"
    )


@dataclass
class ElevenLabsRealtimeSTTSettings(STTSettings):
    """``ElevenLabsRealtimeSTTService.Settings``: model, language (None: detected), and the
    query options of the same names (an update opens a new socket)."""

    keyterms: list[str] | None | NotGiven = field(default_factory=unset)
    no_verbatim: bool | None | NotGiven = field(default_factory=unset)
    """Leave out filler words, false starts and non-speech sounds."""
    vad_silence_threshold_secs: float | None | NotGiven = field(default_factory=unset)
    """``CommitStrategy.VAD``: silence before ElevenLabs commits (0.3 to 3.0 s)."""
    vad_threshold: float | None | NotGiven = field(default_factory=unset)
    """``CommitStrategy.VAD``: sensitivity, 0.1 to 0.9 (lower hears more)."""
    min_speech_duration_ms: int | None | NotGiven = field(default_factory=unset)
    min_silence_duration_ms: int | None | NotGiven = field(default_factory=unset)
    filter_background_audio: bool | None | NotGiven = field(default_factory=unset)
    """Have ElevenLabs ignore nearby voices and ambient noise."""


_VAD_FIELDS = (
    "vad_silence_threshold_secs",
    "vad_threshold",
    "min_speech_duration_ms",
    "min_silence_duration_ms",
)


class ElevenLabsRealtimeSTTService(ProviderSocketSTTService):
    """ElevenLabs Scribe realtime speech-to-text (see the module docstring).

    1.14 style: ``ElevenLabsRealtimeSTTService(api_key=..., settings=
    ElevenLabsRealtimeSTTService.Settings(language=Language.EN))``. ``base_url`` is a host
    (``api.elevenlabs.io``) or an origin with a scheme, as Pipecat takes it; ``url`` is
    callpipe's form (``$CALLPIPE_ELEVENLABS_STT_URL``, then ``$CALLPIPE_ELEVENLABS_URL``, when
    neither is given).
    """

    Settings = ElevenLabsRealtimeSTTSettings
    _settings: ElevenLabsRealtimeSTTSettings

    end_timeout_secs = 2.0
    """At the end of the call, how long ElevenLabs may take to answer the last commit."""

    retire_timeout_secs = 3.0
    """After a settings change, how long the old socket may take to answer its last commit."""

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=`` and the arguments)."""

        language_code: str | None = None
        commit_strategy: CommitStrategy = CommitStrategy.MANUAL
        vad_silence_threshold_secs: float | None = None
        vad_threshold: float | None = None
        min_speech_duration_ms: int | None = None
        min_silence_duration_ms: int | None = None
        include_timestamps: bool = False
        enable_logging: bool = False
        include_language_detection: bool = False

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = "",
        url: str | None = None,
        commit_strategy: CommitStrategy = CommitStrategy.MANUAL,
        model: str | None = None,
        sample_rate: int | None = None,
        include_timestamps: bool = False,
        enable_logging: bool = False,
        include_language_detection: bool = False,
        params: InputParams | None = None,
        keepalive_secs: float = 5.0,
        settings: ElevenLabsRealtimeSTTSettings | None = None,
        ttfs_p99_latency: float | None = ELEVENLABS_REALTIME_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        language: str | None = None
        vad: dict[str, Any] = {}
        if params is not None and settings is None:
            logger.warning("ElevenLabsRealtimeSTTService: params is deprecated; use settings=")
            language = params.language_code
            commit_strategy = params.commit_strategy
            vad = params.model_dump(include=set(_VAD_FIELDS))
            include_timestamps = params.include_timestamps
            enable_logging = params.enable_logging
            include_language_detection = params.include_language_detection
        super().__init__(
            model=model or DEFAULT_MODEL,
            language=language,
            sample_rate=sample_rate,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        defaults = self._settings
        defaults.keyterms = defaults.no_verbatim = defaults.filter_background_audio = None
        defaults.vad_silence_threshold_secs = vad.get("vad_silence_threshold_secs")
        defaults.vad_threshold = vad.get("vad_threshold")
        defaults.min_speech_duration_ms = vad.get("min_speech_duration_ms")
        defaults.min_silence_duration_ms = vad.get("min_silence_duration_ms")
        if settings is not None:
            self._settings.apply_update(settings)
            self._sync_model_and_language()
        self._api_key = resolve_api_key(type(self).__name__, api_key, "ELEVENLABS_API_KEY")
        if url is None and base_url:
            url = websocket_origin(base_url)
        self._url = specific_base_url(
            url, ELEVENLABS_STT_URL_ENV, ELEVENLABS_URL_ENV, ELEVENLABS_URL
        )
        self._commit_strategy = CommitStrategy(commit_strategy)
        self._include_timestamps = include_timestamps
        self._enable_logging = enable_logging
        self._include_language_detection = include_language_detection
        self._keepalive_secs = keepalive_secs
        self._last_sent = 0.0
        self._uncommitted = False
        self.session_id: str | None = None
        """ElevenLabs' id of the current session (its ``session_started`` message)."""

    @property
    def commit_strategy(self) -> CommitStrategy:
        return self._commit_strategy

    @property
    def audio_format(self) -> str:
        return audio_format_from_sample_rate(self.sample_rate)

    # ------------------------------------------------------------------ the socket

    def socket_url(self) -> str:
        """The socket's URL for the current settings."""
        s = self._settings
        query: dict[str, Any] = {
            "model_id": str(s.model or DEFAULT_MODEL),
            "audio_format": self.audio_format,
            "commit_strategy": self._commit_strategy.value,
        }
        if self._commit_strategy is CommitStrategy.VAD:
            query["vad_silence_threshold_secs"] = _given(s.vad_silence_threshold_secs)
            query["vad_threshold"] = _given(s.vad_threshold)
            query["min_speech_duration_ms"] = _given(s.min_speech_duration_ms)
            query["min_silence_duration_ms"] = _given(s.min_silence_duration_ms)
        if isinstance(s.language, str) and s.language:
            query["language_code"] = language_to_elevenlabs_language(s.language)
        query["include_timestamps"] = self._include_timestamps
        if self._include_language_detection:
            query["include_language_detection"] = True
        keyterms = _given(s.keyterms)
        query["keyterms"] = list(keyterms) if keyterms else None
        query["no_verbatim"] = _given(s.no_verbatim)
        query["filter_background_audio"] = _given(s.filter_background_audio)
        if self._enable_logging:
            query["enable_logging"] = True
        return ws_url(self._url, _PATH, query)

    def _build_socket(self) -> ProviderWebsocket:
        return ProviderWebsocket(
            owner=str(self),
            url=self.socket_url(),
            headers={"xi-api-key": self._api_key},
            on_message=self._on_message,
            on_failed=self._on_socket_failed,
            keepalive_secs=self._keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint="Check api_key / ELEVENLABS_API_KEY.",
        )

    def _chunk(self, audio: bytes, *, commit: bool = False) -> str:
        return json.dumps(
            {
                "message_type": "input_audio_chunk",
                "audio_base_64": base64.b64encode(audio).decode("ascii"),
                "commit": commit,
                "sample_rate": self.sample_rate,
            }
        )

    def _encode(self, pcm: bytes) -> bytes:
        return pcm_to_ulaw(pcm) if self.sample_rate == 8000 else pcm

    def _keepalive(self) -> Message | None:
        """A tenth of a second of silence, only when no audio went out for a while."""
        if time.monotonic() - self._last_sent < self._keepalive_secs:
            return None
        return self._chunk(self._encode(bytes(int(self.sample_rate / 10) * 2)))

    async def start(self, frame: StartFrame) -> None:
        audio_format_from_sample_rate(self.sample_rate)  # refuse a rate ElevenLabs lacks
        await super().start(frame)

    def _stream_end(self) -> StreamEnd | None:
        """A last commit if audio went out since the previous one (its transcript ends it)."""
        if not self._uncommitted:
            return None
        self._uncommitted = False
        return self._chunk(b"", commit=True), self._is_committed

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        if not await ws.send(self._chunk(self._encode(audio))):
            return False
        self._uncommitted = True
        return True

    async def on_user_stopped_speaking(self) -> None:
        # A turn that ends before the socket is open (or while it reconnects) keeps its audio
        # queued, and the commit follows it once the socket is open.
        if self._commit_strategy is CommitStrategy.MANUAL:
            await self._flush_then_send(self._chunk(b"", commit=True))

    async def _end_turn(self, ws: ProviderWebsocket, message: Message, *, wait_secs: float) -> bool:
        """The queued audio out, then the commit (if audio went out since the last one)."""
        await self.flush_audio()  # the whole turn reaches ElevenLabs before the commit
        async with self._sending:
            if ws is not self._ws or not self._uncommitted:
                return False
            if not await ws.send(message, wait_secs=wait_secs):
                return False
            self._uncommitted = False
            return True

    # ------------------------------------------------------------------ results in

    async def _on_message(self, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("message_type")
        if kind == "partial_transcript":
            await self.push_transcript(str(message.get("text") or ""), final=False, result=message)
        elif kind == "committed_transcript":
            if self._include_timestamps or self._include_language_detection:
                return  # the same text follows with timestamps / language: pushed then
            await self._push_committed(message)
        elif kind == "committed_transcript_with_timestamps":
            await self._push_committed(message)
        elif kind == "session_started":
            session_id = message.get("session_id")
            self.session_id = session_id if isinstance(session_id, str) else None
            logger.debug("%s: session %s started", self, self.session_id)
        elif kind in ERROR_TYPES:
            detail = message.get("error") or message
            await self.report_error(
                f"{self}: ElevenLabs {kind}: {detail}",
                fatal=kind == "auth_error",
                reason="auth" if kind == "auth_error" else "provider",
            )

    def _is_committed(self, raw: Message) -> bool:
        """ElevenLabs' answer to a commit: the last message it sends for it."""
        if self._include_timestamps or self._include_language_detection:
            return isinstance(raw, str) and '"committed_transcript_with_timestamps"' in raw
        return isinstance(raw, str) and '"committed_transcript"' in raw

    async def _push_committed(self, message: dict[str, Any]) -> None:
        language = message.get("language_code")
        await self.push_transcript(
            str(message.get("text") or ""),
            final=True,
            language=language if isinstance(language, str) else None,
            result=message,
            finalized=self._commit_strategy is CommitStrategy.MANUAL,
        )


@dataclass
class ElevenLabsSTTSettings(STTSettings):
    """``ElevenLabsSTTService.Settings``: model, language, and the form fields of the same
    names (``tag_audio_events``: mark laughter, coughs...; ``no_verbatim``: scribe_v2 only)."""

    tag_audio_events: bool | None | NotGiven = field(default_factory=unset)
    keyterms: list[str] | None | NotGiven = field(default_factory=unset)
    no_verbatim: bool | None | NotGiven = field(default_factory=unset)


class ElevenLabsSTTService(SegmentedSTTService):
    """ElevenLabs speech-to-text over HTTP, one request per utterance (see the module docstring).

    ``base_url``: the API's origin (``https://api.elevenlabs.io``); left at that default,
    ``$CALLPIPE_ELEVENLABS_API_URL`` replaces it. Settings updates apply from the next utterance.
    """

    Settings = ElevenLabsSTTSettings
    _settings: ElevenLabsSTTSettings

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``)."""

        language: str | None = None
        tag_audio_events: bool = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        aiohttp_session: Any = None,
        base_url: str = ELEVENLABS_API_URL,
        model: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: ElevenLabsSTTSettings | None = None,
        ttfs_p99_latency: float | None = ELEVENLABS_TTFS_P99,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        language: str | None = "en"
        tag_audio_events: bool | None = None
        if params is not None and settings is None:
            logger.warning("ElevenLabsSTTService: params is deprecated; use settings=")
            language = params.language or language
            tag_audio_events = params.tag_audio_events
        super().__init__(
            model=model or "scribe_v2",
            language=language,
            sample_rate=sample_rate,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        defaults = self._settings
        defaults.tag_audio_events = tag_audio_events
        defaults.keyterms = defaults.no_verbatim = None
        if settings is not None:
            defaults.apply_update(settings)
            if isinstance(defaults.model, str):
                self.set_model_name(defaults.model)
            self._language = defaults.language if isinstance(defaults.language, str) else None
        self._api_key = resolve_api_key(type(self).__name__, api_key, "ELEVENLABS_API_KEY")
        self._base_url = defaulted_base_url(base_url, ELEVENLABS_API_URL_ENV, ELEVENLABS_API_URL)
        self._timeout_secs = timeout_secs
        self._client: httpx.AsyncClient | None = None

    def form(self) -> dict[str, str | list[str]]:
        """The request's form fields (besides the file) for the current settings."""
        s = self._settings
        data: dict[str, str | list[str]] = {"model_id": str(s.model or "scribe_v2")}
        if isinstance(s.language, str) and s.language:
            data["language_code"] = language_to_elevenlabs_language(s.language)
        if is_given(s.tag_audio_events) and s.tag_audio_events is not None:
            data["tag_audio_events"] = str(s.tag_audio_events).lower()
        if is_given(s.keyterms) and s.keyterms:
            data["keyterms"] = list(s.keyterms)
        if is_given(s.no_verbatim) and s.no_verbatim is not None:
            data["no_verbatim"] = str(s.no_verbatim).lower()
        return data

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._base_url,
                headers={"xi-api-key": self._api_key},
                timeout=httpx.Timeout(self._timeout_secs, connect=5.0),
                transport=pooled_transport(),
            )
        return self._client

    async def start(self, frame: StartFrame) -> None:
        self._http()

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def run_stt(self, wav: bytes) -> str | None:
        response = await self._post_utterance(
            self._http(),
            "/v1/speech-to-text",
            data=self.form(),
            file=("audio.wav", wav, "audio/wav"),
            origin=self._base_url,
            auth_hint="Check api_key / ELEVENLABS_API_KEY.",
        )
        if response is None:
            return None
        answer = response.json()
        text = answer.get("text") if isinstance(answer, dict) else None
        language = answer.get("language_code") if isinstance(answer, dict) else None
        await self.push_transcript(
            str(text or ""),
            final=True,
            language=language if isinstance(language, str) else None,
            result=answer,
        )
        return None


def _given(value: Any) -> Any:
    """A setting's value for the query (unset: None, so it is left out)."""
    return None if value is NOT_GIVEN else value
