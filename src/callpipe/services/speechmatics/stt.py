"""SpeechmaticsSTTService: Speechmatics' real-time speech-to-text WebSocket (``/v2``).

The socket opens when the pipeline starts, authenticated with ``Authorization: Bearer <key>``,
and the session is configured by its first message, ``StartRecognition``: the
``audio_format`` (``raw``; ``mulaw`` on an 8 kHz call, the phone line's own bytes, else
``pcm_s16le`` at the pipeline rate) and the ``transcription_config`` (``language``, ``model``,
``enable_partials``, ``output_locale`` for en-US/en-GB/en-AU, ``domain``, ``additional_vocab``,
diarization, ``conversation_config``, ...; unset options left out). As Speechmatics requires,
no audio goes out before its ``RecognitionStarted`` answer: the caller's audio waits in the
queue until then, and afterwards goes out as binary ``AddAudio`` messages of 100 ms, each
acknowledged by an ``AudioAdded`` with its sequence number.

``AddPartialTranscript`` messages become ``InterimTranscriptionFrame``\\ s and each
``AddTranscript`` (the final text of a stretch of audio) a ``TranscriptionFrame``, both carrying
the message as ``result``; with diarization the text is written with ``speaker_active_format``
(``"{speaker_id}: {text}"``, say).

Two ways to end the caller's turn (``turn_detection_mode``):

- ``TurnDetectionMode.EXTERNAL`` (the default): callpipe's VAD decides. When the caller stops,
  the queued audio is sent, then ``ForceEndOfUtterance`` (with the audio's timestamp, as the
  SDK sends it): Speechmatics returns the final transcript at once (marked ``finalized``) and
  an ``EndOfUtterance``.
- ``TurnDetectionMode.VAD``: Speechmatics decides, after ``end_of_utterance_silence_trigger``
  seconds of silence (0.5 unless set). The first words of a turn become a
  ``ProposedUserStartedSpeakingFrame`` and its ``EndOfUtterance`` a
  ``ProposedUserStoppedSpeakingFrame``; the service recommends
  :class:`~callpipe.turns.user_turn_strategies.ExternalUserTurnStrategies` in its
  ``STTMetadataFrame``.

At the end of the call (``EndFrame``) the queued audio is sent, then ``EndOfStream`` with the
number of the last audio message: Speechmatics returns its last transcripts, then
``EndOfTranscript``; they are pushed before the ``EndFrame`` (bounded by ``end_timeout_secs``).
A ``CancelFrame`` closes at once.

Settings at runtime (``STTUpdateSettingsFrame``) are part of ``StartRecognition``, so a change
opens a new session on a new socket (``speaker_active_format`` alone applies at once); the audio
keeps going to the old session until the new one has started, then the old one gets
``EndOfStream`` and returns its last words. If Speechmatics refuses the new session, the old one
stays, the settings go back and the bot gets a non-fatal ``ErrorFrame``.

Errors: an ``Error`` message ends the session. ``not_authorised`` (or an HTTP 401 at the
handshake) is fatal and names ``SPEECHMATICS_API_KEY``; the others are non-fatal
``ErrorFrame``\\ s, and after one that refuses the request (``invalid_config``,
``insufficient_funds``, ``quota_exceeded``, ...) the socket is not reopened. After a reconnect
the new session is configured again before any audio.

Differences from Pipecat 1.14, which speaks Speechmatics' Agent STT API (``/v2/agent``,
segments and turn events) through the ``speechmatics-agent-stt`` SDK: this service speaks the
documented real-time API (``/v2``) directly, so the models are the real-time ones
(``enhanced`` by default), ``emit_sentences`` is accepted but not sent (a warning says so:
the real-time API has no such option), ``enable_partials`` defaults to
on, ``encoding`` defaults to µ-law on an 8 kHz call, and ``end_of_utterance_silence_trigger``
(a setting of the real-time API) is added. The ``on_speakers_result`` event and ``send_message``
are not offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    EndFrame,
    StartFrame,
    STTMetadataFrame,
)
from callpipe.services._env import SPEECHMATICS_URL_ENV, specific_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    message_where,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SPEECHMATICS_URL = "wss://eu2.rt.speechmatics.com/v2"
"""Speechmatics' real-time endpoint (the default ``base_url``)."""
SPEECHMATICS_RT_URL_ENV = "SPEECHMATICS_RT_URL"
"""The endpoint variable Speechmatics' SDK reads (after ``CALLPIPE_SPEECHMATICS_URL``)."""
SPEECHMATICS_TTFS_P99 = 0.74
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Speechmatics (seconds)."""
DEFAULT_SILENCE_TRIGGER = 0.5
"""``end_of_utterance_silence_trigger`` in ``TurnDetectionMode.VAD`` when none is set."""
SUPPORTED_SAMPLE_RATES = (8000, 16000)
_AUTH_ERRORS = frozenset({"not_authorised"})
_AUTH_HINT = "Check api_key / SPEECHMATICS_API_KEY."
_REFUSALS = frozenset(
    {
        "invalid_message",
        "invalid_model",
        "invalid_config",
        "invalid_audio_type",
        "invalid_output_format",
        "not_authorised",
        "insufficient_funds",
        "not_allowed",
        "protocol_error",
        "quota_exceeded",
        "timelimit_exceeded",
    }
)
"""Error types that refuse the request itself: a new session would fail the same way."""
_LANGUAGES = (
    "ar ba be bg bn ca cmn cs cy da de el en eo es et eu fa fi fr ga gl he hi hr hu id it ja ko "
    "lt lv mn mr ms mt nl no pl pt ro ru sk sl sv sw ta th tl tr ug uk ur vi yue"
).split()
_LANGUAGE_MAP = {code: code for code in _LANGUAGES} | {"fil": "tl", "nb": "no", "zh": "cmn"}
_LOCALES = frozenset({"en-GB", "en-US", "en-AU"})


_LEGACY_ARGS: dict[str, str | None] = {
    "language": "language",
    "language_code": "language",
    "domain": "domain",
    "include_partials": "enable_partials",
    "audio_encoding": "audio_encoding",
    "enable_speaker_diarization": "enable_diarization",
    "text_format": "speaker_active_format",
    "max_speakers": "max_speakers",
    "output_locale": None,
    "output_locale_code": None,
    "max_delay": None,
    "chunk_size": None,
    "end_of_utterance_silence_trigger": None,
    "transcription_config": None,
    "enable_vad": None,
    "end_of_utterance_mode": None,
}
"""Pipecat's older constructor arguments: the ``InputParams`` field each sets (None: ignored)."""


