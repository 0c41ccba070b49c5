"""FakeAWSTranscribeServer: Amazon Transcribe's streaming WebSocket on 127.0.0.1.

The documented contract (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-websocket.html,
https://docs.aws.amazon.com/transcribe/latest/dg/event-stream.html and the
``StartStreamTranscription`` API reference):

- **Handshake.** ``GET /stream-transcription-websocket`` with a SigV4 query signature: the
  ``X-Amz-Algorithm`` (``AWS4-HMAC-SHA256``), ``X-Amz-Credential``
  (``<key id>/<date>/<region>/transcribe/aws4_request``), ``X-Amz-Date``, ``X-Amz-Expires`` (at
  most 300), ``X-Amz-SignedHeaders`` (``host`` at least), ``X-Amz-Security-Token`` for
  temporary keys, and ``X-Amz-Signature``. The fake recomputes the signature with botocore from
  the secret it knows (``secret_key``; None: any well-formed signature passes) over the query
  and ``Host`` as received. A missing, wrong, expired or foreign-scoped signature, or an
  unknown key id, is refused with HTTP 403 and AWS's JSON error shape.
- **Settings** in the query: ``language-code`` and ``media-encoding`` and ``sample-rate``
  (8000-48000) required; ``enable-partial-results-stabilization`` and
  ``partial-results-stability`` (``high``/``medium``/``low``), ``session-id``,
  ``vocabulary-name``, ``show-speaker-label``, ``number-of-channels``,
  ``enable-channel-identification`` taken. A bad or unknown value is answered, once the socket
  is open, with a ``BadRequestException`` message, then the socket closes. The fake decodes
  ``pcm`` only (``flac`` and ``ogg-opus`` get a ``BadRequestException`` saying so).
- **Audio in**: binary event-stream messages (decoded with botocore's decoder, so both CRCs are
  checked) with ``:message-type`` ``event``, ``:event-type`` ``AudioEvent`` and
  ``:content-type`` ``application/octet-stream``; anything else (a text frame, other headers, a
  bad CRC) is a ``BadRequestException``. An empty ``AudioEvent`` ends the stream: the open
  utterance's result goes out complete, then the socket closes (1000).
- **Results out**: event-stream messages (``:event-type`` ``TranscriptEvent``,
  ``:content-type`` ``application/json``) of ``{"Transcript": {"Results": [...]}}``, each
  result with ``ResultId``, ``StartTime``, ``EndTime``, ``IsPartial`` and ``Alternatives``
  (``Transcript``, ``Items``: the words, with ``Stable`` under partial results stabilization
  and ``Confidence`` once complete). Errors are ``:message-type`` ``exception`` messages naming
  the error in ``:exception-type``, with ``{"Message": ...}``.

The fake "hears" by energy, counting time in received audio, so results do not depend on how
fast the machine is. Loud audio opens an utterance whose words are the next entry of
``transcripts`` ("hello" when empty); every ``partial_secs`` of it a partial result carries the
words heard so far (one per ``secs_per_word``); ``endpoint_secs`` of quiet after it (Transcribe's
own endpointing) sends the complete result.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import re
import time
import uuid
from calendar import timegm
from typing import Any, Unpack
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.services.aws.eventstream import decode_messages, encode_message, event_buffer
from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal
from callpipe.testing.fakes._stt import Hearing, PartialsFake, PartialsOptions
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID

PATH = "/stream-transcription-websocket"
SERVICE = "transcribe"
MAX_EXPIRES = 300
MEDIA_ENCODINGS = ("pcm", "ogg-opus", "flac")
STABILITIES = ("high", "medium", "low")
SETTINGS = frozenset(
    {
        "language-code",
        "media-encoding",
        "sample-rate",
        "enable-partial-results-stabilization",
        "partial-results-stability",
        "session-id",
        "vocabulary-name",
        "show-speaker-label",
        "number-of-channels",
        "enable-channel-identification",
    }
)
"""The query parameters the fake takes besides the signature's ``X-Amz-*``."""
AUDIO_HEADERS = {
    ":message-type": "event",
    ":event-type": "AudioEvent",
    ":content-type": "application/octet-stream",
}
_CREDENTIAL = re.compile(
    r"^(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request$"
)
_LANGUAGE = re.compile(r"^[a-z]{2,3}-[A-Z]{2}$")


def aws_refusal(code: str, message: str) -> Refusal:
    """A 403 handshake refusal in AWS's JSON error shape."""
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/json"}
    return Refusal(403, json.dumps({"message": message}), headers)


