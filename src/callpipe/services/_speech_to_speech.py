"""What the speech-to-speech services (OpenAI Realtime, Gemini Live) have in common.

Each holds one provider socket per call and speaks its own wire protocol; what is the same
whatever the provider lives here:

- **The caller's audio** (:class:`CallerAudio`): resampled to the provider's rate, optionally
  encoded (G.711), gathered and sent as whole batches of ``audio_batch_ms``. This is the one
  path taken 50 times a second per call: one resampler call, one append, and every second
  packet one base64 encoding and one string formatting (no JSON encoder).
- **The model's audio** (:class:`BotAudio`): resampled to the output rate, its tail flushed
  at the end of a reply and the resampler cleared when a reply is cut off.
- :class:`SpeechToSpeechService`: the frame routing (caller audio straight to the socket, the
  aggregators' context to the provider), the socket, the reply's words as the assistant
  aggregator wants them, the caller's transcript upstream, function calls run through the
  usual handlers with each result sent back once, and an ``EndFrame`` held while the model is
  still speaking (a goodbye), :data:`END_HOLD_SECS` at most.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable
from typing import Any

from callpipe.audio.resample import StreamResampler
from callpipe.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from callpipe.processors.aggregators.llm_context import ChatContext, LLMContext
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContextFrame
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.llm_service import LLMService, ToolCall
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.utils.time import time_now_iso8601

logger = logging.getLogger(__name__)

END_HOLD_SECS = 30.0
"""The longest an ``EndFrame`` waits for the model to finish speaking."""


def text_of(content: Any) -> str:
    """The text of a context message's ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        texts = [str(p.get("text") or "") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if t).strip()
    return ""


def answered_call_ids(context: ChatContext) -> set[str]:
    """The ids of the function calls whose results are already in ``context``."""
    return {
        str(m.get("tool_call_id")) for m in context.messages_for_api() if m.get("role") == "tool"
    }


