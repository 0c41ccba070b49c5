"""The official ``boto3`` Polly client against FakeAWSPollyServer, and AWSPollyTTSService's
request against boto3's.

boto3 (``endpoint_url`` at the fake) signs with SigV4 and calls ``synthesize_speech``: the fake
must verify that signature with botocore from its secret, stream the audio boto3 reads as
``AudioStream``, and shape its errors so that botocore parses them into the ``ClientError``
codes Polly's model names. Our service's request (path, ``Content-Type``, the headers it signs,
body) must be the one boto3 sends for the same options, and its body must validate against the
``SynthesizeSpeech`` input shape botocore ships.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

from callpipe.frames.frames import ErrorFrame, TTSSpeakFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.aws.tts import AWSPollyTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID, FakeAWSPollyServer

PHONE = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
SECRET = "contract-secret"
REGION = "eu-west-1"


@pytest.fixture
async def fake() -> AsyncIterator[FakeAWSPollyServer]:
    async with FakeAWSPollyServer(secret_key=SECRET, secs_per_word=0.1) as server:
        yield server


def polly(fake: FakeAWSPollyServer, *, secret: str = SECRET, key_id: str = FAKE_ACCESS_KEY_ID,
          token: str | None = None) -> Any:  # fmt: skip
    """boto3's Polly client at the fake, without retries (each answer is seen as it is)."""
    return boto3.client(
        "polly",
        region_name=REGION,
        endpoint_url=fake.base_url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


async def synthesize(client: Any, **params: Any) -> dict[str, Any]:
    def call() -> dict[str, Any]:
        answer: dict[str, Any] = client.synthesize_speech(**params)
        answer["audio"] = answer["AudioStream"].read()
        return answer

    return await asyncio.to_thread(call)


async def error_code(client: Any, **params: Any) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        await synthesize(client, **params)
    error = caught.value.response["Error"]
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return error["Code"], status, error["Message"]


HELLO: dict[str, Any] = {"Text": "Hello from boto.", "VoiceId": "Joanna", "OutputFormat": "pcm"}


async def test_boto3_reads_the_audio_at_both_pcm_rates(fake: FakeAWSPollyServer) -> None:
    client = polly(fake)
    phone = await synthesize(client, **HELLO, SampleRate="8000")
    wide = await synthesize(
        client,
        Text="<speak>One <break time='1s'/> two</speak>",
        TextType="ssml",
        VoiceId="Matthew",
        OutputFormat="pcm",
        Engine="neural",
        LexiconNames=["names"],
    )
    assert phone["ContentType"] == "audio/pcm" and phone["RequestCharacters"] == 16
    assert len(phone["audio"]) == 3 * 800 * 2  # three words of 0.1 s, 16-bit at 8 kHz
    assert len(wide["audio"]) == 2 * 1600 * 2  # 16 kHz by default; SSML tags are not words
    assert fake.signed_headers[0] == ["content-type", "host", "x-amz-date"]


async def test_boto3_parses_the_fakes_errors_into_polly_codes(fake: FakeAWSPollyServer) -> None:
    client = polly(fake)
    code, status, message = await error_code(polly(fake, secret="wrong"), **HELLO)
    assert (code, status) == ("InvalidSignatureException", 403) and "signature" in message
    code, status, _ = await error_code(polly(fake, key_id="AKIAUNKNOWN"), **HELLO)
    assert (code, status) == ("UnrecognizedClientException", 403)
    long = " ".join(["word"] * 700)
    code, status, _ = await error_code(client, **(HELLO | {"Text": long}))
    assert (code, status) == ("TextLengthExceededException", 400)
    ssml = {"Text": "<speak>unclosed", "TextType": "ssml"}
    code, status, _ = await error_code(client, **(HELLO | ssml))
    assert (code, status) == ("InvalidSsmlException", 400)
    code, status, _ = await error_code(client, **HELLO, SampleRate="22050")
    assert (code, status) == ("InvalidSampleRateException", 400)
    fake.throttle = 1
    code, status, _ = await error_code(client, **HELLO)
    assert (code, status) == ("ThrottlingException", 400)  # as Polly's quotas page says
    fake.statuses.extend([429, 500])
    code, status, _ = await error_code(client, **HELLO)
    assert (code, status) == ("ThrottlingException", 429)
    with pytest.raises(client.exceptions.ServiceFailureException):
        await synthesize(client, **HELLO)


async def test_our_request_is_the_one_boto3_sends(fake: FakeAWSPollyServer) -> None:
    settings = AWSPollyTTSService.Settings(
        voice="Amy", language="en-GB", engine="standard", pitch="low", lexicon_names=["names"]
    )
    tts = AWSPollyTTSService(
        api_key=SECRET,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_session_token="session-token",
        region=REGION,
        base_url=fake.base_url,
        settings=settings,
    )
    _, up = await run_test(tts, [TTSSpeakFrame("Fish & chips.")], params=PHONE)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    ours = fake.requests[0]
    # The body is a valid SynthesizeSpeechInput (botocore's own validator says so)...
    shape = boto3.session.Session().client("polly", region_name=REGION).meta.service_model
    validate_parameters(ours, shape.operation_model("SynthesizeSpeech").input_shape)
    # ...and boto3, given the same options, sends the same request.
    await synthesize(polly(fake, token="session-token"), **ours)
    assert fake.requests[1] == ours
    our_headers, boto_headers = fake.headers
    for name in ("content-type", "host", "x-amz-security-token"):
        assert our_headers[name] == boto_headers[name]
    assert fake.signed_headers[0] == fake.signed_headers[1]
    assert "x-amz-security-token" in fake.signed_headers[0]
    assert json.loads(json.dumps(ours))["SampleRate"] == "8000"
