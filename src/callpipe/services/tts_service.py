"""TTSService: text in, bot speech out, in order, interruptible.

How a reply flows:

- Text between ``LLMFullResponseStartFrame`` and ``LLMFullResponseEndFrame`` is cut into
  sentences; each sentence is sent to the provider as soon as it is complete, so speech starts
  after the first sentence. Text outside a reply (``TextFrame``, ``TTSSpeakFrame``) is spoken
  as one utterance at once.
- Each reply gets a **context** (an id the providers echo back). Audio arriving for it is put
  in the context's queue, preceded by ``TTSStartedFrame`` and followed by ``TTSStoppedFrame``.
  One output task plays contexts and other downstream frames strictly in order, so
  ``LLMFullResponseEndFrame`` and everything after a reply leave after its audio.
- ``TTSTextFrame``\\ s follow the audio they belong to: per word when the provider gives word
  timestamps (released once the audio up to the word's end was pushed), else per sentence
  after the sentence's audio. The output transport passes them on only once that audio was
  played, which is how the assistant aggregator learns what the caller heard.
- Speech that failed (an error answer, a dropped connection, a provider's error message) is
  not recorded as spoken: only the words whose audio came leave, and without word timing a
  sentence that did not come whole leaves no text, as one cut off by a barge-in
  (:meth:`TTSService.sentence_failed`, :meth:`TTSService.context_failed`).
- ``text_filters`` and then ``text_transforms`` (Pipecat 1.14's, e.g.
  ``[("*", StripMarkdown())]``) rewrite each piece of text just before it goes to the provider,
  so markdown is never read aloud. In SENTENCE mode a piece is a whole sentence (what the LLM
  split across tokens is whole again); in TOKEN mode a piece is a streamed chunk, so a rule
  needing both ends of a construct (a link, a struck-through phrase) only works when the
  chunk holds both. The ``TTSTextFrame`` of a provider without word timing carries the text
  as the LLM wrote it (as Pipecat: the context keeps the reply, markdown included); with word
  timing the words are the provider's, i.e. the rewritten text (pronunciation markup excepted,
  see below). Transforms can also be added and removed while the call runs
  (:meth:`TTSService.add_text_transformer`, :meth:`TTSService.remove_text_transformer`); they
  run in the order they were added, after the filters.
- Pronunciations (Pipecat 1.14): :meth:`TTSService.pronunciation_transform_ipa` turns
  ``{"Metformin": "mɛtˈfɔɹmɪn"}`` into a transform that puts the service's own markup
  (:meth:`TTSService.format_pronunciation`) in place of those words. While the service cannot
  read that markup with its current model or settings (:attr:`TTSService.supports_pronunciations`,
  checked for each piece of text, so it follows settings updates) the transform is skipped and
  the words are spoken as written, with one WARNING each time that starts. A provider with word
  timing that echoes the markup as the words it spoke (one word, or an SSML tag split at its
  spaces) has it mapped back to the word as written, timed by the end of the markup's last
  piece (:class:`~callpipe.utils.text.transforms.pronunciations.PronouncedWords`), so the
  ``TTSTextFrame``\\ s and the context get the LLM's word, never the markup.
- An ``InterruptionFrame`` drops every open context (the provider is told to cancel it), the
  output queue and the sentence buffer; audio that still arrives for a dropped context id is
  discarded, so nothing of the old reply is spoken afterwards.
- Except a ``TTSSpeakFrame`` with ``interruptible = False`` (Pipecat 1.14): its context is
  kept, so all of its speech is still synthesized and played, in order, and every frame it
  produces (``TTSStartedFrame``, audio, ``TTSTextFrame``, ``TTSStoppedFrame``) carries
  ``interruptible = False`` so the processors after this one (the output transport) keep it
  too. Interruptible replies queued behind it are dropped as usual.

Pipecat 1.14's text frames:

- Text marked ``skip_tts`` (an LLM told ``LLMConfigureOutputFrame(skip_tts=True)``) is passed on
  unspoken, in order behind the audio before it, so the assistant's context still gets it.
  Transcripts, translations and eager transcripts are never spoken either.
- An ``AggregatedTextFrame`` (text someone else already cut, e.g. ``LLMTextProcessor``) is
  spoken as one piece, not cut again; its ``text_type`` picks the text transforms. One whose
  ``text_type`` is in ``skip_text_types`` is passed on with ``skip_tts`` set instead. A spoken
  one goes out ahead of its audio with ``will_be_spoken=True`` and ``append_to_context=False``
  (the ``TTSTextFrame``\\ s that follow the audio are what the context records).
- ``TTSSpeakFrame(append_to_context=False)``: its ``TTSTextFrame``\\ s carry
  ``append_to_context=False``; its ``text_type`` picks the text transforms.

Pipecat 1.14's constructor options of the base class: ``append_trailing_space`` (a space is
added to each sentence sent, in sentence mode only, so a provider does not read out the final
punctuation), ``transport_destination`` (set on a reply's ``TTSStartedFrame``, audio,
``TTSTextFrame``\\ s and ``TTSStoppedFrame``; callpipe's transports have one audio destination
and do not route by it) and
``max_consecutive_zero_audio_contexts`` (see :meth:`TTSService.finish_context`) act as there.
``push_text_frames``, ``push_stop_frames``, ``push_start_frame``, ``stop_frame_timeout_s``,
``pause_frame_processing`` and ``reuse_context_id_within_turn`` configure how a Pipecat
subclass hands its audio to the base class, which callpipe does itself (every reply is
bracketed by ``TTSStartedFrame``/``TTSStoppedFrame`` and the frames after it wait for its
audio): they are accepted and ignored, with a warning naming them once per class.
``pause_watchdog_timeout_s`` (deprecated in 1.14, unused there) is accepted with a
``DeprecationWarning``. The deprecated ``set_model``/``set_voice`` apply a settings update as a
``TTSUpdateSettingsFrame`` does.

callpipe's providers implement :meth:`run_tts` as a coroutine (send text or stream audio for
one sentence) and, for streaming sockets, :meth:`flush_context`/:meth:`cancel_context`; their
receive loops call :meth:`append_audio`, :meth:`add_word_timestamps` and
:meth:`finish_context`.

Services written for Pipecat 1.14 (a custom TTS subclassing Pipecat's bases, imports renamed)
run on their contract, told apart by what ``run_tts`` returns: an async generator is consumed
sentence by sentence, each item routed into the reply's context:

- ``TTSAudioRawFrame``: the context's audio, resampled to the output rate as
  :meth:`append_audio` does (any rate the frame says); ``None``: skipped; ``ErrorFrame``:
  reported as callpipe's providers report errors (counted, upstream) and the sentence is
  failed (:meth:`sentence_failed`); ``TTSStartedFrame``/``TTSStoppedFrame``: dropped, the base
  brackets each context; any other frame: queued behind the audio yielded before it.
- A service that yielded audio is HTTP-style: each sentence's text follows its audio (unless
  the service gave timed words for it) and the context completes at the end of the reply, as
  for callpipe's blocking providers. ``_stream_audio_frames_from_iterator`` turns a response
  body (raw PCM, or WAV) into such frames; ``chunk_size`` is half a second of output audio.
- A service that yielded no audio (``None``, or nothing at all) is WebSocket-style, as in
  Pipecat (unless its sentence failed, or it yielded audio before): its receive loop
  delivers the audio with :meth:`append_to_audio_context` (or, on a
  :class:`WebsocketTTSService`, by pushing ``TTSAudioRawFrame``\\ s), word timing with
  :meth:`add_word_timestamps` in Pipecat's form ``([(word, start_secs), ...], context_id)``
  (then ``TTSTextFrame``\\ s are per word; without it the reply's text follows all of its
  audio) and ends the context with :meth:`remove_audio_context`. At the end of each reply
  :meth:`on_turn_context_completed` calls :meth:`flush_audio` (send the provider's flush); a
  context the provider never ends closes ``context_timeout_secs`` after it went quiet.
  Audio for the reply in progress after its context was removed opens a new one (same id).
  A provider that tags no audio with an id labels it with
  :meth:`get_active_audio_context_id` (the oldest open context).
- The other names such a service calls or overrides: :meth:`create_audio_context` (a no-op
  for the id given to ``run_tts``), :meth:`audio_context_available`,
  :meth:`get_audio_contexts`, :meth:`create_context_id`, ``_turn_context_id``,
  :meth:`start_word_timestamps` (a no-op: times count from each context's first audio),
  :meth:`start_tts_usage_metrics` (a no-op: the base counts usage), the hooks
  :meth:`on_turn_context_created`, :meth:`on_turn_context_completed`,
  :meth:`on_audio_context_interrupted` (after an interruption dropped the context, which is
  gone by then, unlike Pipecat) and :meth:`on_audio_context_completed` (all of it played),
  and ``_update_settings`` (every settings update goes through it).
- Pipecat's bases: :class:`WebsocketTTSService` (with the
  :class:`~callpipe.services.websocket_service.WebsocketService` mixin: ``_websocket``,
  ``_connect_websocket``/``_disconnect_websocket``/``_receive_messages``,
  ``_receive_task_handler(self._report_error)``, reconnecting), :class:`InterruptibleTTSService`
  (reconnects on an interruption while a reply is in flight, so a provider's audio without
  context ids cannot leak into the next reply), and the deprecated :class:`WordTTSService`,
  :class:`WebsocketWordTTSService`, :class:`InterruptibleWordTTSService`,
  :class:`AudioContextTTSService` and :class:`AudioContextWordTTSService` (word timing and
  in-order contexts are in every service). The options that tell Pipecat's base how a
  subclass hands over its audio (``push_start_frame``, ``push_stop_frames``, ...) stay
  accepted and ignored, as above.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast, overload

from websockets.protocol import State

from callpipe.audio.resample import StreamResampler
from callpipe.audio.utils import detect_speech_onset
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    AggregatedTextFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EagerTranscriptionFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    StartFrame,
    SystemFrame,
    TextFrame,
    TranscriptionFrame,
    TranslationFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.metrics.metrics import (
    TextAggregationMetricsData,
    TTFAMetricsData,
    TTSUsageMetricsData,
)
from callpipe.processors.base_object import cancel_and_wait
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.ai_service import (
    AIService,
    MetricMark,
    warn_deprecated_setter,
    warn_ignored_option,
)
from callpipe.services.settings import TTSSettings, delta_from_frame, store_from
from callpipe.services.websocket_service import WS_SEND_TIMEOUT, WebsocketService
from callpipe.utils.string import SentenceAggregator
from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.base_text_filter import BaseTextFilter
from callpipe.utils.text.transforms.pronunciations import (
    PronouncedWords,
    PronunciationTransform,
    Replacement,
    pronunciation_transform,
)
from callpipe.utils.text.transforms.text_transform import TextTransform

logger = logging.getLogger(__name__)

_warned_text_filters = False

NOT_SPOKEN_TEXT = (
    TranscriptionFrame,
    InterimTranscriptionFrame,
    TranslationFrame,
    EagerTranscriptionFrame,
)
"""Text frames a TTS service passes on without speaking (what the caller said, in some form)."""


class TextAggregationMode(StrEnum):
    """What a TTS service is given of the LLM's text (Pipecat 1.14's ``text_aggregation_mode``).

    ``SENTENCE`` (the default): whole sentences, each synthesised as it completes. ``TOKEN``:
    the text as it streams, for providers that buffer it themselves (the older
    ``aggregate_sentences=False``).
    """

    SENTENCE = "sentence"
    TOKEN = "token"


_TTFA_MAX_SECS = 5.0
_IDLE_CHECK_SECS = 0.25
"""How often a playing reply is checked for a provider that never ended it."""


@dataclass(slots=True)
class _TTFAWatch:
    """A reply's audio from its first byte until its speech is found (TTFAMetricsData)."""

    ttfb: float
    audio: bytearray = field(default_factory=bytearray)


