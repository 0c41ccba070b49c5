"""AWSTranscribeSTTService: Amazon Transcribe's streaming speech-to-text over its WebSocket.

The protocol (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-websocket.html and
https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html):

- **The socket.** ``GET wss://transcribestreaming.{region}.amazonaws.com:8443/stream-transcription-websocket``
  with the session's settings in the query (``language-code``, ``media-encoding=pcm``,
  ``sample-rate``, ``enable-partial-results-stabilization`` and ``partial-results-stability``)
  and a SigV4 query signature (service ``transcribe``, ``X-Amz-Expires=300``, the most AWS
  allows) made by botocore (:meth:`~callpipe.services.aws.utils.SigV4Signer.presign`). Every
  connection, a reconnect included, is signed afresh: a URL is good for five minutes only.
  Keys: see :mod:`callpipe.services.aws.utils`.
- **Audio out.** Binary event-stream messages (``:message-type`` ``event``, ``:event-type``
  ``AudioEvent``, ``:content-type`` ``application/octet-stream``) of 16-bit little-endian PCM
  at the pipeline's input rate (Transcribe takes 8000 Hz, the phone line's rate, as it is; it
  has no µ-law), 100 ms a message (AWS asks for 50-200 ms chunks). An empty ``AudioEvent`` ends
  the stream: Transcribe sends its last results and closes.
- **Results in.** Event-stream messages, decoded with botocore's decoder (both CRCs checked):
  ``TranscriptEvent`` JSON, ``Transcript.Results[]``, each with ``ResultId``, ``IsPartial``,
  ``Alternatives[].Transcript`` and (with language identification) ``LanguageCode``. A partial
  result becomes an ``InterimTranscriptionFrame``, a complete one a ``TranscriptionFrame``
  (``result`` = the result object); the language is the result's ``LanguageCode``, else the
  service's.
- **Errors.** A message whose ``:message-type`` is ``exception`` names the error in
  ``:exception-type`` with ``{"Message": ...}``; Transcribe then closes. ``BadRequestException``
  and ``ConflictException`` refuse the request: reported, and the socket is not reopened (it
  would be refused again). ``LimitExceededException``, ``InternalFailureException`` and
  ``ServiceUnavailableException`` are reported and the socket is reopened, with the reconnect
  policy of :class:`~callpipe.services.websocket_service.ProviderWebsocket`. A refused signature
  (HTTP 403 at the handshake) is fatal: the keys are wrong.

Turns: Transcribe has no message to finalize an utterance; it ends results on its own
endpointing. At the VAD stop the queued audio goes out at once (not at the next 100 ms batch),
so the end of the caller's speech reaches it without delay. While no audio flows (the STT is
muted) 100 ms of silence goes out every ``keepalive_secs``: Transcribe ends a stream that hears
nothing for 15 s.

Settings at runtime (``STTUpdateSettingsFrame``: ``language``, ``partial_results_stability``)
live in the URL, so a change opens a new socket, make-before-break (see
:class:`~callpipe.services.stt_service.ProviderSocketSTTService`): the old one gets the end of
the stream and returns its last results. A new socket Transcribe refuses leaves the old one and
the old settings, with a non-fatal error.

Differences from Pipecat 1.14: the end of the stream is the empty ``AudioEvent`` AWS documents
(Pipecat sends a JSON text message); a rate other than 8000/16000 Hz is sent as it is (Transcribe
takes 8000-48000 Hz) rather than announced as 16000 Hz; a settings change keeps the old socket
until the new one is open; ``url`` (and ``$CALLPIPE_AWS_TRANSCRIBE_URL``, which
``callpipe fakes`` prints) replaces Transcribe's address; ``aws_secret_access_key`` is taken
as another name for ``api_key``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection

from callpipe.errors import ConfigurationError
from callpipe.services._env import AWS_TRANSCRIBE_URL_ENV
from callpipe.services.aws.eventstream import END_OF_STREAM, audio_event, decode_messages
from callpipe.services.aws.eventstream import event_buffer as _event_buffer
from callpipe.services.aws.utils import SigV4Signer, resolve_credentials
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    socket_address,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SERVICE = "transcribe"
PATH = "/stream-transcription-websocket"
AWS_TRANSCRIBE_TTFS_P99 = 1.90
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Transcribe (seconds)."""
URL_EXPIRES_SECS = 300
"""How long a presigned URL is good for (the most Transcribe accepts)."""
STABILITIES = ("high", "medium", "low")
MIN_RATE, MAX_RATE = 8000, 48000
"""The PCM sample rates Transcribe streams at."""
_REFUSALS = frozenset({"BadRequestException", "ConflictException"})
"""Exceptions that refuse the request itself: a new socket would be refused again."""
_AUTH_HINT = (
    "Check aws_access_key_id / api_key (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), the session "
    "token, the region and the transcribe:StartStreamTranscriptionWebSocket permission."
)

