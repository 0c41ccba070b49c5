"""Mistral's Voxtral speech APIs on 127.0.0.1, as the ``mistralai`` SDK's models describe them.

**Speech** (:class:`FakeMistralSpeechServer`, ``POST /v1/audio/speech``). The key in
``Authorization: Bearer <key>`` (a wrong one: 401 ``{"message", "request_id"}``); a JSON body
with ``input`` (a non-empty string), and optionally ``model``, ``voice_id``, ``stream``
(boolean) and ``response_format`` (``pcm`` or ``wav`` here: the fake encodes no compressed
audio); a bad one gets 422 ``{"detail": [{"loc", "msg", "type"}]}``. With ``stream: true`` the
answer is ``text/event-stream``: ``event: speech.audio.delta`` events whose data is ``{"type":
"speech.audio.delta", "audio_data": <base64>}``, then ``event: speech.audio.done`` with
``{"type": "speech.audio.done", "usage": {...}}``. Without it, ``{"audio_data": <base64>}``
holds the whole audio. ``pcm`` is 32-bit float little-endian samples, mono at 24 kHz (``wav``,
not streamed here: 16-bit PCM in a WAV file). The fake speaks ``secs_per_word`` of tone per
word, in chunks of ``chunk_secs``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np

from callpipe.audio.wav import pcm_to_wav
from callpipe.testing.fakes._server import CountsStreams
from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

SPEECH_PATH = "/v1/audio/speech"
SPEECH_RATE = 24000
SPEECH_FORMATS = ("pcm", "wav")
"""The ``response_format`` values the fake makes (Mistral's also include mp3, flac, opus)."""


def pcm16_to_float32(pcm: bytes) -> bytes:
    """16-bit PCM as 32-bit float little-endian samples (Mistral's ``pcm``)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype("<f4") / 32768.0
    data: bytes = samples.astype("<f4").tobytes()
    return data


def speech_problem(body: Any) -> list[dict[str, Any]]:
    """The validation errors of a speech request body (empty: it is valid)."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "a JSON object is required", "type": "model_type"}]
    problems: list[dict[str, Any]] = []

    def refuse(name: str, msg: str) -> None:
        problems.append({"loc": ["body", name], "msg": msg, "type": "value_error"})

    text = body.get("input")
    if not isinstance(text, str) or not text.strip():
        refuse("input", "a non-empty string is required")
    for name in ("model", "voice_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            refuse(name, "a string")
    if not isinstance(body.get("stream", False), bool):
        refuse("stream", "a boolean")
    if body.get("response_format", "mp3") not in SPEECH_FORMATS:
        refuse("response_format", f"this fake makes {' and '.join(SPEECH_FORMATS)}")
    return problems


def _event(data: dict[str, Any]) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"


class FakeMistralSpeechServer(CountsStreams, SpeechHTTPFake):
    """Mistral's ``POST /v1/audio/speech`` (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.05,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(SPEECH_PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.completed_streams = 0
        self.cancelled_streams = 0

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"message": "Unauthorized", "request_id": uuid.uuid4().hex}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        problems = speech_problem(body)
        if problems:
            return JSONResponse({"detail": problems}, 422)
        self.requests.append(body)
        status = self._next_status()
        if status != 200:
            message = {"message": f"scripted error {status}", "request_id": uuid.uuid4().hex}
            return JSONResponse(message, status)
        text = str(body["input"])
        pcm = tone_pcm(len(text.split()) * self.secs_per_word, SPEECH_RATE)
        wav = body.get("response_format") == "wav"
        if not body.get("stream"):
            audio = pcm_to_wav(pcm, SPEECH_RATE) if wav else pcm16_to_float32(pcm)
            return JSONResponse({"audio_data": base64.b64encode(audio).decode()})
        if wav:
            problem = {"loc": ["body", "response_format"], "msg": "the fake streams pcm only"}
            return JSONResponse({"detail": [{**problem, "type": "value_error"}]}, 422)
        return StreamingResponse(
            self._counted(self._events(text, pcm)), media_type="text/event-stream"
        )

    async def _events(self, text: str, pcm: bytes) -> AsyncGenerator[str, None]:
        step = max(2, int(self.chunk_secs * SPEECH_RATE) * 2)
        for i in range(0, len(pcm), step):
            audio = pcm16_to_float32(pcm[i : i + step])
            data = {"type": "speech.audio.delta", "audio_data": base64.b64encode(audio).decode()}
            yield _event(data)
            await asyncio.sleep(self.chunk_delay)
        usage = {"prompt_tokens": len(text.split()), "completion_tokens": 0, "total_tokens": 0}
        yield _event({"type": "speech.audio.done", "usage": usage})
