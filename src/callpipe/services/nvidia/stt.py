"""NVIDIA speech recognition (Riva / Nemotron Speech ASR NIM) over gRPC.

``NvidiaSTTService`` streams the call to ``nvidia.riva.asr.RivaSpeechRecognition/
StreamingRecognize``; ``NvidiaSegmentedSTTService`` sends each utterance the VAD bounds to the
offline ``Recognize``. The messages are the protobuf classes of NVIDIA's own client,
``nvidia-riva-client`` (install ``callpipe[nvidia]``), on a ``grpc.aio`` channel.

Where: ``server`` (default NVIDIA's hosted ``grpc.nvcf.nvidia.com:443``, over TLS), or a local
NIM / Riva server (``server="localhost:50051", use_ssl=False``). NVIDIA's cloud picks the model
by the ``function-id`` metadata (``model_function_map["function_id"]``) and takes the key as
``authorization: Bearer`` (``api_key``, else ``$NVIDIA_API_KEY`` for the hosted endpoint).

The stream: its first request carries only the ``streaming_config`` (``LINEAR_PCM``, the
pipeline's input rate, one channel, so nothing is converted: 8000 Hz on a phone line), every
later request ~100 ms of audio (the batching of ``StreamingSTTService``). Riva has no "finalize
now" request: at the caller's VAD stop the queued audio goes out at once and Riva ends the
utterance by its own endpointing (``stop_history`` etc.). Interim results become
``InterimTranscriptionFrame``; ``is_final`` ones ``TranscriptionFrame`` (``finalized=True``),
each carrying the Riva result as ``result``.

Errors: ``UNAUTHENTICATED`` / ``PERMISSION_DENIED`` are fatal. A stream that fails with a
server or network status (``UNAVAILABLE`` ...) or that the server ends is opened again with the
next audio, up to ``max_reconnects`` times in a row, then reported. Another status (a refused
configuration) is reported and the stream is not reopened until the settings change.
Settings changed at runtime (``STTUpdateSettingsFrame``) live in the first request: a new
stream with them takes over the audio and the old one is half-closed, so it still returns the
results it owes. At the ``EndFrame`` the queued audio is sent, the stream half-closed and its
last results pushed (within ``end_timeout_secs``).

Connection events (Pipecat 1.14's, run in a task), on ``NvidiaSTTService``: ``on_connected``
when a stream's call is established (its channel connected), ``on_disconnected`` when it ends
(at the end of the call, or when the server ends or drops it; a stream that takes over for new
settings is no new connection), and ``on_connection_error`` with the error's text when a stream
could not be opened (the server unreachable, or a status before any result, e.g. a refused
key or configuration) or the service gives up on it (see
:mod:`callpipe.services._grpc_stream`). ``NvidiaSegmentedSTTService`` makes one call per
utterance and fires none of them, as an HTTP service.

Differences from Pipecat 1.14: ``speaker_format`` is kept as a setting but diarized results are
not split per speaker; no keepalive thread (the stream is a native ``grpc.aio`` call); Pipecat
fires only ``on_connection_error``, when its reconnect after a dropped stream fails. The
deprecated ``NvidiaSTTService.set_model`` changes nothing, as in 1.14 (the model is chosen at
construction, by ``model_function_map``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel

from callpipe.audio.wav import read_wav
from callpipe.frames.frames import EndFrame, StartFrame
from callpipe.services._grpc_stream import (
    GrpcStreamSTTService,
    RequestStream,
    StreamListener,
    drain_streams,
)
from callpipe.services.nvidia._riva import (
    AUTH_HINT,
    NVCF_SERVER,
    REFUSED,
    RETRIED,
    api_key_for,
    call_metadata,
    function_of,
    open_channel,
    protos,
    resolve_server,
    riva_language,
    status_of,
)
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import SegmentedSTTService
from callpipe.transcriptions.language import Language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

NVIDIA_TTFS_P99 = 1.0
"""Default ``ttfs_p99_latency`` for NVIDIA (seconds)."""
STREAMING_MODEL = {
    "function_id": "bb0837de-8c7b-481f-9ec8-ef5663e9c1fa",
    "model_name": "nemotron-asr-streaming",
}
"""NVIDIA's hosted streaming model (its function id changes when NVIDIA redeploys it; see
build.nvidia.com)."""
OFFLINE_MODEL = {
    "function_id": "b0e8b4a5-217c-40b7-9b96-17d84e666317",
    "model_name": "canary-1b-asr",
}
"""NVIDIA's hosted offline model."""
ASR_METHOD = "/nvidia.riva.asr.RivaSpeechRecognition/"


