"""ESpeakTTSService: offline text-to-speech on eSpeak NG — no account, no key, no network.

It makes the demo bot and the tests independent of cloud services. The voice is robotic but
intelligible, and synthesis takes milliseconds, so time to first audio is tiny.

Frames: ``TTSSpeakFrame`` and ``TextFrame`` are spoken; streamed ``LLMTextFrame`` chunks are
collected into sentences (spoken as each sentence completes, the rest at
``LLMFullResponseEndFrame``). Each utterance becomes ``TTSStartedFrame``, ``TTSAudioRawFrame``
chunks at the pipeline's output rate, a ``TTSTextFrame`` with the text after its audio, and
``TTSStoppedFrame``. Transcriptions (and translations, eager transcripts), text marked
``skip_tts`` and the TTS's own text frames pass through unspoken. An ``AggregatedTextFrame`` is
spoken as one utterance (announced ahead of its audio with ``will_be_spoken``), or passed on
marked ``skip_tts`` when its ``text_type`` is in ``skip_text_types``; a
``TTSSpeakFrame(append_to_context=False)`` gives ``TTSTextFrame``\\ s that say so. An
interruption cancels the utterance in progress (the processor base cancels its worker).

The voice is an eSpeak NG voice name, or it follows ``language`` (a
:class:`~callpipe.transcriptions.language.Language` or any BCP 47 tag), mapped to eSpeak NG's
own names: ``pt-BR`` -> ``pt-br``, ``es-MX`` -> ``es-419``, ``en-GB`` -> ``en``, ``zh-CN`` ->
``cmn``; a language eSpeak NG has no voice for is tried as its base code, with one warning. A
``TTSUpdateSettingsFrame`` (``voice`` or ``language``) changes the voice from the next utterance.
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
    AggregatedTextFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.processors.frame_processor import FrameDirection
from callpipe.services.ai_service import AIService
from callpipe.services.settings import TTSSettings, delta_from_frame
from callpipe.services.tts_service import NOT_SPOKEN_TEXT
from callpipe.transcriptions.language import resolve_language

logger = logging.getLogger(__name__)

_PASSED_ON = (*NOT_SPOKEN_TEXT, TTSTextFrame)
"""Text frames passed on unspoken (besides those marked ``skip_tts``)."""

_SENTENCE_END = re.compile(r"[.!?;:…](?:[\"')\]]*)\s")

DEFAULT_VOICE = "en-us"
_BASE_VOICES = (
    "af am ar as az ba be bg bn bs ca cs cy da de el en eo es et eu fa fi fr ga gd gu haw "
    "he hi hr ht hu hy id is it ja ka kk kn ko kok ku ky la lb lt lv mi mk ml mr ms mt my nb "
    "ne nl or pa pl pt ro ru sd si sk sl sq sr sv sw ta te th tk tr tt ug uk ur uz vi yue"
).split()
"""eSpeak NG voices named by their language code (the bundled ``espeak-ng-data``)."""
_LATIN_AMERICA = "419 AR BO CL CO CR CU DO EC GT HN MX NI PA PE PR PY SV US UY VE".split()
_VOICE_MAP = (
    {code: code for code in _BASE_VOICES}
    | {f"es-{region}": "es-419" for region in _LATIN_AMERICA}
    | {
        "en-US": "en-us",  # eSpeak NG's "en" is British English
        "pt-BR": "pt-br",  # and its "pt" European Portuguese
        "fr-BE": "fr-be",
        "fr-CH": "fr-ch",
        "no": "nb",
        "zh": "cmn",
        "zh-CN": "cmn",
        "zh-TW": "cmn",
        "cmn": "cmn",
        "zh-HK": "yue",
    }
)


def language_to_espeak_voice(language: str) -> str:
    """The eSpeak NG voice for a language tag: ``Language.PT_BR`` -> ``"pt-br"``.

    A language eSpeak NG has no voice for goes as its base code, logged once at WARNING.
    """
    return resolve_language(language, _VOICE_MAP, use_base_code=True)


class ESpeakTTSService(AIService):
    """Offline TTS (see the module docstring).

    ``voice`` is an eSpeak NG voice name (``en-us``, ``en``, ``de``, ``fr``, …); without it,
    ``language`` picks the voice (``"en-us"`` when neither is given). ``rate_wpm`` is the
    speaking rate; ``chunk_ms`` the size of each audio frame pushed; ``skip_text_types`` the
    ``AggregatedTextFrame`` text types passed on unspoken.
    """

    kind = "tts"

    def __init__(
        self,
        *,
        voice: str | None = None,
        language: str | None = None,
        rate_wpm: int = 175,
        chunk_ms: int = 40,
        aggregate_sentences: bool = True,
        skip_text_types: list[str] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        voice = _voice(voice, language) or DEFAULT_VOICE
        super().__init__(model=f"espeak-ng:{voice}", name=name, **kwargs)
        if chunk_ms <= 0:
            raise ConfigurationError("chunk_ms must be > 0")
        self.voice = voice
        self.rate_wpm = rate_wpm
        self._chunk_ms = chunk_ms
        self._aggregate = aggregate_sentences
        self._pending = ""
        self._skip_text_types = frozenset(skip_text_types or ())

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if await self.handle_lifecycle(frame, direction):
            return
        if isinstance(frame, InterruptionFrame):
            self._pending = ""
            await self.push_frame(frame, direction)
        elif direction is FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, TTSUpdateSettingsFrame) and self._update_voice(frame):
            pass  # applied here (an update for another service passes on below)
        elif isinstance(frame, TTSSpeakFrame):
            await self.speak(frame.text, append_to_context=frame.append_to_context)
        elif isinstance(frame, TextFrame) and (frame.skip_tts or isinstance(frame, _PASSED_ON)):
            await self.push_frame(frame, direction)
        elif isinstance(frame, AggregatedTextFrame):
            await self._speak_aggregated(frame, direction)
        elif isinstance(frame, LLMTextFrame) and self._aggregate:
            self._pending += frame.text
            await self._speak_complete_sentences()
        elif isinstance(frame, LLMFullResponseEndFrame):
            text, self._pending = self._pending, ""
            await self.speak(text)
            await self.push_frame(frame, direction)
        elif isinstance(frame, TextFrame):
            await self.speak(frame.text)
        else:
            await self.push_frame(frame, direction)

    async def _speak_aggregated(
        self, frame: AggregatedTextFrame, direction: FrameDirection
    ) -> None:
        if frame.text_type in self._skip_text_types:
            frame.skip_tts = True
            await self.push_frame(frame, direction)
            return
        text, self._pending = self._pending, ""
        await self.speak(text)  # what was collected before it goes first
        if frame.text.strip():
            frame.will_be_spoken = True
            frame.append_to_context = False  # the TTSTextFrame after the audio carries it
            await self.push_frame(frame, direction)
            await self.speak(frame.text)

    def _update_voice(self, frame: TTSUpdateSettingsFrame) -> bool:
        delta = delta_from_frame(frame, TTSSettings, self)
        if delta is None:
            return False
        voice = _voice(delta.voice, delta.language)
        if voice and voice != self.voice:
            self.voice = voice
            self.set_model_name(f"espeak-ng:{voice}")
        return True

    async def _speak_complete_sentences(self) -> None:
        while True:
            match = _SENTENCE_END.search(self._pending)
            if match is None:
                return
            sentence, self._pending = self._pending[: match.end()], self._pending[match.end() :]
            await self.speak(sentence)

    async def speak(self, text: str, *, append_to_context: bool = True) -> None:
        """Say ``text`` now: started, audio chunks, the text, stopped (``append_to_context``:
        the ``TTSTextFrame``'s)."""
        text = text.strip()
        if not text:
            return
        context_id = uuid.uuid4().hex
        rate = self.sample_rate
        self.start_ttfb_metrics()
        started = TTSStartedFrame(context_id=context_id, append_to_context=append_to_context)
        await self.push_frame(started)
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
        spoken = TTSTextFrame(text, context_id=context_id)
        spoken.append_to_context = append_to_context
        await self.push_frame(spoken)
        await self.push_frame(TTSStoppedFrame(context_id=context_id))


def _voice(voice: object, language: object) -> str | None:
    """The voice given, else the one for the language given (None: neither was)."""
    if isinstance(voice, str) and voice:
        return str(voice)
    if isinstance(language, str) and language:
        return language_to_espeak_voice(language)
    return None
