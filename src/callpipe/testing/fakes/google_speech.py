"""FakeGoogleSpeechServer: Google Cloud Speech-to-Text v2 ``StreamingRecognize`` over gRPC.

A ``grpc.aio`` server on 127.0.0.1 (no TLS) serving ``/google.cloud.speech.v2.Speech/
StreamingRecognize``, its messages (de)serialized with the ``google-cloud-speech`` SDK's own
types (``callpipe[google]``; imported when the fake starts). The documented contract
(``StreamingRecognizeRequest``, ``StreamingRecognitionConfig``, ``StreamingRecognizeResponse``):

- The first request names the ``recognizer`` (``projects/{project}/locations/{location}/
  recognizers/{recognizer}``, ``_`` for the implicit one) and carries the ``streaming_config``,
  and no audio. Its ``config`` must specify the request fully here (the implicit recognizer has
  no default): ``explicit_decoding_config`` (``LINEAR16`` or ``MULAW`` here, a sample rate, one
  channel), at least one language code and a model it knows (``MODELS``). Every later request
  carries only ``audio``, at most 15 KB of it. Anything else ends the call with
  ``INVALID_ARGUMENT``.
- Responses hold ``results``: interim ones (``is_final`` false, with ``stability``) when
  ``interim_results`` is on, then a final one; each with ``alternatives[0].transcript``,
  ``result_end_offset`` (audio time from the stream's start) and ``language_code`` (in lower
  case, as Google sends it). With ``enable_voice_activity_events``, responses with
  ``speech_event_type`` ``SPEECH_ACTIVITY_BEGIN`` / ``SPEECH_ACTIVITY_END`` mark the speech.
- The client half-closes to end the audio: the utterance still open gets its final result and
  the call ends with ``OK``. After ``stream_limit_secs`` of audio (None: never) the call ends
  with ``ABORTED``, as Google ends a stream at its duration limit (an utterance it cut short
  keeps its transcript for the next stream).

The fake "hears" by energy, counting time in the audio received, so results do not depend on
the machine's speed: loud audio opens an utterance whose words are the next entry of
``transcripts`` ("hello" when empty), one more word per ``secs_per_word`` of speech, an interim
result every ``interim_secs``, and the final one after ``silence_secs`` of quiet. Scripted
``fail_next`` statuses end the next calls at their first request (e.g. ``UNAUTHENTICATED``), and
``gate`` (an event, set by default) holds every call's reading until it is set: a stalled server.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from callpipe.testing.fakes._grpc import ServedGRPCFake
from callpipe.testing.fakes._stt import Hearing

if TYPE_CHECKING:
    import grpc

METHOD = "/google.cloud.speech.v2.Speech/StreamingRecognize"
MAX_AUDIO_BYTES = 15 * 1024
RECOGNIZER = re.compile(r"^projects/[^/]+/locations/[^/]+/recognizers/[^/]+$")
ENCODINGS = ("LINEAR16", "MULAW")
MODELS = frozenset(
    {
        "chirp_3",
        "chirp_2",
        "chirp",
        "latest_long",
        "latest_short",
        "long",
        "short",
        "telephony",
        "telephony_short",
        "medical_conversation",
        "medical_dictation",
    }
)
"""The v2 models the fake knows (Google refuses others for the recognizer's location)."""


def _speech() -> Any:
    from google.cloud.speech_v2.types import cloud_speech

    return cloud_speech


class FakeGoogleSpeechServer(ServedGRPCFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        energy_threshold: float = 300.0,
        interim_secs: float = 0.25,
        secs_per_word: float = 0.3,
        silence_secs: float = 0.4,
        stream_limit_secs: float | None = None,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.silence_secs = silence_secs
        self.stream_limit_secs = stream_limit_secs
        self.language: str | None = None
        """The ``language_code`` results carry (None: the first configured one, lower-cased)."""
        self.transcripts: deque[str] = deque()
        """Scripted transcripts, one per utterance ("hello" when empty)."""
        self.first_requests: list[Any] = []
        """Each call's first request (a ``StreamingRecognizeRequest``)."""
        self.stream_audio: list[int] = []
        """Bytes of audio each call received."""
        self.audio = bytearray()
        """Every audio byte received, in order of arrival."""
        self.ended: list[str] = []
        """How each call ended: ``"half-closed"``, ``"cancelled"``, ``"aborted"``,
        ``"refused"`` (a status at the first request) or ``"invalid"``."""
        self.sent: list[Any] = []
        """Every response sent (``StreamingRecognizeResponse``)."""
        self.fail_next: list[tuple[str, str]] = []
        """``(status name, message)`` to end the next calls with, at their first request."""
        self.gate = asyncio.Event()
        """Calls read nothing until it is set (set at first)."""
        self.gate.set()

    @property
    def configs(self) -> list[Any]:
        """Each call's ``streaming_config``."""
        return [r.streaming_config for r in self.first_requests]

    def finals(self) -> list[str]:
        """The final transcripts sent."""
        return [r.alternatives[0].transcript for m in self.sent for r in m.results if r.is_final]

    def _handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        import grpc

        speech = _speech()
        handler = grpc.stream_stream_rpc_method_handler(
            self._recognize,
            request_deserializer=speech.StreamingRecognizeRequest.deserialize,
            response_serializer=speech.StreamingRecognizeResponse.serialize,
        )
        return [
            grpc.method_handlers_generic_handler(
                "google.cloud.speech.v2.Speech", {"StreamingRecognize": handler}
            )
        ]

    async def _recognize(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        import grpc

        ended: list[str] = []  # how this call ended

        def end(how: str, code: Any, message: str) -> None:
            ended.append(how)
            self.ended.append(how)
            context.set_code(code)
            context.set_details(message)

        async def drain() -> None:
            # What the client still sends is read first (up to its half-close, at most half a
            # second): a Python gRPC client whose call ends while it is writing may see
            # INTERNAL instead of the status sent.
            with contextlib.suppress(TimeoutError, StopAsyncIteration):
                async with asyncio.timeout(0.5):
                    async for _ in requests:
                        pass

        try:
            await self.gate.wait()
            first: Any = await anext(aiter(requests), None)
            if first is None:
                end("invalid", grpc.StatusCode.INVALID_ARGUMENT, "No request.")
                return
            self.first_requests.append(first)
            self.stream_audio.append(0)
            if self.fail_next:
                name, message = self.fail_next.pop(0)
                await drain()
                end("refused", getattr(grpc.StatusCode, name), message)
                return
            problem = _invalid_first(first)
            if problem is not None:
                end("invalid", grpc.StatusCode.INVALID_ARGUMENT, problem)
                return
            session = _Session(self, first.streaming_config)
            async for request in requests:
                await self.gate.wait()
                problem = _invalid_audio(request)
                if problem is not None:
                    end("invalid", grpc.StatusCode.INVALID_ARGUMENT, problem)
                    return
                self.audio += request.audio
                self.stream_audio[-1] += len(request.audio)
                for response in await session.audio(request.audio):
                    yield self._sent(response)
                if self.stream_limit_secs is not None and session.t >= self.stream_limit_secs:
                    limit = f"Exceeded the stream's duration limit of {self.stream_limit_secs} s."
                    if session.start is not None:  # cut short: the next stream hears it again
                        self.transcripts.appendleft(session.text)
                    end("aborted", grpc.StatusCode.ABORTED, limit)
                    return
            for response in session.finish():
                yield self._sent(response)
            ended.append("half-closed")
            self.ended.append("half-closed")
        finally:
            if not ended:  # the client cancelled it (or went away)
                self.ended.append("cancelled")

    def _sent(self, response: Any) -> Any:
        self.sent.append(response)
        return response


class _Session(Hearing):
    """One call: its configuration, audio clock and utterance."""

    def __init__(self, fake: FakeGoogleSpeechServer, config: Any) -> None:
        decoding = config.config.explicit_decoding_config
        ulaw = decoding.encoding.name == "MULAW"
        super().__init__(
            rate=decoding.sample_rate_hertz, threshold=fake.energy_threshold, ulaw=ulaw
        )
        self.fake = fake
        self.interim = bool(config.streaming_features.interim_results)
        self.events = bool(config.streaming_features.enable_voice_activity_events)
        self.language = fake.language or str(config.config.language_codes[0]).lower()
        self.text = ""
        self.out: list[Any] = []

    async def speech_started(self) -> None:
        self.text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
        if self.events:
            self.out.append(self._event("SPEECH_ACTIVITY_BEGIN"))

    async def audio(self, data: bytes) -> list[Any]:
        self.out = []
        if await self.hear(data):
            if self.interim and self.interim_due(self.fake.interim_secs):
                words = self.first_words(self.text, self.fake.secs_per_word)
                self.out.append(self._result(words, final=False))
        elif self.quiet_for(self.fake.silence_secs):
            self.out.extend(self.finish())
        return self.out

    def finish(self) -> list[Any]:
        """The open utterance's final result (and the end of speech); nothing if none is."""
        if self.start is None:
            return []
        self.start = None
        out = [self._result(self.text, final=True)]
        if self.events:
            out.append(self._event("SPEECH_ACTIVITY_END"))
        return out

    def _result(self, text: str, *, final: bool) -> Any:
        speech = _speech()
        result = speech.StreamingRecognitionResult(
            alternatives=[speech.SpeechRecognitionAlternative(transcript=text, confidence=0.93)],
            is_final=final,
            stability=0.0 if final else 0.8,
            result_end_offset={"seconds": int(self.t), "nanos": int(self.t % 1 * 1e9)},
            language_code=self.language,
        )
        return speech.StreamingRecognizeResponse(results=[result])

    def _event(self, kind: str) -> Any:
        speech = _speech()
        return speech.StreamingRecognizeResponse(
            speech_event_type=speech.StreamingRecognizeResponse.SpeechEventType[kind],
            speech_event_offset={"seconds": int(self.t), "nanos": int(self.t % 1 * 1e9)},
        )


def _invalid_first(request: Any) -> str | None:
    """The problem with a call's first request (None: it is valid)."""
    if request.audio:
        return "The first request must not contain audio."
    if not RECOGNIZER.match(request.recognizer):
        return f"Invalid recognizer name: {request.recognizer!r}."
    if "streaming_config" not in request:
        return "The implicit recognizer has no configuration: send a streaming_config."
    config = request.streaming_config.config
    if "explicit_decoding_config" not in config:
        return "Raw audio needs an explicit_decoding_config."
    decoding = config.explicit_decoding_config
    if decoding.encoding.name not in ENCODINGS:
        return f"Unsupported encoding {decoding.encoding.name} (here: {', '.join(ENCODINGS)})."
    if decoding.sample_rate_hertz <= 0:
        return "sample_rate_hertz is required for explicit decoding."
    if decoding.audio_channel_count != 1:
        return "audio_channel_count must be 1 here."
    if not config.language_codes:
        return "At least one language code is required."
    if not config.model:
        return "A model is required."
    if config.model not in MODELS:
        return f"The model {config.model!r} does not exist in this location."
    return None


def _invalid_audio(request: Any) -> str | None:
    if request.recognizer or "streaming_config" in request:
        return "Only the first request may carry a recognizer or a streaming_config."
    if not request.audio:
        return "Every request after the first must carry audio."
    if len(request.audio) > MAX_AUDIO_BYTES:
        return f"Audio of {len(request.audio)} bytes in one request; the limit is 15 KB."
    return None
