"""FakeHumeServer: Hume's streamed JSON text-to-speech, ``POST /v0/tts/stream/json``, on
127.0.0.1.

The documented contract (https://dev.hume.ai/reference/text-to-speech-tts/
synthesize-json-streaming, and the ``hume`` SDK's ``PostedTts`` / ``TtsOutput`` models):

- **Request.** The key in ``X-Hume-Api-Key`` (a wrong one: 401). A JSON body of
  ``utterances`` (required, at least one: ``text`` up to 5,000 characters, ``voice`` as
  ``{"id"}`` or ``{"name"}`` with an optional ``provider`` of ``HUME_AI`` / ``CUSTOM_VOICE``,
  ``description`` up to 1,000 characters, ``speed`` 0.25 to 3, ``trailing_silence`` 0 to 5
  seconds), ``context``, ``format`` (``{"type": "mp3" | "pcm" | "wav"}``), ``num_generations``
  (1 to 5), ``split_utterances``, ``strip_headers``, ``temperature``, ``version`` (``"1"`` or
  ``"2"``; 2 needs a voice), ``include_timestamp_types`` (``word``, ``phoneme``; Octave 2
  only) and ``instant_mode`` (needs a voice and a single generation). A body that breaks these
  rules gets 422 with ``{"detail": [{"loc", "msg", "type"}]}``.
- **Answer.** One JSON object per line. Audio: ``{"type": "audio", "audio": <base64>,
  "audio_format", "chunk_index", "is_last_chunk", "generation_id", "request_id", "snippet_id",
  "text", "utterance_index"}``; timing: ``{"type": "timestamp", "generation_id",
  "request_id", "snippet_id", "timestamp": {"type", "text", "time": {"begin", "end"}}}`` in
  milliseconds from the start of the generation's audio.

The fake speaks ``secs_per_word`` of tone per word as 16-bit PCM at 48 kHz (Hume's rate; it
makes no MP3 or WAV, a 422 says so), one snippet per utterance, in chunks of ``chunk_secs``,
followed by the utterance's ``trailing_silence``. An Octave 2 request asking for word timing
gets each snippet's word timestamps ahead of its audio (an order a client must cope with). It
records what it got and counts the answers a client stopped reading.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from callpipe.testing.fakes._server import CountsStreams
from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/v0/tts/stream/json"
SAMPLE_RATE = 48_000
PROVIDERS = ("HUME_AI", "CUSTOM_VOICE")


def _number_in(value: Any, low: float, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


def _utterance_problem(utterance: Any, i: int) -> tuple[list[Any], str] | None:
    """Where and why an utterance is invalid (None: it is valid)."""
    loc: list[Any] = ["body", "utterances", i]
    if not isinstance(utterance, dict):
        return loc, "an utterance is an object"
    text = utterance.get("text")
    if not isinstance(text, str):
        return [*loc, "text"], "Field required"
    if len(text) > 5000:
        return [*loc, "text"], "at most 5000 characters"
    voice = utterance.get("voice")
    if voice is not None:
        if not isinstance(voice, dict) or (("id" in voice) == ("name" in voice)):
            return [*loc, "voice"], "a voice is {id} or {name}"
        if not isinstance(voice.get("id", voice.get("name")), str):
            return [*loc, "voice"], "a voice's id or name is a string"
        if voice.get("provider") not in (None, *PROVIDERS):
            return [*loc, "voice", "provider"], f"provider is one of {', '.join(PROVIDERS)}"
    description = utterance.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 1000):
        return [*loc, "description"], "a string of at most 1000 characters"
    speed = utterance.get("speed")
    if speed is not None and not _number_in(speed, 0.25, 3.0):
        return [*loc, "speed"], "speed is between 0.25 and 3"
    silence = utterance.get("trailing_silence")
    if silence is not None and not _number_in(silence, 0.0, 5.0):
        return [*loc, "trailing_silence"], "trailing_silence is between 0 and 5"
    return None


def request_problem(body: Any) -> tuple[list[Any], str] | None:
    """Where and why a ``/v0/tts/stream/json`` body is invalid (None: it is valid)."""
    if not isinstance(body, dict):
        return ["body"], "the body is a JSON object"
    utterances = body.get("utterances")
    if not isinstance(utterances, list) or not utterances:
        return ["body", "utterances"], "at least one utterance is required"
    for i, utterance in enumerate(utterances):
        problem = _utterance_problem(utterance, i)
        if problem is not None:
            return problem
    fmt = body.get("format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "pcm"):
        return ["body", "format"], "this fake produces {'type': 'pcm'} only"
    version = body.get("version")
    if version not in (None, "1", "2"):
        return ["body", "version"], "version is '1' or '2'"
    voiced = all(isinstance(u, dict) and u.get("voice") for u in utterances[:1])
    if version == "2" and not voiced:
        return ["body", "version"], "version 2 requires a voice"
    generations = body.get("num_generations")
    if generations is not None and not (isinstance(generations, int) and 1 <= generations <= 5):
        return ["body", "num_generations"], "num_generations is between 1 and 5"
    if body.get("instant_mode") is True and (not voiced or generations not in (None, 1)):
        return ["body", "instant_mode"], "instant mode needs a voice and one generation"
    kinds = body.get("include_timestamp_types")
    if kinds is not None and (
        not isinstance(kinds, list) or any(k not in ("word", "phoneme") for k in kinds)
    ):
        return ["body", "include_timestamp_types"], "timestamp types are word and phoneme"
    temperature = body.get("temperature")
    if temperature is not None and not _number_in(temperature, 0.0, float("inf")):
        return ["body", "temperature"], "temperature is a number of at least 0"
    return None


class FakeHumeServer(CountsStreams, SpeechHTTPFake):
    """Hume's ``POST /v0/tts/stream/json`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.refused = 0
        """Requests refused for their key (401)."""
        self.completed_streams = 0
        self.cancelled_streams = 0
        """Answers the client stopped reading before their end (a barge-in)."""

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("x-hume-api-key") != self.api_key:
            self.refused += 1
            return JSONResponse({"error": "Unauthorized", "message": "Invalid ApiKey"}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if isinstance(body, dict):
            self.requests.append(body)
        problem = request_problem(body)
        if problem is not None:
            loc, msg = problem
            return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}, 422)
        assert isinstance(body, dict)
        status = self._next_status()
        if status != 200:
            return JSONResponse(
                {"error": "scripted", "message": f"scripted error {status}"}, status
            )
        return StreamingResponse(self._counted(self._lines(body)), media_type="application/json")

    async def _lines(self, body: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        request_id = uuid.uuid4().hex
        generation_id = str(uuid.uuid4())
        timed = body.get("version") == "2" and "word" in (body.get("include_timestamp_types") or [])
        step = max(2, int(self.chunk_secs * SAMPLE_RATE) * 2)
        start_ms = 0
        for index, utterance in enumerate(body["utterances"]):
            text = str(utterance["text"])
            words = text.split()
            snippet_id = str(uuid.uuid4())
            ids = {
                "generation_id": generation_id,
                "request_id": request_id,
                "snippet_id": snippet_id,
            }
            if timed:
                for n, word in enumerate(words):
                    begin = start_ms + round(n * self.secs_per_word * 1000)
                    end = start_ms + round((n + 1) * self.secs_per_word * 1000)
                    stamp = {"type": "word", "text": word, "time": {"begin": begin, "end": end}}
                    yield _line({"type": "timestamp", **ids, "timestamp": stamp})
            pcm = tone_pcm(len(words) * self.secs_per_word, SAMPLE_RATE)
            pcm += bytes(int(float(utterance.get("trailing_silence") or 0) * SAMPLE_RATE) * 2)
            start_ms += round(len(pcm) / 2 / SAMPLE_RATE * 1000)
            pieces = [pcm[i : i + step] for i in range(0, len(pcm), step)] or [b""]
            for n, piece in enumerate(pieces):
                chunk = {
                    "type": "audio",
                    "audio": base64.b64encode(piece).decode(),
                    "audio_format": "pcm",
                    "chunk_index": n,
                    "is_last_chunk": n == len(pieces) - 1,
                    **ids,
                    "text": text,
                    "utterance_index": index,
                }
                if body.get("instant_mode") is not True:
                    chunk["transcribed_text"] = text
                yield _line(chunk)
                await asyncio.sleep(self.chunk_delay)


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()
