"""FakeSpeechifyServer: Speechify's ``POST /v1/audio/stream/with-timestamps`` on 127.0.0.1.

The contract, as the ``speechify-api`` SDK's models and Speechify's reference give it:

- **Request.** ``Authorization: Bearer <key>`` (a wrong or missing one: 401). A JSON body of
  ``input`` (required, non-empty, at most 20,000 characters), ``voice_id`` (required),
  ``model`` (``simba-3.5``, ``simba-3.2``, ``simba-3.0``; the legacy ``simba-english`` and
  ``simba-multilingual`` give no speech marks: 400 ``speech_marks_unsupported``),
  ``output_format`` (``pcm_<rate>`` for 8000, 16000, 22050, 24000, 44100 or 48000 Hz, or
  ``ulaw_8000``: the fake makes no MP3, Ogg or AAC; ``wav_*`` is refused on streams),
  ``language`` (``xx`` or ``xx-YY``), ``options`` (``loudness_normalization``,
  ``text_normalization``: booleans) and ``safety_identifier`` (1 to 64 of letters, digits and
  ``._-:|+/=``). A body that breaks these gets 400 ``validation_failed`` with ``fields``. Every
  error body is ``{"error": {"code", "message", "fields"?}, "request_id"}``.
- **Answer.** ``text/event-stream``: ``event: speech.chunk`` with ``data: {"type":
  "speech.chunk", "audio"?, "speech_marks"?}``, then ``event: speech.done`` with
  ``{"type": "speech.done", "billable_characters_count", "audio_duration_ms"}``; a failure
  after the stream began is ``event: speech.error`` with ``{"type", "error", "request_id"}``.
  The ``Speechify-Audio-Content-Type`` header names the audio's format.

The fake speaks ``secs_per_word`` of tone per word (split at whitespace) in chunks of
``chunk_secs``. Each word is marked (``type``, ``value``, ``start``/``end`` characters,
``start_time``/``end_time`` milliseconds); a hyphenated word is marked piece by piece
(``well``, ``-``, ``known.``), as Speechify marks punctuation inside a word. A mark comes with
the chunk after the one that ends its audio, so the last event is marks only. It records what
it got and counts the answers a client stopped reading.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from callpipe.audio.g711 import table_pcm_to_ulaw
from callpipe.testing.fakes._server import CountsStreams, sse
from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/v1/audio/stream/with-timestamps"
MODELS = ("simba-3.5", "simba-3.2", "simba-3.0")
LEGACY_MODELS = ("simba-english", "simba-multilingual")
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
OPTIONS = ("loudness_normalization", "text_normalization")
_SAFETY_ID = re.compile(r"[A-Za-z0-9._\-:|+/=]{1,64}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")


def output_rate(output_format: str) -> tuple[int, bool] | None:
    """``(rate, is_ulaw)`` of an output format this fake makes (None: one it does not)."""
    if output_format == "ulaw_8000":
        return 8000, True
    codec, _, rate = output_format.partition("_")
    if codec == "pcm" and rate.isdigit() and int(rate) in PCM_RATES:
        return int(rate), False
    return None


def request_problem(body: Any) -> tuple[str, dict[str, str]] | None:
    """``(code, {field: why})`` when a body is refused (None: it is valid)."""
    if not isinstance(body, dict):
        return "validation_failed", {"body": "the body is a JSON object"}
    fields: dict[str, str] = {}
    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        fields["input"] = "required, non-empty"
    elif len(text) > 20_000:
        fields["input"] = "at most 20000 characters"
    if not isinstance(body.get("voice_id"), str) or not body["voice_id"]:
        fields["voice_id"] = "required"
    model = body.get("model")
    if model is not None and model not in (*MODELS, *LEGACY_MODELS):
        fields["model"] = f"one of {', '.join(MODELS + LEGACY_MODELS)}"
    fmt = body.get("output_format")
    if fmt is not None and (not isinstance(fmt, str) or output_rate(fmt) is None):
        fields["output_format"] = "this fake makes pcm_<rate> and ulaw_8000 (no wav on streams)"
    language = body.get("language")
    if language is not None and (
        not isinstance(language, str) or not _LANGUAGE.fullmatch(language)
    ):
        fields["language"] = "a language code such as en-US"
    options = body.get("options")
    if options is not None:
        if not isinstance(options, dict):
            fields["options"] = "an object"
        else:
            for name, value in options.items():
                if name not in OPTIONS or not isinstance(value, bool):
                    fields[f"options.{name}"] = f"options are {' and '.join(OPTIONS)} (booleans)"
    safety = body.get("safety_identifier")
    if safety is not None and (not isinstance(safety, str) or not _SAFETY_ID.fullmatch(safety)):
        fields["safety_identifier"] = "1 to 64 of letters, digits and ._-:|+/="
    if fields:
        return "validation_failed", fields
    if model in LEGACY_MODELS:
        return "speech_marks_unsupported", {}
    return None


def _error(code: str, message: str, **detail: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **detail}, "request_id": uuid.uuid4().hex}


def word_marks(text: str, secs_per_word: float) -> list[dict[str, Any]]:
    """The marks of ``text``: one per word, a hyphenated word's pieces apart."""
    marks: list[dict[str, Any]] = []
    for n, match in enumerate(re.finditer(r"\S+", text)):
        pieces = [p for p in re.finditer(r"[^-]+|-", match.group())]
        width = secs_per_word * 1000 / len(pieces)
        for i, piece in enumerate(pieces):
            begin = n * secs_per_word * 1000 + i * width
            marks.append(
                {
                    "type": "word",
                    "value": piece.group(),
                    "start": match.start() + piece.start(),
                    "end": match.start() + piece.end(),
                    "start_time": round(begin, 3),
                    "end_time": round(begin + width, 3),
                }
            )
    return marks


