"""GoogleSTTService: Google Cloud Speech-to-Text v2, ``Speech.StreamingRecognize`` over gRPC.

The client is Google's own SDK (``google-cloud-speech``, ``SpeechAsyncClient``; install
``callpipe[google]``). Each stream is one bidirectional call: its first request names the
recognizer (``projects/{project}/locations/{location}/recognizers/_``, the implicit one) and
carries the whole ``streaming_config``; every later request carries only ``audio``. The
caller's audio is the pipeline's 16-bit PCM, sent as it is (``LINEAR16`` at the input rate,
one channel): no conversion on the audio path. It goes out in batches of 100 ms (one request
each, far below Google's 15 KB per request); when the caller stops speaking the queued audio
is sent at once. Google has no "finalize now" request: it ends its results by its own
endpointing.

Results: each ``StreamingRecognitionResult`` with a transcript becomes an
``InterimTranscriptionFrame`` or, with ``is_final``, a ``TranscriptionFrame``
(``finalized=True``); the result itself is carried as ``result``. The language is the
configured code the result's ``language_code`` names (Google sends it in lower case), else the
first configured language, as in Pipecat 1.14.

A stream lasts at most about five minutes at Google. After ``stream_limit_secs`` (240 s, as in
Pipecat) a new stream takes over the audio at the next moment the caller is not speaking (at
the latest after ``stream_hard_limit_secs``), and the old one is half-closed so that it returns
its last results: no audio is lost or sent twice. A stream Google ends itself (``ABORTED``,
e.g. after about ten seconds without audio while the STT is muted; ``OUT_OF_RANGE``, its
duration limit; or a plain end) is reopened quietly, and the audio sent since its last final
result goes to the new stream again. A server or network error (``UNAVAILABLE``, ...) is
retried up to ``max_reconnects`` times in a row, then reported as a non-fatal ``ErrorFrame``.
``UNAUTHENTICATED`` and ``PERMISSION_DENIED`` are fatal. A refused configuration
(``INVALID_ARGUMENT`` and the like) is reported and not retried.

Settings at runtime (``STTUpdateSettingsFrame``) all live in the first request, so a change
opens a new stream with them, the same way as at the stream limit; if Google refuses the new
configuration, the settings go back, a non-fatal ``ErrorFrame`` says so, and a stream with the
old ones takes over again (with the audio the refused one got). A ``language`` becomes
``languages=[language]``, as in Pipecat.

At the end of the call (``EndFrame``) the queued audio is sent, the stream half-closed, and its
last results are pushed before the ``EndFrame`` (within ``end_timeout_secs``). A
``CancelFrame`` cancels the call at once.

Connection events (Pipecat 1.14's, run in a task): ``on_connected`` when a stream's call is
established (its channel connected), ``on_disconnected`` when it ends (at the end of the call,
or when Google ends or drops it; a stream that takes over from another, at the limit or for new
settings, is no new connection), and ``on_connection_error`` with the error's text when a
stream could not be opened (Google unreachable, or a status before any result, e.g. a refused
key or configuration) or the service gives up on it (see
:mod:`callpipe.services._grpc_stream`). A stream Google ends quietly and that is reopened is a
disconnection, then a connection.

Credentials: ``credentials=`` (a service account's JSON) or ``credentials_path=`` (its file),
else Application Default Credentials; the project is the one they belong to. The endpoint is
``speech.googleapis.com``, or ``{location}-speech.googleapis.com`` for a ``location`` other
than ``global``. ``url=`` (callpipe's), else ``$CALLPIPE_GOOGLE_SPEECH_URL``, replaces it: an
``http://host:port`` address (a fake, e.g. from ``callpipe fakes``) is reached without TLS and
with anonymous credentials; the project is then the credentials' if given, else
``$GOOGLE_CLOUD_PROJECT``, else ``callpipe-fakes``.

Differences from Pipecat 1.14: the stream is switched at a pause in the caller's speech rather
than cut mid-word, the audio of an aborted stream is sent again, ``url`` is callpipe's, and the
deprecated ``update_options``/``set_languages`` methods are not provided (use
``STTUpdateSettingsFrame``). Pipecat fires ``on_connected`` as it sets the stream up (before any
call is made) and ``on_disconnected`` as it tears it down (both again for new settings), and
never ``on_connection_error``; here they follow the streams' calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.frames.frames import EndFrame, StartFrame
from callpipe.services._env import GOOGLE_SPEECH_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services._grpc_stream import (
    GrpcStreamSTTService,
    RequestStream,
    StreamListener,
    drain_streams,
)
from callpipe.services.google._auth import anonymous_credentials, insecure_target, load_credentials
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import restore_settings
from callpipe.transcriptions.language import USUAL_REGIONS, Language, resolve_language
from callpipe.utils.types import NOT_GIVEN, NotGiven, is_given

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.speech_v2 import SpeechAsyncClient
    from google.cloud.speech_v2.types import cloud_speech

logger = logging.getLogger(__name__)

GOOGLE_TTFS_P99 = 1.57
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Google (seconds)."""
DEFAULT_MODEL = "latest_long"
FAKE_PROJECT = "callpipe-fakes"
"""The project named to a fake when no credentials give one."""
_AUTH_HINT = "Check credentials / credentials_path and the account's access to Speech-to-Text."

