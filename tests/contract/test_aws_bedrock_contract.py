"""The official ``boto3`` ``bedrock-runtime`` client against FakeAWSBedrockServer, and
AWSBedrockLLMService's request against boto3's.

boto3 (``endpoint_url`` at the fake, no retries) signs with SigV4 and calls
``converse_stream``: the fake must verify the signature, and botocore must decode its event
stream into the events of the ``ConverseStreamOutput`` shape (text and tool use) and its errors
into the codes Bedrock's model names. Our service's request (path, body) must be the one boto3
sends for the same messages, tools and inference settings, and must validate against the
``ConverseStream`` input shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError
from botocore.validate import validate_parameters

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import LLMContextFrame
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.aws.llm import AWSBedrockLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID
from callpipe.testing.fakes.bedrock import FakeAWSBedrockServer

SECRET = "contract-secret"
REGION = "eu-west-1"
MODEL = "us.amazon.nova-lite-v1:0"
WEATHER = FunctionSchema(
    name="get_weather",
    description="Weather in a city",
    properties={"city": {"type": "string"}},
    required=["city"],
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAWSBedrockServer]:
    async with FakeAWSBedrockServer(secret_key=SECRET) as server:
        yield server


def bedrock(fake: FakeAWSBedrockServer, *, secret: str = SECRET) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name=REGION,
        endpoint_url=fake.base_url,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


async def converse(client: Any, **params: Any) -> list[dict[str, Any]]:
    def call() -> list[dict[str, Any]]:
        answer = client.converse_stream(**params)
        return list(answer["stream"])

    return await asyncio.to_thread(call)


HELLO: dict[str, Any] = {
    "modelId": MODEL,
    "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
}


async def test_boto3_reads_text_and_tool_use_events(fake: FakeAWSBedrockServer) -> None:
    fake.add_reply("Hello you.", tool_calls=[{"id": "t1", "name": "w", "arguments": {"a": 1}}])
    events = await converse(bedrock(fake), **HELLO)
    kinds = [next(iter(e)) for e in events]
    assert kinds[0] == "messageStart" and kinds[-2:] == ["messageStop", "metadata"]
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert text == "Hello you."
    [start] = [e["contentBlockStart"] for e in events if "contentBlockStart" in e]
    assert start == {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t1", "name": "w"}}}
    pieces = [
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "toolUse" in e.get("contentBlockDelta", {}).get("delta", {})
    ]
    assert "".join(pieces) == '{"a": 1}'
    assert events[-2]["messageStop"] == {"stopReason": "tool_use"}
    meta = events[-1]["metadata"]
    assert meta["usage"] == {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}
    assert meta["metrics"] == {"latencyMs": 42}
    assert fake.model_ids == [MODEL]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ValidationException"),
        (403, "AccessDeniedException"),
        (429, "ThrottlingException"),
        (500, "InternalServerException"),
        (503, "ServiceUnavailableException"),
    ],
)
async def test_boto3_parses_the_error_answers(
    fake: FakeAWSBedrockServer, status: int, code: str
) -> None:
    fake.statuses.append(status)
    with pytest.raises(ClientError) as caught:
        await converse(bedrock(fake), **HELLO)
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


async def test_boto3_sees_a_bad_signature_and_a_stream_exception(
    fake: FakeAWSBedrockServer,
) -> None:
    with pytest.raises(ClientError) as caught:
        await converse(bedrock(fake, secret="wrong"), **HELLO)
    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    fake.add_reply("Hi there", exception="throttlingException", exception_after=2)
    with pytest.raises(EventStreamError) as raised:
        await converse(bedrock(fake), **HELLO)
    assert raised.value.response["Error"]["Code"] == "throttlingException"


async def test_our_request_is_the_one_boto3_sends(fake: FakeAWSBedrockServer) -> None:
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "cold"},
    ]
    llm = AWSBedrockLLMService(
        aws_access_key=FAKE_ACCESS_KEY_ID,
        aws_secret_key=SECRET,
        aws_region=REGION,
        base_url=fake.base_url,
        settings=AWSBedrockLLMService.Settings(
            model=MODEL, max_tokens=300, temperature=0.3, stop_sequences=["END"]
        ),
    )
    context = LLMContext(history, tools=ToolsSchema([WEATHER]))
    await run_test(llm, [LLMContextFrame(context)])
    ours = fake.requests[-1]
    params = {"modelId": MODEL, **ours}
    shape = bedrock(fake).meta.service_model.operation_model("ConverseStream").input_shape
    validate_parameters(params, shape)  # raises if botocore would refuse it
    await converse(bedrock(fake), **params)
    assert fake.requests[-1] == ours
    assert fake.model_ids == [MODEL, MODEL]
    assert ours["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert ours["inferenceConfig"] == {
        "maxTokens": 300,
        "temperature": 0.3,
        "stopSequences": ["END"],
    }