class TurnDetectionMode(StrEnum):
    """Who ends the caller's turn: the pipeline (``EXTERNAL``) or Speechmatics (``VAD``)."""

    VAD = "vad"
    EXTERNAL = "external"


class AudioEncoding(StrEnum):
    """The raw encodings Speechmatics takes."""

    PCM_F32LE = "pcm_f32le"
    PCM_S16LE = "pcm_s16le"
    MULAW = "mulaw"


class Model(StrEnum):
    """Speechmatics' real-time models (operating points)."""

    STANDARD = "standard"
    ENHANCED = "enhanced"
    MELIA_1 = "melia-1"


DEFAULT_MODEL = Model.ENHANCED
_Encoding = AudioEncoding
"""The module's enum, for annotations in the service's body (where the name is its attribute)."""


@dataclass
class SpeakerIdentifier:
    """A known speaker: the ``label`` to use and identifiers from earlier sessions."""

    label: str = ""
    speaker_identifiers: list[str] = field(default_factory=list)


@dataclass
class AdditionalVocabEntry:
    """A word to recognize better, and how it may sound (``sounds_like``)."""

    content: str
    sounds_like: list[str] | None = None


def language_to_speechmatics_language(language: str) -> str:
    """Speechmatics' code for a language tag: ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def _output_locale(language: str) -> str | None:
    return language if language in _LOCALES else None


@dataclass
class SpeechmaticsSTTSettings(STTSettings):
    """``SpeechmaticsSTTService.Settings`` (``None``: Speechmatics' default, not sent).

    Parameters:
        domain: A model specialized for a field (``"finance"``, ``"medical"``).
        turn_detection_mode: ``EXTERNAL`` (the pipeline's VAD) or ``VAD`` (Speechmatics').
        speaker_active_format: How a transcript is written, with ``{text}`` and
            ``{speaker_id}`` (applies at once, no new session).
        known_speakers: Speakers from earlier sessions, to label by name.
        additional_vocab: Words to recognize better.
        operating_point: The older name of ``model``.
        enable_partials: Send partial transcripts (interim frames).
        punctuation_overrides: Speechmatics' punctuation options.
        transcript_filtering_config: Speechmatics' transcript filtering (``remove_disfluencies``,
            ``replacements``).
        enable_diarization: Label each word with its speaker.
        speaker_sensitivity: Diarization sensitivity, 0 to 1.
        max_speakers: At most this many speakers (2 to 100).
        prefer_current_speaker: Favour the current speaker for similar voices.
        end_of_utterance_silence_trigger: Seconds of silence (0 to 2) that end an utterance in
            ``TurnDetectionMode.VAD`` (callpipe's addition; a real-time API option).
    """

    domain: str | None | NotGiven = field(default_factory=unset)
    turn_detection_mode: TurnDetectionMode | NotGiven = field(default_factory=unset)
    speaker_active_format: str | NotGiven = field(default_factory=unset)
    known_speakers: list[SpeakerIdentifier] | NotGiven = field(default_factory=unset)
    additional_vocab: list[AdditionalVocabEntry] | NotGiven = field(default_factory=unset)
    operating_point: str | None | NotGiven = field(default_factory=unset)
    enable_partials: bool | None | NotGiven = field(default_factory=unset)
    punctuation_overrides: dict[str, Any] | None | NotGiven = field(default_factory=unset)
    transcript_filtering_config: dict[str, Any] | None | NotGiven = field(default_factory=unset)
    enable_diarization: bool | None | NotGiven = field(default_factory=unset)
    speaker_sensitivity: float | None | NotGiven = field(default_factory=unset)
    max_speakers: int | None | NotGiven = field(default_factory=unset)
    prefer_current_speaker: bool | None | NotGiven = field(default_factory=unset)
    end_of_utterance_silence_trigger: float | None | NotGiven = field(default_factory=unset)
    emit_sentences: bool | None | NotGiven = field(default_factory=unset)
    """Pipecat's Agent STT option (a final per sentence). The real-time API this service speaks
    has none: accepted so a 1.14 bot runs, with a warning when True; finals come as the
    real-time API closes them (usually a sentence or less each)."""

    LOCAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"speaker_active_format", "emit_sentences"})
    """Fields applied at once, without a new session."""


def _defaults() -> SpeechmaticsSTTSettings:
    return SpeechmaticsSTTSettings(
        model=DEFAULT_MODEL.value,
        language="en",
        domain=None,
        turn_detection_mode=TurnDetectionMode.EXTERNAL,
        speaker_active_format="{text}",
        known_speakers=[],
        additional_vocab=[],
        operating_point=None,
        enable_partials=True,
        punctuation_overrides=None,
        transcript_filtering_config=None,
        enable_diarization=None,
        speaker_sensitivity=None,
        max_speakers=None,
        prefer_current_speaker=None,
        end_of_utterance_silence_trigger=None,
        emit_sentences=None,
    )


class _Session(SessionSocket):
    """One recognition session (its first message is ``StartRecognition``, answered by
    ``RecognitionStarted`` or an ``Error``): whether it began, and the audio messages sent."""

    def __init__(self, start: str, **kwargs: Any) -> None:
        super().__init__(start, **kwargs)
        self.started = False
        self.seq_no = 0
        self.audio_bytes = 0
        self.id: str | None = None


class SpeechmaticsSTTService(ProviderSocketSTTService):
    """Speechmatics real-time speech-to-text (see the module docstring).

    1.14 style: ``SpeechmaticsSTTService(api_key=..., settings=SpeechmaticsSTTService.Settings(
    language=Language.EN))``. ``base_url`` is the socket's URL; when not given,
    ``$CALLPIPE_SPEECHMATICS_URL``, then ``$SPEECHMATICS_RT_URL``, then Speechmatics' EU
    endpoint.
    """

    Settings = SpeechmaticsSTTSettings
    _settings: SpeechmaticsSTTSettings
    _ws: _Session | None

    TurnDetectionMode = TurnDetectionMode
    AudioEncoding = AudioEncoding
    Model = Model
    SpeakerIdentifier = SpeakerIdentifier
    AdditionalVocabEntry = AdditionalVocabEntry

    end_timeout_secs = 3.0
    """At the end of the call, how long Speechmatics may take to answer ``EndOfStream``."""

    open_timeout_secs = 15.0
    """After a settings change, how long the new session may take to start (a long
    ``additional_vocab`` takes Speechmatics a while); the old one transcribes meanwhile."""

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``SpeechmaticsSTTService.Settings``); read
        once, at construction, and ignored when ``settings`` is given."""

        domain: str | None = None
        language: str = "en"
        turn_detection_mode: TurnDetectionMode = TurnDetectionMode.EXTERNAL
        speaker_active_format: str | None = None
        known_speakers: list[SpeakerIdentifier] = []
        additional_vocab: list[AdditionalVocabEntry] = []
        audio_encoding: _Encoding | None = None
        model: str | None = None
        operating_point: str | None = None
        enable_partials: bool | None = None
        punctuation_overrides: dict[str, Any] | None = None
        transcript_filtering_config: dict[str, Any] | None = None
        enable_diarization: bool | None = None
        speaker_sensitivity: float | None = None
        max_speakers: int | None = None
        prefer_current_speaker: bool | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        sample_rate: int | None = None,
        encoding: _Encoding | str | None = None,
        params: InputParams | None = None,
        should_interrupt: bool = True,
        settings: SpeechmaticsSTTSettings | None = None,
        ttfs_p99_latency: float | None = SPEECHMATICS_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        legacy = {name: kwargs.pop(name) for name in _LEGACY_ARGS if name in kwargs}
        if legacy:
            logger.warning(
                "SpeechmaticsSTTService: %s deprecated; use settings=", ", ".join(sorted(legacy))
            )
            params = params or self.InputParams()
            for name, value in legacy.items():
                target = _LEGACY_ARGS[name]
                if target is not None and value is not None:
                    setattr(params, target, value)
        if params is not None and settings is None:
            logger.warning("SpeechmaticsSTTService: params is deprecated; use settings=")
            for name, value in params.model_dump(exclude={"audio_encoding"}).items():
                if name in ("known_speakers", "additional_vocab"):
                    value = list(getattr(params, name))
                if name in ("model", "enable_partials") and value is None:
                    continue
                setattr(store, name, value)
            if params.speaker_active_format is None:
                diarize = bool(params.enable_diarization)
                store.speaker_active_format = "@{speaker_id}: {text}" if diarize else "{text}"
            if params.audio_encoding is not None and encoding is None:
                encoding = params.audio_encoding
        if settings is not None:
            store.apply_update(settings)
        _warn_emit_sentences(store)
        _resolve_model(store, changed=None)
        if encoding is not None and encoding not in tuple(AudioEncoding):
            raise ConfigurationError(
                f"SpeechmaticsSTTService: encoding={encoding!r}; one of "
                f"{[e.value for e in AudioEncoding]}"
            )
        if encoding == AudioEncoding.PCM_F32LE:
            raise ConfigurationError(
                "SpeechmaticsSTTService: the pipeline's audio is sent as pcm_s16le or mulaw"
            )
        super().__init__(
            model=str(store.model),
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "SPEECHMATICS_API_KEY")
        self._url = specific_base_url(
            base_url, SPEECHMATICS_URL_ENV, SPEECHMATICS_RT_URL_ENV, SPEECHMATICS_URL
        )
        self._encoding = AudioEncoding(encoding) if encoding is not None else None
        self._should_interrupt = should_interrupt
        self._finalize_pending = False

    # ------------------------------------------------------------------ description

    @property
    def encoding(self) -> _Encoding:
        """The encoding streamed to Speechmatics."""
        if self._encoding is not None:
            return self._encoding
        return AudioEncoding.MULAW if self.sample_rate == 8000 else AudioEncoding.PCM_S16LE

    @property
    def session_id(self) -> str | None:
        """Speechmatics' id of the current session (its ``RecognitionStarted``), else None."""
        return self._ws.id if self._ws is not None else None

    @property
    def _service_ends_turns(self) -> bool:
        return self._settings.turn_detection_mode == TurnDetectionMode.VAD

    def service_metadata_frame(self) -> STTMetadataFrame:
        """With Speechmatics ending the turns, the external strategies are recommended."""
        frame = super().service_metadata_frame()
        if self._service_ends_turns:
            frame.user_turn_strategies = ExternalUserTurnStrategies(
                enable_interruptions=self._should_interrupt
            )
        return frame

    def transcription_config(self) -> dict[str, Any]:
        """The ``transcription_config`` for the current settings (unset options left out)."""
        s = self._settings
        language = str(s.language) if isinstance(s.language, str) else "en"
        config: dict[str, Any] = {
            "language": language_to_speechmatics_language(language),
            "model": str(s.model),
        }
        locale = _output_locale(language)
        if locale is not None:
            config["output_locale"] = locale
        for name in ("domain", "enable_partials", "punctuation_overrides"):
            value = getattr(s, name)
            if value is not None and not isinstance(value, NotGiven):
                config[name] = value
        if isinstance(s.transcript_filtering_config, dict):
            config["transcript_filtering_config"] = s.transcript_filtering_config
        if isinstance(s.additional_vocab, list) and s.additional_vocab:
            config["additional_vocab"] = [
                {k: v for k, v in asdict(entry).items() if v is not None}
                for entry in s.additional_vocab
            ]
        if s.enable_diarization is True:
            config["diarization"] = "speaker"
            speakers: dict[str, Any] = {}
            for name in ("max_speakers", "speaker_sensitivity", "prefer_current_speaker"):
                value = getattr(s, name)
                if value is not None and not isinstance(value, NotGiven):
                    speakers[name] = value
            if isinstance(s.known_speakers, list) and s.known_speakers:
                speakers["speakers"] = [asdict(speaker) for speaker in s.known_speakers]
            if speakers:
                config["speaker_diarization_config"] = speakers
        if self._service_ends_turns:
            trigger = s.end_of_utterance_silence_trigger
            if not isinstance(trigger, int | float):
                trigger = DEFAULT_SILENCE_TRIGGER
            config["conversation_config"] = {"end_of_utterance_silence_trigger": trigger}
        return config

    def start_recognition(self) -> dict[str, Any]:
        """The ``StartRecognition`` message for the current settings."""
        return {
            "message": "StartRecognition",
            "audio_format": {
                "type": "raw",
                "encoding": self.encoding.value,
                "sample_rate": self.sample_rate,
            },
            "transcription_config": self.transcription_config(),
        }

    def socket_url(self) -> str:
        """The socket's URL (the same for every setting: they go in ``StartRecognition``)."""
        return self._url

    # ------------------------------------------------------------------ the socket

    def _first_message(self) -> str:
        return json.dumps(self.start_recognition())

    def _build_socket(self) -> _Session:
        return _Session(
            self._first_message(),
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            auth_hint=_AUTH_HINT,
        )

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SUPPORTED_SAMPLE_RATES:
            raise ConfigurationError(
                f"{self}: Speechmatics takes audio at {SUPPORTED_SAMPLE_RATES} Hz, "
                f"not {self.sample_rate}"
            )
        await super().start(frame)

    async def stop(self, frame: EndFrame) -> None:
        """As the base's, once Speechmatics answered ``StartRecognition``: audio queued before
        ``RecognitionStarted`` (a short call) still reaches it."""
        session = self._ws
        if session is not None and not session.started:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.end_timeout_secs):
                    await session.answered.wait()
        await super().stop(frame)

    def _stream_end(self) -> StreamEnd | None:
        """``EndOfStream`` with the last audio message's number: the last transcripts, then
        ``EndOfTranscript``."""
        session = self._ws
        if session is None or not session.started:
            return None
        return _end_of_stream(session), _is_end_of_transcript

    async def _session_accepted(self, ws: ProviderWebsocket) -> None:
        """Wait for a new session's ``RecognitionStarted``; raise if it was refused."""
        assert isinstance(ws, _Session)
        await ws.wait_answer(self.open_timeout_secs, required=True)

    def _socket_replaced(self) -> None:
        self._finalize_pending = False

    async def _on_reconnected(self, session: _Session) -> None:
        """A new session on the same socket object: ``StartRecognition`` again, audio after
        its answer, numbered from 1."""
        session.started = False
        session.answered.clear()
        session.refusal = None
        session.seq_no = session.audio_bytes = 0
        session.error_reported = False
        self._finalize_pending = False
        await self._propose_turn_end()
        await session.send(session.first_message, wait_secs=0)

    async def _on_failed(self, session: _Session, message: str) -> None:
        session.started = False
        await self._propose_turn_end()
        await self._session_failed(session, message)

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        session = self._ws
        if session is None or not session.started:
            return False  # stays queued until RecognitionStarted
        payload = pcm_to_ulaw(audio) if self.encoding == AudioEncoding.MULAW else audio
        if not await session.send(payload, wait_secs=0):
            return False
        session.seq_no += 1
        session.audio_bytes += len(audio)
        return True

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: send what is queued, then ``ForceEndOfUtterance`` (``EXTERNAL`` mode)."""
        session = self._ws
        if self._service_ends_turns or session is None:
            return
        if not session.started or not session.connected:
            return
        await self.flush_audio()
        seconds = session.audio_bytes / (2 * self.sample_rate)
        message = {"message": "ForceEndOfUtterance", "timestamp": round(seconds, 3)}
        if await session.send(json.dumps(message), wait_secs=0):
            self._finalize_pending = True

    # ------------------------------------------------------------------ messages in

    def _text(self, message: dict[str, Any]) -> str:
        metadata = message.get("metadata")
        transcript = metadata.get("transcript") if isinstance(metadata, dict) else None
        text = str(transcript or "").strip()
        if not text:
            return ""
        speaker = "UU"
        for result in message.get("results") or ():
            alternatives = result.get("alternatives") if isinstance(result, dict) else None
            if alternatives and isinstance(alternatives[0].get("speaker"), str):
                speaker = alternatives[0]["speaker"]
                break
        fmt = self._settings.speaker_active_format
        if not isinstance(fmt, str) or fmt == "{text}":
            return text
        return fmt.format(speaker_id=speaker, text=text)

    async def _on_message(self, session: _Session, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("message")
        if kind == "AudioAdded":
            return
        if kind in ("AddPartialTranscript", "AddTranscript"):
            text = self._text(message)
            if not text:
                return
            if self._service_ends_turns:
                await self._propose_turn_start()
            final = kind == "AddTranscript"
            await self.push_transcript(
                text, final=final, result=message, finalized=final and self._finalize_pending
            )
        elif kind == "EndOfUtterance":
            self._finalize_pending = False
            await self._propose_turn_end()
        elif kind == "RecognitionStarted":
            session.started = True
            session.answered.set()
            session.id = str(message.get("id") or "") or None
            logger.debug("%s: recognition started (session %s)", self, session.id)
        elif kind == "Error":
            await self._on_error(session, message)
        elif kind == "Warning":
            logger.warning(
                "%s: Speechmatics warning [%s] %s", self, message.get("type"), message.get("reason")
            )
        elif kind == "Info":
            logger.debug("%s: Speechmatics info %s", self, message)

    async def _on_error(self, session: _Session, message: dict[str, Any]) -> None:
        kind = str(message.get("type") or "unknown_error")
        reason = str(message.get("reason") or "")
        said = f"[{kind}] {reason}"
        session.started = False
        session.refuse(said)
        if session is not self._ws:
            # A session being opened (its opener reports it) or ended.
            logger.info("%s: Speechmatics error on a session not in use %s", self, session.refusal)
            self.create_task(session.close(), "speechmatics-close")
            return
        await self._propose_turn_end()
        auth = _AUTH_HINT if kind in _AUTH_ERRORS else None
        await self._session_error(session, said, final=kind in _REFUSALS, auth_hint=auth)

    # ------------------------------------------------------------------ settings at runtime

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Anything but ``speaker_active_format`` (and the unsent ``emit_sentences``) changes
        ``StartRecognition``: a new session."""
        if "emit_sentences" in changed:
            _warn_emit_sentences(self._settings)
        model = self._settings.model
        _resolve_model(self._settings, changed=changed)
        if self._settings.model != model and "model" not in changed:
            # Set through operating_point: noted as changed, so a refused session restores it.
            changed["model"] = model
            self._sync_model_and_language()
        await super().apply_settings(changed)


