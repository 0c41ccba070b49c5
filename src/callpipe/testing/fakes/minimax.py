"""FakeMiniMaxServer: MiniMax's T2A v2 text-to-speech, ``POST /v1/t2a_v2``, on 127.0.0.1.

The documented contract (https://platform.minimax.io/docs/api-reference/speech-t2a-http and its
OpenAPI schema, https://platform.minimax.io/docs/api-reference/speech/t2a/api/openapi.json):

- **Request.** ``Authorization: Bearer <key>`` and a JSON body: ``model`` (one of
  :data:`MODELS`) and ``text`` (under 10,000 characters) required; ``stream``,
  ``stream_options.exclude_aggregated_audio``, ``voice_setting`` (``voice_id`` required unless
  ``timbre_weights`` mixes voices; ``speed`` 0.5 to 2, ``vol`` above 0 up to 10, ``pitch`` -12
  to 12, ``emotion`` one of :data:`EMOTIONS`, ``text_normalization``, ``latex_read``),
  ``audio_setting`` (``sample_rate`` in :data:`SAMPLE_RATES`, ``bitrate`` in
  :data:`BITRATES`, ``format`` in :data:`FORMATS`, ``channel`` 1 or 2), ``language_boost`` (one
  of :data:`LANGUAGE_BOOSTS`), ``output_format`` and the others. An optional ``GroupId`` query
  parameter (the older form) is recorded.
- **Failures with HTTP 200.** MiniMax answers a refused key, and bad parameters, with a JSON
  body whose ``base_resp`` carries a non-zero ``status_code`` and a ``status_msg``: 1004 for
  the key, 2013 for the parameters (a streamed failure mid-answer is an event of that shape).
- **Streamed answer** (``stream: true``): ``data: {...}`` events, each with ``data`` (``audio``
  as hexadecimal, ``status`` 1), ``trace_id`` and ``base_resp`` (``status_code`` 0); the last
  has ``status`` 2, ``extra_info`` (``audio_length`` in ms, ``audio_sample_rate``,
  ``audio_size``, ``bitrate``, ``word_count``, ``invisible_character_ratio``,
  ``usage_characters``, ``audio_format``, ``audio_channel``) and, unless
  ``exclude_aggregated_audio`` is true, all of the answer's audio again.
- **Whole answer** (``stream`` false or left out): one JSON object of the same shape as that
  last event.

The fake speaks ``secs_per_word`` of tone per word, one event per word, as ``pcm`` (16-bit
little-endian) or ``pcmu_raw`` (G.711 μ-law, 8000 Hz only); it makes no MP3, FLAC, WAV or Opus
(a 2013 says so). It records what it got; ``base_codes`` scripts ``base_resp`` failures (e.g.
1002, a rate limit) for the next valid requests, ``statuses`` HTTP ones.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.testing.fakes._server import CountsStreams
from callpipe.testing.fakes._tts import SpeechHTTPFake
from callpipe.testing.fakes.openai import tone_pcm

PATH = "/v1/t2a_v2"
MODELS = (
    "speech-2.8-hd",
    "speech-2.8-turbo",
    "speech-2.6-hd",
    "speech-2.6-turbo",
    "speech-02-hd",
    "speech-02-turbo",
    "speech-01-hd",
    "speech-01-turbo",
)
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100)
BITRATES = (32000, 64000, 128000, 256000)
FORMATS = ("mp3", "pcm", "flac", "wav", "pcmu_raw", "pcmu_wav", "opus")
SPOKEN_FORMATS = ("pcm", "pcmu_raw")
EMOTIONS = (
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
    "calm",
    "fluent",
    "whisper",
)
LANGUAGE_BOOSTS = (
    "Chinese",
    "Chinese,Yue",
    "English",
    "Arabic",
    "Russian",
    "Spanish",
    "French",
    "Portuguese",
    "German",
    "Turkish",
    "Dutch",
    "Ukrainian",
    "Vietnamese",
    "Indonesian",
    "Japanese",
    "Italian",
    "Korean",
    "Thai",
    "Polish",
    "Romanian",
    "Greek",
    "Czech",
    "Finnish",
    "Hindi",
    "Bulgarian",
    "Danish",
    "Hebrew",
    "Malay",
    "Persian",
    "Slovak",
    "Swedish",
    "Croatian",
    "Filipino",
    "Hungarian",
    "Norwegian",
    "Slovenian",
    "Catalan",
    "Nynorsk",
    "Tamil",
    "Afrikaans",
    "auto",
)
AUTH_FAILED = 1004
INVALID_PARAMS = 2013
STATUS_MESSAGES = {
    1000: "unknown error",
    1001: "timeout",
    1002: "rate limit exceeded",
    AUTH_FAILED: "login fail: Please carry the API secret key in the 'Authorization' field",
    1039: "TPM rate limit exceeded",
    1042: "invalid characters exceed 10%",
    INVALID_PARAMS: "invalid params",
}


def _number_in(value: Any, low: float, high: float, *, above_low: bool = False) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return (low < value if above_low else low <= value) and value <= high


def body_problem(body: Any) -> str | None:
    """Why MiniMax would refuse this body (None: accepted)."""
    if not isinstance(body, dict):
        return "the body is a JSON object"
    if body.get("model") not in MODELS:
        return f"model must be one of {', '.join(MODELS)}"
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text is required"
    if len(text) >= 10_000:
        return "text must be under 10000 characters"
    for name in ("stream", "subtitle_enable"):
        if name in body and not isinstance(body[name], bool):
            return f"{name} must be a boolean"
    voice = body.get("voice_setting", {})
    if not isinstance(voice, dict):
        return "voice_setting must be an object"
    if not voice.get("voice_id") and not body.get("timbre_weights"):
        return "voice_setting.voice_id is required"
    if "speed" in voice and not _number_in(voice["speed"], 0.5, 2):
        return "voice_setting.speed must be in [0.5, 2]"
    if "vol" in voice and not _number_in(voice["vol"], 0, 10, above_low=True):
        return "voice_setting.vol must be in (0, 10]"
    pitch = voice.get("pitch", 0)
    if not isinstance(pitch, int) or isinstance(pitch, bool) or not -12 <= pitch <= 12:
        return "voice_setting.pitch must be an integer in [-12, 12]"
    if "emotion" in voice and voice["emotion"] not in EMOTIONS:
        return f"voice_setting.emotion must be one of {', '.join(EMOTIONS)}"
    audio = body.get("audio_setting", {})
    if not isinstance(audio, dict):
        return "audio_setting must be an object"
    if "sample_rate" in audio and audio["sample_rate"] not in SAMPLE_RATES:
        return f"audio_setting.sample_rate must be one of {', '.join(map(str, SAMPLE_RATES))}"
    if "bitrate" in audio and audio["bitrate"] not in BITRATES:
        return f"audio_setting.bitrate must be one of {', '.join(map(str, BITRATES))}"
    if audio.get("format", "mp3") not in FORMATS:
        return f"audio_setting.format must be one of {', '.join(FORMATS)}"
    if audio.get("channel", 1) not in (1, 2):
        return "audio_setting.channel must be 1 or 2"
    boost = body.get("language_boost")
    if boost is not None and boost not in LANGUAGE_BOOSTS:
        return f"language_boost {boost!r} is not supported"
    return None


def failure(code: int, message: str | None = None) -> dict[str, Any]:
    """MiniMax's answer reporting ``code``."""
    return {
        "trace_id": uuid.uuid4().hex,
        "base_resp": {"status_code": code, "status_msg": message or STATUS_MESSAGES.get(code, "")},
    }