_LANGUAGE_MAP = {
    **USUAL_REGIONS,
    "ar": "ar-EG",
    "he": "iw-IL",
    "he-IL": "iw-IL",
    "nb": "no-NO",
    "nb-NO": "no-NO",
    "no": "no-NO",
    "pa": "pa-Guru-IN",
    "pa-IN": "pa-Guru-IN",
    "sw": "sw-TZ",
    "xh": "xh-ZA",
    "yue": "yue-Hant-HK",
    "yue-CN": "yue-Hant-HK",
    "zh": "cmn-Hans-CN",
    "zh-CN": "cmn-Hans-CN",
    "zh-HK": "cmn-Hans-HK",
    "zh-TW": "cmn-Hant-TW",
}
"""Google's code where it is not the tag itself (a base code maps to its usual region)."""


def language_to_google_stt_language(language: str) -> str:
    """Google's code for a language: ``Language.EN`` -> ``"en-US"``, ``Language.ZH`` ->
    ``"cmn-Hans-CN"``; a regional tag (``"en-GB"``) is Google's own."""
    value = str(language)
    if value in _LANGUAGE_MAP:
        return _LANGUAGE_MAP[value]
    if "-" in value:
        return value
    return resolve_language(value, _LANGUAGE_MAP, use_base_code=False)


@dataclass
class GoogleSTTSettings(STTSettings):
    """``GoogleSTTService.Settings``: what the stream's configuration holds.

    Parameters:
        languages: Languages to recognize (``Language`` members or Google's codes), the first
            the main one.
        language_codes: Pipecat's deprecated spelling of ``languages`` (Google's codes);
            ``languages`` wins when both are set.
        use_separate_recognition_per_channel: Recognize each channel on its own (the audio is
            mono here, so this changes nothing).
        enable_automatic_punctuation: Punctuate the transcripts.
        enable_spoken_punctuation: Write spoken punctuation ("comma") as the mark.
        enable_spoken_emojis: Write spoken emoji names as emojis.
        profanity_filter: Mask profanities.
        enable_word_time_offsets: Give each word its start and end.
        enable_word_confidence: Give each word a confidence.
        enable_interim_results: Send interim results.
        enable_voice_activity_events: Ask for speech begin/end events.
        adaptation: Phrase sets to bias recognition (a ``SpeechAdaptation`` or its dict form).
        denoiser_config: Noise removal (a ``DenoiserConfig`` or its dict form; Chirp 3 only).
    """

    languages: list[Any] | NotGiven = field(default_factory=unset)
    language_codes: list[str] | None | NotGiven = field(default_factory=unset)
    use_separate_recognition_per_channel: bool | NotGiven = field(default_factory=unset)
    enable_automatic_punctuation: bool | NotGiven = field(default_factory=unset)
    enable_spoken_punctuation: bool | NotGiven = field(default_factory=unset)
    enable_spoken_emojis: bool | NotGiven = field(default_factory=unset)
    profanity_filter: bool | NotGiven = field(default_factory=unset)
    enable_word_time_offsets: bool | NotGiven = field(default_factory=unset)
    enable_word_confidence: bool | NotGiven = field(default_factory=unset)
    enable_interim_results: bool | NotGiven = field(default_factory=unset)
    enable_voice_activity_events: bool | NotGiven = field(default_factory=unset)
    adaptation: dict[str, Any] | cloud_speech.SpeechAdaptation | None | NotGiven = field(
        default_factory=unset
    )
    denoiser_config: dict[str, Any] | cloud_speech.DenoiserConfig | None | NotGiven = field(
        default_factory=unset
    )