class FakeSpeechifyServer(CountsStreams, SpeechHTTPFake):
    """Speechify's streamed speech with word timing on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.05,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.refused = 0
        """Requests refused for their key (401)."""
        self.error_after: int | None = None
        """Send a ``speech.error`` after this many chunks of the next request."""
        self.completed_streams = 0
        self.cancelled_streams = 0

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self.refused += 1
            return JSONResponse(_error("unauthorized", "Invalid or missing API key"), 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if isinstance(body, dict):
            self.requests.append(body)
        problem = request_problem(body)
        if problem is not None:
            code, fields = problem
            if code == "speech_marks_unsupported":
                message = "this model gives no speech marks; use a simba-3 model"
                return JSONResponse(_error(code, message), 400)
            return JSONResponse(_error(code, "invalid request", fields=fields), 400)
        assert isinstance(body, dict)
        status = self._next_status()
        if status != 200:
            return JSONResponse(_error("service_unavailable", f"scripted error {status}"), status)
        fmt = str(body.get("output_format") or "pcm_24000")
        rate, ulaw = output_rate(fmt) or (24000, False)
        error_after, self.error_after = self.error_after, None
        kind = "audio/basic" if ulaw else f"audio/L16;rate={rate};channels=1"
        return StreamingResponse(
            self._counted(self._events(str(body["input"]), rate, ulaw, error_after)),
            media_type="text/event-stream",
            headers={"Speechify-Audio-Content-Type": kind},
        )

    async def _events(
        self, text: str, rate: int, ulaw: bool, error_after: int | None
    ) -> AsyncGenerator[str, None]:
        pcm = tone_pcm(len(text.split()) * self.secs_per_word, rate)
        marks = word_marks(text, self.secs_per_word)
        step = max(2, int(self.chunk_secs * rate) * 2)
        final_ms = 0.0  # marks ending by here go with the next chunk
        for n, i in enumerate(range(0, len(pcm), step)):
            if error_after is not None and n == error_after:
                yield sse(
                    {
                        "type": "speech.error",
                        **_error("internal_error", "synthesis failed"),
                    }
                )
                return
            piece = pcm[i : i + step]
            chunk: dict[str, Any] = {
                "type": "speech.chunk",
                "audio": base64.b64encode(table_pcm_to_ulaw(piece) if ulaw else piece).decode(),
            }
            ready = [m for m in marks if m["end_time"] <= final_ms]
            if ready:
                chunk["speech_marks"] = ready
                marks = marks[len(ready) :]
            yield sse(chunk)
            final_ms = (i + len(piece)) / 2 / rate * 1000
            await asyncio.sleep(self.chunk_delay)
        if marks:
            yield sse({"type": "speech.chunk", "speech_marks": marks})
        yield sse(
            {
                "type": "speech.done",
                "billable_characters_count": len(text),
                "audio_duration_ms": round(len(pcm) / 2 / rate * 1000),
            }
        )
