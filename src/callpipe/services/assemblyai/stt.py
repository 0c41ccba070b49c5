"""AssemblyAISTTService: AssemblyAI's Universal-Streaming speech-to-text (``/v3/ws``).

The socket opens when the pipeline starts, with every option as a query parameter
(``speech_model``, ``sample_rate``, ``encoding``, the end-of-turn thresholds, ``format_turns``,
...; lists such as ``keyterms_prompt`` are JSON arrays, as AssemblyAI and its SDK send them) and
the API key (or a temporary token) as the ``Authorization`` header. The caller's audio goes out
as binary messages of 100 ms: ``pcm_mulaw`` on an 8 kHz call (the phone line's own bytes, half
the size), else ``pcm_s16le`` at the pipeline rate. AssemblyAI takes 50 to 1000 ms per message,
so a last piece shorter than 50 ms (flushed at the end of a turn or of the call) is padded
with silence.

AssemblyAI answers with ``Begin``, then ``Turn`` messages: the turn so far while the caller
speaks (``end_of_turn: false``), then its end (``end_of_turn: true``; with ``format_turns`` a
second, formatted one follows the plain one). A ``Turn`` becomes a ``TranscriptionFrame`` once
the turn is over and, when formatting is on, formatted; the ones before it become
``InterimTranscriptionFrame``\\ s. Each frame carries AssemblyAI's message as ``result``; the
language is the detected one (``language_detection``, confidence at least 0.7), else the
service's. With ``speaker_labels`` and ``speaker_format`` (``"{speaker}: {text}"``) the text is
labelled with the speaker.

Two ways to end the caller's turn, as in Pipecat 1.14:

- ``vad_force_turn_endpoint=True`` (the default): callpipe's VAD and turn strategies decide.
  AssemblyAI is told to end its turns quickly (U3 Pro: ``min_turn_silence`` 100 ms unless given,
  ``max_turn_silence`` the same; the Universal-Streaming models: ``min_turn_silence`` 160 ms and
  ``end_of_turn_confidence_threshold`` 1.0), and when the VAD says the caller stopped, the queued
  audio is sent, then ``ForceEndpoint``: AssemblyAI ends the turn at once and its final transcript
  (``finalized=True``) reaches the user aggregator before the LLM runs.
- ``vad_force_turn_endpoint=False`` (U3 Pro models only): AssemblyAI decides. ``SpeechStarted``
  becomes a ``ProposedUserStartedSpeakingFrame`` and the end of the turn, after its final
  transcript, a ``ProposedUserStoppedSpeakingFrame`` (both ways); the service recommends
  :class:`~callpipe.turns.user_turn_strategies.ExternalUserTurnStrategies` in its
  ``STTMetadataFrame`` (``should_interrupt`` says whether the caller cuts the bot off). A bot
  that sets its own ``user_turn_strategies`` keeps them.

The ``on_end_of_turn(service, transcript)`` event fires with each final transcript.

Settings at runtime (``STTUpdateSettingsFrame``): ``agent_context`` and ``language_codes`` go out
in an ``UpdateConfiguration`` message on the open socket (U3 Pro only; the other models do not
take them); any other change opens a new socket with the new query. The switch is
make-before-break: the audio keeps going to the old socket until the new one is open, then the
old one gets ``Terminate`` and returns its last words before it closes. If AssemblyAI refuses the
new socket, the old one stays, the settings go back and the bot gets a non-fatal ``ErrorFrame``.

Errors: AssemblyAI reports a failure in an ``Error`` message, then closes the socket with the
same code. A rejected key (``1008``/``4001``, "Unauthorized"), or an HTTP 401/403 at the
handshake, is fatal and names ``ASSEMBLYAI_API_KEY``; other errors are non-fatal ``ErrorFrame``\\ s.
Drops without a reason follow the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`.

At the end of the call (``EndFrame``) the queued audio is sent, then ``Terminate``: AssemblyAI
returns the turn it still holds, then ``Termination``, and closes; those transcripts are pushed
before the ``EndFrame`` (bounded by ``end_timeout_secs``). A ``CancelFrame`` closes at once.

Differences from Pipecat 1.14: ``encoding`` defaults to µ-law on an 8 kHz call; ``formatted_finals``
and ``word_finalization_max_wait_time`` (not in AssemblyAI's published SDK) are sent only when
set; the agent's replies are not fed to ``agent_context`` by themselves (set it, or call
:meth:`AssemblyAISTTService.update_agent_context`); transcripts do not carry the speaker as
``user_id``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    STTMetadataFrame,
)
from callpipe.services._env import ASSEMBLYAI_URL_ENV
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.assemblyai.models import AssemblyAIConnectionParams
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    StreamEnd,
    json_object,
    message_of_type,
    socket_address,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

ASSEMBLYAI_URL = "wss://streaming.assemblyai.com/v3/ws"
"""AssemblyAI's streaming endpoint (the default ``api_endpoint_base_url``)."""
ASSEMBLYAI_TTFS_P99 = 0.42
"""Pipecat 1.14's default ``ttfs_p99_latency`` for AssemblyAI (seconds)."""
_PATH = "/v3/ws"
U3_PRO_MODEL_PREFIXES = ("u3-rt-pro", "universal-3-5-pro", "universal-3-6-pro")
"""Models of the Universal-3 Pro family (built-in turn detection, prompts, context)."""
HOT_UPDATABLE_SETTINGS = frozenset({"agent_context", "language_codes"})
"""Settings an ``UpdateConfiguration`` changes on the open socket; others need a new socket."""
MAX_AGENT_CONTEXT_CHARS = 1500
MAX_LANGUAGE_CODES = 10
_MIN_CHUNK_SECS = 0.05
"""AssemblyAI's shortest audio message."""
_AUTH_CODES = frozenset({1008, 4001})
_LANGUAGE_CONFIDENCE = 0.7
_TERMINATE = json.dumps({"type": "Terminate"})
_FORCE_ENDPOINT = json.dumps({"type": "ForceEndpoint"})
_ENCODINGS = ("pcm_s16le", "pcm_mulaw")
_ASSEMBLYAI_LANGUAGES = {
    code: code
    for code in (
        "af ar ca da de en es et fa fi fr gl he hi it ja ko mr nl nn no pt ro ru sv tr ur vi xh "
        "yue zh zu"
    ).split()
}
"""The declared-language codes AssemblyAI takes (base ISO codes)."""
_QUERY_FIELDS = (
    "formatted_finals",
    "word_finalization_max_wait_time",
    "end_of_turn_confidence_threshold",
    "min_turn_silence",
    "max_turn_silence",
    "prompt",
    "language_detection",
    "language_code",
    "format_turns",
    "speaker_labels",
    "vad_threshold",
    "domain",
)
_U3_QUERY_FIELDS = (
    "continuous_partials",
    "interruption_delay",
    "previous_context_n_turns",
    "voice_focus",
    "voice_focus_threshold",
    "mode",
)


