"""FakeSpeechmaticsServer: Speechmatics' real-time speech-to-text WebSocket (``/v2``).

The handshake is Speechmatics': the API key (or a temporary key) as ``Authorization: Bearer
<key>``, or a temporary key as the ``jwt`` query parameter; a wrong key is refused with HTTP
401. The first message must be ``StartRecognition`` with an ``audio_format`` (``raw``:
``pcm_s16le``, ``pcm_f32le`` or ``mulaw`` at a ``sample_rate``) and a ``transcription_config``
(``language`` required; the fields Speechmatics' SDK sends); the server answers
``RecognitionStarted`` (``id``, ``language_pack_info``) after an ``Info``
(``recognition_quality``). Problems end the session as documented: an ``Error`` (``type``,
``reason``), then a close (the fake closes with 1008, or 1011 for ``job_error``,
``buffer_error`` and ``unknown_error``). Audio before ``StartRecognition`` is a
``protocol_error``.

Each binary message is ``AddAudio``; the server acknowledges it with ``AudioAdded`` and its
``seq_no`` (counted from 1). ``ForceEndOfUtterance`` makes every word of the utterance final
(``AddTranscript``), then ``EndOfUtterance``; ``EndOfStream`` (``last_seq_no``) does the same,
then ``EndOfTranscript``, and the socket closes. ``SetRecognitionConfig`` may change
``max_delay``, ``max_delay_mode`` and ``enable_partials``.

The fake "hears" by energy, counting time in received audio (not wall-clock time), so tests are
deterministic. Loud audio starts an utterance whose words are the next entry of
``transcripts`` ("Hello." when empty), one more word per ``secs_per_word`` of speech. Every
``partial_secs`` of speech, with ``enable_partials``, an ``AddPartialTranscript`` holds the
words heard and not yet final; a word becomes final (``AddTranscript``) ``max_delay`` seconds
of audio after it was heard (4 unless configured). With
``conversation_config.end_of_utterance_silence_trigger`` quiet that long ends the utterance as
``ForceEndOfUtterance`` does. Punctuation at the end of a word is its own ``punctuation``
result, as Speechmatics sends it; with ``diarization: "speaker"`` each word has a ``speaker``.

:class:`FakeSpeechmaticsTTSServer` is Speechmatics' text-to-speech preview API
(https://docs.speechmatics.com/text-to-speech/quickstart): ``POST /generate/<voice>`` with the
key as ``Authorization: Bearer <key>`` (else 401), a JSON body ``{"text": ...}`` (a missing or
empty text: 400) and the query's ``output_format``: ``pcm_16000`` (raw 16-bit PCM) or
``wav_16000`` (a WAV file, also the answer when none is named); another format or an unknown
voice: 400 (an error answer is JSON ``{"detail": ...}``). The speech, ``secs_per_word`` of tone
per word at 16 kHz, streams in chunks of ``chunk_secs``.
"""

from __future__ import annotations

import contextlib
import io
import json
import uuid
import wave
from typing import Any, Unpack

import numpy as np
from numpy.typing import NDArray
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.testing.fakes._server import CountsStreams, LocalWebsocketServer, json_object
from callpipe.testing.fakes._stt import Hearing, PartialsFake, PartialsOptions
from callpipe.testing.fakes._tts import SpeechHTTPFake, paced, speech_chunks

PATH = "/v2"
ENCODINGS = ("pcm_s16le", "pcm_f32le", "mulaw")
TRANSCRIPTION_FIELDS = frozenset(
    {
        "language",
        "model",
        "output_locale",
        "diarization",
        "additional_vocab",
        "punctuation_overrides",
        "domain",
        "enable_entities",
        "audio_filtering_config",
        "transcript_filtering_config",
        "max_delay",
        "max_delay_mode",
        "enable_partials",
        "speaker_diarization_config",
        "streaming_mode",
        "conversation_config",
        "ctrl",
        "channel_diarization_labels",
        "operating_point",
        "language_hints",
        "language_hints_strict",
    }
)
"""The ``transcription_config`` fields of Speechmatics' real-time SDK."""
MODELS = ("standard", "enhanced", "melia-1")
RECONFIGURABLE = frozenset({"max_delay", "max_delay_mode", "enable_partials"})
CLOSE_1011 = frozenset({"job_error", "buffer_error", "unknown_error"})
PUNCTUATION = ".,?!"


