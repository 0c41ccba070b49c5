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
import base64
import contextlib
import json
from typing import TYPE_CHECKING, Any, Unpack
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import alaw_to_pcm, pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake
from callpipe.testing.fakes._stt import Listener, ListeningFake, ListeningOptions
from callpipe.testing.fakes._tts import SpeechHTTPFake, paced, speech_chunks

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


# ---------------------------------------------------------------------- text to speech


def tts_option_problem(options: dict[str, Any]) -> str | None:
    """Why text-to-speech options (the socket's query, or the HTTP body's fields as strings)
    would be refused (None: accepted)."""
    if not options.get("language"):
        return "language is required"
    if options["language"] not in TTS_LANGUAGES and options["language"].lower() not in (
        code.lower() for code in TTS_LANGUAGES
    ):
        return f"unsupported language: {options['language']}"
    if options.get("codec", "mp3") not in (*TTS_CODECS, "mp3", "wav"):
        return f"codec must be one of {TTS_CODECS}, mp3 or wav"
    rate = options.get("sample_rate", "24000")
    if not rate.isdigit() or int(rate) not in SAMPLE_RATES:
        return f"sample_rate must be one of {SAMPLE_RATES}"
    speed = options.get("speed")
    if speed is not None:
        try:
            ok = 0.7 <= float(speed) <= 1.5
        except ValueError:
            ok = False
        if not ok:
            return "speed must be from 0.7 to 1.5"
    latency = options.get("optimize_streaming_latency")
    if latency is not None and latency not in ("0", "1", "2"):
        return "optimize_streaming_latency must be 0, 1 or 2"
    for name in ("text_normalization", "with_timestamps"):
        if name in options and options[name] not in BOOLEANS:
            return f"{name} must be true or false"
    return None


def _validate_tts(request: Any) -> Refusal | None:
    query = _query(request)
    problem = tts_option_problem(query)
    if problem is None and query.get("codec") in ("mp3", "wav"):
        problem = f"the fake speaks {TTS_CODECS}"
    return _refusal(problem) if problem else None


def _encode(pcm: bytes, codec: str) -> bytes:
    if codec == "mulaw":
        return pcm_to_ulaw(pcm)
    if codec == "alaw":
        return pcm_to_alaw(pcm)
    return pcm


def char_times(text: str, secs_per_word: float) -> list[tuple[str, float, float]]:
    """Each character of ``text`` (words split by single spaces) with its ``[start, end]``:
    a word takes ``secs_per_word``, its characters share it evenly, a space takes no time."""
    timed: list[tuple[str, float, float]] = []
    for i, word in enumerate(text.split()):
        if i:
            timed.append((" ", i * secs_per_word, i * secs_per_word))
        step = secs_per_word / len(word)
        for j, char in enumerate(word):
            start = i * secs_per_word + j * step
            timed.append((char, round(start, 6), round(start + step, 6)))
    return timed


