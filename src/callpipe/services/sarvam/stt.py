"""SarvamSTTService: Sarvam AI's streaming speech-to-text WebSocket (``/speech-to-text/ws``).

The protocol, as Sarvam's SDK (``sarvamai``) speaks it:

- **Handshake.** ``wss://api.sarvam.ai/speech-to-text/ws`` with the key in the
  ``Api-Subscription-Key`` header. Every option is a query parameter: ``language-code``
  (``unknown``: detect it), ``model`` (``saaras:v4`` by default, or ``saaras:v3``), ``mode``
  (``transcribe``, ``translate``, ``verbatim``, ``translit``, ``codemix``), ``sample_rate``
  (8000 or 16000), ``input_audio_codec``, ``keyterms`` (a JSON list, saaras:v4), the VAD knobs
  of :class:`SarvamSTTSettings`, ``vad_signals`` and ``flush_signal``.
- **Audio.** ``{"audio": {"data": <base64>, "sample_rate", "encoding": "audio/wav"}}`` (the one
  ``encoding`` the SDK's message takes). The caller's audio goes as it is, 16-bit PCM at the
  pipeline's rate, in batches of 100 ms; the query says ``input_audio_codec=pcm_s16le`` (raw
  PCM, as Sarvam asks for it) and on a phone call ``sample_rate=8000``, so nothing is
  resampled. Sarvam does not take µ-law input.
- **Results.** One ``{"type": "data", "data": {"transcript", "language_code", ...}}`` per
  utterance: a final ``TranscriptionFrame`` (``finalized=True``); Sarvam sends no interim
  results. With ``vad_signals`` Sarvam also sends ``{"type": "events", "data":
  {"signal_type": "START_SPEECH" | "END_SPEECH"}}``. Problems come as ``{"type": "error",
  "data": {"error", "code"}}`` and become non-fatal ``ErrorFrame``\\ s; a rejected key (HTTP
  401/403 at the handshake) is fatal and names ``SARVAM_API_KEY``.

Two ways to end the caller's turn, as in Pipecat 1.14:

- ``vad_signals`` unset or False (the default): callpipe's VAD decides. The socket is opened
  with ``flush_signal=true`` and, when the caller stops, the queued audio is sent, then
  ``{"type": "flush"}``: Sarvam transcribes what it has at once.
- ``vad_signals=True``: Sarvam's VAD decides. ``START_SPEECH`` becomes a
  ``ProposedUserStartedSpeakingFrame``, ``END_SPEECH`` a ``ProposedUserStoppedSpeakingFrame``,
  and the ``STTMetadataFrame`` recommends
  :class:`~callpipe.turns.user_turn_strategies.ExternalUserTurnStrategies`.

At the end of the call (``EndFrame``) the queued audio is sent and, when a transcript is still
due (a flush's, or the caller is mid-turn), a ``flush``: the transcript is pushed before the
``EndFrame`` (bounded by ``end_timeout_secs``); otherwise the socket closes at once.

Settings at runtime (``STTUpdateSettingsFrame``) are all query parameters, so a change opens a
new socket with them (the old one transcribes until the new one is up). ``keepalive_timeout``
(off by default) sends 100 ms of silence when no audio went out for that long, checked every
``keepalive_interval`` seconds.

Differences from Pipecat 1.14: the socket is ours (no ``sarvamai`` import); the query carries
``input_audio_codec`` (Pipecat sends raw PCM labelled ``audio/wav`` and no codec);
:class:`SarvamRealtimeSTTService` (the beta ``/speech-to-text-realtime/ws``) is not offered.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    STTMetadataFrame,
)
from callpipe.services._env import SARVAM_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    json_object,
    message_of_type,
)
from callpipe.services.websocket_service import Message, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SARVAM_URL = "wss://api.sarvam.ai"
"""Sarvam's streaming origin (the SDK's production environment)."""
STT_PATH = "/speech-to-text/ws"
SARVAM_TTFS_P99 = 1.17
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Sarvam's streaming STT (seconds)."""
DEFAULT_MODEL = "saaras:v4"
MODELS = ("saaras:v3", "saaras:v4")
SAMPLE_RATES = (8000, 16000)
INPUT_AUDIO_CODECS = ("pcm_s16le", "pcm_l16", "pcm_raw", "wav")
AUDIO_ENCODING = "audio/wav"
"""The ``encoding`` of each audio message (the only value the SDK's ``AudioData`` takes)."""
AUTO_LANGUAGE = "unknown"
_AUTH_HINT = "Check api_key / SARVAM_API_KEY."
_FLUSH = json.dumps({"type": "flush"})

