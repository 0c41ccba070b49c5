"""STTService and SegmentedSTTService: the caller's audio in, transcripts out.

The caller's audio arrives as system frames, processed inline on the transport's read path, so
a speech service must never block there: streaming services put the audio on a bounded queue
that a sender task drains into the provider socket (audio read before the socket is up is sent
as soon as it connects). Audio frames are passed on unchanged.

``SegmentedSTTService`` is for request/response providers: it keeps a short pre-roll, records
the utterance between ``UserStartedSpeakingFrame`` and ``UserStoppedSpeakingFrame`` and
transcribes it as one WAV file when the caller stops. At the pipeline's end (``EndFrame``) the
utterances already recorded are transcribed and pushed before the ``EndFrame`` passes on, within
``end_timeout_secs``.

Time to first byte of an STT is measured from the end of the caller's speech (VAD stop) to
the first final transcript after it. With Pipecat 1.14's ``stt_ttfb_timeout`` a final that
comes later than that many seconds after the stop is not measured (Pipecat waits that long and
measures to the last final within it; callpipe measures to the first, at once).

Keep-alive (Pipecat 1.14's ``keepalive_timeout`` / ``keepalive_interval``): a streaming service
given ``keepalive_timeout`` checks every ``keepalive_interval`` seconds and, once no audio went
to the provider for ``keepalive_timeout`` seconds (muted, or inactive behind a
``ServiceSwitcher``), sends it 100 ms of silence so it does not close the idle stream. Several
providers already keep their stream open on their own while muted (Deepgram's ``KeepAlive``,
Gladia, Soniox, AWS). A segmented service has no stream: it ignores the options, with a
warning. ``SegmentedSTTService(trailing_silence_secs=...)`` appends that much silence to each
utterance before it is transcribed (none by default: the utterance already ends with the VAD's
``stop_secs`` of silence; Pipecat 1.14 adds 0.5 s).

The deprecated ``set_model`` / ``set_language`` apply a settings update as an
``STTUpdateSettingsFrame`` does.

Pipecat 1.14's service frames: an ``STTMuteFrame(mute=True)`` stops the caller's audio reaching
the provider (it still passes on downstream) until ``STTMuteFrame(mute=False)``. At start, and
again when a ``ServiceSwitcher`` makes it active, each STT service broadcasts an
``STTMetadataFrame`` with its ``ttfs_p99_latency``: the 99th percentile of the time from the end
of speech to the final transcript, in seconds. Each service has a default (the figure Pipecat
1.14 publishes for the provider, :data:`DEFAULT_TTFS_P99` where it has none); pass
``ttfs_p99_latency=`` to use one measured for your own deployment.

Usage (``enable_usage_metrics``): each service reports ``STTUsageMetricsData``, the seconds of
audio it sent the provider since its previous report, as Pipecat 1.14 does. A streaming service
counts each batch it sends and reports at every final transcript and when the pipeline ends or
is cancelled; a segmented service reports each utterance when it sends it for transcription.
Counting happens per provider message, never per audio packet, and only with usage metrics on.

Custom services written against Pipecat 1.14's classes (``pipecat`` replaced by ``callpipe``)
run as they do there. callpipe's own providers use ``process_audio`` / ``push_transcript``
instead; which contract a class follows is decided once per class (``run_stt`` overridden with
an async generator), so its per-packet path is untouched.

- ``STTService.run_stt(audio)``, an async generator, gets each chunk of the caller's audio
  (unless muted, or the service is unusable); the frames it yields are pushed
  (``process_generator``: an ``ErrorFrame`` goes upstream as an error, ``None`` is skipped), an
  exception it raises is reported as a non-fatal ``ErrorFrame`` and the audio passes on either
  way. A streaming service sends the chunk and yields ``None``; its receive loop pushes
  ``InterimTranscriptionFrame`` / ``TranscriptionFrame`` with ``push_frame``.
- A ``TranscriptionFrame`` pushed downstream, from ``run_stt``, a receive loop or
  ``push_transcript``, takes the same path: it ends the TTFB measurement (with
  ``stt_ttfb_timeout`` as above), reports the usage counted so far, and is marked
  ``finalized`` after ``request_finalize()`` + ``confirm_finalize()`` (and always by a
  segmented service); then it goes on to the user aggregator.
- ``SegmentedSTTService.run_stt(audio)`` gets each utterance as a WAV file (raw PCM when
  ``wants_wav_segments`` is False) and may be an async generator yielding a
  ``TranscriptionFrame`` or an ``ErrorFrame``, or (callpipe's contract) a coroutine returning
  the text.
- ``WebsocketSTTService``: ``STTService`` with Pipecat's
  :class:`~callpipe.services.websocket_service.WebsocketService` (``_connect_websocket``,
  ``_disconnect_websocket``, ``_receive_messages``, ``self._websocket``,
  ``_websocket_connect``, ``_receive_task_handler(self._report_error)``, which reconnects a
  dropped socket); its ``_connect`` starts Pipecat's keep-alive (``keepalive_timeout``) and it
  disconnects at the end, on cancel and at cleanup.
- Also as in Pipecat: ``self._user_id`` (a ``UserAudioRawFrame``'s ``user_id``), the
  ``settings=`` store in ``self._settings`` with its language converted by the service's
  ``language_to_service_language`` at construction and on updates, ``_update_settings``
  (override it and call ``super()``), ``_request_reconnect`` / ``_do_reconnect`` (after the
  caller's turn and its final transcript), ``start_processing_metrics`` /
  ``stop_processing_metrics``, ``cancel_ttfb_metrics``, ``push_error(error_msg=...)``,
  ``_process_assistant_turn``, and a service's own ``_handle_transcription`` (the base defines
  none, so a subclass's is its own).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from itertools import islice
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import httpx
from websockets.protocol import State

from callpipe.audio.wav import pcm_to_wav
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    LLMContextAssistantTurnFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    STTMetadataFrame,
    STTMuteFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    UserAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import STTUsage, STTUsageMetricsData
from callpipe.processors.base_object import cancel_and_wait
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services._env import base_url as env_base_url
from callpipe.services._http import error_message, is_retryable
from callpipe.services.ai_service import AIService, warn_deprecated_setter, warn_ignored_option
from callpipe.services.settings import STTSettings, delta_from_frame, store_from
from callpipe.services.websocket_service import (
    WS_SEND_TIMEOUT,
    Message,
    ProviderWebsocket,
    WebsocketService,
)
from callpipe.transcriptions.language import Language
from callpipe.utils.types import NOT_GIVEN

logger = logging.getLogger(__name__)

DEFAULT_TTFS_P99 = 1.0
"""The ``ttfs_p99_latency`` of a service with no measured figure (Pipecat 1.14's fallback)."""


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


STTResult = AsyncGenerator[Frame | None, None] | Awaitable[str | None]
"""What ``run_stt`` returns: Pipecat's async generator of frames, or (callpipe's segmented
contract) an awaitable of the text heard."""

_KEEPALIVE_SILENCE_SECS = 0.1

RECONNECT_AFTER_TURN_SECS = 2.0
"""A reconnect asked for while the caller spoke waits at most this long after their turn for
its final transcript (Pipecat 1.14's default ``stt_ttfb_timeout``)."""


class STTService(AIService):
    """Base of speech-to-text services (see the module docstring for the two contracts a
    subclass may follow)."""

    kind = "stt"

    transcripts_are_final: ClassVar[bool] = False
    """Every ``TranscriptionFrame`` this service pushes is marked ``finalized`` (segmented
    services: one request per utterance, as Pipecat 1.14's ``SegmentedSTTService``)."""

    _runs_pipecat_stt: ClassVar[bool] = False
    """The class overrides :meth:`run_stt` with an async generator (Pipecat's contract); set
    once per class by ``__init_subclass__``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._runs_pipecat_stt = cls.run_stt is not STTService.run_stt and (
            inspect.isasyncgenfunction(cls.run_stt)
        )

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        audio_passthrough: bool = True,
        language: str | None = None,
        ttfs_p99_latency: float | None = None,
        settings: STTSettings | None = None,
        stt_ttfb_timeout: float | None = None,
        keepalive_timeout: float | None = None,
        keepalive_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        """``settings``: Pipecat 1.14's ``settings=`` for a service built on this class; its
        given fields win over ``model`` and ``language`` (a provider's own class handles its
        ``settings=`` itself and does not pass it here). ``stt_ttfb_timeout``,
        ``keepalive_timeout``, ``keepalive_interval``: see the module docstring."""
        super().__init__(**kwargs)
        self._stt_ttfb_timeout = stt_ttfb_timeout
        if keepalive_timeout is not None and (keepalive_timeout <= 0 or keepalive_interval <= 0):
            raise ConfigurationError(
                f"{type(self).__name__}: keepalive_timeout and keepalive_interval must be > 0"
            )
        self._idle_keepalive_secs = keepalive_timeout
        self._idle_keepalive_interval = keepalive_interval
        keeps_alive = isinstance(self, StreamingSTTService) or (
            self._runs_pipecat_stt and not isinstance(self, SegmentedSTTService)
        )
        if keepalive_timeout is not None and not keeps_alive:
            warn_ignored_option(
                self, "keepalive_timeout", "this service opens no stream to keep alive"
            )
        self._keepalive_task: asyncio.Task[None] | None = None
        self._last_audio_time = time.monotonic()
        """When audio last went to the provider (Pipecat's keep-alive reads it)."""
        self._init_sample_rate = sample_rate
        self._audio_passthrough = audio_passthrough
        self._language = language
        self._user_speaking = False
        self._muted = False
        self._ttfs_p99_latency = ttfs_p99_latency
        self._usage_bytes = 0
        self._user_id = ""
        """The ``user_id`` of the caller's audio (a ``UserAudioRawFrame``'s; empty for plain
        ``InputAudioRawFrame``), as Pipecat's: transcripts carry it."""
        self._stt_finalize_requested = False
        self._stt_finalize_confirmed = False
        self._reconnecting = False
        self._need_reconnect = False
        self._reconnect_audio: list[bytes] = []
        self._turn_final: asyncio.Event | None = None
        """Set by the next final transcript while a reconnect waits for the turn's final."""
        # The audio passthrough skips this class's push_frame (it only looks at transcripts)
        # unless a subclass overrides push_frame: the caller's audio passes 50 times a second.
        self._pass_audio: Callable[[Frame, FrameDirection], Awaitable[None]] = (
            super().push_frame
            if type(self).push_frame is STTService.push_frame
            else self.push_frame
        )
        # A given Settings subclass (a custom service's own fields) is kept as the store's type.
        store = type(settings) if isinstance(settings, self.Settings) else self.Settings
        self._settings: STTSettings = store(model=self.model_name, language=language)
        if settings is not None:
            self._settings = store_from(self._settings, settings)
        if self._runs_pipecat_stt and isinstance(self._settings.language, str):
            # Pipecat converts the language to the service's own code at construction.
            self._settings.language = self._pipecat_service_language(self._settings.language)
        if settings is not None or self._runs_pipecat_stt:
            self._sync_model_and_language()
        # Pipecat 1.14's connection events (see callpipe.services.ai_service); run in a task.
        for event in ("on_connected", "on_disconnected", "on_connection_error"):
            self._register_event_handler(event, background=True)

    # ------------------------------------------------------------------ settings (1.14)

    Settings: type[STTSettings] = STTSettings

    @property
    def settings(self) -> STTSettings:
        """Current settings; change them with ``STTUpdateSettingsFrame(delta=...)``."""
        return self._settings

    async def update_settings(self, delta: STTSettings) -> dict[str, Any]:
        """Merge ``delta`` and let the service act on what changed (old values returned)."""
        return await self._update_settings(delta)

    async def _update_settings(self, delta: STTSettings) -> dict[str, Any]:
        """What :meth:`update_settings` does, under Pipecat's name: a Pipecat-style service
        overrides this (calling ``super()``) and acts on the changed fields it returns, e.g. by
        reconnecting; callpipe's providers override :meth:`apply_settings`."""
        if self._runs_pipecat_stt and isinstance(delta.language, str):
            delta.language = self._pipecat_service_language(delta.language)
        changed = self._settings.apply_update(delta)
        if "model" in changed and isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        if "language" in changed:
            language = self._settings.language
            self._language = language if isinstance(language, str) else None
        if changed:
            await self.apply_settings(changed)
        return changed

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Hook: act on changed settings (``self.settings`` holds the new values)."""

    async def _settings_frame(self, frame: STTUpdateSettingsFrame) -> bool:
        """Apply ``frame`` if it is for this service (True), else leave it (False)."""
        delta = delta_from_frame(frame, self.Settings, self)
        if delta is None:
            return False
        await self.update_settings(delta)
        return True

    async def set_model(self, model: str) -> None:
        """Switch the model, as an ``STTUpdateSettingsFrame`` does (deprecated in 1.14)."""
        warn_deprecated_setter(self, "model", "STTUpdateSettingsFrame", model)
        await self._settings_frame(STTUpdateSettingsFrame(delta=STTSettings(model=model)))

    async def set_language(self, language: str) -> None:
        """Switch the language, as an ``STTUpdateSettingsFrame`` does (deprecated in 1.14)."""
        warn_deprecated_setter(self, "language", "STTUpdateSettingsFrame", language)
        await self._settings_frame(STTUpdateSettingsFrame(delta=STTSettings(language=language)))

    def _sync_model_and_language(self) -> None:
        """Model name and language read again from the settings (given at construction, or
        after they went back)."""
        if isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        language = self._settings.language
        self._language = language if isinstance(language, str) else None

    @property
    def sample_rate(self) -> int:
        return self._init_sample_rate or self._in_sample_rate

    def language_to_service_language(self, language: str) -> str | None:
        """The provider's code for ``language`` (a :class:`Language` tag); None: not supported.
        Default: the tag itself. A Pipecat-style service overrides this and finds the converted
        code in ``self._settings.language`` (see :meth:`_pipecat_service_language`)."""
        return language

    def _pipecat_service_language(self, language: str) -> str:
        """As Pipecat 1.14: a language that is a known tag, converted with
        :meth:`language_to_service_language`; any other string (or a tag the service does not
        support) kept as it is."""
        try:
            tag = Language(language)
        except ValueError:
            return language
        return self.language_to_service_language(tag) or language

    # ------------------------------------------------------------------ mute and metadata

    @property
    def is_muted(self) -> bool:
        """True while an ``STTMuteFrame(mute=True)`` holds the caller's audio back."""
        return self._muted

    @property
    def ttfs_p99_latency(self) -> float:
        """P99 seconds from the end of speech to the final transcript (see the module
        docstring), as announced in the ``STTMetadataFrame``."""
        if self._ttfs_p99_latency is None:
            return DEFAULT_TTFS_P99
        return self._ttfs_p99_latency

    def service_metadata_frame(self) -> STTMetadataFrame:
        return STTMetadataFrame(service_name=self.name, ttfs_p99_latency=self.ttfs_p99_latency)

    # ------------------------------------------------------------------ usage (1.14)

    def _record_stt_audio_usage(self, audio_bytes: int) -> None:
        """Count ``audio_bytes`` of 16-bit PCM as sent to the provider (usage metrics only)."""
        if self.usage_metrics_enabled:
            self._usage_bytes += audio_bytes

    async def emit_stt_usage_metrics(self) -> None:
        """Report the audio counted since the last report (nothing when there is none)."""
        audio_bytes, self._usage_bytes = self._usage_bytes, 0
        if not audio_bytes or self.sample_rate <= 0:
            return
        usage = STTUsage(audio_seconds=audio_bytes / (self.sample_rate * 2))
        logger.debug("%s: %.3f s of audio sent", self, usage.audio_seconds)
        await self.push_metrics(
            STTUsageMetricsData(processor=self.name, model=self.model_name, value=usage)
        )

    async def _stop_service(self, frame: EndFrame) -> None:
        await super()._stop_service(frame)
        await self.emit_stt_usage_metrics()

    async def _cancel_service(self, frame: CancelFrame) -> None:
        await super()._cancel_service(frame)
        await self.emit_stt_usage_metrics()

    # ------------------------------------------------------------------ provider API

    async def process_audio(self, audio: bytes) -> None:
        """Take 16-bit PCM at :attr:`sample_rate`. Must not block (called inline).

        callpipe's providers override this. The default is Pipecat's contract: each chunk goes
        to :meth:`run_stt` and what it yields is pushed (see :meth:`process_generator`); an
        exception it raises is reported as an error and the call goes on."""
        if not audio or not self.is_usable:
            return
        if self._reconnecting:  # Pipecat's _reconnect: sent once the connection is back
            self._reconnect_audio.append(audio)
            return
        result = self.run_stt(audio)  # NotImplementedError: the subclass overrode neither
        self._last_audio_time = time.monotonic()
        self._record_stt_audio_usage(len(audio))
        try:
            await self._handle_stt_result(result)
        except Exception as exc:
            await self.report_error(f"{self}: run_stt failed: {exc}", reason="provider")

    def run_stt(self, audio: bytes) -> STTResult:
        """Pipecat's hook: transcribe ``audio``. On :class:`STTService` it gets each chunk of
        the caller's audio (when :meth:`process_audio` is not overridden); on
        :class:`SegmentedSTTService` each utterance, as a WAV file.

        Written as an async generator (Pipecat's contract), the frames it yields are pushed: a
        ``TranscriptionFrame`` as a final transcript (see :meth:`push_frame`), an
        ``ErrorFrame`` upstream as an error, ``None`` skipped. Written as a coroutine returning
        text (callpipe's segmented contract), the text is pushed as a final transcript; None or
        empty text pushes nothing (nothing was heard, or the service pushed its own with
        :meth:`push_transcript`)."""
        raise NotImplementedError

    async def _handle_stt_result(self, result: STTResult) -> None:
        """Push what :meth:`run_stt` produced (see there)."""
        if isinstance(result, Awaitable):
            text = await result
            if text:
                await self.push_transcript(text, final=True)
        elif inspect.isasyncgen(result):
            await self.process_generator(result)
        else:
            raise TypeError(f"{type(self).__name__}.run_stt returned {type(result).__name__}")

    async def process_generator(self, generator: AsyncIterator[object]) -> None:
        """Push each frame ``generator`` yields: an ``ErrorFrame`` upstream as an error, any
        other downstream; ``None`` is skipped (Pipecat's ``AIService.process_generator``).
        Anything else it yields raises TypeError."""
        async for frame in generator:
            if frame is None:
                continue
            if isinstance(frame, ErrorFrame):
                await self.push_error(frame)
            elif isinstance(frame, Frame):
                await self.push_frame(frame)
            else:
                raise TypeError(f"{type(self).__name__}.run_stt yielded {type(frame).__name__}")

    async def on_user_started_speaking(self) -> None:
        """VAD: the caller started speaking."""

    async def on_user_stopped_speaking(self) -> None:
        """VAD: the caller stopped speaking (e.g. ask the provider to finalize now)."""

    async def push_transcript(
        self,
        text: str,
        *,
        final: bool,
        language: str | None = None,
        result: Any = None,
        finalized: bool = False,
        allow_empty: bool = False,
    ) -> None:
        """Push a transcript downstream (finals end the STT's time-to-first-byte measurement).

        ``result`` is the provider's own message (word timings etc.), carried on the frame. An
        empty transcript is dropped unless ``allow_empty`` (Pipecat's push_empty_transcripts).
        """
        text = text.strip()
        if not text and not allow_empty:
            return
        lang = language or self._language
        user = self._user_id
        if final:
            await self.push_frame(
                TranscriptionFrame(text, user, iso_now(), lang, result=result, finalized=finalized)
            )
        else:
            await self.push_frame(
                InterimTranscriptionFrame(text, user, iso_now(), lang, result=result)
            )

    async def push_frame(
        self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM
    ) -> None:
        """Pass ``frame`` on. A ``TranscriptionFrame`` going downstream is a final transcript,
        whoever made it (:meth:`push_transcript`, or a Pipecat-style service's receive loop or
        :meth:`run_stt`): it is marked ``finalized`` as :meth:`confirm_finalize` or
        :attr:`transcripts_are_final` say, ends the TTFB measurement and reports the usage
        counted so far, before it goes on."""
        if isinstance(frame, TranscriptionFrame) and direction is FrameDirection.DOWNSTREAM:
            await self._final_transcript(frame)
            await super().push_frame(frame, direction)
            if self._turn_final is not None:
                self._turn_final.set()  # out: a reconnect waiting for it may go ahead
            return
        await super().push_frame(frame, direction)

    async def _final_transcript(self, frame: TranscriptionFrame) -> None:
        if self._stt_finalize_confirmed or self.transcripts_are_final:
            frame.finalized = True
            self._stt_finalize_confirmed = False
        timeout = self._stt_ttfb_timeout
        if (
            timeout is not None
            and self._ttfb_start is not None
            and self.clock.now() - self._ttfb_start > timeout
        ):
            self.reset_ttfb_metrics()  # too late to be this turn's (stt_ttfb_timeout)
        await self.stop_ttfb_metrics()
        if self._usage_bytes:
            await self.emit_stt_usage_metrics()

    # ------------------------------------------------------------------ Pipecat's helpers

    def request_finalize(self) -> None:
        """Pipecat's: the service asked its provider to finalize the utterance; once the
        provider confirms (:meth:`confirm_finalize`) the next final is marked ``finalized``."""
        self._stt_finalize_requested = True

    def confirm_finalize(self) -> None:
        """Pipecat's: the provider confirmed the finalize :meth:`request_finalize` asked for."""
        if self._stt_finalize_requested:
            self._stt_finalize_requested = False
            self._stt_finalize_confirmed = True

    async def _process_assistant_turn(self, text: str) -> None:
        """Pipecat's hook: the bot's finished turn (``LLMContextAssistantTurnFrame``), e.g. for
        a provider that takes the conversation as context. Default: nothing."""

    # Pipecat's keep-alive and reconnect helpers, for a service that owns its connection.

    def _create_keepalive_task(self) -> None:
        """Start Pipecat's keep-alive (``keepalive_timeout`` given): every
        ``keepalive_interval`` seconds, once no audio went out for ``keepalive_timeout``
        seconds and :meth:`_is_keepalive_ready`, 100 ms of silence goes to
        :meth:`_send_keepalive`."""
        if self._idle_keepalive_secs is None:
            return
        if self._keepalive_task is not None and not self._keepalive_task.done():
            return
        self._last_audio_time = time.monotonic()
        self._keepalive_task = self.create_task(self._keepalive_task_handler(), "keepalive")

    async def _cancel_keepalive_task(self) -> None:
        await cancel_and_wait(self._keepalive_task)
        self._keepalive_task = None

    async def _keepalive_task_handler(self) -> None:
        timeout = self._idle_keepalive_secs
        assert timeout is not None
        while True:
            await asyncio.sleep(self._idle_keepalive_interval)
            try:
                if not self._is_keepalive_ready():
                    continue
                if time.monotonic() - self._last_audio_time < timeout:
                    continue
                await self._send_keepalive(
                    bytes(int(self.sample_rate * _KEEPALIVE_SILENCE_SECS) * 2)
                )
                self._last_audio_time = time.monotonic()
            except Exception as exc:  # a keep-alive failing is not the call failing
                logger.warning("%s: keep-alive not sent: %s", self, exc)

    def _is_keepalive_ready(self) -> bool:
        """Whether a keep-alive can be sent now (a service checks its connection)."""
        return True

    async def _send_keepalive(self, silence: bytes) -> None:
        """Send ``silence`` (16-bit PCM) the provider's way; a service that starts the
        keep-alive overrides this."""
        raise NotImplementedError(f"{type(self).__name__} must override _send_keepalive")

    async def _request_reconnect(self) -> None:
        """Pipecat's: reconnect now, or, if the caller is speaking, once their turn is over:
        after the final transcript that follows their ``UserStoppedSpeakingFrame`` (callpipe
        sends that frame at the VAD stop, before the final; Pipecat's aggregator after it), or
        :data:`RECONNECT_AFTER_TURN_SECS` after the stop if none comes."""
        if self._user_speaking:
            self._need_reconnect = True
        else:
            await self._reconnect()

    async def _reconnect_after_turn(self) -> None:
        final = self._turn_final = asyncio.Event()
        try:
            async with asyncio.timeout(RECONNECT_AFTER_TURN_SECS):
                await final.wait()
        except TimeoutError:
            pass
        finally:
            self._turn_final = None
        if self._user_speaking:
            self._need_reconnect = True  # they spoke again: after that turn
            return
        await self._reconnect()

    async def _reconnect(self) -> None:
        """Reconnect (:meth:`_do_reconnect`); the caller's audio meanwhile is kept and sent
        after. A failure is reported (``on_connection_error`` and an ``ErrorFrame``)."""
        self._need_reconnect = False
        self._reconnect_audio.clear()
        self._reconnecting = True
        try:
            await self._do_reconnect()
        except Exception as exc:
            await self._call_event_handler("on_connection_error", str(exc))
            await self.report_error(f"{self}: reconnect failed: {exc}", reason="disconnected")
            self._reconnect_audio.clear()
            return
        finally:
            self._reconnecting = False
        kept, self._reconnect_audio = self._reconnect_audio, []
        for audio in kept:
            await self.process_audio(audio)

    async def _do_reconnect(self) -> None:
        """Close and reopen the connection (:class:`WebsocketSTTService` does); default:
        nothing."""

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if type(frame) is InputAudioRawFrame:
            # The caller's audio, 50 times a second: neither a lifecycle nor a settings frame,
            # so the base handling below would only test and return.
            if not self._muted:
                await self.process_audio(frame.audio)
            if self._audio_passthrough:
                await self._pass_audio(frame, direction)
            return
        await super().process_frame(frame, direction)
        if await self.handle_lifecycle(frame, direction):
            return
        if isinstance(frame, STTUpdateSettingsFrame) and await self._settings_frame(frame):
            return
        if isinstance(frame, InputAudioRawFrame):
            self._user_id = frame.user_id if isinstance(frame, UserAudioRawFrame) else ""
            if not self._muted:
                await self.process_audio(frame.audio)
            if self._audio_passthrough:
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, STTMuteFrame):
            if frame.mute != self._muted:
                logger.debug("%s: %s", self, "muted" if frame.mute else "unmuted")
            self._muted = frame.mute
            return
        if isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
            self._stt_finalize_requested = self._stt_finalize_confirmed = False
            self.reset_ttfb_metrics()
            await self.on_user_started_speaking()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
            self.reset_ttfb_metrics()
            self.start_ttfb_metrics()
            await self.on_user_stopped_speaking()
            if self._need_reconnect:
                self._need_reconnect = False
                self.create_task(self._reconnect_after_turn(), "reconnect-after-turn")
        elif isinstance(frame, LLMContextAssistantTurnFrame):
            await self._process_assistant_turn(frame.text)
        await self.push_frame(frame, direction)


class StreamingSTTService(STTService):
    """An STT fed through a bounded audio queue and a sender task (see the module docstring).

    Audio goes to the provider in batches of ``send_batch_secs`` (100 ms by default, the upper
    end of the 20–100 ms chunks streaming STT providers ask for) rather than one 20 ms packet
    per message: a fifth of the messages, so a fifth of the per-message cost on both ends, for
    at most 80 ms more delay on interim results. When the caller stops
    speaking, :meth:`flush_audio` sends what is queued at once, before the provider is asked to
    finalize, so the turn's end waits for nothing.
    """

    max_buffer_secs = 5.0
    """Audio kept while the provider is not connected; older audio is dropped first."""

    send_batch_secs = 0.1
    """Audio collected into one provider message (0: send every packet on its own)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._audio: deque[bytes] = deque()
        self._audio_bytes = 0
        self._audio_ready: asyncio.Event | None = None
        self._sending = asyncio.Lock()
        self._sender: asyncio.Task[None] | None = None
        self._last_audio_sent = time.monotonic()
        self.dropped_audio_bytes = 0
        self.messages_sent = 0
        self.keepalives_sent = 0

    async def send_audio(self, audio: bytes) -> bool:
        """Send one chunk to the provider; False if it could not be sent."""
        raise NotImplementedError

    async def _start_service(self, frame: StartFrame) -> None:
        await super()._start_service(frame)
        self._audio_ready = asyncio.Event()
        self._sender = self.create_task(self._send_loop(), "stt-sender")
        if self._idle_keepalive_secs is not None:
            self._last_audio_sent = time.monotonic()
            self._keepalive_task = self.create_task(self._idle_keepalive(), "stt-keepalive")

    async def _idle_keepalive(self) -> None:
        """Pipecat 1.14's ``keepalive_timeout``: silence to a provider that heard nothing for
        that long (see the module docstring)."""
        timeout = self._idle_keepalive_secs
        assert timeout is not None
        silence = b""
        while True:
            await asyncio.sleep(self._idle_keepalive_interval)
            if time.monotonic() - self._last_audio_sent < timeout:
                continue
            async with self._sending:
                if len(silence) != int(self.sample_rate * 0.1) * 2:
                    silence = bytes(int(self.sample_rate * 0.1) * 2)
                try:
                    sent = await self.send_audio(silence)
                except Exception as exc:  # a keep-alive failing is not the call failing
                    logger.debug("%s: keep-alive not sent: %s", self, exc)
                    sent = False
            if sent:
                self._last_audio_sent = time.monotonic()
                self.keepalives_sent += 1

    async def _stop_service(self, frame: EndFrame) -> None:
        await cancel_and_wait(self._keepalive_task)
        await super()._stop_service(frame)

    async def _cancel_service(self, frame: CancelFrame) -> None:
        await cancel_and_wait(self._keepalive_task)
        await super()._cancel_service(frame)

    def _batch_bytes(self) -> int:
        return int(self.send_batch_secs * self.sample_rate) * 2

    async def process_audio(self, audio: bytes) -> None:
        self._audio.append(audio)
        self._audio_bytes += len(audio)
        limit = int(self.max_buffer_secs * self.sample_rate * 2)
        while self._audio_bytes > limit and len(self._audio) > 1:
            dropped = self._audio.popleft()
            self._audio_bytes -= len(dropped)
            self.dropped_audio_bytes += len(dropped)
        if self._audio_ready is not None and self._audio_bytes >= self._batch_bytes():
            self._audio_ready.set()

    async def _send_batch(self) -> bool:
        """Send the oldest ``send_batch_secs`` of queued audio as one message (a backlog, e.g.
        from before the socket was up, goes out as several such messages, in order); False if
        it could not be sent (it stays queued)."""
        async with self._sending:
            if not self._audio:
                return True
            want = self._batch_bytes()
            count, size = 0, 0
            for part in self._audio:
                count += 1
                size += len(part)
                if size >= want:
                    break
            chunk = self._audio[0] if count == 1 else b"".join(islice(self._audio, count))
            if not await self.send_audio(chunk):
                return False
            self._last_audio_sent = time.monotonic()
            self.messages_sent += 1
            self._record_stt_audio_usage(len(chunk))
            for _ in range(min(count, len(self._audio))):
                self._audio_bytes -= len(self._audio.popleft())
            return True

    async def flush_audio(self) -> None:
        """Send the queued audio now (at the end of the caller's turn, before finalizing)."""
        while self._sender is not None and self._audio:
            if not await self._send_batch():
                logger.debug("%s: could not flush %d queued bytes", self, self._audio_bytes)
                return

    async def _send_loop(self) -> None:
        assert self._audio_ready is not None
        if not await self.wait_ready(timeout=30.0):
            return
        while True:
            while self._audio_bytes < max(1, self._batch_bytes()):
                self._audio_ready.clear()
                await self._audio_ready.wait()
            if not await self._send_batch():
                await asyncio.sleep(0.05)

    async def stop_sending(self) -> None:
        await cancel_and_wait(self._sender)
        self._sender = None


class WebsocketSTTService(STTService, WebsocketService):
    """Pipecat 1.14's base of an STT with one provider WebSocket: :class:`STTService` with
    :class:`~callpipe.services.websocket_service.WebsocketService` (for services written
    against Pipecat's classes; callpipe's own use :class:`ProviderSocketSTTService`).

    The subclass implements ``run_stt`` (send the chunk on ``self._websocket``, yield None),
    ``_connect_websocket`` (``self._websocket = await self._websocket_connect(url, ...)``),
    ``_disconnect_websocket`` and ``_receive_messages`` (push the transcripts); its
    ``_connect`` calls ``super()._connect()`` and starts the receive task,
    ``self.create_task(self._receive_task_handler(self._report_error))``, which reconnects a
    dropped socket. ``_connect`` also starts the keep-alive (``keepalive_timeout``: silence on
    the socket once no audio went out for that long; override :meth:`_send_keepalive` for a
    provider that wants it wrapped); ``_disconnect`` stops it. The service disconnects at the
    pipeline's end, on cancel and at cleanup (:meth:`disconnect`), and ``_request_reconnect``
    (e.g. from ``_update_settings``) reopens the socket once the caller's turn is over.
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
        """Options as Pipecat 1.14's (see :class:`WebsocketService`); ``kwargs`` go to
        :class:`STTService` (``keepalive_timeout``, ``keepalive_interval``, ``settings``...)."""
        STTService.__init__(
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

    async def disconnect(self) -> None:
        """At the pipeline's end, on cancel and at cleanup: the subclass's ``_disconnect``."""
        await self._disconnect()

    async def _connect(self) -> None:
        await super()._connect()
        self._create_keepalive_task()

    async def _disconnect(self) -> None:
        await super()._disconnect()
        await self._cancel_keepalive_task()

    async def _do_reconnect(self) -> None:
        await self._disconnect()
        await self._connect()

    def _is_keepalive_ready(self) -> bool:
        return self._websocket is not None and self._websocket.state is State.OPEN

    async def _send_keepalive(self, silence: bytes) -> None:
        """Send ``silence`` as one binary message (the audio the provider is sent anyway)."""
        if self._websocket is None:
            return
        await self._websocket.send(silence)
        self._record_stt_audio_usage(len(silence))

    async def _report_error(
        self, error: ErrorFrame, force_treat_as_permanent: bool = False
    ) -> None:
        """The error callback of :meth:`_receive_task_handler`: ``on_connection_error`` with
        the error's text, then the ``ErrorFrame`` upstream."""
        await self._call_event_handler("on_connection_error", error.error)
        await self.push_error(error, force_treat_as_permanent=force_treat_as_permanent)


StreamEnd = tuple[Message, Callable[[Message], bool]]
"""A message that ends a provider stream and the test for the provider's last answer to it."""


class SessionSocket(ProviderWebsocket):
    """A socket whose session takes its settings in its first message (see
    :meth:`ProviderSocketSTTService._first_message`), with what is known of that session. The
    callbacks get the socket first, so a service keeps each session's state on its socket; a
    subclass adds the provider's own.
    """

    def __init__(
        self,
        first_message: Message,
        *,
        replacing: bool = False,
        on_message: Callable[[Self, Message], Awaitable[None]],
        on_reconnected: Callable[[Self], Awaitable[None]],
        on_failed: Callable[[Self, str], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            on_message=lambda raw: on_message(self, raw),
            on_reconnected=lambda: on_reconnected(self),
            on_failed=lambda text: on_failed(self, text),
            **kwargs,
        )
        self.first_message = first_message
        """Sent first on the socket, and again after a reconnect (by the service)."""
        self.error_reported = False
        """An error the provider sent on this session was reported (its close is no news)."""
        self.answered = asyncio.Event()
        """Set when the provider accepted or refused the session."""
        self.refusal: str | None = None
        """The provider's reason for refusing or ending the session, if it gave one."""
        self.replacing = replacing
        """Opened to replace the live socket and not in use yet (its opener reports errors);
        cleared by the service once it is swapped in."""

    def refuse(self, reason: str) -> None:
        """The provider refused (or ended) the session."""
        self.refusal = reason
        self.answered.set()

    def refused_while_replacing(self, reason: str) -> bool:
        """An error on a socket not swapped in yet is its opener's to report: note it as the
        refusal and return True; on the live socket return False (the service reports it)."""
        if not self.replacing:
            return False
        self.refuse(reason)
        return True

    async def wait_answer(self, timeout: float, *, required: bool) -> None:  # noqa: ASYNC109
        """Wait at most ``timeout`` seconds for the provider's answer; raise ConnectionError if
        it refused the session, or (``required``) if it did not answer in time."""
        try:
            async with asyncio.timeout(timeout):
                await self.answered.wait()
        except TimeoutError:
            if required:
                raise ConnectionError("the provider did not answer the session's start") from None
        if self.refusal is not None:
            raise ConnectionError(f"the provider refused it {self.refusal}")


class ProviderSocketSTTService(StreamingSTTService):
    """A streaming STT with one :class:`ProviderWebsocket` per call (``self._ws``).

    The lifecycle lives here: :meth:`start` opens the socket built by :meth:`_build_socket`;
    :meth:`stop` sends the queued audio, then the message :meth:`_stream_end` gives, and waits
    (at most ``end_timeout_secs``) for the provider's answer before closing; :meth:`disconnect`
    closes at once (sending ``_final_message`` if set).

    Settings at runtime, make-before-break: :meth:`_want_new_socket` notes a change the live
    socket does not carry and starts a task that opens a socket for the current settings, swaps
    it in under the send lock (no batch is on its way to the old one then) and retires the old
    one: :meth:`_stream_end`, then its last results (at most ``retire_timeout_secs``; or, with
    ``retire_waits_for_results`` False, the end message and an immediate close). The task goes
    round again while changes made meanwhile leave the live socket out of date
    (:meth:`_socket_outdated`). If the provider refuses a socket, the old one stays, the noted
    changes go back (:meth:`_settings_reverted` follows them) and a non-fatal error is reported.
    The default :meth:`apply_settings` suits providers that take every setting in the socket's
    query or in its first message (:meth:`_first_message`, sent as soon as a socket connects; a
    new socket is swapped in only once :meth:`_session_accepted` returns); the others override
    it and call :meth:`_want_new_socket` for what needs a socket.

    Not Pipecat's ``WebsocketSTTService`` (its hooks differ); callpipe's own base for the
    providers it ships.
    """

    end_timeout_secs = 2.0
    """At the end of the call, how long the provider may take to answer :meth:`_stream_end`."""

    retire_timeout_secs = 3.0
    """After a settings change, how long the old socket may take to answer."""

    retire_waits_for_results = True
    """After a settings change, wait for the old socket's last results (False: send it the
    :meth:`_stream_end` message and close it at once)."""

    _final_message: Message | None = None
    """Sent on the socket as :meth:`disconnect` closes it (None: nothing)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._ws: ProviderWebsocket | None = None
        self._switch_task: asyncio.Task[None] | None = None
        self._opened_url = ""
        """The URL the live socket was opened with."""
        self._opened_first: Message | None = None
        """The :meth:`_first_message` the live socket was opened with."""
        self._unapplied: dict[str, Any] = {}
        """Changed settings the live socket does not carry: ``{name: its value there}``."""
        self._turn_open = False
        """A turn the provider decides is under way (its start proposed, its end not yet)."""
        self._send_on_open: asyncio.Task[None] | None = None
        """A turn's end message waiting for the socket to open (the turn ended before it did)."""

    # ------------------------------------------------------------------ hooks

    def socket_url(self) -> str:
        """The socket's URL for the current settings."""
        raise NotImplementedError

    def _build_socket(self) -> ProviderWebsocket:
        """A socket (not connected yet) for the current settings."""
        raise NotImplementedError

    def _new_socket(self) -> ProviderWebsocket:
        """:meth:`_build_socket`, reporting its connection events to this service."""
        ws = self._build_socket()
        ws.listener = self
        return ws

    def _first_message(self) -> Message | None:
        """For a provider that takes its session's settings in the socket's first message
        rather than in the URL: that message for the current settings (None: no such message).
        Sent on each new socket as soon as it connects; the live socket is out of date when it
        differs from the one it was opened with. (After a reconnect the service sends it
        again.)"""
        return None

    async def _session_accepted(self, ws: ProviderWebsocket) -> None:
        """Hook: ``ws``, opened for changed settings, has been sent its first message; return
        once the provider accepted the session, raise if it refused it (the live socket then
        stays). Default: the handshake was the answer."""

    def _stream_end(self) -> StreamEnd | None:
        """What ends the stream on a socket being closed gracefully (None: nothing to wait
        for). Called once per socket, with no audio on its way to it."""
        return None

    def _socket_outdated(self) -> bool:
        """True when the live socket does not fit the current settings (default: its URL
        differs from :meth:`socket_url`, or its first message from :meth:`_first_message`)."""
        return self.socket_url() != self._opened_url or self._first_message() != self._opened_first

    def _socket_replaced(self) -> None:
        """Hook, under the send lock: a new socket is live; forget the old one's state."""

    def _settings_reverted(self) -> None:
        """Hook: the settings went back (a socket with them was refused); what is read from
        them follows (the model name, the language, the URL a reconnect opens)."""
        self._sync_model_and_language()
        if self._ws is not None:
            self._ws.url = self.socket_url()

    async def _cancel_tasks(self) -> None:
        """Stop the background work on the socket (a switch or a deferred send under way)."""
        await cancel_and_wait(self._switch_task)
        self._switch_task = None
        await cancel_and_wait(self._send_on_open)
        self._send_on_open = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, frame: StartFrame) -> None:
        self._unapplied.clear()
        self._ws = ws = self._new_socket()
        self._opened_url, self._opened_first = ws.url, self._first_message()
        await self._connect(ws, self._opened_first)

    @staticmethod
    async def _connect(ws: ProviderWebsocket, first: Message | None) -> None:
        await ws.connect()
        if first is not None:
            await ws.send(first, wait_secs=0)

    async def stop(self, frame: EndFrame) -> None:
        """Queued audio out, then the stream's end; the answers before it are pushed."""
        await self._cancel_tasks()
        await self.flush_audio()
        await self.stop_sending()
        ws = self._ws
        try:
            end = self._stream_end() if ws is not None else None
            if ws is not None and end is not None:
                await ws.finish(end[0], until=end[1], timeout=self.end_timeout_secs)
        finally:
            await self.disconnect()

    async def disconnect(self) -> None:
        await self._cancel_tasks()
        await self.stop_sending()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(final_message=self._final_message)

    async def _flush_then_send(self, message: Message) -> bool:
        """At the end of the caller's turn: the queued audio out, then ``message`` (e.g. the
        provider's finalize request) on the same socket.

        A turn that ends while the socket is still opening (a slow provider handshake, a
        short first utterance) or reconnecting keeps its audio queued, and ``message`` follows
        it once the socket is open (at most one such message waits: it flushes every turn
        queued before it). True when ``message`` was sent or waits to be; False when there is
        no socket or it could not be sent."""
        ws = self._ws
        if ws is None and not self._starting():
            return False
        if ws is None or not ws.connected:
            if self._send_on_open is None or self._send_on_open.done():
                self._send_on_open = self.create_task(
                    self._flush_then_send_when_open(message), "send-on-open"
                )
            return True
        return await self._end_turn(ws, message, wait_secs=0)

    async def _end_turn(self, ws: ProviderWebsocket, message: Message, *, wait_secs: float) -> bool:
        """The queued audio out, then ``message`` on ``ws`` (waiting at most ``wait_secs`` for
        it to be open); True when it was sent. A provider that sends it only on a condition
        (e.g. audio went out since the last one) overrides this."""
        await self.flush_audio()
        return await ws.send(message, wait_secs=wait_secs)

    async def _flush_then_send_when_open(self, message: Message) -> None:
        if not await self.wait_ready():
            return  # the socket never opened: the start error was reported
        ws = self._ws
        if ws is None:
            return
        sent = await self._end_turn(ws, message, wait_secs=self.end_timeout_secs)
        if not sent and not ws.connected:
            logger.warning("%s: the turn's end could not be sent: the socket is not open", self)

    async def _propose_turn_start(self) -> None:
        """The provider heard the caller start a turn: proposed once, until the turn ends."""
        if not self._turn_open:
            self._turn_open = True
            await self.broadcast_frame(ProposedUserStartedSpeakingFrame)

    async def _propose_turn_end(self) -> None:
        """The provider ended the turn (or its socket went away): proposed if one is open."""
        if self._turn_open:
            self._turn_open = False
            await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")

    async def _session_error(
        self, ws: SessionSocket, said: str, *, final: bool, auth_hint: str | None = None
    ) -> None:
        """Report the error ``said`` the provider sent on the live session ``ws``. ``final``:
        it refused the request itself, so ``ws`` is closed rather than reconnected to be
        refused again; with ``auth_hint`` it rejected the credentials (fatal)."""
        ws.error_reported = True
        if final:
            self.create_task(ws.close(), "close-refused")
        if auth_hint is not None:
            await self.report_error(
                f"{self}: the provider rejected the credentials {said}. {auth_hint}",
                fatal=True,
                reason="auth",
            )
            return
        await self.report_error(f"{self}: the provider's error {said}", reason="provider")

    async def _session_failed(self, ws: SessionSocket, message: str) -> None:
        """``ws`` gave up reconnecting: reported, unless the provider's error was already."""
        if ws.error_reported:
            logger.info("%s: %s", self, message)
            return
        await self._on_socket_failed(message)

    # ------------------------------------------------------------------ settings at runtime

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Settings in the socket's query: a new query opens a new socket."""
        self._want_new_socket(changed)

    def _want_new_socket(self, changed: dict[str, Any], *, now: bool = True) -> None:
        """Note ``changed`` (``{name: old value}``) as not on the live socket and, if ``now``,
        start the switch unless one is under way (it goes round again for later changes)."""
        if self._ws is None:
            return  # not started (or ended): the next socket is opened with these settings
        for name, old in changed.items():
            self._unapplied.setdefault(name, old)
        if not now or not self._unapplied:
            return
        if self._switch_task is not None and not self._switch_task.done():
            return
        if self._socket_outdated():
            self._switch_task = self.create_task(self._switch_sockets(), "switch-socket")
        else:
            self._unapplied.clear()  # e.g. changed back, or not in the query

    async def _switch_sockets(self) -> None:
        if not await self.wait_ready():
            return  # the first socket never opened: the start error was reported
        while (old := self._ws) is not None:
            if not self._socket_outdated():
                self._unapplied.clear()
                return
            tried, self._unapplied = self._unapplied, {}
            new = self._new_socket()
            first = self._first_message()
            try:
                try:
                    await self._connect(new, first)
                    await self._session_accepted(new)
                except Exception as exc:
                    restore_settings(self._settings, self._unapplied | tried)
                    self._unapplied = {}
                    self._settings_reverted()
                    await self.report_error(
                        f"{self}: could not open a socket with the new settings ({exc}); "
                        "still transcribing with the previous ones",
                        reason="settings",
                    )
                    if not self._unapplied:
                        return
                    continue  # changed again meanwhile
                async with self._sending:  # no batch is on its way to the old socket now
                    if self._ws is not old:
                        return  # disconnected meanwhile (`new` is closed below)
                    end = self._stream_end()  # the old socket's
                    self._ws, self._opened_url, self._opened_first = new, new.url, first
                    if isinstance(new, SessionSocket):
                        new.replacing = False
                    self._socket_replaced()
            finally:
                if self._ws is not new:
                    await new.close()
            logger.info("%s: reopened the socket with the new settings", self)
            await self._retire(old, end)

    async def _retire(self, old: ProviderWebsocket, end: StreamEnd | None) -> None:
        """End a socket a new one replaced (see ``retire_waits_for_results``)."""
        if end is None or not self.retire_waits_for_results:
            await old.close(final_message=end[0] if end is not None else None)
            return
        try:
            await old.finish(end[0], until=end[1], timeout=self.retire_timeout_secs)
        finally:
            await old.close()  # also when the switch is cancelled meanwhile


def json_object(raw: Message) -> dict[str, Any]:
    """A provider's text message as a dict; ``{}`` for binary data or JSON that is not an
    object, so that no message type matches it (text that is not JSON raises ValueError)."""
    if isinstance(raw, bytes):
        return {}
    message = json.loads(raw)
    return message if isinstance(message, dict) else {}


def message_of_type(kind: str) -> Callable[[Message], bool]:
    """A test for the provider's ``{"type": kind, ...}`` message, e.g. its last answer to the
    end of a stream."""
    return message_where(lambda message: message.get("type") == kind, f'"{kind}"')


def message_where(test: Callable[[dict[str, Any]], bool], *hints: str) -> Callable[[Message], bool]:
    """A test for a provider's JSON message that passes ``test``; only text holding one of
    ``hints`` is parsed (a text search first, so other messages cost little)."""

    def matches(raw: Message) -> bool:
        if not isinstance(raw, str) or not any(hint in raw for hint in hints):
            return False
        try:
            return test(json_object(raw))
        except ValueError:
            return False

    return matches


def socket_address(url: str | None, env_var: str, default: str, path: str) -> str:
    """A provider socket's address: ``url``, else ``$env_var``, else ``default``; an address
    without a path (a bare origin) gets the provider's ``path``."""
    address = env_base_url(url, env_var, default)
    if urlsplit(address).path in ("", "/"):
        address = address.rstrip("/") + path
    return address


def restore_settings(settings: STTSettings, changed: dict[str, Any]) -> None:
    """Put back the values ``apply_update`` reported as changed (``{name: old value}``)."""
    fields = {f.name for f in dataclasses.fields(settings)}
    for name, old in changed.items():
        if name in fields:
            setattr(settings, name, old)
        elif old is NOT_GIVEN:
            settings.extra.pop(name, None)
        else:
            settings.extra[name] = old


class SegmentedSTTService(STTService):
    """Transcribes each VAD-bounded utterance as one WAV request (see the module docstring).

    A subclass implements :meth:`run_stt`, which gets each utterance as a WAV file (raw PCM if
    :attr:`wants_wav_segments` is False): callpipe's way, a coroutine returning the text heard;
    Pipecat's way, an async generator yielding a ``TranscriptionFrame`` (or an ``ErrorFrame``).
    Every transcript it pushes is marked ``finalized``.
    """

    transcripts_are_final: ClassVar[bool] = True

    def __init__(
        self,
        *,
        preroll_secs: float = 0.5,
        max_utterance_secs: float = 30.0,
        min_utterance_secs: float = 0.1,
        trailing_silence_secs: float = 0.0,
        **kwargs: Any,
    ) -> None:
        """``trailing_silence_secs``: silence appended to each utterance before it is
        transcribed (Pipecat 1.14's; see the module docstring)."""
        super().__init__(**kwargs)
        if trailing_silence_secs < 0:
            raise ConfigurationError(f"{type(self).__name__}: trailing_silence_secs must be >= 0")
        self._trailing_silence_secs = trailing_silence_secs
        self._preroll_secs = preroll_secs
        self._max_secs = max_utterance_secs
        self._min_secs = min_utterance_secs
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._utterance = bytearray()
        self._segments: asyncio.Queue[bytes] = asyncio.Queue()
        self._transcriber: asyncio.Task[None] | None = None

    #: At the pipeline's end, how long the utterances already recorded may take to be
    #: transcribed before the ``EndFrame`` passes on without them.
    end_timeout_secs = 4.0

    @property
    def wants_wav_segments(self) -> bool:
        """Whether :meth:`run_stt` gets each utterance as a WAV file (True) or as raw 16-bit
        PCM (a local model overrides this to return False), as Pipecat 1.14's."""
        return True

    async def _post_utterance(
        self,
        client: httpx.AsyncClient,
        path: str,
        *,
        data: Mapping[str, str | list[str]] | None = None,
        file: tuple[str, bytes, str] | None = None,
        content: bytes | None = None,
        origin: str,
        auth_hint: str,
    ) -> httpx.Response | None:
        """Send one utterance to an HTTP provider as a multipart form (``file`` beside the
        ``data`` fields), or as the request's whole body (``content``, typed by the client's
        ``Content-Type``). A network error or a 429/5xx answer is tried once more. Returns the
        200 response; otherwise reports the error, naming ``origin`` (a 401/403 as a fatal
        error, with ``auth_hint`` added), and returns None."""
        for attempt in range(2):
            try:
                if content is not None:
                    response = await client.post(path, content=content)
                else:
                    files = {"file": file} if file is not None else None
                    response = await client.post(path, data=data, files=files)
            except httpx.HTTPError as exc:
                if attempt == 0:
                    continue
                await self.report_error(
                    f"{self}: transcription request failed: {type(exc).__name__}: {exc}",
                    reason="network",
                )
                return None
            if response.status_code == 200:
                return response
            if is_retryable(response.status_code) and attempt == 0:
                continue
            fatal = response.status_code in (401, 403)
            await self.report_error(
                f"{self}: HTTP {response.status_code} from {origin}: "
                f"{error_message(response.status_code, response.content)}"
                + (f" {auth_hint}" if fatal else ""),
                fatal=fatal,
                reason="auth" if fatal else "http",
            )
            return None
        return None

    async def _start_service(self, frame: StartFrame) -> None:
        await super()._start_service(frame)
        self._transcriber = self.create_task(self._transcribe_loop(), "transcriber")

    async def process_audio(self, audio: bytes) -> None:
        if self._user_speaking:
            if len(self._utterance) < self._max_secs * self.sample_rate * 2:
                self._utterance += audio
            return
        self._preroll.append(audio)
        self._preroll_bytes += len(audio)
        limit = int(self._preroll_secs * self.sample_rate * 2)
        while self._preroll_bytes > limit and len(self._preroll) > 1:
            self._preroll_bytes -= len(self._preroll.popleft())

    async def on_user_started_speaking(self) -> None:
        # VAD reports speech only after it has lasted start_secs: keep what came before.
        self._utterance = bytearray(b"".join(self._preroll))
        self._preroll.clear()
        self._preroll_bytes = 0

    async def on_user_stopped_speaking(self) -> None:
        pcm = bytes(self._utterance)
        self._utterance = bytearray()
        if len(pcm) < self._min_secs * self.sample_rate * 2 or not self.is_usable:
            return
        if self._trailing_silence_secs:
            pcm += bytes(int(self.sample_rate * self._trailing_silence_secs) * 2)
        self._segments.put_nowait(
            pcm_to_wav(pcm, self.sample_rate) if self.wants_wav_segments else pcm
        )
        self._record_stt_audio_usage(len(pcm))
        await self.emit_stt_usage_metrics()

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        if self._transcriber is None or self._transcriber.done():
            return
        try:
            async with asyncio.timeout(self.end_timeout_secs):
                await self._segments.join()
        except TimeoutError:
            logger.warning(
                "%s: %d utterance(s) not transcribed within %.1f s of the end",
                self,
                self._segments.qsize() + 1,
                self.end_timeout_secs,
            )

    async def _transcribe_loop(self) -> None:
        while True:
            wav = await self._segments.get()
            try:
                # callpipe's contract (text returned) or Pipecat's (frames yielded).
                await self._handle_stt_result(self.run_stt(wav))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self.report_error(f"{self}: transcription failed: {exc}", reason="provider")
            finally:
                self._segments.task_done()