class FakeXAITTSServer(ServedWebsocketFake):
    """xAI's text-to-speech socket on 127.0.0.1 (see the module docstring)."""

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
        self.queries: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        """Every client message, in order."""
        self.events: list[dict[str, Any]] = []
        """Everything sent to clients."""
        self.utterances: list[str] = []
        """The text of each utterance spoken (ended with ``text.done``)."""
        self.connections = 0
        self.error_next: str | None = None
        """Answer the next client message with this error instead."""
        self.answer_clear = True
        """False: ``text.clear`` drops the utterance but is never acknowledged."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=api_key,
            auth=_AUTH,
            path=TTS_PATH,
            validate=_validate_tts,
            unauthorized=_UNAUTHORIZED,
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes

    async def _send(self, ws: ServerConnection, event: dict[str, Any]) -> None:
        self.events.append(event)
        await ws.send(json.dumps(event))

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = _query(ws.request)
        self.queries.append(query)
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})
        pending: asyncio.Queue[str] = asyncio.Queue()
        buffer = ""
        synth = asyncio.get_running_loop().create_task(self._synthesize(ws, query, pending))
        try:
            async for raw in ws:
                message = json.loads(raw) if isinstance(raw, str) else None
                if not isinstance(message, dict):
                    await self._send(ws, {"type": "error", "message": "expected a JSON object"})
                    continue
                self.messages.append(message)
                if self.error_next is not None:
                    error, self.error_next = self.error_next, None
                    await self._send(ws, {"type": "error", "message": error})
                    continue
                kind = message.get("type")
                if kind == "text.delta" and isinstance(message.get("delta"), str):
                    buffer += message["delta"]
                elif kind == "text.done":
                    if buffer.strip():
                        pending.put_nowait(buffer)
                    buffer = ""
                elif kind == "text.clear":
                    buffer = ""
                    while not pending.empty():
                        pending.get_nowait()
                    synth.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await synth
                    synth = asyncio.get_running_loop().create_task(
                        self._synthesize(ws, query, pending)
                    )
                    if self.answer_clear:
                        await self._send(ws, {"type": "audio.clear"})
                else:
                    await self._send(ws, {"type": "error", "message": f"unknown type: {kind}"})
        except ConnectionClosed:
            pass
        finally:
            synth.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await synth

    async def _synthesize(
        self, ws: ServerConnection, query: dict[str, str], pending: asyncio.Queue[str]
    ) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                text = await pending.get()
                await self._speak(ws, query, text)

    async def _speak(self, ws: ServerConnection, query: dict[str, str], text: str) -> None:
        """One utterance: audio deltas, each with the timing of the characters starting in
        it (``with_timestamps=true``), then ``audio.done``."""
        self.utterances.append(text)
        text = " ".join(text.split())
        rate = int(query.get("sample_rate", "24000"))
        codec = query.get("codec", "pcm")
        timed = (
            char_times(text, self.secs_per_word) if query.get("with_timestamps") == "true" else []
        )
        t = 0.0
        for pcm in speech_chunks(len(text.split()) * self.secs_per_word, rate, self.chunk_secs):
            end = t + len(pcm) / 2 / rate
            event: dict[str, Any] = {
                "type": "audio.delta",
                "delta": base64.b64encode(_encode(pcm, codec)).decode(),
            }
            mine = [c for c in timed if t - 1e-9 <= c[1] < end - 1e-9]
            if mine:
                event["audio_timestamps"] = {
                    "graph_chars": [c[0] for c in mine],
                    "graph_times": [[c[1], c[2]] for c in mine],
                }
            await self._send(ws, event)
            t = end
            await asyncio.sleep(self.chunk_delay)
        await self._send(ws, {"type": "audio.done"})


class FakeXAIHTTPTTSServer(SpeechHTTPFake):
    """xAI's ``POST /v1/tts`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(TTS_PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": "Incorrect API key provided"}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "invalid JSON body"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, 400)
        self.requests.append(body)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > 15000:
            return JSONResponse({"error": "text is required (at most 15000 characters)"}, 400)
        fmt = body.get("output_format") or {}
        if not isinstance(fmt, dict):
            return JSONResponse({"error": "output_format must be an object"}, 400)
        options = {
            k: str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in (body | fmt).items()
            if k != "output_format" and v is not None
        }
        problem = tts_option_problem(options)
        codec = str(fmt.get("codec", "mp3"))
        if problem is None and codec not in TTS_CODECS:
            problem = f"the fake speaks {TTS_CODECS}"
        if problem is not None:
            return JSONResponse({"error": problem}, 400)
        status = self._next_status()
        if status != 200:
            return JSONResponse({"error": f"scripted error {status}"}, status)
        rate = int(fmt.get("sample_rate", 24000))
        chunks = speech_chunks(len(text.split()) * self.secs_per_word, rate, self.chunk_secs)

        encoded = (_encode(chunk, codec) for chunk in chunks)
        return StreamingResponse(
            paced(encoded, self.chunk_delay), media_type="application/octet-stream"
        )