def _warn_emit_sentences(s: SpeechmaticsSTTSettings) -> None:
    if s.emit_sentences is True:
        logger.warning(
            "SpeechmaticsSTTService: emit_sentences is an Agent STT option; the real-time API "
            "has none, so it is not sent (finals come as Speechmatics closes them)"
        )


def _resolve_model(s: SpeechmaticsSTTSettings, *, changed: dict[str, Any] | None) -> None:
    """``operating_point`` (the older name) sets ``model`` when it is the one given."""
    point = s.operating_point
    if not isinstance(point, str) or not point:
        return
    if changed is not None and "operating_point" not in changed:
        return
    if changed is None and s.model not in (point, DEFAULT_MODEL.value):
        raise ConfigurationError(
            f"SpeechmaticsSTTService: model={s.model!r} and operating_point={point!r} differ; "
            "pass only model"
        )
    s.model = point


def _end_of_stream(session: _Session) -> str:
    return json.dumps({"message": "EndOfStream", "last_seq_no": session.seq_no})


_is_end_of_transcript = message_where(
    lambda message: message.get("message") in ("EndOfTranscript", "Error"),
    "EndOfTranscript",
    '"Error"',
)
"""``EndOfTranscript`` (the answer to ``EndOfStream``) or an ``Error``."""