def is_u3_pro_model(model: object) -> bool:
    """True for a Universal-3 Pro streaming model (``u3-rt-pro*``, ``universal-3-5-pro*``, ...)."""
    return isinstance(model, str) and model.startswith(U3_PRO_MODEL_PREFIXES)


def assemblyai_language_codes(
    languages: list[str], *, max_codes: int | None = MAX_LANGUAGE_CODES
) -> list[str]:
    """AssemblyAI's codes for ``languages`` (``Language`` members or tags), in order, once.

    Regional tags become their base code (``es-MX`` -> ``es``). More than ``max_codes`` distinct
    codes is a :class:`~callpipe.errors.ConfigurationError` (AssemblyAI closes the session).
    """
    codes = list(dict.fromkeys(resolve_language(str(x), _ASSEMBLYAI_LANGUAGES) for x in languages))
    if max_codes is not None and len(codes) > max_codes:
        raise ConfigurationError(
            f"language_codes takes at most {max_codes} languages, got {len(codes)}"
        )
    return codes


@dataclass
class AssemblyAISTTSettings(STTSettings):
    """``AssemblyAISTTService.Settings`` (``None``: AssemblyAI's default, not sent).

    ``model`` is sent as ``speech_model``; every other field is the query parameter of the same
    name (lists as JSON arrays). Fields marked U3 Pro are sent only with a U3 Pro model.

    Parameters:
        formatted_finals: Pipecat's flag for formatted finals (sent only when set).
        word_finalization_max_wait_time: Milliseconds to wait for words to finalize (sent only
            when set).
        end_of_turn_confidence_threshold: Confidence at which a turn may end on
            ``min_turn_silence`` (Universal-Streaming models).
        min_turn_silence: Silence (ms) that ends a turn when the model is confident.
        max_turn_silence: Silence (ms) that ends a turn whatever the confidence.
        keyterms_prompt: Words or phrases to recognize better.
        prompt: Instructions for the transcription (U3 Pro only).
        language_detection: Report the detected language on each final turn.
        language_code: A declared language (AssemblyAI's older name for ``language_codes``).
        language_codes: Declared languages, in order, at most 10 (U3 Pro; changed on the open
            socket; ``[]`` clears them).
        format_turns: Punctuate, case and normalize the final turn.
        speaker_labels: Label the speaker of each final turn.
        vad_threshold: AssemblyAI's voice activity threshold, 0 to 1.
        domain: A recognition mode, e.g. ``"medical-v1"``.
        continuous_partials: Interim turns at a steady pace during long turns (U3 Pro).
        interruption_delay: Milliseconds (0-1000) before the first interim turn (U3 Pro).
        agent_context: What the agent just said, to help with the caller's reply (U3 Pro;
            changed on the open socket; at most 1500 characters, the end is kept).
        previous_context_n_turns: Prior entries carried as context, 0-100 (U3 Pro).
        voice_focus: ``"near-field"`` or ``"far-field"`` background suppression (U3 Pro).
        voice_focus_threshold: How hard ``voice_focus`` suppresses, 0 to 1 (U3 Pro).
        mode: ``"min_latency"``, ``"balanced"`` or ``"max_accuracy"`` (U3 Pro).
    """

    formatted_finals: bool | None | NotGiven = field(default_factory=unset)
    word_finalization_max_wait_time: int | None | NotGiven = field(default_factory=unset)
    end_of_turn_confidence_threshold: float | None | NotGiven = field(default_factory=unset)
    min_turn_silence: int | None | NotGiven = field(default_factory=unset)
    max_turn_silence: int | None | NotGiven = field(default_factory=unset)
    keyterms_prompt: list[str] | None | NotGiven = field(default_factory=unset)
    prompt: str | None | NotGiven = field(default_factory=unset)
    language_detection: bool | None | NotGiven = field(default_factory=unset)
    language_code: str | None | NotGiven = field(default_factory=unset)
    language_codes: list[str] | None | NotGiven = field(default_factory=unset)
    format_turns: bool | NotGiven = field(default_factory=unset)
    speaker_labels: bool | None | NotGiven = field(default_factory=unset)
    vad_threshold: float | None | NotGiven = field(default_factory=unset)
    domain: str | None | NotGiven = field(default_factory=unset)
    continuous_partials: bool | NotGiven = field(default_factory=unset)
    interruption_delay: int | None | NotGiven = field(default_factory=unset)
    agent_context: str | None | NotGiven = field(default_factory=unset)
    previous_context_n_turns: int | None | NotGiven = field(default_factory=unset)
    voice_focus: Literal["near-field", "far-field"] | None | NotGiven = field(default_factory=unset)
    voice_focus_threshold: float | None | NotGiven = field(default_factory=unset)
    mode: Literal["min_latency", "balanced", "max_accuracy"] | None | NotGiven = field(
        default_factory=unset
    )