class CallerAudio:
    """The caller's audio on its way to the provider: PCM at ``in_rate`` resampled to
    ``wire_rate``, passed through ``encode`` (e.g. G.711) and handed out, base64, in whole
    batches of ``batch_bytes``."""

    __slots__ = ("_batch", "_batch_bytes", "_encode", "_resampler")

    def __init__(
        self,
        *,
        in_rate: int,
        wire_rate: int,
        batch_bytes: int,
        encode: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self._resampler = (
            StreamResampler(in_rate, wire_rate, clear_after_secs=None)
            if in_rate != wire_rate
            else None
        )
        self._encode = encode
        self._batch_bytes = max(1, batch_bytes)
        self._batch = bytearray()

    def convert(self, pcm: bytes) -> bytes:
        """``pcm`` at the wire's rate and in its encoding."""
        if self._resampler is not None:
            pcm = self._resampler.resample(pcm)
        return pcm if self._encode is None else self._encode(pcm)

    def add(self, pcm: bytes) -> str | None:
        """Convert and batch one packet; the whole batches now ready (base64), if any."""
        if self._resampler is not None:
            pcm = self._resampler.resample(pcm)
        self._batch += pcm if self._encode is None else self._encode(pcm)
        if len(self._batch) < self._batch_bytes:
            return None
        return self._take(len(self._batch) - len(self._batch) % self._batch_bytes)

    def prepend(self, data: bytes | bytearray) -> None:
        """Put already converted audio (e.g. held back before a turn) before the batch."""
        self._batch[:0] = data

    def drain(self) -> str | None:
        """Everything batched (base64), whole batch or not; None when nothing is."""
        return self._take(len(self._batch)) if self._batch else None

    def _take(self, size: int) -> str:
        data = base64.b64encode(self._batch[:size]).decode("ascii")
        del self._batch[:size]
        return data


class BotAudio:
    """The model's PCM as ``TTSAudioRawFrame``\\ s at the output rate."""

    __slots__ = ("_resampler", "out_rate")

    def __init__(self, out_rate: int) -> None:
        self.out_rate = out_rate
        self._resampler: StreamResampler | None = None

    def frame(self, pcm: bytes, rate: int) -> TTSAudioRawFrame | None:
        """``pcm`` (at ``rate``) resampled to the output rate; None while nothing is ready."""
        if rate != self.out_rate:
            resampler = self._resampler
            if resampler is None or resampler.in_rate != rate:
                resampler = self._resampler = StreamResampler(
                    rate, self.out_rate, clear_after_secs=None
                )
            pcm, rate = resampler.resample(pcm), self.out_rate
        return TTSAudioRawFrame(audio=pcm, sample_rate=rate, num_channels=1) if pcm else None

    def tail(self) -> TTSAudioRawFrame | None:
        """What the resampler still holds at the end of a reply."""
        pcm = self._resampler.flush() if self._resampler is not None else b""
        return (
            TTSAudioRawFrame(audio=pcm, sample_rate=self.out_rate, num_channels=1) if pcm else None
        )

    def reset(self) -> None:
        """The reply was cut off: the next one starts afresh."""
        if self._resampler is not None:
            self._resampler.reset()


class SpeechToSpeechService(LLMService):
    """The base of the speech-to-speech services (see the module docstring).

    A subclass sets ``_session_ready`` while its provider session takes audio, creates
    ``_caller_audio`` at start, sets ``_responding`` while the model answers (and calls
    :meth:`_release_end` when it stops), and implements :meth:`_audio_message`,
    :meth:`_on_context`, :meth:`_on_server_message` and :meth:`_send_results`.
    """

    def __init__(self, *, start_audio_paused: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._audio_paused = start_audio_paused
        self._session_ready = False
        """The provider session takes the caller's audio (set up and confirmed)."""
        self._ws: ProviderWebsocket | None = None
        self._context: ChatContext | None = None
        self._caller_audio: CallerAudio | None = None
        self._bot_audio = BotAudio(0)
        self._responding = False
        self._sent_results: set[str] = set()
        self._withdrawn_calls: set[str] = set()
        """Calls the provider withdrew (the caller spoke first): their results are not sent."""
        self._held_end: EndFrame | None = None
        self._released_end: EndFrame | None = None
        self._end_timer: asyncio.TimerHandle | None = None

    @property
    def accepts_intermediate_function_call_results(self) -> bool:
        """False: the model waits for every call and gets its one result, so a progress
        report has no way to it and is dropped with a warning.

        Pipecat 1.14's OpenAI Realtime and Ultravox services (and Gemini Live, on the models
        that take NON_BLOCKING functions) say True: they run ``cancel_on_interruption=False``
        functions asynchronously and pass reports on beside the call (a conversation item, a
        text message, a ``will_continue`` response). callpipe's run no function
        asynchronously, so there is nothing for a report to go beside.
        """
        return False

    def set_audio_input_paused(self, paused: bool) -> None:
        """Stop (or resume) sending the caller's audio."""
        self._audio_paused = paused

    # ------------------------------------------------------------------ frames in

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if type(frame) is InputAudioRawFrame:
            # The caller's audio, 50 times a second: to the socket, nothing else.
            if self._session_ready and not self._audio_paused:
                await self._send_audio(frame.audio)
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, LLMContextFrame | OpenAILLMContextFrame):
            await self._on_context(frame.context)
            return
        if isinstance(frame, EndFrame) and self._responding and frame is not self._released_end:
            # The model is still speaking (a goodbye): end the call once its reply is over.
            self._held_end = frame
            loop = asyncio.get_running_loop()
            self._end_timer = loop.call_later(END_HOLD_SECS, self._release_end)
            return
        await self._on_frame(frame, direction)
        await super().process_frame(frame, direction)

    async def _on_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Any other frame, before the LLM service's own handling."""

    async def _on_context(self, context: ChatContext) -> None:
        raise NotImplementedError

    def _release_end(self) -> None:
        """Let a held ``EndFrame`` go on (the model's reply ended, or the wait ran out)."""
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        frame, self._held_end = self._held_end, None
        if frame is not None:
            self._released_end = frame
            self.create_task(self.queue_frame(frame), "speech-to-speech-end")

    # ------------------------------------------------------------------ caller audio

    def _audio_message(self, data: str) -> str:
        """The provider's message carrying ``data`` (base64 audio), as JSON text."""
        raise NotImplementedError

    async def _send_audio(self, pcm: bytes) -> None:
        caller = self._caller_audio
        data = caller.add(pcm) if caller is not None else None
        if data is not None:
            await self._send_raw(self._audio_message(data))

    async def _flush_audio(self) -> None:
        """Send what is batched of the caller's audio now (the end of a turn)."""
        data = self._caller_audio.drain() if self._caller_audio is not None else None
        if data is not None:
            await self._send_raw(self._audio_message(data))

    # ------------------------------------------------------------------ the socket

    async def _connect(self, url: str, headers: dict[str, str], auth_hint: str) -> None:
        self._ws = ProviderWebsocket(
            owner=str(self),
            url=url,
            headers=headers,
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_socket_failed,
            auth_hint=auth_hint,
        )
        await self._ws.connect()

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        self._session_ready = False
        if self._end_timer is not None:
            self._end_timer.cancel()
            self._end_timer = None
        if ws is not None:
            await ws.close()

    async def _on_reconnected(self) -> None:
        self._session_ready = False

    async def _on_socket_failed(self, message: str) -> None:
        self._session_ready = False
        await self.report_error(message, reason="disconnected")

    async def _send_raw(self, text: str) -> bool:
        ws = self._ws
        if ws is None:
            return False
        return await ws.send(text, wait_secs=0)

    async def _send_json(self, message: dict[str, Any]) -> bool:
        """Send one JSON message; False if the socket is down."""
        return await self._send_raw(json.dumps(message))

    async def _on_message(self, message: Message) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            logger.warning("%s: ignoring a message that is not JSON", self)
            return
        if isinstance(data, dict):
            await self._on_server_message(data)

    async def _on_server_message(self, message: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ frames out

    async def _push_bot_audio(self, pcm: bytes, rate: int) -> None:
        frame = self._bot_audio.frame(pcm, rate)
        if frame is not None:
            await self.push_frame(frame)

    async def _push_bot_audio_tail(self) -> None:
        frame = self._bot_audio.tail()
        if frame is not None:
            await self.push_frame(frame)

    async def _push_spoken_text(self, text: str) -> None:
        """The transcript of the model's speech: an ``LLMTextFrame`` for observers and the
        ``TTSTextFrame`` the assistant aggregator records once its audio was played."""
        llm_text = LLMTextFrame(text)
        llm_text.append_to_context = False  # the TTSTextFrame below is what was said
        await self.push_frame(llm_text)
        spoken = TTSTextFrame(text)
        spoken.includes_inter_frame_spaces = True
        await self.push_frame(spoken)

    async def _push_caller_text(self, text: str, result: Any = None) -> None:
        """The caller's transcript, upstream to the user aggregator."""
        frame = TranscriptionFrame(text, "", time_now_iso8601(), result=result)
        await self.push_frame(frame, FrameDirection.UPSTREAM)

    # ------------------------------------------------------------------ function calls

    async def _run_calls(self, calls: list[ToolCall]) -> None:
        """Run ``calls`` through the registered handlers, then send their results (each once;
        none for a call the provider withdrew)."""
        if self._context is None:
            self._context = LLMContext()
        context = self._context
        run_again = await self.run_function_calls(context, calls)
        by_id = {call.id: call for call in calls}
        results: list[tuple[ToolCall, Any]] = []
        for message in context.messages_for_api():
            call_id = str(message.get("tool_call_id"))
            if message.get("role") != "tool" or call_id not in by_id:
                continue
            if call_id in self._sent_results or call_id in self._withdrawn_calls:
                continue
            self._sent_results.add(call_id)
            results.append((by_id[call_id], message.get("content")))
        await self._send_results(results, run_again)

    async def _send_results(self, results: list[tuple[ToolCall, Any]], run_again: bool) -> None:
        """Send the results (call, the tool message's content) in the provider's form."""
        raise NotImplementedError