@dataclass
class TTSContext:
    """One reply being synthesized: its id, its ordered output and its word timing."""

    id: str
    queue: asyncio.Queue[Frame | None] = field(default_factory=asyncio.Queue)
    audio_secs: float = 0.0
    words: deque[tuple[str, float]] = field(default_factory=deque)
    text_sent_at: float | None = None
    got_audio: bool = False
    closed_at: float | None = None
    last_activity: float = 0.0
    finished: bool = False
    resampler: StreamResampler | None = None
    odd_byte: bytes = b""
    texts: list[str] = field(default_factory=list)
    words_seen: bool = False
    append_to_context: bool = True
    interruptible: bool = True
    sentence_failed: bool = False  # the sentence in run_tts got no (or not all of its) audio
    failed: bool = False  # the provider gave up on the context: no more of its audio comes
    pronounced: PronouncedWords | None = None
    """The pronunciation markup sent, to map timed words back (None: none was sent)."""
    ttfa: _TTFAWatch | None = None
    """Set from the first audio until the reply's speech starts (metrics enabled only)."""
    streamed: bool = False
    """Synthesized by a Pipecat-style ``run_tts`` (an async generator)."""
    socket_audio: bool = False
    """... whose audio comes from the service's receive loop (it yielded no audio): the
    context ends when the service removes it, or once it goes quiet."""
    words_added: int = 0
    """Timed words given so far (a streamed sentence with none gets its text after its audio)."""
    end_requested: bool = False
    """The service removed the context while its ``run_tts`` was still running."""