def transcript_frame(results: list[dict[str, Any]]) -> bytes:
    """A ``TranscriptEvent`` message."""
    headers = {
        ":event-type": "TranscriptEvent",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, json.dumps({"Transcript": {"Results": results}}).encode())


def exception_frame(name: str, message: str) -> bytes:
    """An exception message, e.g. ``BadRequestException``."""
    headers = {
        ":exception-type": name,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, json.dumps({"Message": message}).encode())


class FakeAWSTranscribeServer(PartialsFake):
    """Transcribe's streaming WebSocket on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        *,
        secret_key: str | None = "test-secret",
        access_key_id: str = FAKE_ACCESS_KEY_ID,
        endpoint_secs: float = 0.4,
        **options: Unpack[PartialsOptions],
    ) -> None:
        options["api_key"] = secret_key
        super().__init__(**options)
        self.access_key_id = access_key_id
        self.endpoint_secs = endpoint_secs
        self.queries: list[dict[str, str]] = []
        """Each accepted handshake's query (the signature's parameters included)."""
        self.frames: list[bytes] = []
        """Every event-stream message sent, as sent."""
        self.events: list[dict[str, Any]] = []
        """The headers of every event-stream message received."""
        self.received: list[bytes] = []
        """Every binary message received, as sent."""
        self.ended = 0
        """Streams ended by the client's empty ``AudioEvent``."""
        self.error_next: tuple[str, str] | None = None
        """Answer the next audio event with this exception (name, message), then close."""
        self.signed_at: list[str] = []
        """The ``X-Amz-Date`` of each handshake whose signature was checked."""
        self._server = LocalWebsocketServer(
            self._handle, api_key=None, auth=[], path=PATH, validate=self._check_signature
        )

    def _check_signature(self, request: Any) -> Refusal | None:
        """None when the query carries a valid signature by the known key, else the 403."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        raw_query = urlsplit(request.path).query
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        needed = ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Signature", "X-Amz-SignedHeaders")
        if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not all(
            query.get(name) for name in needed
        ):
            return aws_refusal(
                "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        found = _CREDENTIAL.match(query["X-Amz-Credential"])
        amz_date = query["X-Amz-Date"]
        if found is None or found["service"] != SERVICE or found["date"] != amz_date[:8]:
            return aws_refusal(
                "InvalidSignatureException", f"Credential should be scoped to {SERVICE} and today."
            )
        try:
            expires = int(query.get("X-Amz-Expires", ""))
            signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            return aws_refusal(
                "InvalidSignatureException", "X-Amz-Date or X-Amz-Expires is invalid."
            )
        if not 0 < expires <= MAX_EXPIRES:
            return aws_refusal(
                "InvalidSignatureException", f"X-Amz-Expires must be between 1 and {MAX_EXPIRES}."
            )
        if time.time() > signed_at + expires:
            return aws_refusal("InvalidSignatureException", "Signature expired.")
        if "host" not in query["X-Amz-SignedHeaders"].split(";"):
            return aws_refusal("InvalidSignatureException", "host must be signed.")
        self.signed_at.append(amz_date)
        if self.api_key is None:
            return None
        if found["key"] != self.access_key_id:
            return aws_refusal(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        # The canonical request over the query as sent (still encoded), less the signature.
        unsigned = "&".join(p for p in raw_query.split("&") if not p.startswith("X-Amz-Signature="))
        host = request.headers.get("Host", "")
        aws_request = AWSRequest(
            method="GET",
            url=f"http://{host}{urlsplit(request.path).path}?{unsigned}",
            headers={"host": host},
        )
        aws_request.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(self.access_key_id, self.api_key), SERVICE, found["region"])
        canonical = auth.canonical_request(aws_request)
        expected = auth.signature(auth.string_to_sign(aws_request, canonical), aws_request)
        if not hmac.compare_digest(expected, query["X-Amz-Signature"]):
            return aws_refusal(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self._connected(ws)
        assert ws.request is not None
        query = dict(parse_qsl(urlsplit(ws.request.path).query, keep_blank_values=True))
        self.queries.append(query)
        session = _Session(self, ws, query)
        with contextlib.suppress(ConnectionClosed):
            problem = _invalid(query)
            if problem is not None:
                await session.fail("BadRequestException", problem)
                return
            await self._feed(ws, session)


class _Session(Hearing):
    """One stream: its settings, decoder, audio clock and utterance."""

    def __init__(
        self, fake: FakeAWSTranscribeServer, ws: ServerConnection, query: dict[str, str]
    ) -> None:
        rate = query.get("sample-rate", "16000")
        super().__init__(
            rate=int(rate) if rate.isdigit() else 16000, threshold=fake.energy_threshold
        )
        self.fake = fake
        self.ws = ws
        self.stable = query.get("enable-partial-results-stabilization") == "true"
        self.decoder = event_buffer()
        self.words: list[str] = []
        self.result_id = ""

    async def _send_frame(self, frame: bytes, record: dict[str, Any]) -> None:
        self.fake.frames.append(frame)
        self.fake.sent.append(record)
        await self.ws.send(frame)

    async def fail(self, name: str, message: str) -> None:
        await self._send_frame(
            exception_frame(name, message), {"exception": name, "Message": message}
        )
        await self.ws.close()

    async def control(self, message: str) -> bool:
        await self.fail(
            "BadRequestException", "Audio must be sent as binary event-stream messages."
        )
        return False

    async def audio(self, data: bytes) -> bool:
        from botocore.eventstream import ParserError

        self.fake.received.append(data)
        try:
            messages = list(decode_messages(self.decoder, data))
        except ParserError as exc:
            await self.fail("BadRequestException", f"Could not decode the event stream: {exc}")
            return False
        for headers, payload in messages:
            self.fake.events.append(headers)
            if {k: headers.get(k) for k in AUDIO_HEADERS} != AUDIO_HEADERS:
                await self.fail("BadRequestException", f"Expected an AudioEvent, got {headers}")
                return False
            if not payload:
                self.fake.ended += 1
                await self._complete()
                await self.ws.close()
                return False
            if self.fake.error_next is not None:
                name, text = self.fake.error_next
                self.fake.error_next = None
                await self.fail(name, text)
                return False
            self.fake.audio += payload
            await self._listen(payload)
        return True

    async def _listen(self, pcm: bytes) -> None:
        if not await self.hear(pcm):
            if self.quiet_for(self.fake.endpoint_secs):
                await self._complete()
            return
        if self.interim_due(self.fake.partial_secs):
            count = max(1, min(len(self.words), int(self.speech / self.fake.secs_per_word)))
            await self._result(self.words[:count], partial=True)

    async def speech_started(self) -> None:
        text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
        self.words = text.split()
        self.result_id = str(uuid.uuid4())

    async def _complete(self) -> None:
        """The open utterance's complete result (nothing when none is open)."""
        if self.start is not None:
            await self._result(self.words, partial=False)
            self.start = None
            self.words = []

    async def _result(self, words: list[str], *, partial: bool) -> None:
        start = self.start or 0.0
        step = max(self.fake.secs_per_word, 0.01)
        items = []
        for i, word in enumerate(words):
            item: dict[str, Any] = {
                "StartTime": round(start + i * step, 3),
                "EndTime": round(start + (i + 1) * step, 3),
                "Type": "pronunciation",
                "Content": word,
                "VocabularyFilterMatch": False,
            }
            if self.stable:
                item["Stable"] = not partial or i < len(words) - 1
            if not partial:
                item["Confidence"] = 0.97
            items.append(item)
        result = {
            "ResultId": self.result_id,
            "StartTime": round(start, 3),
            "EndTime": round(self.t, 3),
            "IsPartial": partial,
            "Alternatives": [{"Transcript": " ".join(words), "Items": items}],
        }
        await self._send_frame(transcript_frame([result]), {"Transcript": {"Results": [result]}})