_FEATURES = (
    "enable_automatic_punctuation",
    "enable_spoken_punctuation",
    "enable_spoken_emojis",
    "profanity_filter",
    "enable_word_time_offsets",
    "enable_word_confidence",
)


def _defaults() -> GoogleSTTSettings:
    return GoogleSTTSettings(
        model=DEFAULT_MODEL,
        language=None,
        languages=[Language("en-US")],
        language_codes=None,
        use_separate_recognition_per_channel=False,
        enable_automatic_punctuation=True,
        enable_spoken_punctuation=False,
        enable_spoken_emojis=False,
        profanity_filter=False,
        enable_word_time_offsets=False,
        enable_word_confidence=False,
        enable_interim_results=True,
        enable_voice_activity_events=False,
        adaptation=None,
        denoiser_config=None,
    )


def _speech() -> Any:
    """The SDK's ``cloud_speech`` types module (imported on first use)."""
    try:
        from google.cloud.speech_v2.types import cloud_speech
    except ImportError as exc:
        raise MissingDependencyError("google-cloud-speech (GoogleSTTService)", "google") from exc
    return cloud_speech


def _adaptation(value: Any) -> Any:
    """A ``SpeechAdaptation`` from the message or its dict form; a phrase set given as a
    resource name or as an inline set (alone or in a list) is put in Google's shape."""
    speech = _speech()
    if isinstance(value, speech.SpeechAdaptation):
        return value
    if not isinstance(value, dict):
        raise ConfigurationError(f"GoogleSTTService: adaptation must be a dict, not {value!r}")
    shaped = dict(value)
    sets = shaped.get("phrase_sets", [])
    if isinstance(sets, str | dict):
        sets = [sets]
    converted: list[dict[str, Any]] = []
    for entry in sets:
        if isinstance(entry, str):
            converted.append({"phrase_set": entry})
        elif isinstance(entry, dict) and ("phrase_set" in entry or "inline_phrase_set" in entry):
            converted.append(entry)
        elif isinstance(entry, dict):
            converted.append({"inline_phrase_set": entry})
        else:
            raise ConfigurationError(
                f"GoogleSTTService: a phrase set is a name or a dict, not {type(entry).__name__}"
            )
    if converted:
        shaped["phrase_sets"] = converted
    return speech.SpeechAdaptation(shaped)


class _Stream(RequestStream):
    """One ``StreamingRecognize`` call: its requests, its reader and what it still owes."""

    def __init__(
        self,
        first: Any,
        settings: dict[str, Any],
        languages: list[str],
        *,
        listener: StreamListener | None = None,
    ) -> None:
        super().__init__(first, listener=listener)
        self.settings = settings
        """The settings it was opened with (``{name: value}``)."""
        self.languages = languages
        """Google's codes of the languages it was opened with."""
        self.opened = time.monotonic()
        self.call: Any = None
        self.reopen = False
        """Failed, and the next audio opens another stream (with :attr:`unfinalized` first)."""
        self.unfinalized: deque[tuple[int, bytes]] = deque()
        """Audio sent after the end of its last final result, each chunk with the offset (in
        bytes from the stream's start) where it ends: sent again if Google drops the stream."""
        self.unfinalized_bytes = 0
        self.sent_bytes = 0
        self.replaced: _Stream | None = None
        """The stream it replaced for changed settings (until it answers)."""