class FakeSpeechmaticsServer(PartialsFake):
    """See the module docstring."""

    def __init__(self, **options: Unpack[PartialsOptions]) -> None:
        super().__init__(**options)
        self.starts: list[dict[str, Any]] = []
        """Each session's ``StartRecognition``."""
        self.received: list[dict[str, Any]] = []
        """Every JSON message received, in order (all connections)."""
        self.audio_before_start = 0
        """Audio messages that came before ``StartRecognition`` (a protocol error)."""
        self.audio_at_force_end: list[int] = []
        """Bytes of audio received on the connection when each ``ForceEndOfUtterance`` came."""
        self.seq_nos: list[int] = []
        """Each session's count of audio messages when its ``EndOfStream`` came."""
        self.error_next: tuple[str, str] | None = None
        """Answer the next audio message with this ``Error`` (type, reason), then close."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=self.api_key,
            auth=[("header", "Authorization", "Bearer "), ("query", "jwt", "")],
            path=PATH,
        )

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The messages of type ``kind`` sent."""
        return [m for m in self.sent if m["message"] == kind]

    async def _handle(self, ws: ServerConnection) -> None:
        self._connected(ws)
        session = _Session(self, ws)
        with contextlib.suppress(ConnectionClosed):
            await self._feed(ws, session)


