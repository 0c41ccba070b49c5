"""FakeAzureSpeechServer: Azure Speech's REST synthesis and short-audio recognition on 127.0.0.1.

The documented contract:

- **Text to speech** (https://learn.microsoft.com/azure/ai-services/speech-service/rest-text-to-speech):
  ``POST /cognitiveservices/v1`` on the region's ``tts`` host, ``/tts/cognitiveservices/v1`` on
  a custom domain; headers ``Ocp-Apim-Subscription-Key``, ``Content-Type: application/ssml+xml``,
  ``X-Microsoft-OutputFormat`` and ``User-Agent``; the body an SSML ``<speak>`` document with a
  ``<voice name>``. A 200 answer's body is the audio in the asked format; 400 for a bad request
  (missing parameter, bad SSML), 401 for a refused key, 415 for a wrong content type, 429 when
  throttled. The fake speaks ``secs_per_word`` of tone per word, in the ``raw-*`` formats
  (16-bit PCM, μ-law, A-law; anything else is refused with 400), in chunks of ``chunk_secs``.
- **Speech to text for short audio**
  (https://learn.microsoft.com/azure/ai-services/speech-service/rest-speech-to-text-short):
  ``POST /speech/recognition/conversation/cognitiveservices/v1`` (``/stt/...`` on a custom
  domain) with the query ``language`` (required: 400 without), ``format`` (``simple`` or
  ``detailed``), ``profanity`` (``masked``, ``removed``, ``raw``), ``cid``; headers
  ``Ocp-Apim-Subscription-Key`` and ``Content-Type: audio/wav; codecs=audio/pcm;
  samplerate=16000`` (or ``audio/ogg; codecs=opus``, not decoded here); at most 60 s of audio.
  The answer: ``{"RecognitionStatus", "DisplayText", "Offset", "Duration"}`` (``simple``) or
  ``{"RecognitionStatus", "Offset", "Duration", "NBest": [{"Confidence", "Lexical", "ITN",
  "MaskedITN", "Display"}]}`` (``detailed``); times in 100-nanosecond units. The fake "hears"
  by energy: audio with speech gets the next scripted transcript (``"hello"`` when none is
  left), silence ``InitialSilenceTimeout``.

Every path is served in both forms, so ``CALLPIPE_AZURE_SPEECH_URL`` (a custom-domain origin)
and a region's host both reach it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any
from xml.etree import ElementTree

from starlette.routing import Route

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._server import CountsStreams, LocalASGIServer, ServedHTTPFake, fake_app
from callpipe.testing.fakes._stt import Hearing
from callpipe.testing.fakes.openai import tone_pcm

TTS_PATHS = ("/cognitiveservices/v1", "/tts/cognitiveservices/v1")
STT_PATHS = (
    "/speech/recognition/conversation/cognitiveservices/v1",
    "/stt/speech/recognition/conversation/cognitiveservices/v1",
)
SSML_NS = "http://www.w3.org/2001/10/synthesis"
RAW_FORMATS = {
    "raw-8khz-8bit-mono-mulaw": (8000, "mulaw"),
    "raw-8khz-8bit-mono-alaw": (8000, "alaw"),
    "raw-8khz-16bit-mono-pcm": (8000, "pcm"),
    "raw-16khz-16bit-mono-pcm": (16000, "pcm"),
    "raw-22050hz-16bit-mono-pcm": (22050, "pcm"),
    "raw-24khz-16bit-mono-pcm": (24000, "pcm"),
    "raw-44100hz-16bit-mono-pcm": (44100, "pcm"),
    "raw-48khz-16bit-mono-pcm": (48000, "pcm"),
}
"""The output formats the fake makes: rate and encoding."""
STT_CONTENT_TYPES = ("audio/wav; codecs=audio/pcm; samplerate=16000", "audio/ogg; codecs=opus")
FORMATS = ("simple", "detailed")
PROFANITY = ("masked", "removed", "raw")
MAX_AUDIO_SECS = 60.0
TICKS = 10_000_000
"""100-nanosecond units per second."""


def ssml_problem(ssml: bytes) -> tuple[str | None, str, str]:
    """Why an SSML body would be refused (None: accepted), its voice and its spoken text."""
    try:
        root = ElementTree.fromstring(ssml)
    except ElementTree.ParseError as exc:
        return f"the SSML is not well-formed XML: {exc}", "", ""
    if root.tag not in ("speak", f"{{{SSML_NS}}}speak") or not root.get("version"):
        return "the root must be <speak version=...>", "", ""
    voice = root.find(f"{{{SSML_NS}}}voice")
    if voice is None:  # Azure's own examples leave the namespace out
        voice = root.find("voice")
    if voice is None or not voice.get("name"):
        return "a <voice name=...> element is required", "", ""
    return None, str(voice.get("name")), " ".join("".join(voice.itertext()).split())


class FakeAzureSpeechServer(CountsStreams, ServedHTTPFake):
    """Azure Speech's REST text-to-speech and short-audio speech-to-text (see the module
    docstring); ``api_key`` None accepts any key."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.04,
        chunk_delay: float = 0.0,
        energy_threshold: float = 300.0,
    ) -> None:
        self.api_key = api_key
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.energy_threshold = energy_threshold
        self.speech_requests: list[dict[str, Any]] = []
        """Each authorized synthesis request: ``{"path", "headers", "ssml", "voice", "text"}``."""
        self.speech_statuses: deque[int] = deque()
        """HTTP statuses for the next valid synthesis requests (200 = speak)."""
        self.transcripts: deque[str] = deque()
        """Scripted recognition results (``"hello"`` when empty)."""
        self.statuses: deque[int] = deque()
        """HTTP statuses for the next valid recognition requests (200 = answer)."""
        self.outcomes: deque[str] = deque()
        """``RecognitionStatus`` values forced on the next answers (e.g. ``"Error"``); none
        left: heard by energy."""
        self.requests: list[dict[str, Any]] = []
        """Each authorized recognition request: ``{"path", "query", "headers", "audio_secs",
        "sample_rate"}``."""
        self.answers: list[dict[str, Any]] = []
        self.refused = 0
        """Requests refused for their key (401)."""
        self.completed_streams = 0
        self.cancelled_streams = 0
        routes = [Route(p, self._synthesize, methods=["POST"]) for p in TTS_PATHS]
        routes += [Route(p, self._recognize, methods=["POST"]) for p in STT_PATHS]
        self._server = LocalASGIServer(fake_app(routes))

    def _authorized(self, request: Any) -> bool:
        key = request.headers.get("ocp-apim-subscription-key")
        if self.api_key is None or key == self.api_key:
            return True
        self.refused += 1
        return False

    async def _synthesize(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse, Response, StreamingResponse

        if not self._authorized(request):
            return Response(status_code=401)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("content-type", "").split(";")[0].strip() != "application/ssml+xml":
            return PlainTextResponse("Content-Type must be application/ssml+xml", 415)
        body = await request.body()
        problem, voice, text = ssml_problem(body)
        self.speech_requests.append(
            {
                "path": request.url.path,
                "headers": headers,
                "ssml": body.decode("utf-8", "replace"),
                "voice": voice,
                "text": text,
            }
        )
        fmt = RAW_FORMATS.get(headers.get("x-microsoft-outputformat", ""))
        if fmt is None:
            return PlainTextResponse(f"the fake serves {', '.join(RAW_FORMATS)}", 400)
        if problem is not None:
            return PlainTextResponse(problem, 400)
        status = self.speech_statuses.popleft() if self.speech_statuses else 200
        if status != 200:
            return PlainTextResponse(f"scripted error {status}", status)
        rate, encoding = fmt
        pcm = tone_pcm(max(1, len(text.split())) * self.secs_per_word, rate)
        step = max(2, int(self.chunk_secs * rate) * 2)

        async def audio() -> Any:
            for i in range(0, len(pcm), step):
                chunk = pcm[i : i + step]
                if encoding == "mulaw":
                    chunk = pcm_to_ulaw(chunk)
                elif encoding == "alaw":
                    chunk = pcm_to_alaw(chunk)
                yield chunk
                await asyncio.sleep(self.chunk_delay)

        return StreamingResponse(self._counted(audio()), media_type="audio/basic")

    async def _recognize(self, request: Any) -> Any:
        from starlette.responses import JSONResponse, PlainTextResponse, Response

        from callpipe.audio.wav import read_wav
        from callpipe.errors import ProtocolError

        if not self._authorized(request):
            return Response(status_code=401)
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = dict(request.query_params)
        if not query.get("language"):
            return PlainTextResponse("the language query parameter is required", 400)
        fmt = query.get("format", "simple")
        if fmt not in FORMATS or query.get("profanity", "masked") not in PROFANITY:
            return PlainTextResponse("unsupported format or profanity", 400)
        content_type = " ".join(headers.get("content-type", "").split()).lower()
        if content_type not in STT_CONTENT_TYPES:
            return PlainTextResponse(f"Content-Type must be one of {STT_CONTENT_TYPES}", 400)
        body = await request.body()
        record: dict[str, Any] = {"path": request.url.path, "query": query, "headers": headers}
        self.requests.append(record)
        try:
            wav, pcm = read_wav(body)
        except ProtocolError:
            return PlainTextResponse("the audio is not a WAV file", 400)
        record["sample_rate"] = wav.sample_rate
        record["audio_secs"] = secs = len(pcm) / 2 / max(1, wav.sample_rate)
        if wav.sample_rate != 16000 or wav.channels != 1 or wav.bits != 16:
            return PlainTextResponse("the audio must be 16 kHz mono 16-bit PCM", 400)
        if secs > MAX_AUDIO_SECS:
            return PlainTextResponse("the audio is longer than 60 seconds", 400)
        status = self.statuses.popleft() if self.statuses else 200
        if status != 200:
            return PlainTextResponse(f"scripted error {status}", status)
        hearing = Hearing(rate=16000, threshold=self.energy_threshold)
        step = 640  # 20 ms
        for i in range(0, len(pcm), step):
            await hearing.hear(pcm[i : i + step])
        forced = self.outcomes.popleft() if self.outcomes else None
        if forced is not None and forced != "Success":
            answer: dict[str, Any] = {
                "RecognitionStatus": forced,
                "Offset": 0,
                "Duration": 0,
            }
        elif hearing.start is None:
            answer = {
                "RecognitionStatus": "InitialSilenceTimeout",
                "Offset": int(secs * TICKS),
                "Duration": 0,
            }
        else:
            text = self.transcripts.popleft() if self.transcripts else "hello"
            offset = int(hearing.start * TICKS)
            duration = int((hearing.last_voice - hearing.start) * TICKS)
            answer = {"RecognitionStatus": "Success", "Offset": offset, "Duration": duration}
            if fmt == "simple":
                answer["DisplayText"] = text
            else:
                lexical = " ".join(w.strip(".,!?").lower() for w in text.split())
                answer["NBest"] = [
                    {
                        "Confidence": 0.93,
                        "Lexical": lexical,
                        "ITN": lexical,
                        "MaskedITN": lexical,
                        "Display": text,
                    }
                ]
        self.answers.append(answer)
        return JSONResponse(answer)
