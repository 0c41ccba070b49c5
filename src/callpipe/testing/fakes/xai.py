"""Fakes of xAI's speech API on 127.0.0.1: :class:`FakeXAISTTServer` (the speech-to-text socket,
``/v1/stt``), :class:`FakeXAITTSServer` (the text-to-speech socket, ``/v1/tts``) and
:class:`FakeXAIHTTPTTSServer` (``POST /v1/tts``).

The documented contract (https://docs.x.ai/developers/model-capabilities/audio/speech-to-text,
.../text-to-speech and https://docs.x.ai/developers/rest-api-reference/inference/voice):

- **Auth.** ``Authorization: Bearer <key>`` on every handshake and request; a wrong key gets
  HTTP 401.
- **Speech to text.** The query configures the session: ``sample_rate`` (8000, 16000, 22050,
  24000, 44100, 48000), ``encoding`` (``pcm``, ``mulaw``, ``alaw``), ``language``, ``model``,
  ``interim_results``, ``endpointing`` (0-5000 ms), ``multichannel``, ``channels`` (2-8) and
  ``diarize``, booleans as ``true``/``false``; a bad value is refused with HTTP 400. The server
  says ``{"type": "transcript.created"}`` when ready; the client streams binary audio and ends
  with ``{"type": "audio.done"}``. Results: ``{"type": "transcript.partial", "text", "words",
  "is_final", "speech_final", "start", "duration"}`` (guesses every ``interim_secs`` with
  ``interim_results=true``; at ``endpointing`` ms of silence, 400 when unset, the whole
  utterance with both flags true), ``{"type": "transcript.done", "text", "duration"}`` after
  ``audio.done`` (then the socket closes) and ``{"type": "error", "message"}``.
- **Text to speech, socket.** The query: ``voice``, ``language`` (required), ``codec`` (``pcm``,
  ``mulaw``, ``alaw``, ``wav``), ``sample_rate``, ``speed``, ``optimize_streaming_latency``,
  ``text_normalization``, ``with_timestamps``. The client sends ``{"type": "text.delta",
  "delta"}`` and ends an utterance with ``{"type": "text.done"}``; ``{"type": "text.clear"}``
  drops the utterance (acknowledged with ``{"type": "audio.clear"}``). The server streams
  ``{"type": "audio.delta", "delta": <base64 audio>}`` (with ``with_timestamps=true``, an
  ``audio_timestamps`` of ``graph_chars`` and ``graph_times`` ``[start, end]`` seconds from the
  utterance's start), then ``{"type": "audio.done"}``; errors are ``{"type": "error",
  "message"}``.
- **Text to speech, HTTP.** ``POST /v1/tts`` with ``{"text", "voice_id", "language",
  "output_format": {"codec", "sample_rate"}, "speed"?, "optimize_streaming_latency"?,
  "text_normalization"?}``; the audio streams back in the codec asked for (errors are JSON
  ``{"error"}`` bodies).

The fakes hear speech by its energy (time counted in the audio received) and speak a tone of
``secs_per_word`` per word.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import alaw_to_pcm
from callpipe.testing.fakes._server import (
    Refusal,
)
from callpipe.testing.fakes._stt import Listener, ListeningFake, ListeningOptions

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

STT_PATH = "/v1/stt"
TTS_PATH = "/v1/tts"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
STT_ENCODINGS = ("pcm", "mulaw", "alaw")
TTS_CODECS = ("pcm", "mulaw", "alaw")
"""The codecs the fakes speak (xAI also serves ``mp3`` and ``wav``)."""
TTS_LANGUAGES = (
    "auto en ar-EG ar-SA ar-AE bn zh fr de hi id it ja ko pt-BR pt-PT ru es-MX es-ES tr vi"
).split()
BOOLEANS = ("true", "false")
_AUTH = [("header", "Authorization", "Bearer ")]
_UNAUTHORIZED = Refusal(401, json.dumps({"error": "Incorrect API key provided"}))


def _refusal(message: str) -> Refusal:
    return Refusal(400, json.dumps({"error": message}))


def stt_query_problem(query: dict[str, str]) -> str | None:
    """Why a speech-to-text handshake's query would be refused (None: accepted)."""
    rate = query.get("sample_rate", "16000")
    if not rate.isdigit() or int(rate) not in SAMPLE_RATES:
        return f"sample_rate must be one of {SAMPLE_RATES}"
    if query.get("encoding", "pcm") not in STT_ENCODINGS:
        return f"encoding must be one of {STT_ENCODINGS}"
    for name in ("interim_results", "multichannel", "diarize"):
        if name in query and query[name] not in BOOLEANS:
            return f"{name} must be true or false"
    endpointing = query.get("endpointing", "0")
    if not endpointing.isdigit() or int(endpointing) > 5000:
        return "endpointing must be an integer from 0 to 5000"
    if query.get("multichannel") == "true":
        channels = query.get("channels", "")
        if not channels.isdigit() or not 2 <= int(channels) <= 8:
            return "channels must be from 2 to 8 with multichannel"
    language = query.get("language")
    if language is not None and (len(language) != 2 or not language.isalpha()):
        return "language must be a two-letter code"
    return None