class _Session(Hearing):
    """One connection: its configuration, audio clock and utterance."""

    def __init__(self, fake: FakeSpeechmaticsServer, ws: ServerConnection) -> None:
        super().__init__(rate=16000, threshold=fake.energy_threshold)
        self.fake = fake
        self.ws = ws
        self.config: dict[str, Any] = {}
        self.started = False
        self.encoding = "pcm_s16le"
        self.seq_no = 0
        self.received = 0
        self.words: list[str] = []
        self.final_count = 0

    async def send(self, message: dict[str, Any]) -> None:
        self.fake.sent.append(message)
        await self.ws.send(json.dumps(message))

    async def fail(self, kind: str, reason: str) -> None:
        await self.send({"message": "Error", "type": kind, "reason": reason})
        await self.ws.close(1011 if kind in CLOSE_1011 else 1008, reason[:120])

    async def control(self, raw: str) -> bool:
        message = json_object(raw)
        if message is None:
            await self.fail("invalid_message", f"Not a JSON object: {raw[:80]}")
            return False
        self.fake.received.append(message)
        kind = message.get("message")
        if kind == "StartRecognition":
            return await self._start(message)
        if not self.started:
            await self.fail("protocol_error", f"{kind} before StartRecognition")
            return False
        if kind == "ForceEndOfUtterance":
            self.fake.audio_at_force_end.append(self.received)
            await self._end_utterance()
        elif kind == "EndOfStream":
            self.fake.seq_nos.append(self.seq_no)
            if message.get("last_seq_no") != self.seq_no:
                await self.fail("protocol_error", "last_seq_no does not match the audio sent")
                return False
            if self.start is not None:
                await self._finals(len(self.words))
                self.start = None
            await self.send({"message": "EndOfTranscript"})
            await self.ws.close()
            return False
        elif kind == "SetRecognitionConfig":
            update = message.get("transcription_config") or {}
            if set(update) - RECONFIGURABLE:
                await self.fail("invalid_config", "Only max_delay, max_delay_mode, enable_partials")
                return False
            self.config.update(update)
        else:
            await self.fail("invalid_message", f"Unknown message: {kind!r}")
            return False
        return True

    async def _start(self, message: dict[str, Any]) -> bool:
        self.fake.starts.append(message)
        if self.started:
            await self.fail("protocol_error", "StartRecognition sent twice")
            return False
        problem = _invalid(message)
        if problem is not None:
            await self.fail("invalid_model" if "model" in problem else "invalid_config", problem)
            return False
        audio_format = message["audio_format"]
        self.encoding = audio_format["encoding"]
        self.ulaw = self.encoding == "mulaw"
        self.rate = audio_format["sample_rate"]
        self.config = dict(message["transcription_config"])
        self.started = True
        quality = "telephony" if self.rate < 12000 else "broadcast"
        await self.send(
            {
                "message": "Info",
                "type": "recognition_quality",
                "reason": f"Running recognition using a {quality} model quality.",
                "quality": quality,
            }
        )
        await self.send(
            {
                "message": "RecognitionStarted",
                "orchestrator_version": "fake",
                "id": str(uuid.uuid4()),
                "language_pack_info": {
                    "adapted": False,
                    "itn": True,
                    "language_description": "English",
                    "word_delimiter": " ",
                    "writing_direction": "left-to-right",
                },
            }
        )
        return True

    def samples(self, data: bytes) -> NDArray[np.float64]:
        if self.encoding == "pcm_f32le":
            return np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4") * 32768.0
        return super().samples(data)

    async def audio(self, data: bytes) -> bool:
        if not self.started:
            self.fake.audio_before_start += 1
            await self.fail("protocol_error", "AddAudio before StartRecognition")
            return False
        if self.fake.error_next is not None:
            kind, reason = self.fake.error_next
            self.fake.error_next = None
            await self.fail(kind, reason)
            return False
        self.fake.audio += data
        self.received += len(data)
        self.seq_no += 1
        await self.send({"message": "AudioAdded", "seq_no": self.seq_no})
        trigger = (self.config.get("conversation_config") or {}).get(
            "end_of_utterance_silence_trigger", 0
        )
        if not await self.hear(data) and trigger and self.quiet_for(trigger):
            await self._end_utterance()
            return True
        if self.start is not None and self.interim_due(self.fake.partial_secs):
            await self._tick()
        return True

    async def speech_started(self) -> None:
        self.final_count = 0
        self.words = (
            self.fake.transcripts.popleft() if self.fake.transcripts else "Hello."
        ).split()

    def _heard(self) -> int:
        return max(1, min(len(self.words), int(self.speech / self.fake.secs_per_word)))

    async def _tick(self) -> None:
        heard = self._heard()
        max_delay = float(self.config.get("max_delay", 4.0))
        settled = int(max(0.0, self.speech - max_delay) / self.fake.secs_per_word)
        if min(settled, heard) > self.final_count:
            await self._finals(min(settled, heard))
        if self.config.get("enable_partials") and heard > self.final_count:
            await self._transcript("AddPartialTranscript", self.final_count, heard)

    async def _finals(self, upto: int) -> None:
        await self._transcript("AddTranscript", self.final_count, upto)
        self.final_count = upto

    async def _end_utterance(self) -> None:
        """Every word of the open utterance becomes final, then ``EndOfUtterance``."""
        if self.start is not None and self.final_count < len(self.words):
            await self._finals(len(self.words))
        self.start = None
        at = round(self.t, 2)
        await self.send(
            {"message": "EndOfUtterance", "metadata": {"start_time": at, "end_time": at}}
        )

    async def _transcript(self, kind: str, first: int, upto: int) -> None:
        start = self.start or 0.0
        step = self.fake.secs_per_word
        results: list[dict[str, Any]] = []
        for i in range(first, upto):
            word = self.words[i]
            begin, end = round(start + i * step, 2), round(start + (i + 1) * step, 2)
            content = word.rstrip(PUNCTUATION) or word
            results.append(self._result("word", content, begin, end))
            if content != word:
                mark = self._result("punctuation", word[len(content) :], end, end)
                mark["attaches_to"] = "previous"
                mark["is_eos"] = word[-1] in ".?!"
                results.append(mark)
        if not results:
            return
        await self.send(
            {
                "message": kind,
                "format": "2.9",
                "metadata": {
                    "start_time": results[0]["start_time"],
                    "end_time": results[-1]["end_time"],
                    "transcript": " ".join(self.words[first:upto]) + " ",
                },
                "results": results,
            }
        )

    def _result(self, kind: str, content: str, begin: float, end: float) -> dict[str, Any]:
        alternative: dict[str, Any] = {
            "content": content,
            "confidence": 0.98 if kind == "word" else 1.0,
            "language": str(self.config.get("language", "en")),
        }
        if self.config.get("diarization") == "speaker":
            alternative["speaker"] = "S1"
        return {"type": kind, "start_time": begin, "end_time": end, "alternatives": [alternative]}