def _defaults() -> AssemblyAISTTSettings:
    return AssemblyAISTTSettings(
        model="universal-3-6-pro",
        language="en",
        formatted_finals=None,
        word_finalization_max_wait_time=None,
        end_of_turn_confidence_threshold=None,
        min_turn_silence=None,
        max_turn_silence=None,
        keyterms_prompt=None,
        prompt=None,
        language_detection=None,
        language_code=None,
        language_codes=None,
        format_turns=True,
        speaker_labels=None,
        vad_threshold=None,
        domain=None,
        continuous_partials=True,
        interruption_delay=None,
        agent_context=None,
        previous_context_n_turns=None,
        voice_focus=None,
        voice_focus_threshold=None,
        mode=None,
    )


def _in_range(name: str, value: object, low: float, high: float) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not low <= value <= high:
            raise ConfigurationError(f"{name} must be between {low:g} and {high:g}, got {value}")


def _validate(s: AssemblyAISTTSettings, vad_force_turn_endpoint: bool) -> None:
    u3 = is_u3_pro_model(s.model)
    if not vad_force_turn_endpoint and not u3:
        raise ConfigurationError(
            "vad_force_turn_endpoint=False (AssemblyAI decides the turns) needs a U3 Pro model, "
            f"which sends SpeechStarted; got {s.model!r}"
        )
    if not u3 and isinstance(s.prompt, str):
        raise ConfigurationError(
            f"prompt needs a U3 Pro model (AssemblyAI refuses it for {s.model!r}); "
            "use keyterms_prompt"
        )
    _in_range("interruption_delay", s.interruption_delay, 0, 1000)
    _in_range("previous_context_n_turns", s.previous_context_n_turns, 0, 100)
    _in_range("voice_focus_threshold", s.voice_focus_threshold, 0.0, 1.0)
    if isinstance(s.language_codes, list):
        assemblyai_language_codes(s.language_codes)


