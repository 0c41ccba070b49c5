r"""FakeResembleServer: Resemble AI's streaming text-to-speech WebSocket (``/stream``).

The key goes in ``Authorization: Bearer <key>`` (a wrong one: HTTP 401). Each client message
is one synthesis request, a JSON object with ``voice_uuid`` and ``data`` (1 to 3000
characters) and optionally ``project_uuid``, ``request_id`` (an integer; when absent, one more
than the last), ``binary_response`` (the fake answers in JSON frames, ``false``),
``output_format`` (``wav``; the fake does not encode ``mp3``), ``sample_rate`` (8000, 16000,
22050, 32000 or 44100; default 22050), ``precision`` (``PCM_16`` or ``MULAW`` here; Resemble
also has ``PCM_24`` and ``PCM_32``) and ``no_audio_header``. Anything else gets ``{"type":
"error", "error_name", "message", "status_code": 400, "request_id"}`` (the socket stays open).

Requests are generated concurrently, as Resemble may: each answers with ``{"type": "audio",
"audio_content": <base64>, "audio_timestamps": {"graph_chars", "graph_times", "phon_chars",
"phon_times"}, "sample_rate", "request_id"}`` frames, a tone of ``secs_per_word`` per word
(with a WAV header on the first frame unless ``no_audio_header``; odd ``request_id``\ s at half
the amplitude, so a test can tell neighbouring requests apart), each frame timing the
characters it covers (seconds from the request's start), then ``{"type": "audio_end",
"request_id"}``. ``error_next`` answers the next request with an error of status
``error_status`` instead.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.audio.wav import pcm_to_wav
from callpipe.testing.fakes._server import (
    LocalWebsocketServer,
    Refusal,
    ServedWebsocketFake,
    json_object,
)
from callpipe.testing.fakes._tts import speech_chunks

PATH = "/stream"
SAMPLE_RATES = (8000, 16000, 22050, 32000, 44100)
PRECISIONS = ("PCM_16", "MULAW")
REQUEST_FIELDS = frozenset(
    {
        "voice_uuid",
        "project_uuid",
        "data",
        "binary_response",
        "request_id",
        "output_format",
        "sample_rate",
        "precision",
        "no_audio_header",
    }
)
MAX_TEXT = 3000


def request_problem(request: dict[str, Any]) -> str | None:
    """Why a synthesis request would be refused (None: accepted)."""
    unknown = set(request) - REQUEST_FIELDS
    if unknown:
        return f"unknown fields: {sorted(unknown)}"
    if not isinstance(request.get("voice_uuid"), str) or not request["voice_uuid"]:
        return "voice_uuid is required"
    data = request.get("data")
    if not isinstance(data, str) or not 1 <= len(data) <= MAX_TEXT:
        return f"data must be 1 to {MAX_TEXT} characters"
    checks: tuple[tuple[str, type, tuple[Any, ...] | None], ...] = (
        ("request_id", int, None),
        ("binary_response", bool, (False,)),
        ("output_format", str, ("wav",)),
        ("sample_rate", int, SAMPLE_RATES),
        ("precision", str, PRECISIONS),
        ("no_audio_header", bool, None),
        ("project_uuid", str, None),
    )
    for name, kind, allowed in checks:
        if name not in request:
            continue
        value = request[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return f"{name} must be a {kind.__name__}"
        if allowed is not None and value not in allowed:
            return f"{name} must be one of {allowed} (here)"
    return None


class FakeResembleServer(ServedWebsocketFake):
    """See the module docstring. ``async with FakeResembleServer() as fake: fake.url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        """Seconds between two audio frames of a request (generation time)."""
        self.requests: list[dict[str, Any]] = []
        """Every client message, parsed."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent, in order."""
        self.spoken: list[tuple[str, str]] = []
        """Each request's (voice, text), in the order they started."""
        self.error_next: str | None = None
        self.error_status = 500
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=[("header", "Authorization", "Bearer ")],
            path=PATH,
            unauthorized=Refusal(401, json.dumps({"success": False, "message": "Unauthorized"})),
        )

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await ws.send(json.dumps(message))

    async def _error(
        self, ws: ServerConnection, status: int, text: str, request_id: Any = None
    ) -> None:
        name = "BadRequest" if status == 400 else "ServerError"
        error = {
            "type": "error",
            "error_name": name,
            "message": text,
            "status_code": status,
            "request_id": request_id,
        }
        await self._send(ws, error)

    async def _handle(self, ws: ServerConnection) -> None:
        tasks: set[asyncio.Task[None]] = set()
        last_id = -1
        try:
            with contextlib.suppress(ConnectionClosed):
                async for raw in ws:
                    request = json_object(raw)
                    if request is None:
                        await self._error(ws, 400, "the message must be a JSON object")
                        continue
                    self.requests.append(request)
                    request_id = request.get("request_id", last_id + 1)
                    problem = request_problem(request)
                    if problem is not None:
                        await self._error(ws, 400, problem, request_id)
                        continue
                    last_id = request_id
                    if self.error_next is not None:
                        said, self.error_next = self.error_next, None
                        await self._error(ws, self.error_status, said, request_id)
                        continue
                    task = asyncio.get_running_loop().create_task(
                        self._speak(ws, request, request_id)
                    )
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()

    async def _speak(self, ws: ServerConnection, request: dict[str, Any], request_id: int) -> None:
        text = str(request["data"])
        self.spoken.append((str(request["voice_uuid"]), text))
        rate = int(request.get("sample_rate", 22050))
        mulaw = request.get("precision") == "MULAW"
        secs = max(len(text.split()), 1) * self.secs_per_word
        chunks = speech_chunks(secs, rate, self.chunk_secs)
        per_char = secs / max(len(text), 1)
        sent_secs = 0.0
        char = 0
        with contextlib.suppress(ConnectionClosed):
            for index, pcm in enumerate(chunks):
                chunk_end = sent_secs + len(pcm) / (2 * rate)
                covered = min(len(text), round(chunk_end / per_char))
                chars = list(text[char:covered])
                times = [
                    [(char + i) * per_char, (char + i + 1) * per_char] for i in range(len(chars))
                ]
                char, sent_secs = covered, chunk_end
                if request_id % 2:
                    pcm = _halved(pcm)
                audio = pcm_to_ulaw(pcm) if mulaw else pcm
                if index == 0 and not request.get("no_audio_header", False):
                    audio = pcm_to_wav(pcm, rate)[:44] + audio
                frame = {
                    "type": "audio",
                    "audio_content": base64.b64encode(audio).decode("ascii"),
                    "audio_timestamps": {
                        "graph_chars": chars,
                        "graph_times": times,
                        "phon_chars": chars,
                        "phon_times": times,
                    },
                    "sample_rate": rate,
                    "request_id": request_id,
                }
                await self._send(ws, frame)
                await asyncio.sleep(self.chunk_delay)
            await self._send(ws, {"type": "audio_end", "request_id": request_id})


def _halved(pcm: bytes) -> bytes:
    """16-bit PCM at half the amplitude."""
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2")
    return (samples // 2).astype("<i2").tobytes()