class TTSService(AIService):
    """Base of TTS services (see the module docstring)."""

    kind = "tts"

    emits_word_timestamps = False
    """True when the provider reports word timing (then TTSTextFrames are per word)."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        text_aggregation_mode: TextAggregationMode | str | None = None,
        aggregate_sentences: bool | None = None,
        context_timeout_secs: float = 5.0,
        push_silence_after_stop: bool = False,
        silence_time_s: float = 2.0,
        text_transforms: Sequence[tuple[TextType | str, TextTransform]] | None = None,
        text_filters: Sequence[BaseTextFilter] | None = None,
        skip_text_types: Sequence[str] | None = None,
        skip_aggregator_types: Sequence[str] | None = None,
        settings: TTSSettings | None = None,
        append_trailing_space: bool = False,
        transport_destination: str | None = None,
        max_consecutive_zero_audio_contexts: int | None = None,
        push_text_frames: bool | None = None,
        push_stop_frames: bool | None = None,
        push_start_frame: bool | None = None,
        stop_frame_timeout_s: float | None = None,
        pause_frame_processing: bool | None = None,
        pause_watchdog_timeout_s: float | None = None,
        reuse_context_id_within_turn: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """``skip_text_types``: the ``AggregatedTextFrame`` text types passed on unspoken
        (``skip_aggregator_types`` is its older name). ``settings``: Pipecat 1.14's
        ``settings=`` for a service built on this class (its given fields win over ``model``;
        a provider's own class handles its ``settings=`` itself and does not pass it here).
        ``max_consecutive_zero_audio_contexts``: off unless given (see
        :meth:`finish_context`). The other arguments: see the module docstring and
        :class:`TextAggregationMode`."""
        super().__init__(**kwargs)
        ignored = {
            "push_text_frames": push_text_frames,
            "push_stop_frames": push_stop_frames,
            "push_start_frame": push_start_frame,
            "stop_frame_timeout_s": stop_frame_timeout_s,
            "pause_frame_processing": pause_frame_processing,
            "reuse_context_id_within_turn": reuse_context_id_within_turn,
        }
        for option, value in ignored.items():
            if value is not None:
                warn_ignored_option(
                    self, option, "callpipe's TTSService brackets and orders each reply itself"
                )
        if pause_watchdog_timeout_s is not None:
            warnings.warn(
                "pause_watchdog_timeout_s is deprecated (Pipecat 1.8) and has no effect",
                DeprecationWarning,
                stacklevel=2,
            )
        self._append_trailing_space = append_trailing_space
        self._transport_destination = transport_destination
        if (
            max_consecutive_zero_audio_contexts is not None
            and max_consecutive_zero_audio_contexts < 0
        ):
            raise ConfigurationError(
                f"{type(self).__name__}: max_consecutive_zero_audio_contexts must be >= 0"
            )
        self._max_silent_contexts = max_consecutive_zero_audio_contexts
        self._silent_contexts = 0
        global _warned_text_filters
        if text_filters and not _warned_text_filters:
            _warned_text_filters = True
            logger.warning(
                "text_filters is deprecated (Pipecat 1.14); use "
                "text_transforms=[('*', StripMarkdown())] instead"
            )
        self._text_filters = list(text_filters or [])
        self._text_transforms = list(text_transforms or [])
        self._skipping_pronunciations = False
        self._first_text_at: float | None = None
        """When the reply being cut into sentences got its first text (metrics enabled)."""
        """Pronunciation transforms are being skipped (warned once each time that starts)."""
        self._pronounced: list[Replacement] = []
        """The pronunciation markup put in the piece of text being transformed, for its
        context (taken by :meth:`_speak`)."""
        skipped = skip_text_types if skip_text_types is not None else skip_aggregator_types
        self._skip_text_types = frozenset(skipped or ())
        self._push_silence_after_stop = push_silence_after_stop
        self._silence_time_s = silence_time_s
        # A given Settings subclass (a custom service's own fields) is kept as the store's type.
        store = type(settings) if isinstance(settings, self.Settings) else self.Settings
        self._settings: TTSSettings = store(model=self.model_name, voice=None, language=None)
        if settings is not None:
            self._settings = store_from(self._settings, settings)
            if isinstance(self._settings.model, str):
                self.set_model_name(self._settings.model)
        # Pipecat 1.14's events: the connection's (see callpipe.services.ai_service) and
        # on_tts_request (service, context_id, text) as each piece of text goes to the
        # provider. Their handlers run in a task: synthesis never waits for them.
        for event in ("on_connected", "on_disconnected", "on_connection_error", "on_tts_request"):
            self._register_event_handler(event, background=True)
        self._init_sample_rate = sample_rate
        if text_aggregation_mode is not None:
            self._aggregate_sentences = (
                TextAggregationMode(text_aggregation_mode) is TextAggregationMode.SENTENCE
            )
        else:  # Pipecat's older flag; neither given: whole sentences
            self._aggregate_sentences = aggregate_sentences is not False
        self._context_timeout = context_timeout_secs
        self._aggregator = SentenceAggregator()
        self._held_space = ""  # token mode: whitespace waiting for the next chunk
        self._held_text = ""  # token mode: the LLM's text of chunks not yet sent
        self._in_reply = False
        self._reply_ctx: TTSContext | None = None
        self._contexts: dict[str, TTSContext] = {}
        self._out: asyncio.Queue[TTSContext | tuple[Frame, FrameDirection]] = asyncio.Queue()
        self._output_task: asyncio.Task[None] | None = None
        self._playing: TTSContext | None = None  # the context the output task is playing
        self._idle_watch: asyncio.TimerHandle | None = None  # see _play
        self._end_pushed: asyncio.Event | None = None
        self._turn_context_id: str | None = None
        """Pipecat's name: the id of the reply context being synthesized (None between)."""
        self._generating: TTSContext | None = None
        """The context whose Pipecat-style ``run_tts`` generator is running."""
        # A Pipecat-style service that marks its own TTFB (start_ttfb_metrics) reports it; the
        # base then only times each reply's first audio for TTFA, so nothing counts twice.
        self._service_times_ttfb = False
        # A Pipecat-style run_tts has yielded audio: it streams its audio there (HTTP style).
        self._yields_audio = False

    @property
    def sample_rate(self) -> int:
        return self._init_sample_rate or self._out_sample_rate

    @property
    def chunk_size(self) -> int:
        """Bytes of half a second of output audio (Pipecat's read size for HTTP streams)."""
        return int(self.sample_rate * 0.5) * 2

    # ------------------------------------------------------------------ settings (1.14)

    Settings: type[TTSSettings] = TTSSettings

    @property
    def settings(self) -> TTSSettings:
        """Current settings; change them with ``TTSUpdateSettingsFrame(delta=...)``."""
        return self._settings

    async def update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        """Merge ``delta`` and let the service act on what changed (old values returned)."""
        changed = self._settings.apply_update(delta)
        if "model" in changed and isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        if changed:
            await self.apply_settings(changed)
        return changed

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Hook: act on changed settings (``self.settings`` holds the new values)."""

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        """Pipecat's hook for a settings update: a subclass written for Pipecat overrides it,
        calls ``super()._update_settings(delta)`` and acts on the changed fields it returns.
        Every update (``TTSUpdateSettingsFrame``, ``set_model``/``set_voice``) comes here."""
        return await self.update_settings(delta)

    async def _settings_frame(self, frame: TTSUpdateSettingsFrame) -> bool:
        delta = delta_from_frame(frame, self.Settings, self)
        if delta is None:
            return False
        await self._update_settings(delta)
        return True

    async def set_model(self, model: str) -> None:
        """Switch the model, as a ``TTSUpdateSettingsFrame`` does (deprecated in 1.14)."""
        warn_deprecated_setter(self, "model", "TTSUpdateSettingsFrame", model)
        await self._settings_frame(TTSUpdateSettingsFrame(delta=TTSSettings(model=model)))

    async def set_voice(self, voice: str) -> None:
        """Switch the voice, as a ``TTSUpdateSettingsFrame`` does (deprecated in 1.14)."""
        warn_deprecated_setter(self, "voice", "TTSUpdateSettingsFrame", voice)
        await self._settings_frame(TTSUpdateSettingsFrame(delta=TTSSettings(voice=voice)))

    # ------------------------------------------------------------------ text transforms (1.14)

    def add_text_transformer(
        self,
        transform_function: TextTransform,
        text_type: TextType | str = "*",
        *,
        aggregation_type: TextType | str | None = None,
    ) -> None:
        """Rewrite the text of ``text_type`` (``"*"``: all of it) with ``transform_function``
        before it goes to the provider, after the filters and the transforms already
        registered. Only what is synthesized changes: the context keeps what the LLM wrote
        (but a provider with word timing reports its own words; see the module docstring).
        ``aggregation_type``: the older name of ``text_type`` (deprecated in Pipecat 1.13)."""
        text_type = _text_type_argument(text_type, aggregation_type)
        self._text_transforms.append((text_type, transform_function))

    def remove_text_transformer(
        self,
        transform_function: TextTransform,
        text_type: TextType | str = "*",
        *,
        aggregation_type: TextType | str | None = None,
    ) -> None:
        """Stop applying ``transform_function`` to ``text_type`` (as it was added: a transform
        added for ``"*"`` is removed with ``"*"``)."""
        text_type = _text_type_argument(text_type, aggregation_type)
        self._text_transforms = [
            (kind, transform)
            for kind, transform in self._text_transforms
            if not (kind == text_type and transform == transform_function)
        ]

    # ------------------------------------------------------------------ pronunciations (1.14)

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        """The text to send in place of ``word`` (as written) so it is said as ``ipa``; None
        when the service cannot say it so. A provider with pronunciation markup overrides
        this; the base class has none."""
        return None

    @property
    def supports_pronunciations(self) -> bool:
        """Whether the service reads its pronunciation markup with its current model and
        settings. Pronunciation transforms are skipped while this is False, so their words are
        spoken as written. Checked for each piece of text sent, so it follows settings
        updates."""
        return True

    @classmethod
    def pronunciation_transform_ipa(
        cls, pronunciations: Mapping[str, str]
    ) -> PronunciationTransform:
        """A transform saying each word of ``pronunciations`` (word -> IPA) as the IPA says,
        in this service's markup; register it in ``text_transforms``. Words this service
        cannot render are named in one WARNING now and spoken as written.

        Register it last: a transform after it (stripping markdown or symbols, replacing text)
        could rewrite its markup, such as Cartesia's ``<<…>>`` or an SSML ``<phoneme>`` tag::

            pronounce = CartesiaTTSService.pronunciation_transform_ipa(
                {"Metformin": "mɛtˈfɔɹmɪn"}
            )
            tts = CartesiaTTSService(
                ..., text_transforms=[("*", strip_markdown), ("*", pronounce)]
            )
        """
        return pronunciation_transform(
            pronunciations, cls.format_pronunciation, service_name=cls.__name__
        )

    def _pronunciations_apply(self) -> bool:
        """``supports_pronunciations`` now, warning once each time it turns False."""
        supported = self.supports_pronunciations
        if not supported and not self._skipping_pronunciations:
            logger.warning(
                "%s does not read pronunciation markup with its current settings (model %s): "
                "pronunciations are spoken as written",
                self,
                self.model_name,
            )
        self._skipping_pronunciations = not supported
        return supported

    # ------------------------------------------------------------------ provider API

    def run_tts(
        self, text: str, context_id: str
    ) -> Coroutine[Any, Any, None] | AsyncGenerator[Frame | None, None]:
        """Synthesize ``text`` as part of context ``context_id``.

        callpipe's contract, a coroutine (``async def run_tts(...) -> None``): streaming-socket
        providers send the text and return, their receive loop delivers the audio; HTTP
        providers stream the audio here, calling :meth:`append_audio`.

        Pipecat's contract, an async generator (``yield`` in the body): see the module
        docstring.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement run_tts")

    async def flush_context(self, context_id: str) -> None:
        """No more text for this context. Default (blocking ``run_tts``): it is complete."""
        await self.finish_context(context_id)

    async def cancel_context(self, context_id: str) -> None:
        """Tell the provider to stop generating this context (interruption). Default: Pipecat's
        hook, :meth:`on_audio_context_interrupted`."""
        await self.on_audio_context_interrupted(context_id)

    def has_context(self, context_id: str | None) -> bool:
        return context_id is not None and context_id in self._contexts

    def sentence_audio_done(self, context_id: str) -> None:
        """All the audio of the sentence in :meth:`run_tts` came (a blocking request ended):
        what the context's resampler still holds goes out now, so the sentence's last audio
        precedes its text (and its last words), not the next sentence's first audio. A
        socket provider, whose next audio continues the stream, does not call it."""
        ctx = self._contexts.get(context_id)
        if ctx is not None and not ctx.finished and ctx.resampler is not None:
            self._queue_audio(ctx, ctx.resampler.flush())

    def sentence_failed(self, context_id: str) -> None:
        """The sentence being synthesized in :meth:`run_tts` failed (an error answer, a
        dropped connection, a rejected key): whatever of it did not come as audio was never
        spoken. Its words whose audio came still count (as after a barge-in); without word
        timing the sentence's text is left out of the context, as for a sentence cut off by
        a barge-in. The reply goes on with its next sentence."""
        ctx = self._contexts.get(context_id)
        if ctx is None or ctx.finished:
            return
        ctx.sentence_failed = True
        self._drop_unheard(ctx)
        if ctx.texts:
            ctx.texts.pop()

    async def report_not_connected(self) -> None:
        """Speech could not go to the provider (no socket, or the send failed): one error,
        counted as ``disconnected``. The caller then fails and finishes the reply its own way."""
        await self.report_error(f"{self}: not connected; dropping speech", reason="disconnected")

    def context_failed(self, context_id: str | None) -> None:
        """The provider will send no more audio for this context (an error message, a lost
        socket); call it just before finishing the context. Only the words whose audio came
        then count as spoken; a reply the provider sent no word timing for leaves out the text
        not yet passed on (which of it was heard is unknown)."""
        ctx = self._contexts.get(context_id) if context_id is not None else None
        if ctx is not None and not ctx.finished:
            ctx.failed = True

    def restart_context(self, context_id: str) -> bool:
        """Forget the audio and word timing received so far for a reply nothing of which has
        gone out yet (it waits behind the one playing), so that the provider can synthesize it
        again, e.g. on a new socket after the old one dropped. Returns False, changing nothing,
        once the reply's output has started (then it cannot be replayed without repeating)."""
        ctx = self._contexts.get(context_id)
        if ctx is None or ctx.finished or ctx is self._playing:
            return False
        kept = []
        while not ctx.queue.empty():
            item = ctx.queue.get_nowait()
            if item is not None and not isinstance(item, TTSAudioRawFrame | TTSTextFrame):
                kept.append(item)  # TTSStartedFrame, announcements
        for item in kept:
            ctx.queue.put_nowait(item)
        ctx.audio_secs = 0.0
        ctx.words.clear()
        if ctx.pronounced is not None:
            ctx.pronounced.restart()
        ctx.words_seen = False
        ctx.resampler = None
        ctx.odd_byte = b""
        ctx.sentence_failed = False
        return True

    def _drop_unheard(self, ctx: TTSContext) -> None:
        """Queue the audio the resampler holds, then forget the words still waiting for
        audio: none is coming."""
        if ctx.resampler is not None:
            self._queue_audio(ctx, ctx.resampler.flush())
        ctx.words.clear()
        if ctx.pronounced is not None:
            ctx.pronounced.drop_held()

    async def append_audio(
        self, context_id: str | None, pcm: bytes, sample_rate: int | None = None
    ) -> None:
        """Queue PCM16 mono audio for a context (dropped if the context was interrupted)."""
        ctx = self._contexts.get(context_id) if context_id is not None else None
        if ctx is None or ctx.finished or not pcm:
            return
        now = self.clock.now()
        ctx.last_activity = now
        if not ctx.got_audio:
            ctx.got_audio = True
            if ctx.text_sent_at is not None:
                if self._service_times_ttfb:
                    ttfb: float | None = now - ctx.text_sent_at
                else:
                    self._ttfb_start = ctx.text_sent_at
                    ttfb = await self.stop_ttfb_metrics()
                if ttfb is not None and self.metrics_enabled:
                    ctx.ttfa = _TTFAWatch(ttfb)
        if ctx.odd_byte:
            pcm = ctx.odd_byte + pcm
        # Providers may split a sample across messages: keep the odd byte for the next one.
        if len(pcm) % 2:
            ctx.odd_byte, pcm = pcm[-1:], pcm[:-1]
        else:
            ctx.odd_byte = b""
        rate = sample_rate or self.sample_rate
        if ctx.ttfa is not None:
            await self._watch_ttfa(ctx, ctx.ttfa, pcm, rate)
        if rate != self.sample_rate:
            if ctx.resampler is None:
                ctx.resampler = StreamResampler(rate, self.sample_rate, clear_after_secs=None)
            pcm = ctx.resampler.resample(pcm)
        self._queue_audio(ctx, pcm)

    async def _watch_ttfa(self, ctx: TTSContext, watch: _TTFAWatch, pcm: bytes, rate: int) -> None:
        """Time to first audio: TTFB plus the silence the provider put before the speech."""
        watch.audio += pcm
        onset = detect_speech_onset(bytes(watch.audio), rate)
        if onset is None:
            if len(watch.audio) >= _TTFA_MAX_SECS * rate * 2:
                ctx.ttfa = None  # no speech in the first seconds: nothing to report
            return
        ctx.ttfa = None
        silence = onset / rate
        await self.push_metrics(
            TTFAMetricsData(
                processor=self.name,
                model=self.model_name,
                ttfa=watch.ttfb + silence,
                ttfb=watch.ttfb,
                leading_silence=silence,
            )
        )

    def _queue_audio(self, ctx: TTSContext, pcm: bytes) -> None:
        if not pcm:
            return
        ctx.queue.put_nowait(TTSAudioRawFrame(pcm, self.sample_rate, 1, context_id=ctx.id))
        ctx.audio_secs += len(pcm) / (2 * self.sample_rate)
        self._release_words(ctx, ctx.audio_secs)

    @overload
    async def add_word_timestamps(
        self, context_id: str | None, words: Sequence[tuple[str, float, float]], /
    ) -> None: ...

    @overload
    async def add_word_timestamps(
        self,
        word_times: Sequence[tuple[str, float]],
        context_id: str | None = None,
        includes_inter_frame_spaces: bool | None = None,
        pre_merge_tokens: bool = False,
    ) -> None: ...

    async def add_word_timestamps(
        self,
        word_times: Sequence[tuple[str, float]] | str | None,
        context_id: str | None | Sequence[tuple[str, float, float]] = None,
        includes_inter_frame_spaces: bool | None = None,
        pre_merge_tokens: bool = False,
    ) -> None:
        """Word timing for a context, in either form:

        - callpipe's, ``add_word_timestamps(context_id, [(word, start_secs, end_secs), ...])``:
          a word is released once the context's audio up to its end went out;
        - Pipecat's, ``add_word_timestamps([(word, start_secs), ...], context_id)``: released
          once the audio up to its start went out (a word at 0 with the first audio).
          ``pre_merge_tokens``: punctuation and space tokens join the word before them.
          ``context_id`` None: the active context (:meth:`get_active_audio_context_id`).
          ``includes_inter_frame_spaces`` is accepted and not applied (words are sent
          stripped).

        Times count from the context's first audio. Pronunciation markup the context was sent
        and the provider reports back (whole, or split into several words) becomes the word as
        written, timed by the markup's end."""
        if isinstance(word_times, str) or word_times is None:  # callpipe's form
            timed = () if context_id is None or isinstance(context_id, str) else context_id
            await self._add_timed_words(word_times, timed)
            return
        target = context_id if isinstance(context_id, str) else self.get_active_audio_context_id()
        pairs = _merge_punctuation(word_times) if pre_merge_tokens else word_times
        # Timed by their start; one at 0 waits for the first audio all the same.
        words = [(word, start, max(start, _FIRST_AUDIO_SECS)) for word, start in pairs]
        await self._add_timed_words(target, words)

    async def _add_timed_words(
        self, context_id: str | None, words: Sequence[tuple[str, float, float]]
    ) -> None:
        ctx = self._contexts.get(context_id) if context_id is not None else None
        if ctx is None or ctx.finished:
            return
        ctx.words_added += len(words)
        if ctx.pronounced is not None:
            timed = [(word.strip(), end) for word, _start, end in words if word.strip()]
            if timed:
                ctx.words_seen = True
                ctx.words.extend(ctx.pronounced.restore(timed))
        else:
            for word, _start, end in words:
                if word.strip():
                    ctx.words_seen = True
                    ctx.words.append((word.strip(), end))
        self._release_words(ctx, ctx.audio_secs)

    def _release_words(self, ctx: TTSContext, played_secs: float) -> None:
        while ctx.words and ctx.words[0][1] <= played_secs + 1e-6:
            word, _ = ctx.words.popleft()
            ctx.queue.put_nowait(_spoken_text(ctx, word, TextType.WORD))

    async def add_text_after_audio(self, context_id: str, text: str) -> None:
        """No word timing: ``text`` was fully synthesized, so it follows its audio."""
        ctx = self._contexts.get(context_id)
        if ctx is not None and not ctx.finished and text.strip():
            ctx.queue.put_nowait(_spoken_text(ctx, text.strip()))

    async def finish_context(self, context_id: str | None) -> None:
        """The provider is done with this context: close it after its last audio."""
        ctx = self._contexts.pop(context_id, None) if context_id is not None else None
        if ctx is None or ctx.finished:
            return
        ctx.finished = True
        if self._max_silent_contexts is not None and not (ctx.failed or ctx.sentence_failed):
            await self._count_silent_context(ctx)  # (a failure was reported already)
        if ctx.failed:
            self._drop_unheard(ctx)
            ctx.texts.clear()
        elif ctx.resampler is not None:
            self._queue_audio_final(ctx, ctx.resampler.flush())
        if ctx.pronounced is not None:
            ctx.words.extend(ctx.pronounced.flush())  # (after a failure it holds nothing)
        self._release_words(ctx, float("inf"))
        if (self.emits_word_timestamps or ctx.socket_audio) and not ctx.words_seen and ctx.texts:
            # The provider sent no timing for this reply: its text follows all of its audio.
            ctx.queue.put_nowait(_spoken_text(ctx, " ".join(ctx.texts)))
        ctx.queue.put_nowait(TTSStoppedFrame(context_id=ctx.id))
        if self._push_silence_after_stop:
            silence = b"\x00\x00" * int(self._silence_time_s * self.sample_rate)
            ctx.queue.put_nowait(TTSAudioRawFrame(silence, self.sample_rate, 1, context_id=ctx.id))
        ctx.queue.put_nowait(None)

    def _queue_audio_final(self, ctx: TTSContext, pcm: bytes) -> None:
        if pcm:
            ctx.queue.put_nowait(TTSAudioRawFrame(pcm, self.sample_rate, 1, context_id=ctx.id))

    # ------------------------------------------------------------------ Pipecat's subclass API

    def create_context_id(self) -> str:
        """The open reply's context id, else a new one."""
        ctx = self._reply_ctx
        if ctx is not None and not ctx.finished:
            return ctx.id
        return uuid.uuid4().hex

    async def on_turn_context_created(self, context_id: str) -> None:
        """Hook: a reply's context was opened, just before its first text goes to
        :meth:`run_tts` (e.g. to open a provider-side context)."""

    async def on_turn_context_completed(self) -> None:
        """Hook: the reply in context ``self._turn_context_id`` has no more text. Called for
        a Pipecat-style service (its ``run_tts`` is a generator); an override calls
        ``super()``. Default: a context whose audio was yielded is complete now; one whose
        audio comes from the receive loop stays open until the service removes it (or it goes
        quiet for ``context_timeout_secs``); then :meth:`flush_audio` for that context."""
        context_id = self._turn_context_id
        ctx = self._contexts.get(context_id) if context_id is not None else None
        if context_id is None or ctx is None:
            return
        if not ctx.socket_audio:
            await self.finish_context(context_id)
        await self.flush_audio(context_id)

    async def flush_audio(self, context_id: str | None = None) -> None:
        """Hook: tell the provider no more text comes for ``context_id`` (e.g. send its flush
        message). Called at the end of each reply of a Pipecat-style service."""

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """Hook: context ``context_id`` was dropped by an interruption (e.g. send the
        provider's cancel). Unlike Pipecat, the context is already gone when this runs."""

    async def on_audio_context_completed(self, context_id: str) -> None:
        """Hook: all of context ``context_id`` was played out (pushed downstream)."""

    def start_ttfb_metrics(self) -> MetricMark:
        """Pipecat's TTFB mark, called (and awaited) by a Pipecat-style service around each of
        its requests: from then on that service's own measurements are reported, and the
        base's per-reply one is not."""
        self._service_times_ttfb = True
        return super().start_ttfb_metrics()

    async def start_word_timestamps(self) -> None:
        """Pipecat's word-timing clock start: a no-op (times count from the context's first
        audio, see :meth:`add_word_timestamps`)."""

    async def reset_word_timestamps(self) -> None:
        """Pipecat's word-timing clock reset: a no-op (each context has its own)."""

    async def start_tts_usage_metrics(self, text: str) -> None:
        """A no-op: the base reports the characters of each piece of text it sends
        (``TTSUsageMetricsData``), so a Pipecat-style service's own call would count twice."""

    async def create_audio_context(self, context_id: str) -> None:
        """Open context ``context_id`` if it is not open. The reply being synthesized already
        has its context (the id given to :meth:`run_tts`), so this is a no-op for it. Another
        id gets a context of its own, bracketed and played in order like a reply, ended by
        :meth:`remove_audio_context` or once it goes quiet."""
        if context_id in self._contexts:
            return
        reply = self._reply_ctx
        if reply is not None and reply.id == context_id:
            self._reopen_tts_context(reply)
            return
        ctx = self._new_tts_context(context_id)
        ctx.streamed = ctx.socket_audio = True
        ctx.closed_at = self.clock.now()  # no reply text comes for it: the idle close applies

    async def append_to_audio_context(self, context_id: str | None, frame: Frame | None) -> None:
        """Deliver what the provider sent for context ``context_id``: audio goes into the
        context's audio (resampled as :meth:`append_audio` does), ``None`` ends the context
        (:meth:`remove_audio_context`), an ``ErrorFrame`` is reported, ``TTSStartedFrame`` and
        ``TTSStoppedFrame`` are dropped (the base brackets each context itself) and any other
        frame goes out in order behind the audio. Dropped for a context that was interrupted
        (or never opened); audio for the reply being synthesized after the service removed
        its context opens it again."""
        if not context_id:
            return
        if frame is None:
            await self.remove_audio_context(context_id)
            return
        if context_id not in self._contexts:
            reply = self._reply_ctx
            if reply is None or reply.id != context_id or not reply.streamed:
                return  # interrupted, or ended: nothing of it plays any more
            self._reopen_tts_context(reply)
        if isinstance(frame, TTSAudioRawFrame):
            await self.append_audio(context_id, frame.audio, frame.sample_rate)
        elif isinstance(frame, ErrorFrame):
            await self._report_frame(frame)
        elif not isinstance(frame, TTSStartedFrame | TTSStoppedFrame):
            self._queue_in_order(context_id, frame)

    async def remove_audio_context(self, context_id: str | None) -> None:
        """The provider is done with context ``context_id``: it ends after its audio
        (:meth:`finish_context`). Removed while its ``run_tts`` still runs, it ends once that
        returned."""
        ctx = self._contexts.get(context_id) if context_id else None
        if ctx is None:
            return
        if ctx is self._generating:
            ctx.end_requested = True
            return
        await self.finish_context(ctx.id)

    def audio_context_available(self, context_id: str) -> bool:
        """Whether context ``context_id`` is open (audio for it is still taken)."""
        return context_id in self._contexts

    def get_audio_contexts(self) -> list[str]:
        """The ids of the open contexts, oldest first."""
        return list(self._contexts)

    def has_active_audio_context(self) -> bool:
        """Whether a context is playing and still open."""
        playing = self._playing
        return playing is not None and not playing.finished

    def get_active_audio_context_id(self) -> str | None:
        """The context audio without an id belongs to: the oldest open one (contexts play in
        order, so it is the one playing or the next to), None when none is open. For
        providers that do not echo a context id."""
        return next(iter(self._contexts), None)

    async def remove_active_audio_context(self) -> None:
        """End the active context (:meth:`get_active_audio_context_id`)."""
        await self.remove_audio_context(self.get_active_audio_context_id())

    def reset_active_audio_context(self) -> None:
        """A no-op: the active context follows from the open ones
        (:meth:`get_active_audio_context_id`)."""

    async def tts_process_generator(
        self, context_id: str, generator: AsyncGenerator[Frame | None, None]
    ) -> None:
        """Route what a Pipecat-style ``run_tts`` yields into context ``context_id`` (see
        the module docstring; the base does this for each sentence)."""
        await self._consume_synthesis(context_id, generator)

    async def _stream_audio_frames_from_iterator(
        self,
        iterator: AsyncIterator[bytes],
        *,
        strip_wav_header: bool = False,
        in_sample_rate: int | None = None,
        context_id: str | None = None,
    ) -> AsyncGenerator[TTSAudioRawFrame, None]:
        """Audio frames from a byte stream (an HTTP response body), for a ``run_tts`` to yield.

        ``strip_wav_header``: a WAV header opening the stream is removed (its sample rate is
        taken unless ``in_sample_rate`` is given; the header must come whole in the first
        chunk). Frames carry the stream's own rate (default: the output rate) and whole
        samples; the base resamples them."""
        rate = in_sample_rate
        first = True
        held = b""
        async for chunk in iterator:
            if first and strip_wav_header and chunk.startswith(b"RIFF"):
                data_at = chunk.find(b"data", 12)
                if data_at >= 0 and len(chunk) >= data_at + 8:
                    if rate is None and len(chunk) >= 28:
                        rate = int.from_bytes(chunk[24:28], "little")
                    chunk = chunk[data_at + 8 :]
            first = False
            data = held + chunk
            whole = len(data) - len(data) % 2
            held = data[whole:]
            if whole:
                yield TTSAudioRawFrame(data[:whole], rate or self.sample_rate, 1, context_id)
        if held:
            yield TTSAudioRawFrame(held + b"\x00", rate or self.sample_rate, 1, context_id)

    # ------------------------------------------------------------------ frames

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._start_service(frame)
            self._start_output()
        elif isinstance(frame, EndFrame):
            await self._end(frame, direction)
        elif isinstance(frame, CancelFrame):
            await cancel_and_wait(self._output_task)
            await self._cancel_service(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            # The interruption goes on before any await here: what stops the caller hearing
            # the old reply is the output transport's clear, and on a loaded loop every await
            # before it (the output task's end, the provider's cancel) costs an iteration.
            dropped, old_output = self._drop_replies()
            await self.push_frame(frame, direction)
            await self._finish_interrupt(dropped, old_output)
        elif isinstance(frame, TTSUpdateSettingsFrame) and await self._settings_frame(frame):
            pass  # applied here (an update for another service passes on below)
        elif direction is FrameDirection.UPSTREAM or isinstance(frame, SystemFrame):
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMFullResponseStartFrame):
            self._in_reply = True
            self._enqueue(frame, direction)
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._end_reply()
            self._enqueue(frame, direction)
        elif isinstance(frame, TTSSpeakFrame):
            await self._end_reply()
            await self._say(
                frame.text, frame.text_type, frame.append_to_context, frame.interruptible
            )
            await self._close_current()
        elif isinstance(frame, TextFrame):
            if frame.skip_tts or isinstance(frame, NOT_SPOKEN_TEXT):
                self._enqueue(frame, direction)
            elif isinstance(frame, AggregatedTextFrame):
                await self._on_aggregated_text(frame, direction)
            else:
                await self._on_text(frame.text)
        else:
            self._enqueue(frame, direction)

    async def _on_aggregated_text(
        self, frame: AggregatedTextFrame, direction: FrameDirection
    ) -> None:
        """Speak ``frame`` as one piece (or pass it on, marked, when its type is skipped)."""
        if frame.text_type in self._skip_text_types:
            frame.skip_tts = True
            self._enqueue(frame, direction)
            return
        rest = self._aggregator.flush()  # text cut here before it goes first
        if rest:
            await self._say(rest)
        spoken = await self._transform_text(frame.text, frame.text_type)
        if spoken is not None and spoken.strip():
            frame.will_be_spoken = True
            frame.append_to_context = False
            await self._speak(spoken, frame.text, announce=frame)
        if not self._in_reply:
            await self._close_current()

    async def _on_text(self, text: str) -> None:
        if not self._in_reply:
            await self._say(text)
            await self._close_current()
        elif not self._aggregate_sentences:
            spoken = await self._transform_text(text, TextType.TOKEN)
            if spoken is None:
                return
            self._held_text += text
            if not spoken.strip():
                # A chunk of only spaces or newlines (or markdown, once transformed) would be
                # dropped by _speak, and the words on either side of it joined ("Hello" + " "
                # + "there"): its whitespace goes with the next chunk.
                self._held_space += spoken
                return
            spoken, self._held_space = self._held_space + spoken, ""
            text, self._held_text = self._held_text, ""
            await self._speak(spoken, text)
        else:
            if self._first_text_at is None and self.metrics_enabled:
                self._first_text_at = self.clock.now()
            for sentence in self._aggregator.push(text):
                await self._sentence_ready()
                await self._say(sentence)

    async def _sentence_ready(self) -> None:
        """A reply's first sentence is cut: report how long it took from its first text."""
        started, self._first_text_at = self._first_text_at, None
        if started is not None:
            await self.push_metrics(
                TextAggregationMetricsData(
                    processor=self.name, model=self.model_name, value=self.clock.now() - started
                )
            )

    async def _end_reply(self) -> None:
        self._held_space = self._held_text = ""
        rest = self._aggregator.flush()
        if rest:
            await self._sentence_ready()
            await self._say(rest)
        self._first_text_at = None
        await self._close_current()
        self._in_reply = False

    async def _say(
        self,
        text: str,
        text_type: TextType | str = TextType.SENTENCE,
        append_to_context: bool = True,
        interruptible: bool = True,
    ) -> None:
        spoken = await self._transform_text(text, text_type)
        if spoken is None:
            return
        announce: AggregatedTextFrame | None = None
        if text_type == TextType.BACKCHANNEL:
            # A BotBackchannelFrame: its text goes just ahead of its audio, so the assistant
            # aggregator can tell (on_assistant_backchannel) when the caller hears it.
            announce = AggregatedTextFrame(text, text_type=text_type)
            announce.append_to_context = False
            announce.will_be_spoken = True
        await self._speak(
            spoken,
            text,
            append_to_context=append_to_context,
            interruptible=interruptible,
            announce=announce,
        )

    async def _transform_text(self, text: str, text_type: TextType | str) -> str | None:
        """``text`` after the filters and the transforms registered for ``text_type``; None
        when one failed (reported upstream; the piece is not spoken, since a transform may
        exist to keep something out of the audio)."""
        if not self._text_filters and not self._text_transforms:
            return text
        self._pronounced = []  # (the markup of this piece only, for _speak)
        try:
            for text_filter in self._text_filters:
                await text_filter.reset_interruption()
                text = await text_filter.filter(text)
            for kind, transform in self._text_transforms:
                if kind != "*" and kind != text_type:
                    continue
                if isinstance(transform, PronunciationTransform):
                    if self._pronunciations_apply():
                        text, replaced = transform.replace_words(text)
                        self._pronounced += replaced
                    continue
                text = await transform(text, text_type)
        except Exception as e:
            await self.push_error(f"{self}: transforming text for TTS failed: {e}", exception=e)
            return None
        return text

    async def _speak(
        self,
        text: str,
        original: str,
        *,
        append_to_context: bool = True,
        interruptible: bool = True,
        announce: Frame | None = None,
    ) -> None:
        """Send ``text`` to the provider; ``original`` (the LLM's) is what the context gets.

        ``append_to_context`` and ``interruptible`` are the new reply context's (an open one
        keeps its own); ``announce`` goes out just ahead of the text's audio."""
        if not text.strip():
            return
        ctx = self._reply_ctx
        created = ctx is None
        if ctx is not None and ctx.finished and ctx.streamed:
            # A Pipecat-style service ended the reply's context before its last sentence (a
            # provider that says "done" per request): the rest goes in a new one, same id.
            ctx = self._reopen_tts_context(ctx)
        elif ctx is None:
            ctx = self._reply_ctx = self._new_tts_context(
                uuid.uuid4().hex, append_to_context, interruptible
            )
            self._turn_context_id = ctx.id
        if self._pronounced:  # markup the provider's word timing may echo
            if ctx.pronounced is None:
                ctx.pronounced = PronouncedWords()
            ctx.pronounced.add(self._pronounced)
            self._pronounced = []
        if announce is not None:
            ctx.queue.put_nowait(announce)
        if ctx.text_sent_at is None:
            ctx.text_sent_at = self.clock.now()
        ctx.texts.append(original.strip())
        await self.wait_ready()
        if created:
            await self.on_turn_context_created(ctx.id)  # (connected now, when it could be)
        if self.usage_metrics_enabled:
            await self.push_metrics(
                TTSUsageMetricsData(processor=self.name, model=self.model_name, value=len(text))
            )
        ctx.sentence_failed = False
        if self._append_trailing_space and self._aggregate_sentences and not text.endswith(" "):
            text += " "  # Pipecat's append_trailing_space: sentence mode only
        await self._call_event_handler("on_tts_request", ctx.id, text)
        synthesis = self.run_tts(text, ctx.id)
        if inspect.isasyncgen(synthesis):  # Pipecat's contract
            await self._speak_streamed(ctx, synthesis, original)
            return
        await cast(Coroutine[Any, Any, None], synthesis)  # callpipe's contract
        ctx.last_activity = self.clock.now()
        if not self.emits_word_timestamps and not ctx.sentence_failed:
            await self.add_text_after_audio(ctx.id, original)

    def _new_tts_context(
        self, context_id: str, append_to_context: bool = True, interruptible: bool = True
    ) -> TTSContext:
        """A new context, registered and queued for output behind what is there, opened by
        its ``TTSStartedFrame``."""
        ctx = TTSContext(
            id=context_id,
            last_activity=self.clock.now(),
            append_to_context=append_to_context,
            interruptible=interruptible,
        )
        self._contexts[ctx.id] = ctx
        started = TTSStartedFrame(context_id=ctx.id, append_to_context=append_to_context)
        ctx.queue.put_nowait(started)
        self._out.put_nowait(ctx)
        return ctx

    def _reopen_tts_context(self, ended: TTSContext) -> TTSContext:
        """The reply ``ended`` goes on in a new context of the same id (Pipecat-style
        services, see :meth:`remove_audio_context`)."""
        ctx = self._new_tts_context(ended.id, ended.append_to_context, ended.interruptible)
        ctx.streamed, ctx.socket_audio = ended.streamed, ended.socket_audio
        ctx.pronounced = ended.pronounced
        if self._reply_ctx is ended:
            self._reply_ctx = ctx
        return ctx

    async def _speak_streamed(
        self, ctx: TTSContext, synthesis: AsyncGenerator[object, Any], original: str
    ) -> None:
        """The rest of :meth:`_speak` for a Pipecat-style ``run_tts``: route what it yields
        into ``ctx``, then, if it yielded audio (an HTTP-style service), let the sentence's
        text follow that audio unless timed words came for it."""
        ctx.streamed = True
        words_before = ctx.words_added
        self._generating = ctx
        try:
            yielded_audio = await self._consume_synthesis(ctx.id, synthesis)
        finally:
            self._generating = None
        ctx.last_activity = self.clock.now()
        self._yields_audio = self._yields_audio or yielded_audio
        if not (self._yields_audio or ctx.sentence_failed):
            # It yielded no audio (``None``, or nothing: it sent the text and returned), as
            # Pipecat tells a socket service from one streaming its audio here: its receive
            # loop delivers the audio and ends the context.
            ctx.socket_audio = True
        else:
            self.sentence_audio_done(ctx.id)
            if not ctx.sentence_failed and ctx.words_added == words_before:
                await self.add_text_after_audio(ctx.id, original)
        if ctx.end_requested:
            await self.finish_context(ctx.id)

    async def _consume_synthesis(
        self, context_id: str, synthesis: AsyncGenerator[object, Any]
    ) -> bool:
        """Route each item ``synthesis`` yields into context ``context_id``: audio into its
        audio (resampled to the output rate), an ``ErrorFrame`` reported (the sentence then
        failed), ``TTSStartedFrame``/``TTSStoppedFrame`` dropped (the base brackets the reply),
        ``None`` skipped, other frames kept in order behind the audio. Returns whether audio
        was yielded."""
        yielded_audio = False
        async with aclosing(synthesis):
            async for item in synthesis:
                if item is None:
                    continue
                if isinstance(item, TTSAudioRawFrame):
                    yielded_audio = True
                    await self.append_audio(context_id, item.audio, item.sample_rate)
                elif isinstance(item, ErrorFrame):
                    await self._report_frame(item)
                    self.sentence_failed(context_id)
                elif isinstance(item, TTSStartedFrame | TTSStoppedFrame):
                    continue
                elif isinstance(item, Frame):
                    self._queue_in_order(context_id, item)
                else:
                    logger.warning("%s: run_tts yielded %r, not a frame; ignored", self, item)
        return yielded_audio

    async def _report_frame(self, error: ErrorFrame) -> None:
        """A Pipecat-style service's ``ErrorFrame``: reported as callpipe's providers report
        theirs (counted, classified, upstream)."""
        await self.report_error(
            error.error, fatal=error.fatal, reason="provider", category=error.category
        )

    def _queue_in_order(self, context_id: str, frame: Frame) -> None:
        """Put ``frame`` in context ``context_id`` behind the audio queued so far (dropped
        when the context is gone: it belonged to speech that was cut)."""
        ctx = self._contexts.get(context_id)
        if ctx is None or ctx.finished:
            return
        if ctx.resampler is not None:
            self._queue_audio(ctx, ctx.resampler.flush())
        ctx.queue.put_nowait(frame)

    async def _close_current(self) -> None:
        await self._reset_filters()
        ctx, self._reply_ctx = self._reply_ctx, None
        if ctx is None:
            return
        ctx.closed_at = self.clock.now()
        try:
            if ctx.streamed:
                self._turn_context_id = ctx.id
                await self.on_turn_context_completed()
            else:
                await self.flush_context(ctx.id)
        finally:
            self._turn_context_id = None

    async def _reset_filters(self) -> None:
        """A filter's state (an open code block) belongs to one reply."""
        for text_filter in self._text_filters:
            await text_filter.handle_interruption()

    # ------------------------------------------------------------------ ordered output

    def _enqueue(self, frame: Frame, direction: FrameDirection) -> None:
        self._out.put_nowait((frame, direction))

    def _start_output(self) -> None:
        if self._output_task is None or self._output_task.done():
            self._output_task = self.create_task(self._output_loop(), "output")

    async def _count_silent_context(self, ctx: TTSContext) -> None:
        """Pipecat 1.14's ``max_consecutive_zero_audio_contexts``: a reply the provider
        finished without any audio (an unknown voice, say, which no error reports) is reported
        as an error; after that many in a row the service is written off (``is_usable``
        False, the worker's ``processor_unusable_policy`` applies). 0: report, never write
        off. A reply that got audio starts the count over."""
        if ctx.got_audio:
            self._silent_contexts = 0
            return
        if ctx.text_sent_at is None:
            return  # nothing was sent: nothing to answer
        self._silent_contexts += 1
        limit = self._max_silent_contexts
        message = (
            f"{self}: the provider finished a reply without any audio "
            f"({self._silent_contexts} in a row)"
        )
        if limit and self._silent_contexts >= limit:
            await self.set_usable(False)
            message += "; giving up on this service"
        await self.report_error(message, reason="no_audio")

    async def set_usable(self, is_usable: bool) -> None:
        if is_usable:
            self._silent_contexts = 0  # whatever wrote the service off was dealt with
        await super().set_usable(is_usable)

    async def _output_loop(self) -> None:
        while True:
            item = await self._out.get()
            if isinstance(item, TTSContext):
                self._playing = item
                await self._play(item)
                self._playing = None
                try:
                    await self.on_audio_context_completed(item.id)
                except Exception:
                    logger.exception("%s: on_audio_context_completed failed", self)
                continue
            frame, direction = item
            await self.push_frame(frame, direction)
            if isinstance(frame, EndFrame) and self._end_pushed is not None:
                self._end_pushed.set()

    async def _play(self, ctx: TTSContext) -> None:
        # One timer per reply, re-armed every _IDLE_CHECK_SECS, watches for a provider that
        # never ends the reply; not a timeout around each get (one per audio chunk).
        loop = asyncio.get_running_loop()
        self._idle_watch = loop.call_later(_IDLE_CHECK_SECS, self._watch_idle, ctx)
        try:
            queue = ctx.queue
            while True:
                item = await queue.get()
                if item is None:
                    return
                if not ctx.interruptible:
                    item.interruptible = False  # the transport and the rest keep it through a cut
                if self._transport_destination is not None:
                    item.transport_destination = self._transport_destination
                await self.push_frame(item)
        finally:
            if self._idle_watch is not None:
                self._idle_watch.cancel()
                self._idle_watch = None

    def _watch_idle(self, ctx: TTSContext) -> None:
        """Timer callback while ``ctx`` plays: close a reply the provider went quiet on for
        ``context_timeout_secs`` after its text ended (its end-of-audio never came)."""
        if ctx.finished:
            return
        now = self.clock.now()
        if ctx.closed_at is not None and now - max(ctx.closed_at, ctx.last_activity) > (
            self._context_timeout
        ):
            logger.warning("%s: no end of audio from the provider; closing the reply", self)
            self._idle_watch = None
            self.create_task(self.finish_context(ctx.id), "close-idle-reply")
            return
        loop = asyncio.get_running_loop()
        self._idle_watch = loop.call_later(_IDLE_CHECK_SECS, self._watch_idle, ctx)

    def _drop_replies(self) -> tuple[list[TTSContext], asyncio.Task[None] | None]:
        """Interruption, the part that cannot wait: forget every open interruptible reply,
        stop the output task (it raises at its next resumption, so it pushes nothing more)
        unless it is playing an uninterruptible one, and empty the output queue of all but
        uninterruptible replies and frames. Returns the dropped contexts and the stopped task."""
        dropped = [ctx for ctx in self._contexts.values() if ctx.interruptible]
        for ctx in dropped:
            ctx.finished = True
            del self._contexts[ctx.id]
        if self._reply_ctx is not None and self._reply_ctx.interruptible:
            self._reply_ctx = None
        self._aggregator.reset()
        self._held_space = self._held_text = ""
        self._in_reply = False
        self._first_text_at = None
        task: asyncio.Task[None] | None = None
        if self._playing is None or self._playing.interruptible:
            task, self._output_task, self._playing = self._output_task, None, None
            if task is not None:
                task.cancel()
        kept: list[TTSContext | tuple[Frame, FrameDirection]] = []
        while not self._out.empty():
            item = self._out.get_nowait()
            if not (item.interruptible if isinstance(item, TTSContext) else item[0].interruptible):
                kept.append(item)
        for item in kept:
            self._out.put_nowait(item)
        return dropped, task

    async def _finish_interrupt(
        self, contexts: list[TTSContext], old_output: asyncio.Task[None] | None
    ) -> None:
        """Interruption, the rest: wait for the old output task, start a new one, and tell the
        provider to stop generating the dropped replies."""
        await cancel_and_wait(old_output)
        if self._started:
            self._start_output()
        await self._reset_filters()
        for ctx in contexts:
            try:
                await self.cancel_context(ctx.id)
            except Exception:
                logger.exception("%s: cancelling context failed", self)

    async def _end(self, frame: EndFrame, direction: FrameDirection) -> None:
        await self._end_reply()
        self._end_pushed = asyncio.Event()
        self._enqueue(frame, direction)
        self._start_output()
        try:
            async with asyncio.timeout(self._context_timeout + 5.0):
                await self._end_pushed.wait()
        except TimeoutError:
            logger.warning("%s: audio still pending at EndFrame; ending anyway", self)
            await cancel_and_wait(self._output_task)
            await self.push_frame(frame, direction)
        await self._stop_service(frame)

    async def cleanup(self) -> None:
        await super().cleanup()
        await cancel_and_wait(self._output_task)


_FIRST_AUDIO_SECS = 0.001
"""A word Pipecat's way timed at 0 s waits until this much of its context's audio went out."""


def _merge_punctuation(word_times: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """Pipecat's ``pre_merge_tokens``: tokens of only punctuation or spaces join the word
    before them."""
    merged: list[tuple[str, float]] = []
    for word, start in word_times:
        if merged and not any(ch.isalnum() for ch in word):
            previous, previous_start = merged[-1]
            merged[-1] = (previous + word, previous_start)
        else:
            merged.append((word, start))
    return merged


def _spoken_text(ctx: TTSContext, text: str, text_type: str = TextType.SENTENCE) -> TTSTextFrame:
    """A ``TTSTextFrame`` of ``ctx``'s words (kept out of the context when ``ctx`` is)."""
    frame = TTSTextFrame(text, text_type=text_type, context_id=ctx.id)
    if not ctx.append_to_context:
        frame.append_to_context = False
    return frame


def _text_type_argument(text_type: TextType | str, aggregation_type: TextType | str | None) -> str:
    """``text_type``, or the deprecated ``aggregation_type`` when given (Pipecat 1.13)."""
    if aggregation_type is None:
        return text_type
    warnings.warn(
        "aggregation_type is deprecated; use text_type instead",
        DeprecationWarning,
        stacklevel=3,
    )
    return aggregation_type


# ---------------------------------------------------------------------- Pipecat's base classes


def _warn_deprecated_base(service: object, base: str, instead: str) -> None:
    warnings.warn(
        f"{base} is deprecated (Pipecat 0.0.105; word timing and ordered contexts are in every "
        f"TTS service): subclass {instead} instead ({type(service).__name__})",
        DeprecationWarning,
        stacklevel=3,
    )


class WordTTSService(TTSService):
    """Pipecat's deprecated base of a TTS service with word timing: a :class:`TTSService`
    (which takes word timing from any service, :meth:`TTSService.add_word_timestamps`)."""

    def __init__(self, **kwargs: Any) -> None:
        _warn_deprecated_base(self, "WordTTSService", "TTSService")
        super().__init__(**kwargs)


class WebsocketTTSService(TTSService, WebsocketService):
    """Base of a TTS service written for Pipecat 1.14 that keeps one provider WebSocket.

    The subclass implements :class:`~callpipe.services.websocket_service.WebsocketService`'s
    socket methods and a ``run_tts`` generator that sends the text and yields ``None``; its
    receive loop delivers audio with :meth:`append_to_audio_context` (or, older style,
    ``push_frame(TTSAudioRawFrame(...))``, routed the same way), word timing with
    :meth:`add_word_timestamps` and the end of a context with :meth:`remove_audio_context`.

    Here: ``_disconnect`` and a reconnect end the open contexts (audio already received still
    plays, and the rest of a reply goes in a new context, as a new socket knows nothing of the
    old one's); the service disconnects on ``EndFrame``, ``CancelFrame`` and at cleanup;
    ``_report_error`` fires ``on_connection_error`` and reports the error upstream; a
    keepalive task is there for a subclass that overrides ``_send_keepalive`` and calls
    ``_create_keepalive_task(interval)``. The socket options are applied (see
    :class:`~callpipe.services.websocket_service.WebsocketService`), not ignored as callpipe's
    own services do.
    """

    def __init__(
        self,
        *,
        reconnect_on_error: bool = True,
        reconnect_backoff_min_wait: float | None = None,
        reconnect_backoff_max_wait: float | None = None,
        ws_close_timeout: float | None = None,
        ws_send_timeout: float | None = WS_SEND_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        TTSService.__init__(
            self, reconnect_on_error=reconnect_on_error, ws_close_timeout=ws_close_timeout, **kwargs
        )
        WebsocketService.__init__(
            self,
            reconnect_backoff_min_wait=reconnect_backoff_min_wait,
            reconnect_backoff_max_wait=reconnect_backoff_max_wait,
            reconnect_on_error=reconnect_on_error,
            ws_close_timeout=ws_close_timeout,
            ws_send_timeout=ws_send_timeout,
        )
        self._keepalive_task: asyncio.Task[None] | None = None

    async def disconnect(self) -> None:
        """callpipe's end-of-service call (``EndFrame``, ``CancelFrame``, cleanup): the
        subclass's ``_disconnect``."""
        await self._disconnect()

    async def _close_connection_contexts(self) -> None:
        """End the open contexts sent on this socket: no more of their audio comes once it
        closes, so only what of them was heard counts as spoken (:meth:`context_failed`). A
        context whose text waits for the socket is kept."""
        for ctx in list(self._contexts.values()):
            if ctx.streamed:
                self.context_failed(ctx.id)
                await self.finish_context(ctx.id)
        reply = self._reply_ctx
        if reply is not None and reply.finished:
            self._reply_ctx = None  # the rest of the reply opens a new context
            self._turn_context_id = None

    async def _disconnect(self) -> None:
        await self._close_connection_contexts()
        await super()._disconnect()

    async def _reconnect_websocket(self, attempt_number: int) -> bool:
        await self._close_connection_contexts()
        return await super()._reconnect_websocket(attempt_number)

    async def _report_error(
        self, error: ErrorFrame, force_treat_as_permanent: bool = False
    ) -> None:
        """The :class:`~callpipe.services.websocket_service.ReportErrorCallback` to give
        ``_receive_task_handler``."""
        await self._call_event_handler("on_connection_error", error.error)
        await self.push_error(error, force_treat_as_permanent=force_treat_as_permanent)

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Audio a subclass pushes itself (older Pipecat services did, from their receive
        loop) goes into its context like :meth:`append_to_audio_context`'s; the
        ``TTSStartedFrame``/``TTSStoppedFrame`` it pushes are dropped (the base brackets each
        context)."""
        if (
            direction is FrameDirection.DOWNSTREAM
            and isinstance(frame, TTSAudioRawFrame | TTSStartedFrame | TTSStoppedFrame)
            and asyncio.current_task() is not self._output_task
        ):
            if isinstance(frame, TTSAudioRawFrame):
                context_id = frame.context_id or self.get_active_audio_context_id()
                await self.append_to_audio_context(context_id, frame)
            return
        await super().push_frame(frame, direction)

    # ------------------------------------------------------------------ keepalive

    def _create_keepalive_task(self, interval: float) -> None:
        """Send :meth:`_send_keepalive` every ``interval`` seconds while the socket is open."""
        if self._keepalive_task is None or self._keepalive_task.done():
            self._keepalive_task = self.create_task(self._keepalive_task_handler(interval))

    async def _cancel_keepalive_task(self) -> None:
        await self.cancel_task(self._keepalive_task)
        self._keepalive_task = None

    async def _keepalive_task_handler(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                if self._is_keepalive_ready():
                    await self._send_keepalive()
            except Exception as exc:  # the receive loop deals with a lost socket
                logger.warning("%s: keepalive failed: %s", self, exc)

    def _is_keepalive_ready(self) -> bool:
        return self._websocket is not None and self._websocket.state is State.OPEN

    async def _send_keepalive(self) -> None:
        """Send the provider's keepalive message (a subclass using the keepalive overrides
        this)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _send_keepalive")


class InterruptibleTTSService(WebsocketTTSService):
    """Base of a WebSocket TTS service whose provider does not tag audio with a context id
    (Pipecat 1.14's): an interruption while a reply is in flight (synthesizing or playing) or
    the bot speaks reconnects the socket, so audio the provider still sends for the dropped
    reply never reaches the next one. Kept when only uninterruptible speech is open.

    The reconnect runs in its own task (never holding up the frames behind the interruption);
    meanwhile :meth:`get_active_audio_context_id` is None, so such audio is dropped, and the
    next text waits for the new socket before going to ``run_tts``.
    """

    passes_input_audio = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bot_speaking = False
        self._interruption_reconnect: asyncio.Task[None] | None = None
        self._socket_stale = False
        """Set from an interruption that reconnects until the new socket is open."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if not isinstance(frame, InterruptionFrame):
            await super().process_frame(frame, direction)
            if isinstance(frame, BotStartedSpeakingFrame):
                self._bot_speaking = True
            elif isinstance(frame, BotStoppedSpeakingFrame):
                self._bot_speaking = False
            return
        open_contexts = list(self._contexts.values())
        in_flight = self._bot_speaking or self._playing is not None or bool(open_contexts)
        only_kept = bool(open_contexts) and not any(c.interruptible for c in open_contexts)
        self._bot_speaking = False
        reconnect = in_flight and not only_kept
        if reconnect:
            self._socket_stale = True  # before any await: the next reply may open meanwhile
        await super().process_frame(frame, direction)
        task = self._interruption_reconnect
        if reconnect and (task is None or task.done()):
            self._interruption_reconnect = self.create_task(
                self._reconnect_after_interruption(), "interruption-reconnect"
            )

    async def _reconnect_after_interruption(self) -> None:
        try:
            await self._disconnect()
            await self._connect()
        finally:
            self._socket_stale = False

    def get_active_audio_context_id(self) -> str | None:
        if self._socket_stale:
            return None  # audio now is the dropped reply's, from the old socket
        return super().get_active_audio_context_id()

    async def wait_ready(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        task = self._interruption_reconnect
        if task is not None and not task.done():
            await asyncio.wait({task})  # (an interruption of this wait leaves it running)
        return await super().wait_ready(timeout)


class WebsocketWordTTSService(WebsocketTTSService):
    """Pipecat's deprecated name of :class:`WebsocketTTSService` (word timing is taken from
    every service)."""

    def __init__(self, *, reconnect_on_error: bool = True, **kwargs: Any) -> None:
        _warn_deprecated_base(self, "WebsocketWordTTSService", "WebsocketTTSService")
        super().__init__(reconnect_on_error=reconnect_on_error, **kwargs)


class InterruptibleWordTTSService(InterruptibleTTSService):
    """Pipecat's deprecated name of :class:`InterruptibleTTSService`."""

    def __init__(self, **kwargs: Any) -> None:
        _warn_deprecated_base(self, "InterruptibleWordTTSService", "InterruptibleTTSService")
        super().__init__(**kwargs)


class AudioContextTTSService(WebsocketTTSService):
    """Pipecat's deprecated base of a WebSocket service with audio contexts: a
    :class:`WebsocketTTSService` (every TTS service plays its contexts in order)."""

    def __init__(
        self,
        *,
        reuse_context_id_within_turn: bool | None = None,
        reconnect_on_error: bool = True,
        **kwargs: Any,
    ) -> None:
        if not isinstance(self, AudioContextWordTTSService):  # (which warns of its own)
            _warn_deprecated_base(self, "AudioContextTTSService", "WebsocketTTSService")
        super().__init__(
            reuse_context_id_within_turn=reuse_context_id_within_turn,
            reconnect_on_error=reconnect_on_error,
            **kwargs,
        )


class AudioContextWordTTSService(AudioContextTTSService):
    """Pipecat's deprecated base of a WebSocket service with audio contexts and word timing:
    a :class:`WebsocketTTSService`."""

    def __init__(self, *, reconnect_on_error: bool = True, **kwargs: Any) -> None:
        _warn_deprecated_base(self, "AudioContextWordTTSService", "WebsocketTTSService")
        super().__init__(reconnect_on_error=reconnect_on_error, **kwargs)