SarvamMode = Literal["transcribe", "translate", "verbatim", "translit", "codemix"]
MODES: tuple[str, ...] = get_args(SarvamMode)

SARVAM_STT_LANGUAGES = (
    "en hi bn gu kn ml mr od pa ta te as ur ne kok ks sd sa sat mni brx mai doi"
).split()
"""Base codes of the languages Sarvam's streaming STT lists (sent as ``<code>-IN``)."""
_LANGUAGE_MAP = {code: f"{code}-IN" for code in SARVAM_STT_LANGUAGES} | {
    f"{code}-IN": f"{code}-IN" for code in SARVAM_STT_LANGUAGES
}
_LANGUAGE_MAP |= {"or": "od-IN", "or-IN": "od-IN", AUTO_LANGUAGE: AUTO_LANGUAGE}


def language_to_sarvam_language(language: str) -> str:
    """Sarvam's code for a language tag: ``Language.HI`` -> ``"hi-IN"``, Odia -> ``"od-IN"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def sarvam_language_to_tag(code: str | None) -> str | None:
    """The language tag of a code Sarvam detected (``od-IN`` -> ``or-IN``); None for
    ``unknown`` or nothing."""
    if not code or code == AUTO_LANGUAGE:
        return None
    return "or-IN" if code == "od-IN" else code


@dataclass
class SarvamSTTSettings(STTSettings):
    """``SarvamSTTService.Settings`` (``None``: Sarvam's default, not sent).

    Parameters:
        vad_signals: Sarvam's VAD decides the turns (see the module docstring).
        high_vad_sensitivity: Sarvam's more sensitive VAD preset.
        positive_speech_threshold: Speech probability (0-1) from which a frame is speech.
        negative_speech_threshold: Speech probability (0-1) under which a frame is silence.
        min_speech_frames: Speech frames in a row that open a segment.
        first_turn_min_speech_frames: The same, for the caller's first turn.
        negative_frames_count: Silent frames within the window that close a segment.
        negative_frames_window: The window (frames) those are counted in.
        start_speech_volume_threshold: Volume (dB) under which audio is never speech.
        interrupt_min_speech_frames: Speech frames that make a barge-in.
        pre_speech_pad_frames: Frames kept from before the detected start of speech.
        num_initial_ignored_frames: Frames skipped at the start of the connection.
    """

    vad_signals: bool | None | NotGiven = field(default_factory=unset)
    high_vad_sensitivity: bool | None | NotGiven = field(default_factory=unset)
    positive_speech_threshold: float | None | NotGiven = field(default_factory=unset)
    negative_speech_threshold: float | None | NotGiven = field(default_factory=unset)
    min_speech_frames: int | None | NotGiven = field(default_factory=unset)
    first_turn_min_speech_frames: int | None | NotGiven = field(default_factory=unset)
    negative_frames_count: int | None | NotGiven = field(default_factory=unset)
    negative_frames_window: int | None | NotGiven = field(default_factory=unset)
    start_speech_volume_threshold: float | None | NotGiven = field(default_factory=unset)
    interrupt_min_speech_frames: int | None | NotGiven = field(default_factory=unset)
    pre_speech_pad_frames: int | None | NotGiven = field(default_factory=unset)
    num_initial_ignored_frames: int | None | NotGiven = field(default_factory=unset)


VAD_FIELDS = (
    "positive_speech_threshold",
    "negative_speech_threshold",
    "min_speech_frames",
    "first_turn_min_speech_frames",
    "negative_frames_count",
    "negative_frames_window",
    "start_speech_volume_threshold",
    "interrupt_min_speech_frames",
    "pre_speech_pad_frames",
    "num_initial_ignored_frames",
)
"""The VAD knobs sent as query parameters (as strings) when set."""


def _defaults() -> SarvamSTTSettings:
    store = SarvamSTTSettings(
        model=DEFAULT_MODEL, language=None, vad_signals=None, high_vad_sensitivity=None
    )
    for name in VAD_FIELDS:
        setattr(store, name, None)
    return store


def _flag(value: bool) -> str:
    return "true" if value else "false"


class SarvamSTTService(ProviderSocketSTTService):
    """Sarvam streaming speech-to-text (see the module docstring).

    1.14 style: ``SarvamSTTService(api_key=..., settings=SarvamSTTService.Settings(
    language=Language.HI))``. ``url``: the socket's origin (``/speech-to-text/ws`` is added);
    when not given, ``$CALLPIPE_SARVAM_URL``, else Sarvam's.
    """

    Settings = SarvamSTTSettings
    _settings: SarvamSTTSettings
    _ws: SessionSocket | None

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``); ignored when ``settings``
        is given, except ``mode``."""

        language: str | None = None
        mode: SarvamMode | None = None
        vad_signals: bool | None = None
        high_vad_sensitivity: bool | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        mode: SarvamMode | None = None,
        sample_rate: int | None = None,
        input_audio_codec: str = "pcm_s16le",
        keyterms: list[str] | None = None,
        params: InputParams | None = None,
        settings: SarvamSTTSettings | None = None,
        ttfs_p99_latency: float | None = SARVAM_TTFS_P99,
        keepalive_timeout: float | None = None,
        keepalive_interval: float = 5.0,
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        if model is not None:
            store.model = model
        if params is not None:
            logger.warning("SarvamSTTService: params is deprecated; use settings=")
            if params.mode is not None and mode is None:
                mode = params.mode
            if settings is None:
                store.language = params.language
                store.vad_signals = params.vad_signals
                store.high_vad_sensitivity = params.high_vad_sensitivity
        if settings is not None:
            store.apply_update(settings)
        name = type(self).__name__
        if store.model not in MODELS:
            raise ConfigurationError(f"{name}: model {store.model!r}; use one of {MODELS}")
        if mode is not None and mode not in MODES:
            raise ConfigurationError(f"{name}: mode {mode!r}; use one of {MODES}")
        if input_audio_codec not in INPUT_AUDIO_CODECS:
            raise ConfigurationError(
                f"{name}: input_audio_codec {input_audio_codec!r}; the caller's audio is raw "
                f"PCM, sent as one of {INPUT_AUDIO_CODECS}"
            )
        super().__init__(
            model=str(store.model),
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(name, api_key, "SARVAM_API_KEY")
        self._origin = env_base_url(url, SARVAM_URL_ENV, SARVAM_URL)
        self._mode: str = mode or "transcribe"
        self._input_audio_codec = input_audio_codec
        self._keyterms = list(keyterms) if keyterms is not None else None
        self._keepalive_timeout = keepalive_timeout
        self._keepalive_interval = keepalive_interval
        self._last_sent = 0.0
        self._awaiting_transcript = False
        """Audio went out since the last transcript."""
        self._flush_pending = False
        """A flush went out and its transcript has not come yet."""

    # ------------------------------------------------------------------ description

    @property
    def vad_signals(self) -> bool:
        """True when Sarvam's VAD decides the turns."""
        return self._settings.vad_signals is True

    @property
    def mode(self) -> str:
        return self._mode

    def language_code(self) -> str:
        """The ``language-code`` sent (``unknown`` when no language is set)."""
        language = self._settings.language
        if isinstance(language, str) and language:
            return language_to_sarvam_language(language)
        return AUTO_LANGUAGE

    def service_metadata_frame(self) -> STTMetadataFrame:
        """With Sarvam's VAD deciding the turns, the external strategies are recommended."""
        frame = super().service_metadata_frame()
        if self.vad_signals:
            frame.user_turn_strategies = ExternalUserTurnStrategies()
        return frame

    def query(self) -> dict[str, str]:
        """The socket's query parameters for the current settings."""
        s = self._settings
        query: dict[str, str] = {
            "language-code": self.language_code(),
            "model": str(s.model),
            "mode": self._mode,
        }
        if self._keyterms is not None:
            query["keyterms"] = json.dumps(self._keyterms)
        query["sample_rate"] = str(self.sample_rate)
        if isinstance(s.high_vad_sensitivity, bool):
            query["high_vad_sensitivity"] = _flag(s.high_vad_sensitivity)
        values = s.given_fields()
        for name in VAD_FIELDS:
            if values.get(name) is not None:
                query[name] = str(values[name])
        if isinstance(s.vad_signals, bool):
            query["vad_signals"] = _flag(s.vad_signals)
        if not self.vad_signals:
            query["flush_signal"] = "true"
        query["input_audio_codec"] = self._input_audio_codec
        return query

    def socket_url(self) -> str:
        return ws_url(self._origin, STT_PATH, dict(self.query()))

    # ------------------------------------------------------------------ the socket

    def _build_socket(self) -> SessionSocket:
        if self.sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(
                f"{self}: Sarvam's streaming STT takes {SAMPLE_RATES} Hz audio, not "
                f"{self.sample_rate} (set sample_rate= or the pipeline's input rate)"
            )
        return SessionSocket(
            b"",
            owner=str(self),
            url=self.socket_url(),
            headers={"Api-Subscription-Key": self._api_key},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._session_failed,
            keepalive_secs=self._keepalive_interval if self._keepalive_timeout else None,
            keepalive_message=self._keepalive,
            auth_hint=_AUTH_HINT,
        )

    def _stream_end(self) -> StreamEnd | None:
        """A flush (flushing on), when a transcript is still due: one was asked for, or the
        caller is speaking and audio went out since the last one."""
        if self.vad_signals:
            return None
        if not self._flush_pending and not (self._user_speaking and self._awaiting_transcript):
            return None
        return json.dumps({"type": "flush"}), message_of_type("data")

    def _socket_replaced(self) -> None:
        self._awaiting_transcript = self._flush_pending = False

    async def _on_reconnected(self, ws: SessionSocket) -> None:
        ws.error_reported = False

    def audio_message(self, pcm: bytes) -> str:
        """The JSON message carrying ``pcm``."""
        return json.dumps(
            {
                "audio": {
                    "data": base64.b64encode(pcm).decode("ascii"),
                    "sample_rate": self.sample_rate,
                    "encoding": AUDIO_ENCODING,
                }
            }
        )

    def _keepalive(self) -> Message | None:
        timeout = self._keepalive_timeout
        if timeout is None or time.monotonic() - self._last_sent < timeout:
            return None
        self._last_sent = time.monotonic()
        return self.audio_message(bytes(int(self.sample_rate * 0.1) * 2))

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        if not await ws.send(self.audio_message(audio), wait_secs=0):
            return False
        self._awaiting_transcript = True
        return True

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop (callpipe's VAD deciding): the queued audio, then ``flush``."""
        if not self.vad_signals and await self._flush_then_send(_FLUSH):
            self._flush_pending = True

    # ------------------------------------------------------------------ results in

    async def _on_message(self, ws: SessionSocket, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        data = message.get("data")
        if not isinstance(data, dict):
            return
        if kind == "data":
            if ws is self._ws:
                self._awaiting_transcript = self._flush_pending = False
            transcript = data.get("transcript")
            if isinstance(transcript, str) and transcript.strip():
                code = data.get("language_code")
                detected = sarvam_language_to_tag(code if isinstance(code, str) else None)
                await self.push_transcript(
                    transcript, final=True, language=detected, result=message, finalized=True
                )
        elif kind == "events":
            if not self.vad_signals:
                return
            signal = data.get("signal_type")
            if signal == "START_SPEECH":
                await self.broadcast_frame(ProposedUserStartedSpeakingFrame)
            elif signal == "END_SPEECH":
                await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)
        elif kind == "error":
            said = f"[{data.get('code')}] {data.get('error') or data.get('message') or ''}"
            await self._session_error(ws, said.strip(), final=False)