class FakeMiniMaxServer(CountsStreams, SpeechHTTPFake):
    """MiniMax's ``POST /v1/t2a_v2`` (see the module docstring).
    ``async with FakeMiniMaxServer() as server: server.base_url``."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_delay: float = 0.0,
    ) -> None:
        super().__init__(PATH, self._speak, api_key=api_key, secs_per_word=secs_per_word)
        self.chunk_delay = chunk_delay
        self.queries: list[dict[str, str]] = []
        self.base_codes: deque[int] = deque()
        """``base_resp`` failures for the next valid requests (each answered with HTTP 200)."""
        self.error_after: int | None = None
        """End the next streamed answer with a failure event after this many audio events."""
        self.events: list[dict[str, Any]] = []
        """Every event and whole answer sent."""
        self.aggregate_always = False
        """Repeat the whole audio in the last event even when asked not to."""
        self.completed_streams = 0
        self.cancelled_streams = 0

    def _answer(self, payload: dict[str, Any]) -> Any:
        from starlette.responses import JSONResponse

        self.events.append(payload)
        return JSONResponse(payload)

    async def _speak(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, StreamingResponse

        headers = {k.lower(): v for k, v in request.headers.items()}
        self.headers.append(headers)
        self.queries.append(dict(request.query_params))
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return self._answer(failure(AUTH_FAILED))
        try:
            body = json.loads(await request.body())
        except ValueError:
            return self._answer(failure(INVALID_PARAMS, "invalid JSON body"))
        self.requests.append(body)
        problem = body_problem(body)
        if problem is None and body.get("audio_setting", {}).get("format", "mp3") not in (
            SPOKEN_FORMATS
        ):
            problem = "the fake speaks only pcm and pcmu_raw"
        if problem is None and body["audio_setting"].get("format") == "pcmu_raw":
            if body["audio_setting"].get("sample_rate", 8000) != 8000:
                problem = "pcmu_raw is 8000 Hz"
        if problem is not None:
            return self._answer(failure(INVALID_PARAMS, problem))
        status = self._next_status()
        if status != 200:
            return JSONResponse({"error": f"scripted error {status}"}, status)
        if self.base_codes:
            return self._answer(failure(self.base_codes.popleft()))
        chunks = self._chunks(body)
        final = self._final(body, chunks)
        if not body.get("stream", False):
            return self._answer(final)
        error_after, self.error_after = self.error_after, None
        return StreamingResponse(
            self._counted(self._events(chunks, final, error_after)),
            media_type="text/event-stream",
        )

    def _chunks(self, body: dict[str, Any]) -> list[bytes]:
        audio = body.get("audio_setting", {})
        rate = audio.get("sample_rate", 32000)
        ulaw = audio.get("format") == "pcmu_raw"
        stereo = audio.get("channel", 1) == 2
        out = []
        for _word in body["text"].split():
            pcm = tone_pcm(self.secs_per_word, rate)
            if stereo:
                pcm = b"".join(pcm[i : i + 2] * 2 for i in range(0, len(pcm), 2))
            out.append(pcm_to_ulaw(pcm) if ulaw else pcm)
        return out

    def _final(self, body: dict[str, Any], chunks: list[bytes]) -> dict[str, Any]:
        audio = body.get("audio_setting", {})
        rate = audio.get("sample_rate", 32000)
        channels = audio.get("channel", 1)
        fmt = audio.get("format", "mp3")
        size = sum(len(c) for c in chunks)
        width = 1 if fmt == "pcmu_raw" else 2
        options = body.get("stream_options") or {}
        excluded = body.get("stream") and options.get("exclude_aggregated_audio") is True
        aggregate = self.aggregate_always or not excluded
        words = len(body["text"].split())
        return {
            "data": {"audio": b"".join(chunks).hex() if aggregate else "", "status": 2},
            "extra_info": {
                "audio_length": round(size / (width * channels) / rate * 1000),
                "audio_sample_rate": rate,
                "audio_size": size,
                "bitrate": audio.get("bitrate", 128000),
                "word_count": words,
                "invisible_character_ratio": 0,
                "usage_characters": len(body["text"]),
                "audio_format": fmt,
                "audio_channel": channels,
            },
            "trace_id": uuid.uuid4().hex,
            "base_resp": {"status_code": 0, "status_msg": "success"},
        }

    async def _events(
        self, chunks: list[bytes], final: dict[str, Any], error_after: int | None
    ) -> AsyncGenerator[str, None]:
        trace = final["trace_id"]
        for i, chunk in enumerate(chunks):
            if error_after is not None and i == error_after:
                yield self._event(failure(1000))
                return
            event = {
                "data": {"audio": chunk.hex(), "status": 1},
                "trace_id": trace,
                "base_resp": {"status_code": 0, "status_msg": ""},
            }
            yield self._event(event)
            await asyncio.sleep(self.chunk_delay)
        yield self._event(final)

    def _event(self, payload: dict[str, Any]) -> str:
        self.events.append(payload)
        return f"data: {json.dumps(payload)}\n\n"