@dataclass
class _NvidiaSTTSettingsBase(STTSettings):
    """Recognition settings both NVIDIA STT services send in their ``RecognitionConfig``.

    Parameters:
        profanity_filter: Mask profanities.
        automatic_punctuation: Punctuate the transcripts.
        verbatim_transcripts: Keep the transcript as spoken (no inverse text normalization).
        boosted_lm_words: Words to favour (a ``SpeechContext``).
        boosted_lm_score: How much to favour them.
        max_alternatives: Alternatives per result.
        word_time_offsets: Give each word its start and end.
        speaker_diarization: Tag words with their speaker.
        diarization_max_speakers: At most this many speakers (0: the server's default).
    """

    profanity_filter: bool | NotGiven = field(default_factory=unset)
    automatic_punctuation: bool | NotGiven = field(default_factory=unset)
    verbatim_transcripts: bool | NotGiven = field(default_factory=unset)
    boosted_lm_words: list[str] | None | NotGiven = field(default_factory=unset)
    boosted_lm_score: float | NotGiven = field(default_factory=unset)
    max_alternatives: int | NotGiven = field(default_factory=unset)
    word_time_offsets: bool | NotGiven = field(default_factory=unset)
    speaker_diarization: bool | NotGiven = field(default_factory=unset)
    diarization_max_speakers: int | NotGiven = field(default_factory=unset)


@dataclass
class NvidiaSTTSettings(_NvidiaSTTSettingsBase):
    """``NvidiaSTTService.Settings``.

    Parameters:
        interim_results: Send interim results.
        speaker_format: Pipecat's template for diarized speaker runs (kept, not applied).
    """

    interim_results: bool | NotGiven = field(default_factory=unset)
    speaker_format: str | None | NotGiven = field(default_factory=unset)

    LOCAL_FIELDS: ClassVar[frozenset[str]] = frozenset({"speaker_format"})
    """Settings that do not go to the server (changing them opens no new stream)."""


@dataclass
class NvidiaSegmentedSTTSettings(_NvidiaSTTSettingsBase):
    """``NvidiaSegmentedSTTService.Settings``."""


def _given(value: Any, default: Any) -> Any:
    return default if isinstance(value, NotGiven) else value


class _RivaRecognition:
    """What both services do alike: the channel, the metadata and the ``RecognitionConfig``."""

    _settings: _NvidiaSTTSettingsBase
    _custom_configuration: str
    _use_ssl: bool

    def _setup_riva(
        self,
        api_key: str | None,
        server: str,
        use_ssl: bool,
        model_function_map: Mapping[str, str],
    ) -> None:
        protos()  # the SDK is needed: say so at construction
        function_id, _ = function_of(model_function_map)
        self._server, self._use_ssl = resolve_server(server, use_ssl)
        self._metadata = call_metadata(api_key_for(api_key, server), function_id)
        self._channel: Any = None

    def recognition_config(self, sample_rate: int) -> Any:
        """The ``RecognitionConfig`` with the current settings (16-bit PCM at ``sample_rate``)."""
        asr, _, audio = protos()
        s = self._settings
        config = asr.RecognitionConfig(
            encoding=audio.AudioEncoding.LINEAR_PCM,
            sample_rate_hertz=sample_rate,
            language_code=riva_language(_given(s.language, None) or "en-US"),
            max_alternatives=int(_given(s.max_alternatives, 1)),
            profanity_filter=bool(_given(s.profanity_filter, False)),
            enable_automatic_punctuation=bool(_given(s.automatic_punctuation, True)),
            verbatim_transcripts=bool(_given(s.verbatim_transcripts, False)),
            enable_word_time_offsets=bool(_given(s.word_time_offsets, False)),
            audio_channel_count=1,
        )
        words = _given(s.boosted_lm_words, None)
        if words:
            context = config.speech_contexts.add()
            context.phrases.extend(words)
            context.boost = float(_given(s.boosted_lm_score, 4.0))
        if _given(s.speaker_diarization, False):
            config.diarization_config.enable_speaker_diarization = True
            config.diarization_config.max_speaker_count = int(_given(s.diarization_max_speakers, 0))
        for key, value in _custom_pairs(self._custom_configuration).items():
            config.custom_configuration[key] = value
        return config

    def _riva_channel(self) -> Any:
        if self._channel is None:
            self._channel = open_channel(self._server, self._use_ssl)
        return self._channel

    async def _close_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()


