"""FakeRivaServer: NVIDIA Riva's speech services over gRPC, as NVIDIA hosts them (NVCF).

A ``grpc.aio`` server on 127.0.0.1 (no TLS) with generic handlers for three methods, their
messages (de)serialized with the protobuf classes ``nvidia-riva-client`` ships
(``riva.client.proto``; ``callpipe[nvidia]``, imported when the fake starts):

- ``/nvidia.riva.asr.RivaSpeechRecognition/StreamingRecognize``: the first request carries
  ``streaming_config`` and no audio; every later one carries only ``audio_content``. The
  ``config`` names an encoding the fake takes (``LINEAR_PCM`` or ``MULAW``; Riva also takes
  ``ALAW``, which the fake does not hear), a sample rate from 8000 to 48000 Hz, one channel and
  a ``language_code``. Responses hold ``results``:
  interim ones (``is_final`` false, with ``stability``) when ``interim_results`` is on, then a
  final one, each with ``alternatives[0].transcript`` and ``audio_processed`` (seconds of audio
  from the stream's start). The client's half-close ends the audio: the open utterance gets
  its final result and the call ends with ``OK``.
- ``/nvidia.riva.asr.RivaSpeechRecognition/Recognize`` (offline): one ``RecognizeRequest``
  with a ``config`` as above and the whole ``audio``; the answer has one result with the next
  scripted transcript if the audio holds speech, none otherwise.
- ``/nvidia.riva.tts.RivaSpeechSynthesis/SynthesizeOnline``: a stream of
  ``SynthesizeSpeechRequest`` (``text``, ``language_code``, ``encoding`` ``LINEAR_PCM`` or
  ``MULAW``, ``sample_rate_hz``, optional ``voice_name``); each is answered with
  ``secs_per_word`` of tone per word as ``audio`` chunks of ``chunk_secs``.

Every call must carry the metadata NVIDIA's cloud asks for: ``authorization: Bearer <key>``
(when ``api_key`` is set; otherwise ``UNAUTHENTICATED``) and, when ``function_ids`` is not
empty, a ``function-id`` among them (otherwise ``NOT_FOUND``). A local Riva server checks
neither: ``api_key=None`` and an empty ``function_ids`` (the default) behave like it.

The fake "hears" by energy, counting time in the audio received (see ``_stt.Hearing``): loud
audio opens an utterance whose words are the next entry of ``transcripts`` ("hello" when
empty). Scripted ``fail_next`` statuses end the next calls at their first request, after the
client's requests have been read (a Python gRPC client whose call ends while it is writing
may see ``INTERNAL`` instead of the status sent).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from callpipe.testing.fakes._grpc import ServedGRPCFake
from callpipe.testing.fakes._stt import Hearing
from callpipe.testing.fakes._tts import speech_chunks

if TYPE_CHECKING:
    import grpc

ASR_SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"
TTS_SERVICE = "nvidia.riva.tts.RivaSpeechSynthesis"
ASR_ENCODINGS = ("LINEAR_PCM", "MULAW")
TTS_ENCODINGS = ("LINEAR_PCM", "MULAW")
MIN_RATE, MAX_RATE = 8000, 48000


def _protos() -> tuple[Any, Any, Any]:
    import riva.client.proto.riva_asr_pb2 as asr
    import riva.client.proto.riva_audio_pb2 as audio
    import riva.client.proto.riva_tts_pb2 as tts

    return asr, tts, audio


class _Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FakeRivaServer(ServedGRPCFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        function_ids: tuple[str, ...] = (),
        energy_threshold: float = 300.0,
        interim_secs: float = 0.25,
        secs_per_word: float = 0.3,
        silence_secs: float = 0.4,
        chunk_secs: float = 0.1,
    ) -> None:
        self.api_key = api_key
        self.function_ids = function_ids
        self.energy_threshold = energy_threshold
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.silence_secs = silence_secs
        self.chunk_secs = chunk_secs
        self.transcripts: deque[str] = deque()
        """Scripted transcripts, one per utterance ("hello" when empty)."""
        self.metadata: list[dict[str, str]] = []
        """Each call's metadata."""
        self.first_requests: list[Any] = []
        """Each ``StreamingRecognize`` call's first request."""
        self.recognize_requests: list[Any] = []
        """Each ``Recognize`` request."""
        self.synthesize_requests: list[Any] = []
        """Each ``SynthesizeOnline`` request (several per call possible)."""
        self.synthesize_calls = 0
        self.audio = bytearray()
        """Every streamed audio byte received, in order."""
        self.ended: list[str] = []
        """How each streaming recognition ended: ``"half-closed"``, ``"cancelled"``,
        ``"refused"`` or ``"invalid"``."""
        self.sent: list[Any] = []
        """Every response sent (any method)."""
        self.fail_next: list[tuple[str, str]] = []
        """``(status name, message)`` to end the next calls with (any method)."""
        self.drain_secs = 0.5
        """Before a scripted refusal, how long the client's requests are read."""

    def finals(self) -> list[str]:
        """The final streaming transcripts sent."""
        return [
            r.alternatives[0].transcript
            for m in self.sent
            for r in getattr(m, "results", ())
            if getattr(r, "is_final", False)
        ]

    def _handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        import grpc

        asr, tts, _ = _protos()
        asr_handlers = {
            "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                self._streaming_recognize,
                request_deserializer=asr.StreamingRecognizeRequest.FromString,
                response_serializer=asr.StreamingRecognizeResponse.SerializeToString,
            ),
            "Recognize": grpc.unary_unary_rpc_method_handler(
                self._recognize,
                request_deserializer=asr.RecognizeRequest.FromString,
                response_serializer=asr.RecognizeResponse.SerializeToString,
            ),
        }
        tts_handlers = {
            "SynthesizeOnline": grpc.stream_stream_rpc_method_handler(
                self._synthesize_online,
                request_deserializer=tts.SynthesizeSpeechRequest.FromString,
                response_serializer=tts.SynthesizeSpeechResponse.SerializeToString,
            )
        }
        return [
            grpc.method_handlers_generic_handler(ASR_SERVICE, asr_handlers),
            grpc.method_handlers_generic_handler(TTS_SERVICE, tts_handlers),
        ]

    # ------------------------------------------------------------------ checks

    def _check_call(self, context: Any) -> None:
        """Record the call's metadata; refuse a missing key or an unknown function."""
        metadata = {str(k).lower(): str(v) for k, v in (context.invocation_metadata() or ())}
        self.metadata.append(metadata)
        if self.fail_next:
            code, message = self.fail_next.pop(0)
            raise _Refused(code, message)
        if self.api_key is not None and metadata.get("authorization") != f"Bearer {self.api_key}":
            raise _Refused("UNAUTHENTICATED", "Invalid or missing API key (authorization).")
        if self.function_ids and metadata.get("function-id") not in self.function_ids:
            raise _Refused("NOT_FOUND", "Function not found: check the function-id.")

    @staticmethod
    async def _end(context: Any, code: str, message: str) -> None:
        import grpc

        context.set_code(getattr(grpc.StatusCode, code))
        context.set_details(message)

    # ------------------------------------------------------------------ ASR

    async def _streaming_recognize(
        self, requests: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        ended: list[str] = []

        def end(how: str) -> None:
            ended.append(how)
            self.ended.append(how)

        async def drain() -> None:
            with contextlib.suppress(TimeoutError, StopAsyncIteration):
                async with asyncio.timeout(self.drain_secs):
                    async for _ in requests:
                        pass

        try:
            first: Any = await anext(aiter(requests), None)
            if first is None:
                end("invalid")
                await self._end(context, "INVALID_ARGUMENT", "No request.")
                return
            self.first_requests.append(first)
            try:
                self._check_call(context)
            except _Refused as refused:
                await drain()
                end("refused")
                await self._end(context, refused.code, refused.message)
                return
            problem = _invalid_streaming_first(first)
            if problem is not None:
                end("invalid")
                await self._end(context, "INVALID_ARGUMENT", problem)
                return
            session = _Session(self, first.streaming_config)
            async for request in requests:
                if request.HasField("streaming_config") or not request.audio_content:
                    end("invalid")
                    await self._end(
                        context,
                        "INVALID_ARGUMENT",
                        "After the first request, every request carries audio_content only.",
                    )
                    return
                self.audio += request.audio_content
                for response in await session.audio(request.audio_content):
                    yield self._sent(response)
            for response in session.finish():
                yield self._sent(response)
            end("half-closed")
        finally:
            if not ended:
                self.ended.append("cancelled")

    async def _recognize(self, request: Any, context: Any) -> Any:
        asr, _, _ = _protos()
        self.recognize_requests.append(request)
        try:
            self._check_call(context)
        except _Refused as refused:
            await self._end(context, refused.code, refused.message)
            return asr.RecognizeResponse()
        problem = _invalid_config(request.config)
        if problem is None and not request.audio:
            problem = "No audio."
        if problem is not None:
            await self._end(context, "INVALID_ARGUMENT", problem)
            return asr.RecognizeResponse()
        config = request.config
        hearing = Hearing(
            rate=config.sample_rate_hertz,
            threshold=self.energy_threshold,
            ulaw=config.encoding == _protos()[2].AudioEncoding.MULAW,
        )
        heard = await hearing.hear(request.audio)
        response = asr.RecognizeResponse()
        if heard:
            text = self.transcripts.popleft() if self.transcripts else "hello"
            result = response.results.add()
            result.alternatives.add(transcript=text, confidence=0.93)
            result.audio_processed = hearing.t
        return self._sent(response)

    # ------------------------------------------------------------------ TTS

    async def _synthesize_online(
        self, requests: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        from callpipe.audio.g711 import table_pcm_to_ulaw as pcm_to_ulaw

        _, tts, audio = _protos()
        self.synthesize_calls += 1
        try:
            self._check_call(context)
        except _Refused as refused:
            with contextlib.suppress(TimeoutError, StopAsyncIteration):
                async with asyncio.timeout(self.drain_secs):
                    async for _ in requests:
                        pass
            await self._end(context, refused.code, refused.message)
            return
        async for request in requests:
            self.synthesize_requests.append(request)
            problem = _invalid_synthesis(request)
            if problem is not None:
                await self._end(context, "INVALID_ARGUMENT", problem)
                return
            words = max(1, len(request.text.split()))
            for chunk in speech_chunks(
                words * self.secs_per_word, request.sample_rate_hz, self.chunk_secs
            ):
                if request.encoding == audio.AudioEncoding.MULAW:
                    chunk = pcm_to_ulaw(chunk)
                yield self._sent(tts.SynthesizeSpeechResponse(audio=chunk))

    def _sent(self, response: Any) -> Any:
        self.sent.append(response)
        return response


class _Session(Hearing):
    """One streaming call: its configuration, audio clock and utterance."""

    def __init__(self, fake: FakeRivaServer, streaming: Any) -> None:
        _, _, audio = _protos()
        config = streaming.config
        super().__init__(
            rate=config.sample_rate_hertz,
            threshold=fake.energy_threshold,
            ulaw=config.encoding == audio.AudioEncoding.MULAW,
        )
        self.fake = fake
        self.interim = bool(streaming.interim_results)
        self.text = ""

    async def speech_started(self) -> None:
        self.text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"

    async def audio(self, data: bytes) -> list[Any]:
        out: list[Any] = []
        if await self.hear(data):
            if self.interim and self.interim_due(self.fake.interim_secs):
                words = self.first_words(self.text, self.fake.secs_per_word)
                out.append(self._result(words, final=False))
        elif self.quiet_for(self.fake.silence_secs):
            out.extend(self.finish())
        return out

    def finish(self) -> list[Any]:
        if self.start is None:
            return []
        self.start = None
        return [self._result(self.text, final=True)]

    def _result(self, text: str, *, final: bool) -> Any:
        asr, _, _ = _protos()
        response = asr.StreamingRecognizeResponse()
        result = response.results.add()
        result.alternatives.add(transcript=text, confidence=0.93 if final else 0.0)
        result.is_final = final
        result.stability = 1.0 if final else 0.8
        result.audio_processed = self.t
        return response


def _invalid_config(config: Any) -> str | None:
    _, _, audio = _protos()
    encoding = audio.AudioEncoding.Name(config.encoding)
    if encoding not in ASR_ENCODINGS:
        return f"Unsupported encoding {encoding} (here: {', '.join(ASR_ENCODINGS)})."
    if not MIN_RATE <= config.sample_rate_hertz <= MAX_RATE:
        return f"Unsupported sample_rate_hertz {config.sample_rate_hertz}."
    if config.audio_channel_count not in (0, 1):
        return "audio_channel_count must be 1 here."
    if not config.language_code:
        return "language_code is required."
    return None


def _invalid_streaming_first(request: Any) -> str | None:
    if request.audio_content:
        return "The first request must carry streaming_config only, no audio."
    if not request.HasField("streaming_config"):
        return "The first request must carry streaming_config."
    return _invalid_config(request.streaming_config.config)


def _invalid_synthesis(request: Any) -> str | None:
    _, _, audio = _protos()
    if not request.text.strip():
        return "text is empty."
    encoding = audio.AudioEncoding.Name(request.encoding)
    if encoding not in TTS_ENCODINGS:
        return f"Unsupported encoding {encoding} (here: {', '.join(TTS_ENCODINGS)})."
    if not MIN_RATE <= request.sample_rate_hz <= MAX_RATE:
        return f"Unsupported sample_rate_hz {request.sample_rate_hz}."
    if not request.language_code:
        return "language_code is required."
    return None
