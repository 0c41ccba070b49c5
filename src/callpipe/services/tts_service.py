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

Providers implement :meth:`run_tts` (send text or stream audio for one sentence) and, for
streaming sockets, :meth:`flush_context`/:meth:`cancel_context`; their receive loops call
:meth:`append_audio`, :meth:`add_word_timestamps` and :meth:`finish_context`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import warnings
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callpipe.audio.resample import StreamResampler
from callpipe.audio.utils import detect_speech_onset
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    AggregatedTextFrame,
    CancelFrame,
    EagerTranscriptionFrame,
    EndFrame,
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
from callpipe.services.ai_service import AIService, warn_deprecated_setter, warn_ignored_option
from callpipe.services.settings import TTSSettings, delta_from_frame, store_from
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

    @property
    def sample_rate(self) -> int:
        return self._init_sample_rate or self._out_sample_rate

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

    async def _settings_frame(self, frame: TTSUpdateSettingsFrame) -> bool:
        delta = delta_from_frame(frame, self.Settings, self)
        if delta is None:
            return False
        await self.update_settings(delta)
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

    async def run_tts(self, text: str, context_id: str) -> None:
        """Synthesize ``text`` as part of context ``context_id``.

        Streaming-socket providers send the text and return; their receive loop delivers the
        audio. HTTP providers stream the audio here (calling :meth:`append_audio`).
        """
        raise NotImplementedError

    async def flush_context(self, context_id: str) -> None:
        """No more text for this context. Default (blocking ``run_tts``): it is complete."""
        await self.finish_context(context_id)

    async def cancel_context(self, context_id: str) -> None:
        """Tell the provider to stop generating this context (interruption)."""

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

    async def add_word_timestamps(
        self, context_id: str | None, words: list[tuple[str, float, float]]
    ) -> None:
        """Word timing for a context: ``(word, start_secs, end_secs)`` from the context start.

        Pronunciation markup the context was sent and the provider reports back (whole, or
        split into several words) becomes the word as written, timed by the markup's end."""
        ctx = self._contexts.get(context_id) if context_id is not None else None
        if ctx is None or ctx.finished:
            return
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
        if self.emits_word_timestamps and not ctx.words_seen and ctx.texts:
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
        if ctx is None:
            ctx = self._reply_ctx = TTSContext(
                id=uuid.uuid4().hex,
                last_activity=self.clock.now(),
                append_to_context=append_to_context,
                interruptible=interruptible,
            )
            self._contexts[ctx.id] = ctx
            started = TTSStartedFrame(context_id=ctx.id, append_to_context=append_to_context)
            ctx.queue.put_nowait(started)
            self._out.put_nowait(ctx)
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
        if self.usage_metrics_enabled:
            await self.push_metrics(
                TTSUsageMetricsData(processor=self.name, model=self.model_name, value=len(text))
            )
        ctx.sentence_failed = False
        if self._append_trailing_space and self._aggregate_sentences and not text.endswith(" "):
            text += " "  # Pipecat's append_trailing_space: sentence mode only
        await self._call_event_handler("on_tts_request", ctx.id, text)
        await self.run_tts(text, ctx.id)
        ctx.last_activity = self.clock.now()
        if not self.emits_word_timestamps and not ctx.sentence_failed:
            await self.add_text_after_audio(ctx.id, original)

    async def _close_current(self) -> None:
        await self._reset_filters()
        ctx, self._reply_ctx = self._reply_ctx, None
        if ctx is None:
            return
        ctx.closed_at = self.clock.now()
        await self.flush_context(ctx.id)

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