class GoogleSTTService(GrpcStreamSTTService[_Stream]):
    """Google Cloud Speech-to-Text v2 streaming recognition (see the module docstring).

    1.14 style: ``GoogleSTTService(credentials_path="sa.json", location="us",
    settings=GoogleSTTService.Settings(languages=[Language("en-US")], model="chirp_3"))``.
    """

    Settings = GoogleSTTSettings
    _settings: GoogleSTTSettings

    stream_limit_secs = 240.0
    """Age from which a stream is replaced at the next pause in the caller's speech (Pipecat's
    ``STREAMING_LIMIT``, 240 000 ms)."""

    stream_hard_limit_secs = 280.0
    """Age at which a stream is replaced even mid-speech (Google ends them at about 300 s)."""

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form of the settings (use ``settings=``); ignored
        when ``settings`` is given."""

        model_config = ConfigDict(arbitrary_types_allowed=True)

        languages: Any = Field(default_factory=lambda: [Language("en-US")])
        """One language or a list of them (``Language`` or Google's codes), the first the
        main one."""
        model: str | None = DEFAULT_MODEL
        use_separate_recognition_per_channel: bool | None = False
        enable_automatic_punctuation: bool | None = True
        enable_spoken_punctuation: bool | None = False
        enable_spoken_emojis: bool | None = False
        profanity_filter: bool | None = False
        enable_word_time_offsets: bool | None = False
        enable_word_confidence: bool | None = False
        enable_interim_results: bool | None = True
        enable_voice_activity_events: bool | None = False
        adaptation: Any = None

        @field_validator("languages", mode="before")
        @classmethod
        def _as_list(cls, value: Any) -> list[Any]:
            return list(value) if isinstance(value, list | tuple) else [value]

        @property
        def language_list(self) -> list[Any]:
            """The languages as a list."""
            return list(self.languages)

    def __init__(
        self,
        *,
        credentials: str | None = None,
        credentials_path: str | None = None,
        location: str = "global",
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: GoogleSTTSettings | None = None,
        ttfs_p99_latency: float | None = GOOGLE_TTFS_P99,
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        if params is not None and settings is None:
            logger.warning("GoogleSTTService: params is deprecated; use settings=")
            store.languages = params.language_list
            store.model = params.model
            for name in (
                "use_separate_recognition_per_channel",
                "enable_interim_results",
                "enable_voice_activity_events",
                *_FEATURES,
            ):
                setattr(store, name, bool(getattr(params, name)))
            store.adaptation = params.adaptation
        if settings is not None:
            store.apply_update(settings)
            if isinstance(settings.language, str) and not is_given(settings.languages):
                store.languages = [settings.language]
        if is_given(store.adaptation) and store.adaptation is not None:
            store.adaptation = _adaptation(store.adaptation)
        super().__init__(
            model=store.model if isinstance(store.model, str) else DEFAULT_MODEL,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._location = location
        address = env_base_url(url, GOOGLE_SPEECH_URL_ENV, "")
        self._insecure_target = insecure_target(address) if address else None
        self._endpoint = address.split("://", 1)[-1] if address else _endpoint(location)
        self._credentials: Credentials | None = None
        project: str | None = None
        if self._insecure_target is None or credentials or credentials_path:
            self._credentials, project = load_credentials(
                "GoogleSTTService", credentials, credentials_path
            )
        if self._insecure_target is not None:
            project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or FAKE_PROJECT
        if not project:
            raise ConfigurationError(
                "GoogleSTTService: no project id in the credentials; use a service account's "
                "JSON, or set GOOGLE_CLOUD_PROJECT for Application Default Credentials"
            )
        self._project_id = project
        self._client: SpeechAsyncClient | None = None
        self._request_type: Any = None
        self._auth_failed = False
        self.streams_opened = 0

    # ------------------------------------------------------------------ description

    @property
    def recognizer(self) -> str:
        """The implicit recognizer of the project and location."""
        return f"projects/{self._project_id}/locations/{self._location}/recognizers/_"

    def language_to_service_language(self, language: str) -> str:
        return language_to_google_stt_language(language)

    def language_codes(self) -> list[str]:
        """Google's codes for the configured languages (``["en-US"]`` when none are)."""
        s = self._settings
        if isinstance(s.languages, list) and s.languages:
            return [self.language_to_service_language(str(x)) for x in s.languages]
        if isinstance(s.language_codes, list) and s.language_codes:
            return [str(x) for x in s.language_codes]
        return ["en-US"]

    def streaming_config(self) -> cloud_speech.StreamingRecognitionConfig:
        """The ``streaming_config`` of a stream opened now."""
        speech = _speech()
        s = self._settings
        values = s.given_fields()
        model = values.get("model") or DEFAULT_MODEL
        config = speech.RecognitionConfig(
            explicit_decoding_config=speech.ExplicitDecodingConfig(
                encoding=speech.ExplicitDecodingConfig.AudioEncoding.LINEAR16,
                sample_rate_hertz=self.sample_rate,
                audio_channel_count=1,
            ),
            language_codes=self.language_codes(),
            model=model,
            features=speech.RecognitionFeatures(
                **{name: bool(values.get(name)) for name in _FEATURES}
            ),
        )
        denoiser = values.get("denoiser_config")
        if denoiser is not None:
            config.denoiser_config = (
                denoiser
                if isinstance(denoiser, speech.DenoiserConfig)
                else speech.DenoiserConfig(denoiser)
            )
        adaptation = values.get("adaptation")
        if adaptation is not None:
            if str(model).lower() == "telephony":  # Google refuses adaptation with it
                logger.warning("%s: the telephony model takes no adaptation; left out", self)
            else:
                config.adaptation = _adaptation(adaptation)
        streaming: cloud_speech.StreamingRecognitionConfig = speech.StreamingRecognitionConfig(
            config=config,
            streaming_features=speech.StreamingRecognitionFeatures(
                enable_voice_activity_events=bool(values.get("enable_voice_activity_events")),
                interim_results=bool(values.get("enable_interim_results")),
            ),
        )
        return streaming

    def first_request(self) -> cloud_speech.StreamingRecognizeRequest:
        """The request that opens a stream: the recognizer and the configuration."""
        request: cloud_speech.StreamingRecognizeRequest = _speech().StreamingRecognizeRequest(
            recognizer=self.recognizer, streaming_config=self.streaming_config()
        )
        return request

    # ------------------------------------------------------------------ lifecycle

    def _make_client(self) -> SpeechAsyncClient:
        try:
            from google.api_core.client_options import ClientOptions
            from google.cloud.speech_v2 import SpeechAsyncClient
            from google.cloud.speech_v2.services.speech.transports import (
                SpeechGrpcAsyncIOTransport,
            )
        except ImportError as exc:
            raise MissingDependencyError(
                "google-cloud-speech (GoogleSTTService)", "google"
            ) from exc
        if self._insecure_target is not None:
            import grpc

            channel = grpc.aio.insecure_channel(self._insecure_target)
            transport = SpeechGrpcAsyncIOTransport(
                channel=channel, credentials=anonymous_credentials()
            )
            return SpeechAsyncClient(transport=transport)
        return SpeechAsyncClient(
            credentials=self._credentials,
            client_options=ClientOptions(api_endpoint=self._endpoint),
        )

    async def start(self, frame: StartFrame) -> None:
        self._client = self._make_client()
        self._request_type = _speech().StreamingRecognizeRequest
        self._failures = 0
        self._auth_failed = False
        self._stream = self._open_stream()

    def _open_stream(self, *, resend: list[bytes] | None = None) -> _Stream:
        """A new stream for the current settings, its reader started (``resend``: audio queued
        first, before any other)."""
        stream = _Stream(
            self.first_request(),
            self._settings.given_fields(),
            self.language_codes(),
            listener=self,
        )
        for chunk in resend or ():
            self._queue_audio(stream, chunk)
        stream.reader = self.create_task(self._read(stream), "google-stt-stream")
        self.streams_opened += 1
        return stream

    def _queue_audio(self, stream: _Stream, chunk: bytes) -> None:
        stream.requests.put_nowait(self._request_type(audio=chunk))
        stream.sent_bytes += len(chunk)
        stream.unfinalized.append((stream.sent_bytes, chunk))
        stream.unfinalized_bytes += len(chunk)
        limit = self.max_resend_secs * self.sample_rate * 2
        while stream.unfinalized_bytes > limit and len(stream.unfinalized) > 1:
            stream.unfinalized_bytes -= len(stream.unfinalized.popleft()[1])

    def _finalized_until(self, stream: _Stream, secs: float) -> None:
        """Google finalized the stream's audio up to ``secs``: it need not be sent again."""
        done = int(secs * self.sample_rate) * 2
        while stream.unfinalized and stream.unfinalized[0][0] <= done:
            stream.unfinalized_bytes -= len(stream.unfinalized.popleft()[1])

    def _switch(self, *, resend: list[bytes] | None = None) -> _Stream:
        """A new stream takes over the audio; the old one, half-closed, finishes its results."""
        old = self._stream
        new = self._open_stream(resend=resend)
        self._stream = new
        self._retire(old)
        return new

    def _live_stream(self) -> _Stream | None:
        """The stream to send to: a failed one due to be reopened is, with its audio since
        its last final result sent again first; None while there is none."""
        stream = self._stream
        if stream is None or not stream.failed:
            return stream
        if not stream.reopen:
            return None
        stream.reopen = False
        return self._switch(resend=[chunk for _, chunk in stream.unfinalized])

    async def stop(self, frame: EndFrame) -> None:
        """Queued audio out, then the stream half-closed; its last results are pushed."""
        await self.flush_audio()
        await self.stop_sending()
        stream = self._stream
        if stream is not None and stream.failed and stream.unfinalized:
            stream = self._live_stream()  # Google dropped it: its last audio goes again
        await drain_streams(stream, self._retiring, self.end_timeout_secs, self)
        await self.disconnect()

    async def disconnect(self) -> None:
        await self.stop_sending()
        await self._close_streams()
        client, self._client = self._client, None
        if client is not None:
            transport: Any = client.transport  # its close() is unannotated
            with contextlib.suppress(Exception):
                await transport.close()

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        stream = self._live_stream()
        if stream is None:
            return False
        age = time.monotonic() - stream.opened  # once per batch
        if age >= self.stream_hard_limit_secs or (
            age >= self.stream_limit_secs and not self._user_speaking
        ):
            logger.debug("%s: stream %.0f s old; a new one takes over", self, age)
            stream = self._switch()
        self._queue_audio(stream, audio)
        return True

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: the queued audio goes out now (Google finalizes on its own)."""
        await self.flush_audio()

    # ------------------------------------------------------------------ results in

    async def _read(self, stream: _Stream) -> None:
        from google.api_core import exceptions as api

        assert self._client is not None
        try:
            # The SDK returns once the call is established (wait_for_connection).
            call = stream.call = await self._client.streaming_recognize(requests=stream.iterate())
            await stream.established()
            async for response in call:
                stream.answered = True
                self._failures = 0
                if stream.replaced is not None:
                    stream.replaced = None  # Google took the new configuration
                for result in response.results:
                    await self._on_result(stream, result)
        except asyncio.CancelledError:
            if stream.call is not None:
                stream.call.cancel()
            raise
        except api.GoogleAPICallError as exc:
            await stream.ended()
            await self._on_stream_error(stream, exc)
            return
        finally:
            self._retiring.discard(stream)
            await stream.ended()
        await self._on_stream_end(stream)

    async def _on_result(self, stream: _Stream, result: Any) -> None:
        if result.is_final:
            self._finalized_until(stream, result.result_end_offset.total_seconds())
        if not result.alternatives:
            return
        text = result.alternatives[0].transcript
        if not text:
            return
        language = _result_language(stream.languages, result.language_code)
        if result.is_final:
            await self.push_transcript(
                text, final=True, language=language, result=result, finalized=True
            )
        else:
            await self.push_transcript(text, final=False, language=language, result=result)

    def _reopen(self, stream: _Stream) -> None:
        """Another stream takes over from the failed ``stream``: now if Google still owes
        results for audio sent to it (sent again), else with the next audio (none flows while
        the STT is muted, so an idle stream is not reopened over and over)."""
        stream.reopen = True
        if stream.unfinalized and stream is self._stream:
            self._live_stream()

    async def _on_stream_end(self, stream: _Stream) -> None:
        """Google ended the stream without an error (after our half-close, or on its own)."""
        if stream.closing or stream is not self._stream:
            return
        stream.failed = True
        self._failures += 1
        if self._failures > self.max_reconnects:
            message = f"{self}: Google ended {self._failures} streams in a row"
            await stream.connection_failed(message)
            await self.report_error(message, reason="disconnected")
            return
        logger.info("%s: Google ended the stream; the next audio opens another", self)
        self._reopen(stream)

    async def _on_stream_error(self, stream: _Stream, exc: Exception) -> None:
        from google.api_core import exceptions as api

        said = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
        if stream is not self._stream:
            if not stream.closing:
                logger.info("%s: a replaced stream ended with %s", self, said)
            return
        stream.failed = True
        if isinstance(exc, api.Unauthenticated | api.PermissionDenied):
            message = f"{self}: Google rejected the credentials ({said}). {_AUTH_HINT}"
            await stream.connection_failed(message)
            if not self._auth_failed:
                self._auth_failed = True
                await self.report_error(message, fatal=True, reason="auth")
            return
        if isinstance(exc, api.Aborted | api.OutOfRange):
            logger.info(
                "%s: Google ended the stream (%s); the next audio opens another", self, said
            )
            self._reopen(stream)
            return
        refused = isinstance(
            exc,
            api.InvalidArgument | api.NotFound | api.FailedPrecondition | api.MethodNotImplemented,
        )
        if refused:
            old = stream.replaced
            if old is not None and old.settings != self._settings.given_fields():
                await self._revert(stream, old, said)
                return
            message = f"{self}: Google refused the stream: {said}"
            await stream.connection_failed(message)
            await self.report_error(message, reason="provider")
            return
        if not await self._retry_allowed(stream, said):
            return
        logger.warning("%s: the stream failed (%s); opening another", self, said)
        await self._back_off()
        self._reopen(stream)

    async def _revert(self, stream: _Stream, old: _Stream, said: str) -> None:
        """A stream opened for changed settings was refused: back to the old settings."""
        changed = {
            name: value
            for name, value in old.settings.items()
            if value != self._settings.given_fields().get(name, NOT_GIVEN)
        }
        restore_settings(self._settings, changed)
        if isinstance(self._settings.model, str):
            self.set_model_name(self._settings.model)
        language = self._settings.language
        self._language = language if isinstance(language, str) else None
        message = (
            f"{self}: Google refused the new settings ({said}); "
            "still transcribing with the previous ones"
        )
        await stream.connection_failed(message)
        await self.report_error(message, reason="settings")
        self._reopen(stream)

    # ------------------------------------------------------------------ settings at runtime

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Every setting lives in the first request: a stream with the new ones takes over."""
        s = self._settings
        if "language" in changed and "languages" not in changed and isinstance(s.language, str):
            changed["languages"] = s.languages
            s.languages = [s.language]
        if "adaptation" in changed and s.adaptation is not None and is_given(s.adaptation):
            s.adaptation = _adaptation(s.adaptation)
        old = self._stream
        if old is None or old.failed:
            return  # not streaming: the next stream is opened with these settings
        async with self._sending:  # no batch on its way to the old stream
            if self._stream is not old:
                return
            new = self._switch()
            new.replaced = old
        logger.info("%s: a stream with the new settings takes over", self)


def _result_language(configured: list[str], code: str) -> str:
    """The configured code a result's ``language_code`` names (Google's is in lower case), else
    the first configured one."""
    for each in configured:
        if each.lower() == code.lower():
            return each
    return configured[0]


def _endpoint(location: str) -> str:
    if not location or location == "global":
        return "speech.googleapis.com"
    return f"{location}-speech.googleapis.com"