def _pipecat_turn_mode(s: AssemblyAISTTSettings) -> None:
    """Quick turn ends from AssemblyAI, so callpipe's turn strategies decide (see the module
    docstring)."""
    if is_u3_pro_model(s.model):
        silence = s.min_turn_silence if isinstance(s.min_turn_silence, int) else 100
        if isinstance(s.max_turn_silence, int) and s.max_turn_silence != silence:
            logger.warning(
                "AssemblyAISTTService: max_turn_silence=%d is replaced by %d (min_turn_silence) "
                "with vad_force_turn_endpoint=True",
                s.max_turn_silence,
                silence,
            )
        s.min_turn_silence = silence
        s.max_turn_silence = silence
    else:
        s.end_of_turn_confidence_threshold = 1.0
        s.min_turn_silence = 160


_is_termination = message_of_type("Termination")
"""AssemblyAI's answer to ``Terminate``."""


class AssemblyAISTTService(ProviderSocketSTTService):
    """AssemblyAI Universal-Streaming speech-to-text (see the module docstring).

    1.14 style: ``AssemblyAISTTService(api_key=..., settings=AssemblyAISTTService.Settings(
    model="universal-3-6-pro", keyterms_prompt=["Acme"]))``. ``api_key`` defaults to
    ``$ASSEMBLYAI_API_KEY`` (a temporary token works too). ``api_endpoint_base_url`` is the
    socket's address (a bare origin gets ``/v3/ws``); without it, ``$CALLPIPE_ASSEMBLYAI_URL``,
    else AssemblyAI's. ``encoding``: ``"pcm_s16le"`` or ``"pcm_mulaw"`` (None: µ-law at 8 kHz).
    ``language`` and ``connection_params`` are 1.14's deprecated spellings of the settings
    (``settings=`` wins).
    """

    Settings = AssemblyAISTTSettings

    end_timeout_secs = 3.0
    """At the end of the call, how long AssemblyAI may take to answer ``Terminate``."""

    _final_message = _TERMINATE

    def __init__(
        self,
        *,
        api_key: str | None = None,
        language: str | None = None,
        api_endpoint_base_url: str | None = None,
        sample_rate: int | None = None,
        encoding: str | None = None,
        connection_params: AssemblyAIConnectionParams | None = None,
        vad_force_turn_endpoint: bool = True,
        should_interrupt: bool = True,
        speaker_format: str | None = None,
        settings: AssemblyAISTTSettings | None = None,
        ttfs_p99_latency: float | None = ASSEMBLYAI_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        if language is not None:
            store.language = str(language)
        if connection_params is not None and settings is None:
            p = connection_params
            given = p.model_fields_set
            if "sample_rate" in given and sample_rate is None:
                sample_rate = p.sample_rate
            if "encoding" in given and encoding is None:
                encoding = p.encoding
            store.model = p.speech_model
            store.end_of_turn_confidence_threshold = p.end_of_turn_confidence_threshold
            store.min_turn_silence = p.turn_silence
            store.max_turn_silence = p.max_turn_silence
            store.keyterms_prompt = p.keyterms_prompt
            store.prompt = p.prompt
            store.language_detection = p.language_detection
            store.format_turns = p.format_turns
            store.speaker_labels = p.speaker_labels
            store.vad_threshold = p.vad_threshold
        if settings is not None:
            store.apply_update(settings)
        if encoding is not None and encoding not in _ENCODINGS:
            raise ConfigurationError(f"encoding must be one of {_ENCODINGS}, got {encoding!r}")
        _validate(store, vad_force_turn_endpoint)
        if vad_force_turn_endpoint:
            _pipecat_turn_mode(store)
        model_name = store.model if isinstance(store.model, str) else None
        lang = store.language if isinstance(store.language, str) else None
        super().__init__(
            model=model_name,
            sample_rate=sample_rate,
            language=lang,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = self._aai = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "ASSEMBLYAI_API_KEY")
        self._url = socket_address(api_endpoint_base_url, ASSEMBLYAI_URL_ENV, ASSEMBLYAI_URL, _PATH)
        self._encoding = encoding
        self._vad_force_turn_endpoint = vad_force_turn_endpoint
        self._should_interrupt = should_interrupt
        self._speaker_format = speaker_format
        self._strategies = ExternalUserTurnStrategies(enable_interruptions=should_interrupt)
        self._finalize_pending = False
        self._error_reported = False
        self.session_id: str | None = None
        """The ``id`` of the open session (AssemblyAI's ``Begin`` message)."""
        self._register_event_handler("on_end_of_turn")

    # ------------------------------------------------------------------ description

    @property
    def assemblyai_settings(self) -> AssemblyAISTTSettings:
        """The current settings (the same object as :attr:`settings`, typed)."""
        return self._aai

    @property
    def encoding(self) -> str:
        """The encoding streamed to AssemblyAI."""
        if self._encoding is not None:
            return self._encoding
        return "pcm_mulaw" if self.sample_rate == 8000 else "pcm_s16le"

    @property
    def vad_force_turn_endpoint(self) -> bool:
        return self._vad_force_turn_endpoint

    def service_metadata_frame(self) -> STTMetadataFrame:
        """With AssemblyAI deciding the turns, the external strategies are recommended."""
        frame = super().service_metadata_frame()
        if not self._vad_force_turn_endpoint:
            frame.user_turn_strategies = self._strategies
        return frame

    def _query(self) -> dict[str, Any]:
        s = self._aai
        values = s.given_fields()
        u3 = is_u3_pro_model(s.model)
        query: dict[str, Any] = {
            "sample_rate": self.sample_rate,
            "encoding": self.encoding,
            "speech_model": values.get("model"),
        }
        for name in (*_QUERY_FIELDS, *(_U3_QUERY_FIELDS if u3 else ())):
            query[name] = values.get(name)
        if u3 and isinstance(s.agent_context, str):
            query["agent_context"] = self._clip(s.agent_context)
        if isinstance(s.keyterms_prompt, list):
            query["keyterms_prompt"] = json.dumps(s.keyterms_prompt)
        if u3 and isinstance(s.language_codes, list):
            query["language_codes"] = json.dumps(assemblyai_language_codes(s.language_codes))
        return query

    def socket_url(self) -> str:
        """The URL the next socket opens (options as query parameters)."""
        return ws_url(self._url, "", self._query())

    def _build_socket(self) -> ProviderWebsocket:
        return ProviderWebsocket(
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": self._api_key},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            auth_hint="Check api_key / ASSEMBLYAI_API_KEY.",
        )

    # ------------------------------------------------------------------ lifecycle

    async def start(self, frame: StartFrame) -> None:
        self._error_reported = False
        await super().start(frame)

    def _stream_end(self) -> StreamEnd:
        """``Terminate``: AssemblyAI ends the last turn, then answers ``Termination``."""
        return _TERMINATE, _is_termination

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        shortest = int(_MIN_CHUNK_SECS * self.sample_rate) * 2
        if len(audio) < shortest:
            audio += bytes(shortest - len(audio))  # AssemblyAI refuses shorter messages
        return await ws.send(pcm_to_ulaw(audio) if self.encoding == "pcm_mulaw" else audio)

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: send what is queued, then ``ForceEndpoint`` (the default turn mode)."""
        if self._vad_force_turn_endpoint and await self._flush_then_send(_FORCE_ENDPOINT):
            self._finalize_pending = True

    # ------------------------------------------------------------------ messages in

    async def _on_message(self, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == "Turn":
            await self._on_turn(message)
        elif kind == "SpeechStarted":
            if not self._vad_force_turn_endpoint:
                self._turn_open = True
                await self.broadcast_frame(ProposedUserStartedSpeakingFrame)
        elif kind == "Begin":
            self.session_id = str(message.get("id"))
            logger.debug("%s: session %s began", self, self.session_id)
        elif kind == "Termination":
            logger.debug(
                "%s: session ended (%s s of audio)", self, message.get("audio_duration_seconds")
            )
        elif kind == "Error":
            await self._on_error(message)
        elif kind == "Warning":
            logger.warning(
                "%s: AssemblyAI warning [%s] %s",
                self,
                message.get("warning_code"),
                message.get("warning"),
            )

    async def _on_error(self, message: dict[str, Any]) -> None:
        code = message.get("error_code")
        text = str(message.get("error") or "")
        self._error_reported = True
        if code in _AUTH_CODES or "unauthori" in text.lower() or "not authori" in text.lower():
            await self.report_error(
                f"{self}: AssemblyAI rejected the credentials [{code}] {text}. "
                "Check api_key / ASSEMBLYAI_API_KEY.",
                fatal=True,
                reason="auth",
            )
            return
        await self.report_error(f"{self}: AssemblyAI error [{code}] {text}", reason="provider")

    def _language_of(self, message: dict[str, Any]) -> str | None:
        code = message.get("language_code")
        confidence = message.get("language_confidence")
        if isinstance(code, str) and isinstance(confidence, int | float):
            if confidence >= _LANGUAGE_CONFIDENCE:
                return code
            logger.debug("%s: language %s detected with low confidence", self, code)
        return self._language

    async def _on_turn(self, message: dict[str, Any]) -> None:
        transcript = str(message.get("transcript") or "")
        if not transcript:
            return
        speaker = message.get("speaker_label")
        text = transcript
        if isinstance(speaker, str) and speaker and self._speaker_format:
            text = self._speaker_format.format(speaker=speaker, text=transcript)
        language = self._language_of(message)
        formatted = bool(message.get("turn_is_formatted"))
        final = bool(message.get("end_of_turn")) and (self._aai.format_turns is False or formatted)
        if not final:
            await self.push_transcript(text, final=False, language=language, result=message)
            return
        finalized = self._finalize_pending or not self._vad_force_turn_endpoint
        self._finalize_pending = False
        await self.push_transcript(
            text, final=True, language=language, result=message, finalized=finalized
        )
        if not self._vad_force_turn_endpoint:
            self._turn_open = False
            await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)
        await self._call_event_handler("on_end_of_turn", text)

    async def _end_turn_cut_short(self) -> None:
        """The socket went away during a turn AssemblyAI was deciding: the turn ends."""
        self._finalize_pending = False
        await self._propose_turn_end()

    async def _on_reconnected(self) -> None:
        self._error_reported = False
        await self._end_turn_cut_short()

    async def _on_failed(self, message: str) -> None:
        await self._end_turn_cut_short()
        if self._error_reported:
            logger.info("%s: %s", self, message)  # AssemblyAI's Error message was reported
            return
        await self.report_error(message, reason="disconnected")

    # ------------------------------------------------------------------ settings at runtime

    def _clip(self, text: str) -> str:
        if len(text) > MAX_AGENT_CONTEXT_CHARS:
            logger.warning(
                "%s: agent_context clipped to its last %d characters", self, MAX_AGENT_CONTEXT_CHARS
            )
            return text[-MAX_AGENT_CONTEXT_CHARS:]
        return text

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        s = self._aai
        if "language_codes" in changed and isinstance(s.language_codes, list):
            try:
                assemblyai_language_codes(s.language_codes)
            except ConfigurationError as exc:
                logger.warning("%s: language_codes update ignored: %s", self, exc)
                s.language_codes = changed.pop("language_codes")
        if self._ws is None or not changed:
            return  # not started (or ended): the next socket is opened with these settings
        self._ws.url = self.socket_url()  # a reconnect after a drop carries every setting
        if set(changed) - HOT_UPDATABLE_SETTINGS and self._ws.url != self._opened_url:
            self._want_new_socket(changed)
            return
        update: dict[str, Any] = {}
        if "agent_context" in changed and isinstance(s.agent_context, str):
            update["agent_context"] = self._clip(s.agent_context)
        if "language_codes" in changed and isinstance(s.language_codes, list):
            update["language_codes"] = assemblyai_language_codes(s.language_codes)
        await self._update_configuration(update)

    async def update_agent_context(self, text: str) -> None:
        """Give AssemblyAI what the agent just said, for the caller's reply (U3 Pro only)."""
        if not text:
            return
        self._aai.agent_context = self._clip(text)
        if self._ws is not None:
            self._ws.url = self.socket_url()
        await self._update_configuration({"agent_context": self._aai.agent_context})

    async def _update_configuration(self, update: dict[str, Any]) -> None:
        if not update:
            return
        if not is_u3_pro_model(self._aai.model):
            logger.warning(
                "%s: %s need a U3 Pro model; not sent for %s", self, sorted(update), self._aai.model
            )
            return
        ws = self._ws
        if ws is not None and await ws.send(
            json.dumps({"type": "UpdateConfiguration", **update}), wait_secs=0
        ):
            self._opened_url = ws.url  # the live session now has these settings too

    def _socket_replaced(self) -> None:
        self._finalize_pending = False
