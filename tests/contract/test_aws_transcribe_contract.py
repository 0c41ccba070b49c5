"""AWSTranscribeSTTService and FakeAWSTranscribeServer against AWS's own code.

The official ``amazon-transcribe`` SDK streams over HTTP/2, not the WebSocket, so it cannot
connect to the fake; and botocore ships no ``transcribe-streaming`` model (only the batch
``transcribe`` API). What AWS's code can check is checked:

- the URL our service presigns verifies by the canonical request AWS documents for the
  WebSocket (computed here step by step with ``hmac``), and is the very URL botocore's
  ``SigV4QueryAuth`` builds for the same request and time;
- its settings are the ones the SDK sends (as ``x-amzn-transcribe-*`` headers) for the same
  ``StartStreamTranscriptionRequest``;
- every message our service sends is byte for byte the ``AudioEvent`` the SDK's serializers
  write, and decodes with botocore's ``EventStreamBuffer`` (CRCs checked);
- every message the fake sends decodes with botocore's and the SDK's buffers, and the SDK's own
  event parser reads it: ``TranscriptEvent`` objects, or the SDK's exception classes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import parse_qsl, urlsplit

import pytest
from amazon_transcribe.deserialize import TranscribeStreamingEventParser
from amazon_transcribe.eventstream import EventStreamBuffer as SDKBuffer
from amazon_transcribe.eventstream import EventStreamMessageSerializer
from amazon_transcribe.exceptions import BadRequestException
from amazon_transcribe.model import AudioEvent, StartStreamTranscriptionRequest, TranscriptEvent
from amazon_transcribe.serialize import AudioEventSerializer, TranscribeStreamingSerializer
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from callpipe.frames.frames import ErrorFrame, Frame, InputAudioRawFrame, TranscriptionFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.aws.eventstream import END_OF_STREAM, audio_event
from callpipe.services.aws.stt import AWSTranscribeSTTService
from callpipe.testing import run_test
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID
from callpipe.testing.fakes.aws_transcribe import FakeAWSTranscribeServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

SECRET = "contract-secret"
REGION = "eu-west-1"
RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAWSTranscribeServer]:
    async with FakeAWSTranscribeServer(secret_key=SECRET) as server:
        yield server


def transcribe(fake: FakeAWSTranscribeServer) -> AWSTranscribeSTTService:
    return AWSTranscribeSTTService(
        api_key=SECRET,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_session_token="session/token+1=",
        region=REGION,
        url=fake.url,
    )


def caller_audio(pcm: bytes) -> list[Frame]:
    step = RATE // 50 * 2
    return [InputAudioRawFrame(pcm[i : i + step], RATE) for i in range(0, len(pcm), step)]


async def one_call(fake: FakeAWSTranscribeServer) -> tuple[list[Frame], list[Frame]]:
    """1.2 s of speech, then 0.5 s of quiet (Transcribe completes its result), then the end."""
    fake.transcripts.append("book a table for two")
    frames = [
        SleepFrame(5.0, until=lambda: fake.connections == 1),
        *caller_audio(tone_pcm(1.2, RATE)),
        *caller_audio(bytes(int(0.5 * RATE) * 2)),
        SleepFrame(0.1),
    ]
    down, up = await run_test(transcribe(fake), frames, params=PARAMS)
    return list(down), list(up)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


async def test_the_presigned_url_verifies_as_aws_documents_it(
    fake: FakeAWSTranscribeServer,
) -> None:
    await one_call(fake)
    [path] = fake.paths
    host = fake.headers[0]["host"]
    split = urlsplit(path)
    raw = [pair for pair in split.query.split("&") if not pair.startswith("X-Amz-Signature=")]
    query = dict(parse_qsl(split.query))
    # Task 1: the canonical request: GET, the path, the query sorted by name (values encoded),
    # the host header, the signed headers, and the hash of the empty payload.
    canonical = "\n".join(
        [
            "GET",
            split.path,
            "&".join(sorted(raw)),
            f"host:{host}\n",
            "host",
            hashlib.sha256(b"").hexdigest(),
        ]
    )
    # Task 2: the string to sign; task 3: the signature with the key derived from the secret.
    amz_date = query["X-Amz-Date"]
    scope = f"{amz_date[:8]}/{REGION}/transcribe/aws4_request"
    assert query["X-Amz-Credential"] == f"{FAKE_ACCESS_KEY_ID}/{scope}"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{SECRET}".encode(), amz_date[:8])
    for part in (REGION, "transcribe", "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert query["X-Amz-Signature"] == expected
    assert query["X-Amz-Security-Token"] == "session/token+1="
    assert query["X-Amz-Expires"] == "300" and query["X-Amz-SignedHeaders"] == "host"

    # The same URL as botocore's query signer builds for the same request at the same time.
    settings = "&".join(p for p in raw if not p.startswith("X-Amz-"))
    request = AWSRequest(method="GET", url=f"ws://{host}{split.path}?{settings}")
    signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    credentials = Credentials(FAKE_ACCESS_KEY_ID, SECRET, "session/token+1=")
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        SigV4QueryAuth(credentials, "transcribe", REGION, expires=300).add_auth(request)
    assert request.url == f"ws://{host}{path}"


async def test_the_settings_are_the_sdks_request(fake: FakeAWSTranscribeServer) -> None:
    await one_call(fake)
    ours = {k: v for k, v in fake.queries[0].items() if not k.startswith("X-Amz-")}
    shape = StartStreamTranscriptionRequest(
        language_code="en-US",
        media_sample_rate_hz=RATE,
        media_encoding="pcm",
        enable_partial_results_stabilization=True,
        partial_results_stability="high",
    )
    sdk = TranscribeStreamingSerializer().serialize_start_stream_transcription_request(
        f"https://transcribestreaming.{REGION}.amazonaws.com", shape
    )
    prefix = "x-amzn-transcribe-"
    theirs = {
        name.removeprefix(prefix): value.lower() if value in ("True", "False") else value
        for name, value in sdk.headers.items()
        if name.startswith(prefix)
    }
    assert ours == theirs


def sdk_audio_event(pcm: bytes) -> bytes:
    headers, payload = AudioEventSerializer().serialize(AudioEvent(pcm))
    return EventStreamMessageSerializer().serialize(headers, payload)


async def test_our_audio_events_are_the_sdks(fake: FakeAWSTranscribeServer) -> None:
    pcm = bytes(range(256)) * 8
    assert audio_event(pcm) == sdk_audio_event(pcm)
    assert END_OF_STREAM == sdk_audio_event(b"")
    await one_call(fake)
    assert fake.received and fake.received[-1] == END_OF_STREAM
    buffer = EventStreamBuffer()
    for raw in fake.received:
        buffer.add_data(raw)
        [message] = list(buffer)  # one message per WebSocket message, CRCs checked
        assert raw == sdk_audio_event(bytes(message.payload))


async def test_the_fakes_messages_parse_with_the_sdk(fake: FakeAWSTranscribeServer) -> None:
    down, up = await one_call(fake)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    parser = TranscribeStreamingEventParser()
    events: list[TranscriptEvent] = []
    for raw in fake.frames:
        ours, theirs = EventStreamBuffer(), SDKBuffer()
        ours.add_data(raw)
        theirs.add_data(raw)
        assert len(list(ours)) == 1
        [message] = list(theirs)
        event = parser.parse(message)
        assert isinstance(event, TranscriptEvent)
        events.append(event)
    results = [r for e in events for r in e.transcript.results]
    assert [r.is_partial for r in results][-1] is False and results[0].is_partial is True
    final = results[-1]
    assert final.alternatives[0].transcript == "book a table for two"
    assert [i.content for i in final.alternatives[0].items] == "book a table for two".split()
    assert all(i.stable for i in final.alternatives[0].items)
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["book a table for two"]


async def test_the_fakes_exceptions_are_the_sdks(fake: FakeAWSTranscribeServer) -> None:
    fake.error_next = ("BadRequestException", "Your request timed out.")
    await one_call(fake)
    [raw] = [f for f in fake.frames if b"exception" in f]
    [message] = list(_sdk_messages(raw))
    with pytest.raises(BadRequestException, match="Your request timed out."):
        TranscribeStreamingEventParser().parse(message)


def _sdk_messages(raw: bytes) -> list[object]:
    buffer = SDKBuffer()
    buffer.add_data(raw)
    return list(buffer)
