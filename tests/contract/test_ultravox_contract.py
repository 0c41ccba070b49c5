"""FakeUltravoxServer and UltravoxRealtimeLLMService against Ultravox's documented protocol.

Ultravox publishes no Python SDK for its server WebSocket (the PyPI ``ultravox-client`` joins
calls over WebRTC and handles the data messages as plain dicts, with no models), so the shapes
are transcribed below, strictly, from Ultravox's documentation:

- https://docs.ultravox.ai/apps/websockets (``medium.serverWebSocket``: ``inputSampleRate``,
  ``outputSampleRate``, ``clientBufferSizeMs``; binary messages are s16le PCM both ways; text
  messages are the data messages)
- https://docs.ultravox.ai/apps/datamessages (``user_text_message``, ``set_output_medium``,
  ``client_tool_result``, ``hang_up``, ``ping``; ``call_started``, ``state``, ``transcript``,
  ``client_tool_invocation``, ``playback_clear_buffer``, ``pong``, ``debug``)
- https://docs.ultravox.ai/api-reference/calls/calls-post and
  https://docs.ultravox.ai/api-reference/agents/agents-calls-post (the create-call requests,
  ``X-API-Key``, the answer's ``callId`` and ``joinUrl``)
- https://docs.ultravox.ai/tools/custom/http-vs-client-tools (a ``temporaryTool`` with
  ``dynamicParameters`` and ``client: {}``)

Every data message the fake sends must validate as a documented server message, every one our
service sends as a documented client message, and its create-call bodies as documented
requests. The documented way to join (a plain WebSocket client to the ``joinUrl``, sending PCM
and reading bytes and JSON) is run against the fake too.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator
from websockets.asyncio.client import connect

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema
from callpipe.adapters.llm.schemas.tools_schema import ToolsSchema
from callpipe.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    InputTextRawFrame,
    LLMUpdateSettingsFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.ultravox.llm import (
    AgentInputParams,
    OneShotInputParams,
    UltravoxRealtimeLLMService,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.fakes.ultravox import FakeUltravoxServer, UltravoxReply
from callpipe.testing.pipeline import SleepFrame

RATE = 8000
PARAMS = PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# ---------------------------------------------------------------------- client → server


class UserTextMessage(_Strict):
    type: Literal["user_text_message"]
    text: str
    urgency: Literal["immediate", "soon", "later"] | None = None
    deferResponse: bool | None = None


class SetOutputMedium(_Strict):
    type: Literal["set_output_medium"]
    medium: Literal["voice", "text"]


class ClientToolResult(_Strict):
    type: Literal["client_tool_result"]
    invocationId: str
    result: str | None = None
    agentReaction: Literal["speaks", "listens", "speaks-once"] | None = None
    responseType: str | None = None
    errorType: Literal["undefined", "implementation-error"] | None = None
    errorMessage: str | None = None


class HangUp(_Strict):
    type: Literal["hang_up"]
    message: str | None = None


class Ping(_Strict):
    type: Literal["ping"]
    timestamp: float


CLIENT = TypeAdapter(UserTextMessage | SetOutputMedium | ClientToolResult | HangUp | Ping)


# ---------------------------------------------------------------------- server → client


class CallStarted(_Strict):
    type: Literal["call_started"]
    callId: str


class State(_Strict):
    type: Literal["state"]
    state: Literal["idle", "listening", "thinking", "speaking"]


class Transcript(_Strict):
    type: Literal["transcript"]
    role: Literal["user", "agent"]
    medium: Literal["text", "voice"]
    text: str | None = None
    delta: str | None = None
    final: bool
    ordinal: int

    @model_validator(mode="after")
    def _text_or_delta(self) -> Transcript:
        assert (self.text is None) != (self.delta is None), "exactly one of text and delta"
        return self


class ClientToolInvocation(_Strict):
    type: Literal["client_tool_invocation"]
    toolName: str
    invocationId: str
    parameters: dict[str, Any]


class PlaybackClearBuffer(_Strict):
    type: Literal["playback_clear_buffer"]


class Pong(_Strict):
    type: Literal["pong"]
    timestamp: float


class Debug(_Strict):
    type: Literal["debug"]
    message: str


SERVER = TypeAdapter(
    CallStarted | State | Transcript | ClientToolInvocation | PlaybackClearBuffer | Pong | Debug
)


# ---------------------------------------------------------------------- create-call requests


class ServerWebSocketMedium(_Strict):
    inputSampleRate: int = Field(gt=0)
    outputSampleRate: int | None = Field(default=None, gt=0)
    clientBufferSizeMs: int | None = Field(default=None, gt=0)


class CallMedium(_Strict):
    serverWebSocket: ServerWebSocketMedium


class DynamicParameter(_Strict):
    name: str
    location: Literal[
        "PARAMETER_LOCATION_QUERY",
        "PARAMETER_LOCATION_PATH",
        "PARAMETER_LOCATION_HEADER",
        "PARAMETER_LOCATION_BODY",
    ]
    schema_: dict[str, Any] = Field(alias="schema")
    required: bool


class TemporaryTool(_Strict):
    modelToolName: str
    description: str
    dynamicParameters: list[DynamicParameter]
    client: dict[str, Any]


class SelectedTool(_Strict):
    temporaryTool: TemporaryTool


DURATION = r"^\d+(\.\d+)?s$"
OutputMedium = Literal["MESSAGE_MEDIUM_VOICE", "MESSAGE_MEDIUM_TEXT"]


class CallRequest(_Strict):
    """``POST /api/calls`` (the fields this service sends)."""

    systemPrompt: str | None = None
    temperature: float | None = None
    model: str | None = None
    voice: str | None = None
    metadata: dict[str, str] | None = None
    maxDuration: str | None = Field(default=None, pattern=DURATION)
    selectedTools: list[SelectedTool] | None = None
    medium: CallMedium
    initialOutputMedium: OutputMedium | None = None


class AgentCallRequest(_Strict):
    """``POST /api/agents/{agent_id}/calls`` (the fields this service sends)."""

    templateContext: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    maxDuration: str | None = Field(default=None, pattern=DURATION)
    medium: CallMedium
    initialOutputMedium: OutputMedium | None = None


# ---------------------------------------------------------------------- tests


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeUltravoxServer]:
    async with FakeUltravoxServer() as fake:
        monkeypatch.setenv("CALLPIPE_ULTRAVOX_URL", fake.base_url)
        yield fake


def _check_all(server: FakeUltravoxServer) -> None:
    for message in server.sent:
        SERVER.validate_python(message)
    for message in server.received:
        CLIENT.validate_python(message)


async def test_a_call_through_the_service_speaks_only_documented_messages(
    server: FakeUltravoxServer,
) -> None:
    server.pace_secs = 0.005
    server.replies += [
        UltravoxReply("Welcome, this greeting is long", audio_ms=1500),
        UltravoxReply(tool_call=("get_weather", {"city": "Paris"})),
        UltravoxReply("It is sunny"),
    ]
    server.transcripts.append("What is the weather?")
    weather = FunctionSchema(
        "get_weather", "Weather", {"city": {"type": "string"}}, required=["city"]
    )
    llm = UltravoxRealtimeLLMService(
        params=OneShotInputParams(api_key="test-key", system_prompt="Be brief.", voice="Mark"),
        one_shot_selected_tools=ToolsSchema(standard_tools=[weather]),
    )

    async def get_weather(params: FunctionCallParams) -> None:
        await params.result_callback({"sky": "sunny"})

    llm.register_function("get_weather", get_weather)
    loud = tone_pcm(0.1, RATE)

    def text_replies() -> list[dict[str, Any]]:
        return [m for m in server.sent_of_type("transcript") if m["final"]]

    frames = [
        SleepFrame(5.0, until=lambda: len(server.sent_of_type("transcript")) >= 2),
        *[InputAudioRawFrame(loud[i : i + 320], RATE) for i in range(0, len(loud), 320)],
        *[InputAudioRawFrame(bytes(320), RATE) for _ in range(15)],
        SleepFrame(5.0, until=lambda: bool(server.of_type("client_tool_result"))),
        SleepFrame(5.0, until=lambda: server.sent[-1] == {"type": "state", "state": "listening"}),
        LLMUpdateSettingsFrame(delta=UltravoxRealtimeLLMService.Settings(output_medium="text")),
        InputTextRawFrame("Thanks"),
        SleepFrame(5.0, until=lambda: any(m["medium"] == "text" for m in text_replies())),
    ]
    _, up = await run_test(llm, frames, params=PARAMS)

    assert not [e for e in up if isinstance(e, ErrorFrame)]
    assert text_replies()[-1]["text"] == "Okay."  # the answer to the typed text, as text
    kinds = {m["type"] for m in server.sent}
    assert {"call_started", "state", "transcript", "playback_clear_buffer"} <= kinds
    assert "client_tool_invocation" in kinds
    assert {m["type"] for m in server.received} == {
        "client_tool_result",
        "set_output_medium",
        "user_text_message",
    }
    _check_all(server)
    request = CallRequest.model_validate(server.calls[0])
    assert request.medium.serverWebSocket.inputSampleRate == RATE
    assert server.call_headers[0]["x-api-key"] == "test-key"


async def test_agent_call_request_is_documented(server: FakeUltravoxServer) -> None:
    agent_id = uuid.uuid4()
    params = AgentInputParams(api_key="test-key", agent_id=agent_id, output_medium="text")
    frames = [SleepFrame(5.0, until=lambda: server.opened >= 1)]
    await run_test(UltravoxRealtimeLLMService(params=params), frames, params=PARAMS)
    assert server.call_paths == [f"/api/agents/{agent_id}/calls"]
    AgentCallRequest.model_validate(server.calls[0])
    _check_all(server)


async def test_the_documented_join_flow_against_the_fake(server: FakeUltravoxServer) -> None:
    """As Ultravox's WebSocket guide shows: create the call, connect to its ``joinUrl``, send
    s16le PCM, read agent audio (bytes) and data messages (JSON text)."""
    server.transcripts.append("hello there")
    body = {
        "systemPrompt": "You are a helpful assistant.",
        "model": "ultravox-v0.7",
        "voice": "Mark",
        "medium": {"serverWebSocket": {"inputSampleRate": 16000, "outputSampleRate": 8000}},
    }
    CallRequest.model_validate(body)
    async with httpx.AsyncClient() as client:
        refused = await client.post(server.base_url + "/api/calls", json=body)
        created = await client.post(
            server.base_url + "/api/calls", headers={"X-API-Key": "test-key"}, json=body
        )
    assert refused.status_code == 401
    assert created.status_code == 201
    answer = created.json()
    assert answer["callId"] and answer["joinUrl"].startswith("ws://")
    audio_bytes = 0
    messages: list[dict[str, Any]] = []
    async with connect(answer["joinUrl"]) as ws:
        pcm = tone_pcm(0.2, 16000) + bytes(16000)  # 0.2 s of speech, 0.5 s of quiet
        for i in range(0, len(pcm), 640):
            await ws.send(pcm[i : i + 640])
        await ws.send(json.dumps({"type": "ping", "timestamp": 1.5}))
        async with asyncio.timeout(5):
            while True:
                message = await ws.recv()
                if isinstance(message, bytes):
                    audio_bytes += len(message)
                    continue
                messages.append(json.loads(message))
                finals = [m for m in messages if m["type"] == "transcript" and m["final"]]
                if len(finals) >= 3 and any(m["type"] == "pong" for m in messages):
                    break
    for message in messages:
        SERVER.validate_python(message)
    user = [m for m in messages if m["type"] == "transcript" and m["role"] == "user"]
    assert [m["text"] for m in user] == ["hello there"]
    assert audio_bytes > 0 and audio_bytes % 2 == 0  # the agent's PCM at 8 kHz, 16-bit
    assert {"type": "pong", "timestamp": 1.5} in messages
