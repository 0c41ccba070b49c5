"""FakeGoogleTTSGrpcServer: Cloud Text-to-Speech's ``StreamingSynthesize`` (gRPC) on 127.0.0.1.

The documented contract (https://cloud.google.com/text-to-speech/docs/create-audio-text-streaming
and the ``google-cloud-texttospeech`` SDK's ``StreamingSynthesizeRequest`` / ``Response``), served
at ``/google.cloud.texttospeech.v1.TextToSpeech/StreamingSynthesize`` by a generic handler that
(de)serializes with the SDK's own message types:

- The first request holds ``streaming_config`` and nothing else; every later one holds ``input``
  and nothing else. Anything else ends the call with ``INVALID_ARGUMENT``.
- ``streaming_config.voice`` needs a ``language_code`` and either a Chirp 3 HD voice's
  ``name``, a ``voice_clone``, or a Gemini ``model_name`` with a Gemini voice (or a
  ``multi_speaker_voice_config``). Other voices are refused: Google streams no other.
- ``streaming_audio_config.audio_encoding`` is ``PCM``, ``MULAW`` or ``ALAW`` (headerless; this
  fake makes no ``OGG_OPUS``, the fourth one allowed, and refuses other encodings as Google
  does); ``sample_rate_hertz`` is 8000 to 48000 (unset: 24 kHz); ``speaking_rate`` 0.25 to 2.0
  (unset: normal).
- ``input`` is ``text`` or ``markup``; a ``prompt`` only goes with a Gemini model.
- Each input's audio is ``secs_per_word`` of tone per word, sent as it is "made" in
  ``audio_content`` chunks of ``chunk_secs`` (``chunk_delay`` apart).
- ``token``: calls must carry ``authorization: Bearer <token>`` metadata, else
  ``UNAUTHENTICATED`` (None: any caller is served, as an SDK on anonymous credentials sends
  none).

It records each call's metadata, first request (``first_requests``, the SDK's serialized bytes
too in ``first_request_bytes``), inputs and every response sent; ``statuses`` are gRPC status
codes to end the next valid calls with before any audio; ``cancelled_streams`` counts calls the
client cancelled while audio was still coming.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.cloud import texttospeech_v1 as tts

from callpipe.audio.g711 import pcm_to_alaw, pcm_to_ulaw
from callpipe.testing.fakes._grpc import ServedGRPCFake
from callpipe.testing.fakes._tts import speech_chunks

SERVICE = "google.cloud.texttospeech.v1.TextToSpeech"
METHOD = f"/{SERVICE}/StreamingSynthesize"
NATURAL_RATE = 24000
STREAMING_VOICES = ("chirp3-hd",)
GEMINI_VOICES = frozenset(
    "Achernar Achird Algenib Algieba Alnilam Aoede Autonoe Callirrhoe Charon Despina Enceladus "
    "Erinome Fenrir Gacrux Iapetus Kore Laomedeia Leda Orus Puck Pulcherrima Rasalgethi "
    "Sadachbia Sadaltager Schedar Sulafat Umbriel Vindemiatrix Zephyr Zubenelgenubi".split()
)


def config_problem(config: tts.StreamingSynthesizeConfig) -> str | None:
    """Why Google would refuse this ``streaming_config`` (None: it would not)."""
    if "voice" not in config:
        return "streaming_config.voice is required."
    voice = config.voice
    if not voice.language_code:
        return "Voice language code is required."
    if voice.model_name:
        if not voice.model_name.startswith("gemini-"):
            return f"Model {voice.model_name} is not a Gemini TTS model."
        if "multi_speaker_voice_config" in voice:
            speakers = voice.multi_speaker_voice_config.speaker_voice_configs
            if not speakers or any(s.speaker_id not in GEMINI_VOICES for s in speakers):
                return "Every speaker needs a speaker_alias and a Gemini voice."
        elif voice.name not in GEMINI_VOICES and not voice.name.startswith("voice_"):
            return f"Voice {voice.name or '(none)'} is not available for {voice.model_name}."
    elif "voice_clone" in voice:
        if not voice.voice_clone.voice_cloning_key:
            return "voice_clone.voice_cloning_key is required."
    elif not any(kind in voice.name.lower() for kind in STREAMING_VOICES):
        return f"Voice {voice.name or '(none)'} does not support streaming synthesis."
    audio = config.streaming_audio_config
    encoding = audio.audio_encoding
    if "streaming_audio_config" in config and encoding not in (
        tts.AudioEncoding.PCM,
        tts.AudioEncoding.MULAW,
        tts.AudioEncoding.ALAW,
        tts.AudioEncoding.OGG_OPUS,
    ):
        return f"Streaming supports PCM, ALAW, MULAW and OGG_OPUS, not {encoding.name}."
    if encoding == tts.AudioEncoding.OGG_OPUS:
        return "this fake makes PCM, MULAW and ALAW audio only"
    if audio.sample_rate_hertz and not 8000 <= audio.sample_rate_hertz <= 48000:
        return "sample_rate_hertz must be between 8000 and 48000."
    if audio.speaking_rate and not 0.25 <= audio.speaking_rate <= 2.0:
        return "speaking_rate must be between 0.25 and 2.0."
    return None


def input_problem(
    synthesis_input: tts.StreamingSynthesisInput, config: tts.StreamingSynthesizeConfig
) -> str | None:
    """Why Google would refuse this ``input`` in a call set up with ``config``."""
    if "text" not in synthesis_input and "markup" not in synthesis_input:
        return "input needs text or markup."
    if "prompt" in synthesis_input and not config.voice.model_name:
        return "prompt is only supported by controllable voice models."
    return None


class FakeGoogleTTSGrpcServer(ServedGRPCFake):
    """See the module docstring. ``async with FakeGoogleTTSGrpcServer() as fake: fake.url``."""

    def __init__(
        self,
        *,
        token: str | None = None,
        secs_per_word: float = 0.1,
        chunk_secs: float = 0.05,
        chunk_delay: float = 0.0,
    ) -> None:
        self.token = token
        self.secs_per_word = secs_per_word
        self.chunk_secs = chunk_secs
        self.chunk_delay = chunk_delay
        self.metadata: list[dict[str, str]] = []
        """Each call's metadata (names in lower case)."""
        self.first_requests: list[tts.StreamingSynthesizeRequest] = []
        """Each call's first request, as received."""
        self.first_request_bytes: list[bytes] = []
        """Each call's first request, serialized (the bytes on the wire)."""
        self.inputs: list[tts.StreamingSynthesisInput] = []
        """Every valid ``input`` received."""
        self.responses: list[bytes] = []
        """Every response sent, serialized."""
        self.statuses: deque[grpc.StatusCode] = deque()
        """Codes to end the next valid calls with, before any audio."""
        self.cancelled_streams = 0
        self.completed_streams = 0

    @property
    def address(self) -> str:
        """``127.0.0.1:port``: a gRPC target (an SDK's ``api_endpoint``)."""
        return self.target

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``: what ``$CALLPIPE_GOOGLE_TTS_GRPC_URL`` takes (no TLS)."""
        return self.base_url

    def _handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        return [
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                        self._streaming_synthesize,
                        request_deserializer=tts.StreamingSynthesizeRequest.deserialize,
                        response_serializer=tts.StreamingSynthesizeResponse.serialize,
                    )
                },
            )
        ]

    async def _streaming_synthesize(
        self, requests: AsyncIterator[tts.StreamingSynthesizeRequest], context: Any
    ) -> AsyncIterator[tts.StreamingSynthesizeResponse]:
        finished = False

        def on_done(context: Any) -> None:
            # Ended neither by the handler nor by an abort: the client cancelled the call.
            if not finished and context.code() is None:
                self.cancelled_streams += 1

        context.add_done_callback(on_done)
        stream = requests.__aiter__()

        async def refuse(code: grpc.StatusCode, message: str) -> None:
            # What the client still sends is read first: a Python gRPC client whose call ends
            # while it is writing may see INTERNAL instead of the status sent.
            await _drain(stream)
            await context.abort(code, message)

        metadata = {str(k).lower(): str(v) for k, v in context.invocation_metadata() or ()}
        self.metadata.append(metadata)
        if self.token is not None and metadata.get("authorization") != f"Bearer {self.token}":
            await refuse(
                grpc.StatusCode.UNAUTHENTICATED,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "No streaming_config sent.")
        self.first_requests.append(first)
        self.first_request_bytes.append(tts.StreamingSynthesizeRequest.serialize(first))
        if "streaming_config" not in first or "input" in first:
            await refuse(
                grpc.StatusCode.INVALID_ARGUMENT,
                "The first request must contain streaming_config and no input.",
            )
        config = first.streaming_config
        problem = config_problem(config)
        if problem is not None:
            await refuse(grpc.StatusCode.INVALID_ARGUMENT, problem)
        if self.statuses:
            await refuse(self.statuses.popleft(), "scripted failure")
        audio = config.streaming_audio_config
        rate = audio.sample_rate_hertz or NATURAL_RATE
        encoding = audio.audio_encoding
        async for request in stream:
            if "input" not in request or "streaming_config" in request:
                await refuse(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "Only the first request may hold streaming_config; the rest hold input.",
                )
            problem = input_problem(request.input, config)
            if problem is not None:
                await refuse(grpc.StatusCode.INVALID_ARGUMENT, problem)
            self.inputs.append(request.input)
            words = len((request.input.text or request.input.markup).split())
            for pcm in speech_chunks(max(1, words) * self.secs_per_word, rate, self.chunk_secs):
                if self.chunk_delay:
                    await asyncio.sleep(self.chunk_delay)
                response = tts.StreamingSynthesizeResponse(audio_content=_encode(pcm, encoding))
                self.responses.append(tts.StreamingSynthesizeResponse.serialize(response))
                yield response
        finished = True
        self.completed_streams += 1


async def _drain(stream: AsyncIterator[tts.StreamingSynthesizeRequest]) -> None:
    """Read what the client still sends (up to its half-close, or a second of silence)."""
    with contextlib.suppress(TimeoutError, StopAsyncIteration):
        while True:
            await asyncio.wait_for(anext(stream), 1.0)


def _encode(pcm: bytes, encoding: tts.AudioEncoding) -> bytes:
    if encoding == tts.AudioEncoding.MULAW:
        return pcm_to_ulaw(pcm)
    if encoding == tts.AudioEncoding.ALAW:
        return pcm_to_alaw(pcm)
    return pcm