_CODES = (
    "af-ZA sq-AL am-ET ar-SA ar-AE hy-AM eu-ES be-BY bn-IN bs-BA bg-BG my-MM ca-ES ckb-IQ ckb-IR "
    "zh-CN zh-TW zh-HK hr-HR cs-CZ da-DK nl-NL en-US en-AB en-AU en-GB en-IN en-IE en-NZ en-WL "
    "en-ZA et-ET fa-IR fa-AF fi-FI fr-FR fr-CA gl-ES ka-GE de-DE de-CH el-GR gu-IN ht-HT he-IL "
    "hi-IN hu-HU is-IS id-ID it-IT ja-JP jv-ID kab-DZ kn-IN kk-KZ km-KH ko-KR lv-LV lt-LT lg-IN "
    "mk-MK ms-MY ml-IN mr-IN ne-NP no-NO or-IN ps-AF pl-PL pt-PT pt-BR pa-IN ro-RO ru-RU sr-RS "
    "si-LK sk-SK sl-SI so-SO es-ES es-MX es-US su-ID sw-KE sw-BI sw-RW sw-TZ sw-UG sv-SE tl-PH "
    "ta-IN te-IN th-TH tr-TR uk-UA uz-UZ vi-VN cy-WL zu-ZA"
).split()
"""Transcribe's streaming language codes; the first of each language is its default."""
_LANGUAGE_MAP: dict[str, str] = {}
for _code in _CODES:
    _LANGUAGE_MAP.setdefault(_code.split("-", 1)[0], _code)
    _LANGUAGE_MAP[_code] = _code
_LANGUAGE_MAP |= {
    "et-EE": "et-ET",
    "cy-GB": "cy-WL",
    "nb": "no-NO",
    "nb-NO": "no-NO",
    "fil": "tl-PH",
    "fil-PH": "tl-PH",
    "yue": "zh-HK",
    "lg-UG": "lg-IN",
}


