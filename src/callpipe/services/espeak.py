"""ESpeakTTSService: offline text-to-speech on eSpeak NG — no account, no key, no network.

It makes the demo bot and the tests independent of cloud services. The voice is robotic but
intelligible, and synthesis takes milliseconds, so time to first audio is tiny.

Frames: ``TTSSpeakFrame`` and ``TextFrame`` are spoken; streamed ``LLMTextFrame`` chunks are
collected into sentences (spoken as each sentence completes, the rest at
``LLMFullResponseEndFrame``). Each utterance becomes ``TTSStartedFrame``, ``TTSAudioRawFrame``
chunks at the pipeline's output rate, a ``TTSTextFrame`` with the text after its audio, and
``TTSStoppedFrame``. Transcriptions and the TTS's own text frames pass through unspoken. An
interruption cancels the utterance in progress (the processor base cancels its worker).
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from typing import Any

from callpipe.audio.espeak import synthesize
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.ai_service import AIService

logger = logging.getLogger(__name__)

_SENTENCE_END = re.compile(r"[.!?;:…](?:[\"')\]]*)\s")


class ESpeakTTSService(AIService):
    """Offline TTS (see the module docstring).

    ``voice`` is an eSpeak NG voice name (``en-us``, ``en-gb``, ``de``, ``fr``, …);
    ``rate_wpm`` the speaking rate; ``chunk_ms`` the size of each audio frame pushed.
    """

    kind = "tts"

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate_wpm: int = 175,
        chunk_ms: int = 40,
        aggregate_sentences: bool = True,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=f"espeak-ng:{voice}", name=name, **kwargs)
        if chunk_ms <= 0:
            raise ConfigurationError("chunk_ms must be > 0")
        self.voice = voice
        self.rate_wpm = rate_wpm
        self._chunk_ms = chunk_ms
        self._aggregate = aggregate_sentences
        self._pending = ""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if await self.handle_lifecycle(frame, direction):
            return
        if isinstance(frame, InterruptionFrame):
            self._pending = ""
            await self.push_frame(frame, direction)
        elif direction is FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSSpeakFrame):
            await self.speak(frame.text)
        elif isinstance(frame, LLMTextFrame) and self._aggregate:
            self._pending += frame.text
            await self._speak_complete_sentences()
        elif isinstance(frame, LLMFullResponseEndFrame):
            text, self._pending = self._pending, ""
            await self.speak(text)
            await self.push_frame(frame, direction)
        elif isinstance(
            frame, TTSTextFrame | TranscriptionFrame | InterimTranscriptionFrame
        ) or not isinstance(frame, TextFrame):
            await self.push_frame(frame, direction)
        else:
            await self.speak(frame.text)

    async def _speak_complete_sentences(self) -> None:
        while True:
            match = _SENTENCE_END.search(self._pending)
            if match is None:
                return
            sentence, self._pending = self._pending[: match.end()], self._pending[match.end() :]
            await self.speak(sentence)

    async def speak(self, text: str) -> None:
        """Say ``text`` now: started, audio chunks, the text, stopped."""
        text = text.strip()
        if not text:
            return
        context_id = uuid.uuid4().hex
        rate = self.sample_rate
        self.start_ttfb_metrics()
        await self.push_frame(TTSStartedFrame(context_id=context_id))
        try:
            pcm = await asyncio.to_thread(synthesize, text, rate, self.voice, self.rate_wpm)
        except Exception as exc:
            self.reset_ttfb_metrics()
            await self.report_error(f"{self}: eSpeak NG failed: {type(exc).__name__}: {exc}")
            await self.push_frame(TTSStoppedFrame(context_id=context_id))
            return
        await self.stop_ttfb_metrics()
        step = max(2, rate * self._chunk_ms // 1000 * 2)
        for i in range(0, len(pcm), step):
            await self.push_frame(
                TTSAudioRawFrame(pcm[i : i + step], rate, 1, context_id=context_id)
            )
        await self.push_frame(TTSTextFrame(text))
        await self.push_frame(TTSStoppedFrame(context_id=context_id))