def _query(request: Any) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()}


def _validate_stt(request: Any) -> Refusal | None:
    problem = stt_query_problem(_query(request))
    return _refusal(problem) if problem else None


class FakeXAISTTServer(ListeningFake):
    """xAI's speech-to-text socket on 127.0.0.1 (see the module docstring)."""

    def __init__(self, **options: Unpack[ListeningOptions]) -> None:
        super().__init__(
            auth=_AUTH,
            path=STT_PATH,
            validate=_validate_stt,
            unauthorized=_UNAUTHORIZED,
            **options,
        )
        self.headers: list[dict[str, str]] = []
        self.commands: list[dict[str, Any]] = []
        """JSON messages received (``audio.done``)."""
        self.created = True
        """False: never say ``transcript.created`` (a session that does not start)."""
        self.created_after_secs = 0.0
        """How long after the handshake ``transcript.created`` comes."""

    async def _handle(self, ws: ServerConnection) -> None:
        query = {k: v[-1] for k, v in self._connected(ws).items()}
        assert ws.request is not None
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        session = _STTSession(self, ws, query)
        with contextlib.suppress(ConnectionClosed):
            await asyncio.sleep(self.created_after_secs)
            if self.created:
                await self._send(ws, {"type": "transcript.created"})
            async for message in ws:
                if self.error_next is not None:
                    error, self.error_next = self.error_next, None
                    await self._send(ws, {"type": "error", "message": error})
                    continue
                if isinstance(message, bytes):
                    self.audio += message
                    await session.audio(message)
                    continue
                try:
                    command = json.loads(message)
                except ValueError:
                    command = None
                if not isinstance(command, dict):
                    await self._send(ws, {"type": "error", "message": "invalid message"})
                    continue
                self.commands.append(command)
                if command.get("type") == "audio.done":
                    await session.done()
                    await ws.close()
                    return
                await self._send(ws, {"type": "error", "message": "unknown message type"})


class _STTSession(Listener):
    """One speech-to-text connection: the utterance being heard, the results sent."""

    def __init__(self, fake: FakeXAISTTServer, ws: ServerConnection, query: dict[str, str]):
        endpointing = int(query.get("endpointing") or 400)
        self.encoding = query.get("encoding", "pcm")
        super().__init__(
            fake,
            rate=int(query.get("sample_rate", "16000")),
            ulaw=self.encoding == "mulaw",
            silence_secs=endpointing / 1000,
        )
        self.ws = ws
        self.interim_results = query.get("interim_results") == "true"

    def samples(self, data: bytes) -> NDArray[np.float64]:
        return super().samples(alaw_to_pcm(data) if self.encoding == "alaw" else data)

    def _partial(self, text: str, *, final: bool) -> dict[str, Any]:
        start = self.start or 0.0
        return {
            "type": "transcript.partial",
            "text": text,
            "words": [{"text": word} for word in text.split()],
            "is_final": final,
            "speech_final": final,
            "start": round(start, 3),
            "duration": round(self.t - start, 3),
        }

    async def interim(self, text: str) -> None:
        if self.interim_results:
            await self.fake._send(self.ws, self._partial(text, final=False))

    async def end_of_speech(self) -> None:
        if self.start is not None:
            await self.fake._send(self.ws, self._partial(self.fake.take_text(), final=True))
            self.start = None

    async def done(self) -> None:
        """``audio.done``: the open utterance's text in ``transcript.done``."""
        text = ""
        if self.start is not None:
            text, self.start = self.fake.take_text(), None
        await self.fake._send(
            self.ws, {"type": "transcript.done", "text": text, "duration": round(self.t, 3)}
        )