def language_to_aws_transcribe_language(language: str) -> str:
    """Transcribe's code for a language tag: ``Language.EN`` -> ``"en-US"``, ``Language.EN_GB``
    -> ``"en-GB"``, ``Language.ET_EE`` -> ``"et-ET"`` (AWS's own spelling)."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=False)


@dataclass
class AWSTranscribeSTTSettings(STTSettings):
    """``AWSTranscribeSTTService.Settings``.

    Parameters:
        partial_results_stability: How settled partial results are: ``"high"`` (the default)
            changes them least, ``"low"`` is the most accurate; None leaves partial results
            stabilization off. Part of the socket's URL, so a change opens a new socket.
    """

    partial_results_stability: Literal["high", "medium", "low"] | None | NotGiven = field(
        default_factory=unset
    )


class _Stream(SessionSocket):
    """One Transcribe stream: its URL is presigned at every (re)connect, and its event-stream
    decoder."""

    def __init__(self, signer: SigV4Signer, **kwargs: Any) -> None:
        super().__init__(b"", **kwargs)  # no first message: the settings are in the URL
        self.signer = signer
        self.decoder = _event_buffer()

    async def _open(self) -> ClientConnection:
        unsigned = self.url
        self.url = await self.signer.presign(unsigned, expires=URL_EXPIRES_SECS)
        try:
            return await super()._open()
        finally:
            self.url = unsigned  # the settings' URL, compared after a settings change


class AWSTranscribeSTTService(ProviderSocketSTTService):
    """Amazon Transcribe streaming (see the module docstring).

    1.14 style: ``AWSTranscribeSTTService(region="eu-west-1",
    settings=AWSTranscribeSTTService.Settings(language=Language.EN_GB))``. ``api_key`` is the
    secret access key and ``aws_access_key_id`` its id (else ``AWS_SECRET_ACCESS_KEY`` /
    ``AWS_ACCESS_KEY_ID``, else botocore's default chain); ``aws_session_token`` for temporary
    keys; ``region`` (else ``AWS_REGION``, else ``us-east-1``). ``language`` is the older form
    of ``settings.language``.
    """

    Settings = AWSTranscribeSTTSettings
    _settings: AWSTranscribeSTTSettings
    _ws: _Stream | None

    end_timeout_secs = 3.0
    """At the end of the call, how long Transcribe may take to send its last results and
    close after the end of the stream."""

    open_check_secs = 0.5
    """After a settings change, how long a new socket is watched for a refusal before it takes
    over the audio (the old one transcribes meanwhile)."""

    keepalive_secs = 5.0
    """Idle time after which 100 ms of silence goes out (Transcribe allows 15 s)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        aws_session_token: str | None = None,
        region: str | None = None,
        sample_rate: int | None = None,
        language: str | None = None,
        url: str | None = None,
        settings: AWSTranscribeSTTSettings | None = None,
        ttfs_p99_latency: float | None = AWS_TRANSCRIBE_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = AWSTranscribeSTTSettings(
            model=None, language="en", partial_results_stability="high"
        )
        if language is not None:
            store.language = language
        if settings is not None:
            store.apply_update(settings)
        stability = store.partial_results_stability
        if stability is not None and stability not in STABILITIES:
            raise ConfigurationError(
                f"AWSTranscribeSTTService: partial_results_stability={stability!r}; "
                f"one of {STABILITIES} (or None)"
            )
        super().__init__(
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._credentials = resolve_credentials(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=api_key or aws_secret_access_key,
            aws_session_token=aws_session_token,
            region=region,
        )
        self._signer = SigV4Signer(SERVICE, self._credentials)
        default = f"wss://transcribestreaming.{self._credentials.region}.amazonaws.com:8443{PATH}"
        self._url = socket_address(url, AWS_TRANSCRIBE_URL_ENV, default, PATH)
        self._last_sent = 0.0

    # ------------------------------------------------------------------ description

    @property
    def region(self) -> str:
        return self._credentials.region

    def language_to_service_language(self, language: str) -> str | None:
        """Transcribe's code for ``language`` (see :func:`language_to_aws_transcribe_language`)."""
        return language_to_aws_transcribe_language(language)

    def language_code(self) -> str:
        """Transcribe's ``language-code`` for the current settings."""
        language = self._settings.language
        if not isinstance(language, str) or not language:
            return "en-US"
        return language_to_aws_transcribe_language(language)

    def socket_url(self) -> str:
        """The socket's URL for the current settings, before signing."""
        query: dict[str, str | int] = {
            "language-code": self.language_code(),
            "media-encoding": "pcm",
            "sample-rate": self.sample_rate,
        }
        stability = self._settings.partial_results_stability
        if isinstance(stability, str):
            query["enable-partial-results-stabilization"] = "true"
            query["partial-results-stability"] = stability
        return f"{self._url}?{urlencode(query)}"

    # ------------------------------------------------------------------ the socket

    def _build_socket(self) -> _Stream:
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            raise ConfigurationError(
                f"{self}: Transcribe streams PCM at {MIN_RATE}-{MAX_RATE} Hz, not "
                f"{self.sample_rate} Hz (set the pipeline's audio_in_sample_rate or sample_rate)"
            )
        return _Stream(
            self._signer,
            replacing=self._ws is not None,
            owner=str(self),
            url=self.socket_url(),
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            keepalive_secs=self.keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint=_AUTH_HINT,
        )

    async def _session_accepted(self, ws: ProviderWebsocket) -> None:
        """Transcribe does not acknowledge a stream (it answers with an exception or results):
        a new socket is watched for ``open_check_secs``."""
        assert isinstance(ws, _Stream)
        await ws.wait_answer(self.open_check_secs, required=False)

    def _stream_end(self) -> StreamEnd:
        """The empty ``AudioEvent``: Transcribe sends its last results, then closes."""
        return END_OF_STREAM, _never

    def _keepalive(self) -> Message | None:
        if time.monotonic() - self._last_sent < self.keepalive_secs:
            return None
        self._last_sent = time.monotonic()
        return audio_event(bytes(int(self.sample_rate * 0.1) * 2))

    async def _on_reconnected(self, stream: _Stream) -> None:
        stream.error_reported = False
        stream.decoder = _event_buffer()

    async def _on_failed(self, stream: _Stream, message: str) -> None:
        await self._session_failed(stream, message)

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        return await ws.send(audio_event(audio), wait_secs=0)

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: the queued audio goes out now (Transcribe has no finalize request)."""
        await self.flush_audio()

    # ------------------------------------------------------------------ results in

    async def _on_message(self, stream: _Stream, raw: Message) -> None:
        if isinstance(raw, str):
            logger.debug("%s: unexpected text message %.80r", self, raw)
            return
        for headers, payload in decode_messages(stream.decoder, raw):
            kind = headers.get(":message-type")
            if kind == "event" and headers.get(":event-type") == "TranscriptEvent":
                await self._on_transcript(json.loads(payload or b"{}"))
            elif kind in ("exception", "error"):
                await self._on_exception(stream, headers, payload)

    async def _on_transcript(self, event: dict[str, Any]) -> None:
        transcript = event.get("Transcript")
        results = transcript.get("Results") if isinstance(transcript, dict) else None
        for result in results or ():
            if not isinstance(result, dict):
                continue
            alternatives = result.get("Alternatives") or []
            if not alternatives or not isinstance(alternatives[0], dict):
                continue
            text = str(alternatives[0].get("Transcript") or "")
            language = result.get("LanguageCode")
            await self.push_transcript(
                text,
                final=not result.get("IsPartial", False),
                language=language if isinstance(language, str) else None,
                result=result,
            )

    async def _on_exception(self, stream: _Stream, headers: dict[str, Any], payload: bytes) -> None:
        name = str(headers.get(":exception-type") or headers.get(":error-code") or "Exception")
        try:
            body = json.loads(payload or b"{}")
        except ValueError:
            body = {}
        text = ""
        if isinstance(body, dict):
            text = str(body.get("Message") or body.get("message") or "")
        text = text or str(headers.get(":error-message") or "")
        said = f"{name}: {text}" if text else name
        if stream.refused_while_replacing(said):
            return
        await self._session_error(stream, said, final=name in _REFUSALS)


def _never(raw: Message) -> bool:
    """Transcribe's answer to the end of the stream is its close (no last message)."""
    return False
