"""SpeechifyHttpTTSService: Speechify's text-to-speech, one streamed
``POST /v1/audio/stream/with-timestamps`` per sentence, audio and word timing together.

The protocol, as the ``speechify-api`` SDK (``audio.stream_with_timestamps`` and its
``SpeechStreamEvent`` models) and Speechify's reference describe it:

- the key in ``Authorization: Bearer <key>``, the API version pinned in ``Speechify-Version``
  (:data:`SPEECHIFY_API_VERSION`, the one Pipecat 1.14 pins, whose default model is
  ``simba-3.5``); a JSON body of ``input``, ``voice_id``, ``model``, ``output_format``
  (``pcm_<rate>`` here), and when set ``language`` (e.g. ``en-US``), ``safety_identifier`` and
  ``options`` (``loudness_normalization``, ``text_normalization``);
- a 200 answer is a stream of server-sent events, each an ``event:`` line and a ``data:`` line
  whose JSON object's ``type`` repeats the event's name: ``speech.chunk`` (``audio``, base64,
  and/or ``speech_marks``: word marks with ``start``/``end`` character offsets into ``input``
  and ``start_time``/``end_time`` in milliseconds from the start of the request's audio), then
  ``speech.done`` (``audio_duration_ms``, ``billable_characters_count``); a failure once the
  stream has begun comes as ``speech.error`` (``error: {code, message}``). Marks may trail their
  audio: the last chunk often carries marks only. Errors before the stream are HTTP statuses
  with a JSON ``{"error": {"code", "message"}}`` body; a 402 (insufficient account balance)
  is fatal, like a refused key, since every later request would get it too.

Speechify marks punctuation inside a word (the hyphens of "well-known") apart; marks whose
characters touch in ``input`` are joined back into one word, which takes its text from
``input`` (a mark's ``value`` may be normalized, e.g. a typographic apostrophe made plain).
Each sentence's words count from the end of the reply's audio so far.

Audio is 16-bit PCM at the pipeline's output rate when Speechify offers it (8000, 16000, 22050,
24000, 44100, 48000 Hz; a phone call gets ``pcm_8000``, nothing resampled), else at the nearest
lower rate offered, resampled here once as it arrives.

Pipecat's constructor (``api_key``, ``aiohttp_session``, ``base_url``, ``sample_rate``,
``settings``, ``text_aggregation_mode``) is kept; ``aiohttp_session`` is accepted and not used
(requests go through callpipe's pooled client). ``base_url`` left at Speechify's may be replaced
by ``$CALLPIPE_SPEECHIFY_URL``; ``api_version`` and ``timeout_secs`` are callpipe's. Settings
updates apply from the next sentence; an interruption closes the response in flight.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import SPEECHIFY_URL_ENV, defaulted_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

SPEECHIFY_API_URL = "https://api.speechify.ai"
STREAM_PATH = "/v1/audio/stream/with-timestamps"
SPEECHIFY_API_VERSION = "2026-09-30"
"""The ``Speechify-Version`` sent (Pipecat 1.14's pin)."""
DEFAULT_MODEL = "simba-3.5"
DEFAULT_VOICE = "geffen_32"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
"""The rates of Speechify's ``pcm_<rate>`` output formats."""
KEY_HINT = "Check api_key / SPEECHIFY_API_KEY."

_LANGUAGE_MAP = {
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fr": "fr-FR",
    "it": "it-IT",
    "pt": "pt-BR",
}


def language_to_speechify_language(language: str) -> str:
    """Speechify's ``language`` for a language tag: ``Language.EN`` -> ``"en-US"``; a tag with a
    region (``es-MX``) or one Speechify does not list goes as it is (the latter logged)."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=False)


@dataclass
class SpeechifyTTSSettings(TTSSettings):
    """``SpeechifyHttpTTSService.Settings``: model (``simba-3.5`` by default), voice (a Speechify
    voice id, ``geffen_32`` by default), language (None: Speechify picks from the voice), and,
    each sent when not None: ``loudness_normalization`` and ``text_normalization`` (both add
    latency), ``safety_identifier`` (an opaque, stable id of the end user, 1 to 64 characters,
    so Speechify can limit that user rather than the whole workspace; never personal data)."""

    loudness_normalization: bool | None | NotGiven = field(default_factory=unset)
    text_normalization: bool | None | NotGiven = field(default_factory=unset)
    safety_identifier: str | None | NotGiven = field(default_factory=unset)


def wire_rate(rate: int) -> int:
    """The ``pcm_<rate>`` asked for ``rate``: itself when offered, else the nearest lower one."""
    if rate in SAMPLE_RATES:
        return rate
    return max((r for r in SAMPLE_RATES if r <= rate), default=SAMPLE_RATES[0])


class SpeechifyHttpTTSService(HTTPStreamTTSService):
    """Speechify over ``/v1/audio/stream/with-timestamps`` (see the module docstring).

    1.14 style: ``SpeechifyHttpTTSService(api_key=..., aiohttp_session=session,
    settings=SpeechifyHttpTTSService.Settings(voice="<voice id>"))``.
    """

    emits_word_timestamps = True
    Settings = SpeechifyTTSSettings
    _settings: SpeechifyTTSSettings
    key_hint = KEY_HINT

    def __init__(
        self,
        *,
        api_key: str | None = None,
        aiohttp_session: Any = None,
        base_url: str = SPEECHIFY_API_URL,
        sample_rate: int | None = None,
        settings: SpeechifyTTSSettings | None = None,
        api_version: str = SPEECHIFY_API_VERSION,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        model = DEFAULT_MODEL
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        api_key = resolve_api_key(type(self).__name__, api_key, "SPEECHIFY_API_KEY")
        self._settings.apply_update(
            SpeechifyTTSSettings(
                model=model,
                voice=DEFAULT_VOICE,
                language=None,
                loudness_normalization=None,
                text_normalization=None,
                safety_identifier=None,
            )
        )
        if settings is not None:
            self._settings.apply_update(settings)
        self._spoken: tuple[str, float] = ("", 0.0)
        """(context id, seconds of that reply's audio so far): where its next words go."""
        self.configure_http(
            defaulted_base_url(base_url, SPEECHIFY_URL_ENV, SPEECHIFY_API_URL),
            {"Authorization": f"Bearer {api_key}", "Speechify-Version": api_version},
            timeout_secs=timeout_secs,
        )

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_speechify_language(language)

    @property
    def wire_rate(self) -> int:
        """The rate of the PCM asked for (see :func:`wire_rate`)."""
        return wire_rate(self.sample_rate)

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Speechify cannot produce {self.sample_rate} Hz audio")
        self._http()

    def _option(self, name: str) -> Any:
        value = getattr(self._settings, name)
        return value if is_given(value) else None

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/v1/audio/stream/with-timestamps`` body for ``text`` with the current settings."""
        body: dict[str, Any] = {
            "input": text,
            "voice_id": self._option("voice"),
            "model": self._option("model") or DEFAULT_MODEL,
            "output_format": f"pcm_{self.wire_rate}",
        }
        language = self._option("language")
        if language:
            body["language"] = language_to_speechify_language(language)
        safety_identifier = self._option("safety_identifier")
        if safety_identifier:
            body["safety_identifier"] = safety_identifier
        options = {
            name: self._option(name)
            for name in ("loudness_normalization", "text_normalization")
            if self._option(name) is not None
        }
        if options:
            body["options"] = options
        return body

    def rejects_credentials(self, status: int, body: bytes) -> bool:
        # 402 is Speechify's "insufficient account balance": every later request would be
        # refused the same way, so it ends the call as a refused key does.
        return status == 402 or super().rejects_credentials(status, body)

    async def run_tts(self, text: str, context_id: str) -> None:
        rate = self.wire_rate

        async def read(response: httpx.Response, context: str) -> None:
            await self._read(response, context, text, rate)

        await self.stream_speech(context_id, STREAM_PATH, self.request_body(text), read)

    async def _read(self, response: httpx.Response, context_id: str, text: str, rate: int) -> None:
        reply, offset = self._spoken
        if reply != context_id:
            offset = 0.0
        words = _WordMarks(text, offset)
        received = 0
        failed = False
        try:
            async for kind, event in _events(response):
                if kind == "speech.chunk":
                    audio = event.get("audio")
                    if isinstance(audio, str) and audio:
                        pcm = base64.b64decode(audio)
                        received += len(pcm)
                        await self.append_audio(context_id, pcm, rate)
                    marks = event.get("speech_marks")
                    if isinstance(marks, list) and marks:
                        await self.add_word_timestamps(context_id, words.add(marks))
                elif kind == "speech.error":
                    error = event.get("error")
                    error = error if isinstance(error, dict) else {}
                    await self.report_error(
                        f"{self}: Speechify error {error.get('code', 'unknown')}: "
                        f"{error.get('message', event)}",
                        reason="provider",
                    )
                    failed = True
                    break
            await self.add_word_timestamps(context_id, words.close())
            if failed:
                self.sentence_failed(context_id)  # its words not heard yet never will be
        finally:
            self._spoken = (context_id, offset + received / (2 * rate))


async def _events(response: httpx.Response) -> Any:
    """``(type, data)`` of each server-sent event whose data is a JSON object."""
    name = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line:
            field_name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field_name == "event":
                name = value
            elif field_name == "data":
                data.append(value)
            continue
        event = _decode(name, data)
        name, data = "", []
        if event is not None:
            yield event
    event = _decode(name, data)
    if event is not None:
        yield event


def _decode(name: str, data: list[str]) -> tuple[str, dict[str, Any]] | None:
    if not data:
        return None
    try:
        payload = json.loads("\n".join(data))
    except ValueError:
        logger.warning("Speechify: skipping an event that is not JSON: %.80s", data[0])
        return None
    if not isinstance(payload, dict):
        return None
    kind = payload.get("type")
    return (kind if isinstance(kind, str) and kind else name), payload


class _WordMarks:
    """Turns one request's word marks into ``(word, start, end)`` seconds of the reply.

    Marks whose characters touch in the text (``well`` ``-`` ``known``) make one word; a word is
    complete once the text shows it cannot go on (whitespace or the end follows it), or when a
    mark that does not touch it comes.
    """

    def __init__(self, text: str, offset: float) -> None:
        self._text = text
        self._offset = offset
        self._open: tuple[int, int, float, float] | None = None
        """The word being joined: first and past-last character, start and end seconds."""

    def add(self, marks: list[Any]) -> list[tuple[str, float, float]]:
        done: list[tuple[str, float, float]] = []
        for mark in marks:
            if not isinstance(mark, dict) or mark.get("type", "word") != "word":
                continue
            start_ms, end_ms = mark.get("start_time"), mark.get("end_time")
            if not isinstance(start_ms, int | float) or not isinstance(end_ms, int | float):
                continue
            start_secs = self._offset + start_ms / 1000
            end_secs = self._offset + end_ms / 1000
            first, last = mark.get("start"), mark.get("end")
            if not (
                isinstance(first, int)
                and isinstance(last, int)
                and 0 <= first < last <= len(self._text)
            ):
                done += self.close()  # no usable span: the mark's own value is the word
                value = mark.get("value")
                if isinstance(value, str) and value.strip():
                    done.append((value.strip(), start_secs, end_secs))
                continue
            if self._open is not None and self._open[1] == first:
                self._open = (self._open[0], last, self._open[2], max(self._open[3], end_secs))
            else:
                done += self.close()
                self._open = (first, last, start_secs, end_secs)
            if last >= len(self._text) or self._text[last].isspace():
                done += self.close()
        return done

    def close(self) -> list[tuple[str, float, float]]:
        """The word being joined, now complete (none: empty)."""
        if self._open is None:
            return []
        first, last, start, end = self._open
        self._open = None
        word = self._text[first:last].strip()
        return [(word, start, end)] if word else []