def _custom_pairs(text: str) -> dict[str, str]:
    """``"key:value,key:value"`` (Riva's ``custom_configuration`` string) as a dict."""
    pairs: dict[str, str] = {}
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        key, sep, value = part.partition(":")
        if not sep or ":" in value:
            from callpipe.errors import ConfigurationError

            raise ConfigurationError(f"custom_configuration: {part!r} is not key:value")
        pairs[key] = value
    return pairs


class _Stream(RequestStream):
    """One ``StreamingRecognize`` call: its requests, its reader and its unfinished audio."""

    def __init__(
        self, first: Any, language: str | None, *, listener: StreamListener | None = None
    ) -> None:
        super().__init__(first, listener=listener)
        self.language = language
        """The language the stream was opened with: its results carry it, even when a
        settings update has already opened the next stream."""
        self.unfinalized: deque[bytes] = deque()
        """Audio sent since the stream's last final result: sent again if the stream fails."""
        self.unfinalized_bytes = 0


class NvidiaSTTService(_RivaRecognition, GrpcStreamSTTService[_Stream]):
    """Riva streaming recognition (see the module docstring).

    1.14 style: ``NvidiaSTTService(api_key=..., settings=NvidiaSTTService.Settings(
    language=Language("en-US"), interim_results=True))``.
    """

    Settings = NvidiaSTTSettings
    _settings: NvidiaSTTSettings

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` (ignored when ``settings`` is given)."""

        language: Language | None = Language("en-US")

    def __init__(
        self,
        *,
        api_key: str | None = None,
        server: str = NVCF_SERVER,
        model_function_map: Mapping[str, str] = STREAMING_MODEL,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        use_ssl: bool = True,
        audio_channel_count: int = 1,
        start_history: int = -1,
        start_threshold: float = -1.0,
        stop_history: int = 320,
        stop_threshold: float = -1.0,
        stop_history_eou: int = -1,
        stop_threshold_eou: float = -1.0,
        custom_configuration: str = "",
        settings: NvidiaSTTSettings | None = None,
        ttfs_p99_latency: float | None = NVIDIA_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        _, model = function_of(model_function_map)
        store = NvidiaSTTSettings(
            model=model,
            language=Language("en-US"),
            profanity_filter=False,
            automatic_punctuation=True,
            verbatim_transcripts=True,
            boosted_lm_words=None,
            boosted_lm_score=4.0,
            max_alternatives=1,
            interim_results=True,
            word_time_offsets=False,
            speaker_diarization=False,
            diarization_max_speakers=0,
            speaker_format=None,
        )
        if params is not None and settings is None:
            logger.warning("NvidiaSTTService: params is deprecated; use settings=")
            store.language = params.language
        if settings is not None:
            store.apply_update(settings)
        if audio_channel_count != 1:
            logger.warning("NvidiaSTTService: the pipeline's audio is mono; one channel is sent")
        super().__init__(
            model=model,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._setup_riva(api_key, server, use_ssl, model_function_map)
        self._custom_configuration = custom_configuration
        _custom_pairs(custom_configuration)  # a malformed string fails here
        self._endpointing = {
            "start_history": start_history,
            "start_threshold": start_threshold,
            "stop_history": stop_history,
            "stop_threshold": stop_threshold,
            "stop_history_eou": stop_history_eou,
            "stop_threshold_eou": stop_threshold_eou,
        }
        self._reopen = False
        self._auth_failed = False
        self.streams_opened = 0

    # ------------------------------------------------------------------ requests

    def streaming_config(self) -> Any:
        """The ``StreamingRecognitionConfig`` of a stream opened now."""
        asr, _, _ = protos()
        config = self.recognition_config(self.sample_rate)
        endpointing = {name: value for name, value in self._endpointing.items() if value > 0}
        if endpointing:
            config.endpointing_config.CopyFrom(asr.EndpointingConfig(**endpointing))
        return asr.StreamingRecognitionConfig(
            config=config, interim_results=bool(_given(self._settings.interim_results, True))
        )

    def first_request(self) -> Any:
        """The request that opens a stream: the ``streaming_config`` alone."""
        asr, _, _ = protos()
        return asr.StreamingRecognizeRequest(streaming_config=self.streaming_config())

    # ------------------------------------------------------------------ lifecycle

    async def start(self, frame: StartFrame) -> None:
        self._riva_channel()
        self._request_type = protos()[0].StreamingRecognizeRequest
        self._stream = self._open_stream()

    def _open_stream(self, resend: list[bytes] | None = None) -> _Stream:
        stream = _Stream(self.first_request(), self._language, listener=self)
        for chunk in resend or ():
            self._queue_audio(stream, chunk)
        stream.reader = self.create_task(self._read(stream), "nvidia-stt-stream")
        self.streams_opened += 1
        return stream

    def _queue_audio(self, stream: _Stream, chunk: bytes) -> None:
        stream.requests.put_nowait(self._request_type(audio_content=chunk))
        stream.unfinalized.append(chunk)
        stream.unfinalized_bytes += len(chunk)
        limit = self.max_resend_secs * self.sample_rate * 2
        while stream.unfinalized_bytes > limit and len(stream.unfinalized) > 1:
            stream.unfinalized_bytes -= len(stream.unfinalized.popleft())

    def _switch(self, resend: list[bytes] | None = None) -> _Stream:
        """A new stream takes the audio; the old one, half-closed, returns its last results."""
        old, self._stream = self._stream, self._open_stream(resend)
        self._retire(old)
        return self._stream

    async def stop(self, frame: EndFrame) -> None:
        await self.flush_audio()
        await self.stop_sending()
        stream = self._stream
        await drain_streams(stream, self._retiring, self.end_timeout_secs, self)
        await self.disconnect()

    async def disconnect(self) -> None:
        await self.stop_sending()
        await self._close_streams()
        await self._close_channel()

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        stream = self._stream
        if stream is None:
            return False
        if stream.failed:
            if not self._reopen:
                return False
            stream = self._reopen_stream(stream)
        self._queue_audio(stream, audio)
        return True

    def _reopen_stream(self, failed: _Stream) -> _Stream:
        """Another stream takes over from the failed one, its unfinished audio sent first."""
        self._reopen = False
        return self._switch(resend=list(failed.unfinalized))

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: the queued audio goes out now (Riva ends the utterance itself)."""
        await self.flush_audio()

    # ------------------------------------------------------------------ results in

    async def _read(self, stream: _Stream) -> None:
        channel = self._channel
        if channel is None:
            return
        call = channel.stream_stream(
            ASR_METHOD + "StreamingRecognize",
            request_serializer=type(stream.first).SerializeToString,
            response_deserializer=protos()[0].StreamingRecognizeResponse.FromString,
        )(stream.iterate(), metadata=self._metadata)
        try:
            await call.wait_for_connection()  # the channel connected and the call started
            await stream.established()
            async for response in call:
                stream.answered = True
                self._failures = 0
                for result in response.results:
                    if result.is_final:
                        stream.unfinalized.clear()
                        stream.unfinalized_bytes = 0
                    await self._on_result(result, stream.language)
        except asyncio.CancelledError:
            call.cancel()
            raise
        except Exception as exc:
            status = status_of(exc)
            if status is None:
                raise
            await stream.ended()
            await self._on_stream_error(stream, *status)
            return
        finally:
            self._retiring.discard(stream)
            stream.requests.put_nowait(None)  # the call is over: its request iterator ends
            await stream.ended()
        if not stream.closing and stream is self._stream:
            await self._on_stream_error(stream, "OK", "the server ended the stream")

    async def _on_result(self, result: Any, language: str | None) -> None:
        if not result.alternatives:
            return
        text = result.alternatives[0].transcript
        if not text.strip():
            return
        if result.is_final:
            await self.push_transcript(
                text, final=True, language=language, result=result, finalized=True
            )
        else:
            await self.push_transcript(text, final=False, language=language, result=result)

    async def _on_stream_error(self, stream: _Stream, code: str, details: str) -> None:
        said = f"{code}: {details}"
        if stream is not self._stream:
            if not stream.closing:
                logger.info("%s: a replaced stream ended with %s", self, said)
            return
        stream.failed = True
        if code in REFUSED:
            message = f"{self}: NVIDIA refused the call ({said}). {AUTH_HINT}"
            await stream.connection_failed(message)
            if not self._auth_failed:
                self._auth_failed = True
                await self.report_error(message, fatal=True, reason="auth")
            return
        if code not in RETRIED and code != "OK":
            message = f"{self}: Riva refused the stream: {said}"
            await stream.connection_failed(message)
            await self.report_error(message, reason="provider")
            return
        if not await self._retry_allowed(stream, said, quiet=code == "OK"):
            return
        logger.warning("%s: the stream ended (%s); the next audio opens another", self, said)
        await self._back_off()
        self._reopen = True
        if stream.unfinalized and stream is self._stream:
            self._reopen_stream(stream)  # it still owes results for audio: now

    # ------------------------------------------------------------------ settings at runtime

    async def set_model(self, model: str) -> None:
        """Deprecated, and no effect (as in Pipecat 1.14): the model is chosen at construction
        (``model_function_map``)."""
        warnings.warn(
            "NvidiaSTTService.set_model is deprecated and has no effect; set the model in "
            "the constructor (model_function_map)",
            DeprecationWarning,
            stacklevel=2,
        )

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Settings live in the first request: a stream with the new ones takes over."""
        if not set(changed) - NvidiaSTTSettings.LOCAL_FIELDS:
            return
        if self._auth_failed:
            return
        stream = self._stream
        if stream is None:
            return  # not started: the first stream gets them
        if stream.failed:
            self._reopen = True  # a refused configuration may work now
            self._failures = 0
            return
        async with self._sending:
            if self._stream is stream:
                self._switch()
        logger.info("%s: a stream with the new settings takes over", self)


class NvidiaSegmentedSTTService(_RivaRecognition, SegmentedSTTService):
    """Riva offline recognition, one ``Recognize`` per utterance (see the module docstring)."""

    Settings = NvidiaSegmentedSTTSettings
    _settings: NvidiaSegmentedSTTSettings

    request_timeout_secs = 10.0

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` (ignored when ``settings`` is given)."""

        language: Language | None = Language("en-US")
        profanity_filter: bool = False
        automatic_punctuation: bool = True
        verbatim_transcripts: bool = False
        boosted_lm_words: list[str] | None = None
        boosted_lm_score: float = 4.0

    def __init__(
        self,
        *,
        api_key: str | None = None,
        server: str = NVCF_SERVER,
        model_function_map: Mapping[str, str] = OFFLINE_MODEL,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        use_ssl: bool = True,
        custom_configuration: str = "",
        settings: NvidiaSegmentedSTTSettings | None = None,
        ttfs_p99_latency: float | None = NVIDIA_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        _, model = function_of(model_function_map)
        store = NvidiaSegmentedSTTSettings(
            model=model,
            language=Language("en-US"),
            profanity_filter=False,
            automatic_punctuation=True,
            verbatim_transcripts=False,
            boosted_lm_words=None,
            boosted_lm_score=4.0,
            max_alternatives=1,
            word_time_offsets=False,
            speaker_diarization=False,
            diarization_max_speakers=0,
        )
        if params is not None and settings is None:
            logger.warning("NvidiaSegmentedSTTService: params is deprecated; use settings=")
            store.language = params.language or Language("en-US")
            store.profanity_filter = params.profanity_filter
            store.automatic_punctuation = params.automatic_punctuation
            store.verbatim_transcripts = params.verbatim_transcripts
            store.boosted_lm_words = params.boosted_lm_words
            store.boosted_lm_score = params.boosted_lm_score
        if settings is not None:
            store.apply_update(settings)
        super().__init__(
            model=model,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._setup_riva(api_key, server, use_ssl, model_function_map)
        self._custom_configuration = custom_configuration
        _custom_pairs(custom_configuration)
        self._refused = False

    def recognize_request(self, pcm: bytes) -> Any:
        """The ``RecognizeRequest`` for one utterance of 16-bit PCM."""
        asr, _, _ = protos()
        return asr.RecognizeRequest(config=self.recognition_config(self.sample_rate), audio=pcm)

    async def start(self, frame: StartFrame) -> None:
        self._riva_channel()

    async def disconnect(self) -> None:
        await self._close_channel()

    async def run_stt(self, wav: bytes) -> str | None:
        if self._refused:
            return None
        _, pcm = read_wav(wav)
        asr, _, _ = protos()
        request = self.recognize_request(pcm)
        call = self._riva_channel().unary_unary(
            ASR_METHOD + "Recognize",
            request_serializer=asr.RecognizeRequest.SerializeToString,
            response_deserializer=asr.RecognizeResponse.FromString,
        )
        for attempt in range(2):
            try:
                response = await call(
                    request, metadata=self._metadata, timeout=self.request_timeout_secs
                )
            except Exception as exc:
                status = status_of(exc)
                if status is None:
                    raise
                code, details = status
                if code in RETRIED and attempt == 0:
                    continue
                fatal = code in REFUSED
                self._refused = fatal
                await self.report_error(
                    f"{self}: Recognize failed: {code}: {details}"
                    + (f" {AUTH_HINT}" if fatal else ""),
                    fatal=fatal,
                    reason="auth" if fatal else "provider",
                )
                return None
            texts = [
                r.alternatives[0].transcript.strip() for r in response.results if r.alternatives
            ]
            return " ".join(t for t in texts if t) or None
        return None