def _invalid(query: dict[str, str]) -> str | None:
    """What Transcribe would refuse in the query's settings (None: nothing)."""
    unknown = sorted(k for k in query if k not in SETTINGS and not k.startswith("X-Amz-"))
    if unknown:
        return f"Unknown parameters: {unknown}"
    language = query.get("language-code", "")
    if not _LANGUAGE.match(language):
        return (
            f"1 validation error detected: Value '{language}' at 'languageCode' failed to "
            "satisfy constraint: Member must satisfy enum value set"
        )
    encoding = query.get("media-encoding", "")
    if encoding not in MEDIA_ENCODINGS:
        return f"1 validation error detected: Value '{encoding}' at 'mediaEncoding' is not valid"
    if encoding != "pcm":
        return "the fake decodes media-encoding pcm only"
    rate = query.get("sample-rate", "")
    if not rate.isdigit() or not 8000 <= int(rate) <= 48000:
        return f"1 validation error detected: Value '{rate}' at 'mediaSampleRateHertz' is not valid"
    stabilization = query.get("enable-partial-results-stabilization", "false")
    if stabilization not in ("true", "false"):
        return "enable-partial-results-stabilization must be true or false"
    stability = query.get("partial-results-stability")
    if stability is not None and (stability not in STABILITIES or stabilization != "true"):
        return "partial-results-stability takes high, medium or low, with stabilization enabled"
    return None