def _invalid(message: dict[str, Any]) -> str | None:
    unknown = set(message) - {
        "message",
        "audio_format",
        "transcription_config",
        "translation_config",
        "audio_events_config",
    }
    if unknown:
        return f"Unknown StartRecognition fields: {sorted(unknown)}"
    audio_format = message.get("audio_format")
    if not isinstance(audio_format, dict) or audio_format.get("type") != "raw":
        return "audio_format must be raw here"
    if audio_format.get("encoding") not in ENCODINGS:
        return f"Unsupported encoding: {audio_format.get('encoding')!r}"
    rate = audio_format.get("sample_rate")
    if not isinstance(rate, int) or rate <= 0:
        return "sample_rate must be a positive integer"
    config = message.get("transcription_config")
    if not isinstance(config, dict) or not isinstance(config.get("language"), str):
        return "transcription_config.language is required"
    unknown = set(config) - TRANSCRIPTION_FIELDS
    if unknown:
        return f"Unknown transcription_config fields: {sorted(unknown)}"
    model = config.get("model", config.get("operating_point", "standard"))
    if model not in MODELS:
        return f"Unknown model: {model!r}"
    trigger = (config.get("conversation_config") or {}).get("end_of_utterance_silence_trigger", 0)
    if not 0 <= trigger <= 2:
        return "end_of_utterance_silence_trigger must be between 0 and 2"
    return None


TTS_PATH = "/generate/{voice}"
TTS_VOICES = ("sarah", "theo", "megan", "jack")
"""The preview's voices (English: British ``sarah`` and ``theo``, American ``megan`` and
``jack``)."""
TTS_RATE = 16000
TTS_FORMATS = ("pcm_16000", "wav_16000")


def wav_header(rate: int, data_bytes: int) -> bytes:
    """The 44-byte header of a mono 16-bit WAV file holding ``data_bytes`` of PCM."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"")
    header = bytearray(out.getvalue())
    header[4:8] = (36 + data_bytes).to_bytes(4, "little")
    header[40:44] = data_bytes.to_bytes(4, "little")
    return bytes(header)


class FakeSpeechmaticsTTSServer(CountsStreams, SpeechHTTPFake):
    """Speechmatics' ``POST /generate/<voice>`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.05,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(TTS_PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.refused = 0
        """Requests refused for their key (401)."""
        self.queries: list[dict[str, str]] = []
        """Each authorized request's query parameters."""
        self.voices: list[str] = []
        """Each authorized request's voice (the path's last part)."""
        self.completed_streams = 0
        self.cancelled_streams = 0

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self.refused += 1
            return JSONResponse({"detail": "Invalid or missing API key"}, 401)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        query = dict(request.query_params)
        voice = str(request.path_params["voice"])
        self.queries.append(query)
        self.voices.append(voice)
        if isinstance(body, dict):
            self.requests.append(body)
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return JSONResponse({"detail": "text is required"}, 400)
        if voice not in TTS_VOICES:
            return JSONResponse({"detail": f"unknown voice {voice!r}"}, 400)
        fmt = query.get("output_format", "wav_16000")
        if fmt not in TTS_FORMATS:
            return JSONResponse({"detail": f"unsupported output_format {fmt!r}"}, 400)
        status = self._next_status()
        if status != 200:
            return JSONResponse({"detail": f"scripted error {status}"}, status)
        chunks = speech_chunks(len(text.split()) * self.secs_per_word, TTS_RATE, self.chunk_secs)
        if fmt.startswith("wav"):
            chunks.insert(0, wav_header(TTS_RATE, sum(len(c) for c in chunks)))
        media = "audio/wav" if fmt.startswith("wav") else "audio/pcm"
        return StreamingResponse(self._counted(paced(chunks, self.chunk_delay)), media_type=media)
