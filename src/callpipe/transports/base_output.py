"""BaseOutputTransport: bot audio out, paced like a real audio device, with playback tracking.

Bot audio (``OutputAudioRawFrame``) is resampled once to the output rate, cut into chunks of
``audio_out_10ms_chunks`` × 10 ms and written on a schedule anchored at the stream's start:
chunk *n* is due at ``start + n × chunk`` and is sent ``audio_out_send_ahead_ms`` early, so a
late wake-up neither shifts later packets nor reaches the caller as a gap. If we fall so far
behind that the provider must have run dry, the schedule is re-anchored (that gap was audible
anyway; bursting would only hide it from our own clock).

Coalescing: when more audio is already at hand (the TTS runs ahead of real time; its frames wait
in this processor's queue), up to ``audio_out_max_message_ms`` of whole packets go out as one
message at the first packet's slot. The provider plays them back to back, so the caller hears the
same thing; what costs CPU on a busy server is the number of messages (each one a socket write,
a timer and a task wake-up), not their size. The first packet of a reply goes out as soon as it
is there, never held back for more, and a barge-in's clear drops whatever the provider buffered.

Audio, messages and other data frames share the processor's ordered queue, so a
``TransportMessageFrame`` goes out after the audio queued before it. An
interruption (a system frame, handled at once) cancels the chunk being paced, drops queued
audio, reports how much of the reply the caller heard, and sends the provider's clear message.
Uninterruptible audio (``frame.interruptible`` False, as the TTS marks the speech of an
uninterruptible ``TTSSpeakFrame``) is the exception: queued, it stays queued and plays after
the cut; being sent or sent and not yet played, the stream is not cut at all (no clear, no
report, the bot keeps speaking) and only the interruptible frames queued behind it are dropped.

Audio processing (Pipecat 1.x options): bot audio goes through ``audio_out_filter``, then the
volume (``audio_out_volume``, ``VolumeFrame``, ``VolumeGainFrame``), then ``audio_out_mixer``.
With a mixer the wire never goes quiet: while no bot audio is being played, a background task
sends ``mixer.mix(silence)`` every packet time on its own schedule, and stops the moment bot
audio starts (whose packets are mixed on the bot's schedule).

Playback tracking: where the serializer has provider marks, marks go out with the audio and
their acknowledgements tell what was played; otherwise a time estimate is used. "Bot stopped
speaking", the passing on of frames that followed bot audio (``TTSTextFrame``, the end of a
response, the audio frames themselves) and the hang-up after a goodbye all wait for playback,
not for the last byte to leave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from callpipe.audio.utils import scale_audio
from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotSpeakingFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    ControlFrame,
    EndFrame,
    FilterControlFrame,
    Frame,
    InterruptionFrame,
    MixerControlFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    StartFrame,
    SystemFrame,
    TransferCallFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
    TTSStoppedFrame,
    VolumeFrame,
    VolumeGainFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.transports.base_transport import TransportParams
from callpipe.transports.playback import PlaybackTracker
from callpipe.transports.record_hooks import current_recorder

logger = logging.getLogger(__name__)

_MARK_EVERY_SECS = 0.5


class _FlushAudioFrame(ControlFrame):
    """Internal: send the partial chunk left in the buffer (no more audio came in time)."""


class BaseOutputTransport(FrameProcessor):
    """Output half of a transport. Subclasses implement the ``write_*``/``send_*`` methods."""

    def __init__(self, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._params = params
        self._sample_rate = 0
        self._chunk_bytes = 0
        self._chunk_secs = 0.0
        self._message_bytes = 0
        self._send_ahead = params.audio_out_send_ahead_ms / 1000.0
        self._buffer = bytearray()
        self._resampler: Any = None
        self._resampler_rate = 0
        self._tracker = PlaybackTracker()
        self._bot_speaking = False
        self._last_speaking_report = 0.0
        self._last_mark_at = 0.0
        self._ending = False
        self._wake = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._recorder = current_recorder()  # the call record, when one is kept
        self._recording = self._recorder.recording if self._recorder is not None else None
        self._out_filter = params.audio_out_filter
        self._volume = params.audio_out_volume
        self._gain = 1.0
        mixer = params.audio_out_mixer
        self._mixer = mixer.get(None) if isinstance(mixer, Mapping) else mixer
        self._mixer_task: asyncio.Task[None] | None = None
        self._ordered_lock = asyncio.Lock()
        self._urgent_dtmf_lock = asyncio.Lock()

    # ------------------------------------------------------------------ subclass hooks

    @property
    def wire_sample_rate(self) -> int | None:
        """The rate the far end wants, if known (avoids resampling twice)."""
        return None

    @property
    def supports_marks(self) -> bool:
        return False

    @property
    def coalesces_packets(self) -> bool:
        """Whether packets at hand may share a message (False: the far end frames each packet
        itself, e.g. one WAV file per packet)."""
        return True

    @property
    def preferred_10ms_chunks(self) -> int | None:
        """The far end's preferred packet size in 10 ms units, if it has one."""
        return None

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        """Send one chunk of PCM16 at :attr:`sample_rate`; return False if it did not go out."""
        raise NotImplementedError

    async def send_message(
        self, frame: TransportMessageFrame | TransportMessageUrgentFrame
    ) -> None:
        """Send an application message."""

    async def send_clear(self) -> None:
        """Tell the far end to drop audio it has buffered."""

    async def send_mark(self, name: str) -> bool:
        """Send a playback mark; return False if unsupported."""
        return False

    async def write_dtmf(self, digits: str) -> bool:
        """Press keys through the provider API; return False to fall back to in-band tones."""
        return False

    async def transfer_call(self, target: str) -> None:
        logger.warning("%s: call transfer is not supported by this transport", self)

    async def finish_call(self, frame: EndFrame | CancelFrame) -> None:
        """After playback on EndFrame, or at once on CancelFrame: hang up and close."""

    # ------------------------------------------------------------------ properties

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def chunk_bytes(self) -> int:
        return self._chunk_bytes

    @property
    def bot_speaking(self) -> bool:
        return self._bot_speaking

    @property
    def tracker(self) -> PlaybackTracker:
        return self._tracker

    # ------------------------------------------------------------------ lifecycle

    async def start(self, frame: StartFrame) -> None:
        if self._recorder is None:  # a worker tracing its call made its recorder after us
            self._recorder = current_recorder()
        p = self._params
        self._sample_rate = (
            p.audio_out_sample_rate or self.wire_sample_rate or (frame.audio_out_sample_rate)
        )
        chunks = p.audio_out_10ms_chunks
        if "audio_out_10ms_chunks" not in p.model_fields_set and self.preferred_10ms_chunks:
            chunks = self.preferred_10ms_chunks  # the far end's own packet size wins the default
        self._chunk_bytes = self._sample_rate // 100 * 2 * p.audio_out_channels * chunks
        self._chunk_secs = chunks * 0.01
        per_message = max(1, p.audio_out_max_message_ms // (chunks * 10))
        if not self.coalesces_packets:
            per_message = 1
        self._message_bytes = self._chunk_bytes * per_message
        self._tracker.uses_marks = p.playback_tracking and self.supports_marks
        self._watcher = self.create_task(self._watch_playback(), "playback")
        if self._out_filter is not None:
            await self._out_filter.start(self._sample_rate)
        if self._mixer is not None:
            await self._mixer.start(self._sample_rate)
            self._mixer_task = self.create_task(self._mix_while_idle(), "mixer")

    async def _end(self, frame: EndFrame) -> None:
        """Play out everything, then let the subclass hang up and close."""
        self._ending = True
        await self._flush_partial()
        if self._params.audio_out_end_silence_secs > 0 and self._sample_rate:
            silence = bytes(int(self._params.audio_out_end_silence_secs * self._sample_rate) * 2)
            await self._write_pcm(silence, pad=True)
        await self._wait_played_out()
        await self.finish_call(frame)

    async def _cancel(self, frame: CancelFrame) -> None:
        self._ending = True
        self._cancel_flush()
        await self._stop_audio_processing()
        await self.finish_call(frame)

    async def cleanup(self) -> None:
        self._cancel_flush()
        await self._stop_audio_processing()
        await super().cleanup()

    async def _stop_audio_processing(self) -> None:
        """Stop the idle mixer feed, then the mixer and the filter (each once)."""
        await self.cancel_task(self._mixer_task)
        self._mixer_task = None
        mixer, self._mixer = self._mixer, None
        out_filter, self._out_filter = self._out_filter, None
        for part in (mixer, out_filter):
            if part is None:
                continue
            try:
                await part.stop()
            except Exception:
                logger.exception("%s: failed to stop %s", self, type(part).__name__)

    # ------------------------------------------------------------------ frame routing

    passes_input_audio = True  # the caller's audio only passes through (see FrameProcessor)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, InterruptionFrame):
            # The clear goes out before waiting for the paced write in progress to unwind:
            # cancelled, it cannot send again, and on a loaded loop each await costs the
            # caller an iteration of hearing the old reply.
            worker = self._stop_interrupted_work()
            await self._interrupt()
            await self._resume_after_interruption(worker)
            await self.push_frame(frame, direction)
            return
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self.start(frame)
        elif isinstance(frame, CancelFrame):
            await self._cancel(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, TransportMessageUrgentFrame):
            await self.send_message(frame)
        elif isinstance(frame, OutputDTMFUrgentFrame):
            self.create_task(self._dtmf_urgent(frame.to_string()), "dtmf")
        elif direction is FrameDirection.UPSTREAM or isinstance(frame, SystemFrame):
            await self.push_frame(frame, direction)
        else:
            async with self._ordered_lock:  # urgent in-band tones go between frames, not into one
                await self._process_ordered(frame)

    async def _process_ordered(self, frame: Frame) -> None:
        """Data and control frames, in order with the audio before them."""
        if isinstance(frame, OutputAudioRawFrame):
            await self._handle_audio(frame)
        elif isinstance(frame, _FlushAudioFrame):
            await self._flush_partial()
        elif isinstance(frame, TTSStoppedFrame):
            await self._flush_partial()
            await self._maybe_mark(force=True)
            await self._pass_after_playback(frame)
        elif isinstance(frame, TransportMessageFrame):
            await self.send_message(frame)
        elif isinstance(frame, OutputDTMFFrame):
            await self._dtmf(frame.to_string())
        elif isinstance(frame, TransferCallFrame):
            await self._flush_partial()
            await self._wait_played_out()
            await self.transfer_call(frame.target)
            await self.push_frame(frame)
        elif isinstance(frame, EndFrame):
            await self._end(frame)
            await self._stop_audio_processing()
            await self.push_frame(frame)
        elif isinstance(frame, VolumeFrame):
            self._volume = frame.volume
        elif isinstance(frame, VolumeGainFrame):
            self._gain = frame.gain
        elif isinstance(frame, MixerControlFrame):
            if self._mixer is not None:
                await self._mixer.process_frame(frame)
        elif isinstance(frame, FilterControlFrame):
            if self._out_filter is not None:
                await self._out_filter.process_frame(frame)
        else:
            await self._pass_after_playback(frame)  # bot text, response boundaries, ...

    # ------------------------------------------------------------------ audio path

    async def _handle_audio(self, frame: OutputAudioRawFrame) -> None:
        """Send the frame's audio (with queued audio behind it, see "Coalescing"), then pass
        each frame on once its audio has played (e.g. to a recorder after the output)."""
        if not self._params.audio_out_enabled or not self._chunk_bytes:
            await self._pass_after_playback(frame)
            return
        self._buffer += await self._prepare(frame)
        passing: list[tuple[Frame, float]] = [(frame, self._position_after_buffer(0))]
        await self._write_pcm(b"", pad=False, passing=passing)
        for later, position in passing:
            await self._pass_after_playback(later, position)
        self._schedule_flush()

    async def _prepare(self, frame: OutputAudioRawFrame) -> bytes:
        """Bot audio at the output rate, filtered, at the current volume."""
        audio = frame.audio
        if frame.sample_rate != self._sample_rate:
            audio = self._resample(audio, frame.sample_rate)
        if self._out_filter is not None:
            audio = await self._out_filter.filter(audio)
        volume = self._volume * self._gain
        if volume != 1.0:
            audio = scale_audio(audio, volume)
        return audio

    def _position_after_buffer(self, offset: int) -> float:
        """Stream position once the whole packets now in ``buffer[offset:]`` have been sent:
        where a frame whose audio ends there is held until played."""
        position = self._tracker.sent
        for _ in range((len(self._buffer) - offset) // self._chunk_bytes):
            position += self._chunk_secs  # summed as ``_send_chunk`` sums it: equal floats
        return position

    async def _take_queued_audio(self, offset: int, passing: list[tuple[Frame, float]]) -> None:
        """Move bot audio frames waiting at the head of the queue into the buffer, until a
        message's worth is at hand (their passing on is recorded in ``passing``).

        Only plain downstream audio is taken, and only when no observer watches this
        processor's frames one by one; anything else stops the scan and is handled in order.
        """
        queue = self._queue
        want = self._message_bytes
        while queue and len(self._buffer) - offset < want and not self._process_hooks:
            frame, direction = queue[0]
            if not isinstance(frame, OutputAudioRawFrame) or direction is not (
                FrameDirection.DOWNSTREAM
            ):
                return
            queue.popleft()
            self._buffer += await self._prepare(frame)
            passing.append((frame, self._position_after_buffer(offset)))

    def _resample(self, audio: bytes, rate: int) -> bytes:
        if self._resampler is None or self._resampler_rate != rate:
            from callpipe.audio.resample import StreamResampler

            self._resampler = StreamResampler(rate, self._sample_rate)
            self._resampler_rate = rate
        return bytes(self._resampler.resample(audio))

    async def _write_pcm(
        self, audio: bytes, *, pad: bool, passing: list[tuple[Frame, float]] | None = None
    ) -> None:
        """Send the whole packets buffered (each message up to ``_message_bytes``); with
        ``passing``, top the buffer up from the queue first (see :meth:`_take_queued_audio`)."""
        buffer = self._buffer
        buffer += audio
        size = self._chunk_bytes
        most = self._message_bytes or size
        offset = 0
        while len(buffer) - offset >= size:
            if passing is not None and most > size:
                await self._take_queued_audio(offset, passing)
            length = min(len(buffer) - offset, most) // size * size
            await self._send_chunk(bytes(buffer[offset : offset + length]))
            offset += length
        del buffer[:offset]
        if pad and buffer:
            chunk = bytes(buffer) + bytes(size - len(buffer))
            buffer.clear()
            await self._send_chunk(chunk)

    async def _flush_partial(self) -> None:
        self._cancel_flush()
        if self._resampler is not None:
            tail = self._resampler.flush()
            if tail:
                self._buffer += tail
        if self._buffer:
            await self._write_pcm(b"", pad=True)

    async def _send_chunk(self, chunk: bytes) -> None:
        """Wait for the chunk's slot on the schedule, send it, and keep the books."""
        clock = self.clock
        tracker = self._tracker
        now = clock.now()
        if not tracker.active:
            tracker.begin(now)
            self._last_mark_at = 0.0
            self._wake.set()
        elif now > tracker.end_time():
            tracker.reanchor(now)  # the far end ran dry: playback resumes now
        due = tracker.end_time() - self._send_ahead
        if due > now:
            await clock.sleep_until(due)
        if self._mixer is not None:
            chunk = await self._mixer.mix(chunk)
        if not await self._write_with_timeout(chunk):
            return
        now = clock.now()  # one read after the write serves the rest (the clock is a syscall)
        if now > tracker.end_time():
            tracker.reanchor(now)  # it arrived after the far end ran dry: it plays from now
        if self._recording is not None:
            self._recording.bot_audio(chunk, self._sample_rate, tracker.end_time(), now)
        for _ in range(len(chunk) // self._chunk_bytes):
            tracker.sent += self._chunk_secs  # per packet, exactly as positions are computed
        if not self._bot_speaking:
            await self._bot_started()
        if now - self._last_speaking_report >= self._params.bot_speaking_period_secs:
            self._last_speaking_report = now
            await self._broadcast(BotSpeakingFrame)
        if tracker.sent - self._last_mark_at >= _MARK_EVERY_SECS:
            await self._maybe_mark(force=True)

    async def _mix_while_idle(self) -> None:
        """Send ``mixer.mix(silence)`` every packet time while no bot audio is playing.

        Its own schedule (``anchor + n × packet``, re-anchored after bot audio or a stall) keeps
        the background steady; bot audio takes over the wire as soon as it starts.
        """
        clock = self.clock
        silence = bytes(self._chunk_bytes)
        due: float | None = None
        while not self._ending:
            mixer = self._mixer
            if mixer is None:
                return
            now = clock.now()
            if self._tracker.active or self._buffer or self._queue_has_audio():
                due = None  # the bot owns the wire; resume on a fresh anchor afterwards
                await clock.sleep(self._chunk_secs)
                continue
            if due is None or now - due > 5 * self._chunk_secs:
                due = now
            if due > now:
                await clock.sleep_until(due)
                continue
            if not await self._write_with_timeout(await mixer.mix(silence)):
                await clock.sleep(self._chunk_secs)  # not connected (yet, or any more)
            due += self._chunk_secs

    async def _write_with_timeout(self, chunk: bytes) -> bool:
        try:
            # asyncio.timeout, not wait_for: no extra task per 20 ms packet on Python 3.11.
            async with asyncio.timeout(self._params.audio_out_write_timeout):
                return await self.write_audio_chunk(chunk)
        except TimeoutError:
            await self.on_write_timeout()
            return False

    async def on_write_timeout(self) -> None:
        """A write blocked too long (the peer stopped reading). Subclasses end the call."""
        logger.error("%s: audio write timed out", self)

    def _schedule_flush(self) -> None:
        """If no more audio arrives before the partial chunk is due, send it padded."""
        self._cancel_flush()
        if not self._buffer or self._queue or not self._tracker.active:
            return
        delay = self._tracker.end_time() - self._send_ahead - self.clock.now()
        loop = asyncio.get_running_loop()
        self._flush_handle = loop.call_later(max(delay, 0.0), self._enqueue_flush)

    def _enqueue_flush(self) -> None:
        self._flush_handle = None
        self.enqueue_frame(_FlushAudioFrame())

    def _cancel_flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None

    # ------------------------------------------------------------------ speaking state

    async def _broadcast(self, cls: type[SystemFrame]) -> None:
        await self.push_frame(cls())
        await self.push_frame(cls(), FrameDirection.UPSTREAM)

    async def _bot_started(self) -> None:
        self._bot_speaking = True
        self._last_speaking_report = self.clock.now()
        await self._broadcast(BotStartedSpeakingFrame)

    async def _bot_stopped(self) -> None:
        if self._bot_speaking:
            self._bot_speaking = False
            await self._broadcast(BotStoppedSpeakingFrame)

    async def _maybe_mark(self, *, force: bool = False) -> None:
        tracker = self._tracker
        if not tracker.uses_marks or not tracker.active:
            return
        if not force and tracker.sent - self._last_mark_at < _MARK_EVERY_SECS:
            return
        if tracker.sent <= tracker.last_mark_position and not tracker.all_marks_acknowledged:
            return
        self._last_mark_at = tracker.sent
        name = tracker.new_mark()
        if not await self.send_mark(name):
            tracker.uses_marks = False

    def on_mark(self, name: str) -> None:
        """The far end acknowledged a mark (called by the input side)."""
        if self._tracker.acknowledge(name):
            self._wake.set()
            if self._recorder is not None:
                self._recorder.mark_acked(self.clock.now(), self._tracker.confirmed)

    async def _pass_after_playback(self, frame: Frame, position: float | None = None) -> None:
        """Frames behind bot audio go downstream once that audio has been played, so what
        follows the output (the assistant context, a recorder) sees what the caller heard.
        ``position``: where in the stream (default: everything sent so far)."""
        if self._tracker.active:
            self._tracker.hold(frame, position)
            self._wake.set()
        else:
            await self.push_frame(frame)

    # ------------------------------------------------------------------ playback watcher

    def _played_out(self, now: float) -> bool:
        tracker = self._tracker
        if not tracker.active:
            return True
        if self._buffer or self._queue_has_audio():
            return False
        if now < tracker.end_time():
            return False
        if not tracker.uses_marks:
            return True
        if tracker.all_marks_acknowledged and tracker.last_mark_position >= tracker.sent - 1e-6:
            return True
        return now >= tracker.end_time() + self._params.playback_ack_grace_secs

    def _queue_has_audio(self) -> bool:
        return any(isinstance(item[0], OutputAudioRawFrame) for item in self._queue)

    async def _watch_playback(self) -> None:
        """Release heard text, notice the end of playback, report the bot stopped."""
        clock = self.clock
        while True:
            self._wake.clear()
            tracker = self._tracker
            now = clock.now()
            for held in tracker.release(now):
                await self.push_frame(held)
            if tracker.active and self._played_out(now):
                await self._playback_finished()
                continue
            if tracker.active and now >= tracker.end_time() and not self._buffer:
                await self._maybe_mark(force=True)
            await self._sleep_until_next_event(now)

    async def _sleep_until_next_event(self, now: float) -> None:
        tracker = self._tracker
        deadline: float | None = None
        if tracker.active:
            deadline = tracker.end_time()
            if now >= deadline:
                deadline = deadline + self._params.playback_ack_grace_secs
            text_pos = tracker.next_held_position()
            if text_pos is not None and not tracker.uses_marks and tracker.start is not None:
                deadline = min(deadline, tracker.start + text_pos)
        if deadline is None or deadline <= now:
            if deadline is not None:
                await asyncio.sleep(0.01)
                return
            await self._wake.wait()
            return
        try:
            async with asyncio.timeout(deadline - now):  # (wait_for: a task per wait on 3.11)
                await self._wake.wait()
        except TimeoutError:
            pass

    async def _playback_finished(self) -> None:
        tracker = self._tracker
        for held in tracker.release(self.clock.now(), everything=True):
            await self.push_frame(held)
        tracker.finish()
        await self._bot_stopped()

    async def _wait_played_out(self) -> None:
        """Wait until everything sent so far has been played (bounded by the grace period)."""
        while self._tracker.active and not self._played_out(self.clock.now()):
            self._wake.set()
            await asyncio.sleep(0.02)
        if self._tracker.active:
            await self._playback_finished()

    # ------------------------------------------------------------------ interruption, dtmf

    async def _interrupt(self) -> None:
        if self._ending:
            return  # the goodbye of an ending call is played out, not cut
        if self._speaking_uninterruptibly():
            return  # nothing sent is cleared; the queued interruptible frames are gone already
        self._cancel_flush()
        self._buffer.clear()
        if self._resampler is not None:
            self._resampler.reset()
        tracker = self._tracker
        if self._recording is not None:
            self._recording.bot_cut(self.clock.now())
        if tracker.active:
            heard_secs, heard_text = tracker.interrupt(self.clock.now())
            await self.send_clear()
            await self.push_frame(BotInterruptedFrame(heard_secs=heard_secs, heard_text=heard_text))
            await self.push_frame(
                BotInterruptedFrame(heard_secs=heard_secs, heard_text=heard_text),
                FrameDirection.UPSTREAM,
            )
        await self._bot_stopped()
        self._wake.set()

    def _speaking_uninterruptibly(self) -> bool:
        """Whether uninterruptible bot audio (``frame.interruptible`` False, e.g. of a
        ``TTSSpeakFrame`` marked so) is being sent or was sent and not yet played: then an
        interruption leaves the stream alone (no clear, no report of a cut) and the bot goes
        on speaking. Asked only when an interruption comes, so audio frames cost nothing more.

        Called after the interruption emptied the queue: a frame still in progress was not
        cancelled, so it is uninterruptible."""
        if self._current is not None:
            return True
        return self._tracker.active and self._tracker.holds_uninterruptible_audio()

    async def _dtmf_urgent(self, digits: str) -> None:
        """At once through the provider API; in-band tones right after the frame being played
        (written into the middle of its packets, the two would garble each other)."""
        async with self._urgent_dtmf_lock:  # presses stay in order
            if await self.write_dtmf(digits):
                return
            async with self._ordered_lock:
                await self._dtmf(digits)

    async def _dtmf(self, digits: str) -> None:
        if await self.write_dtmf(digits):
            return
        from callpipe.audio.dtmf import dtmf_tones

        await self._flush_partial()
        await self._write_pcm(dtmf_tones(digits, self._sample_rate), pad=True)
