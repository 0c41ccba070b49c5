"""The official ``openai`` SDK against FakeOpenAIServer, and our requests against its params.

The SDK's streaming helper builds a ``ChatCompletion`` from the chunks: it needs ``created`` on
every chunk and ``object`` on the usage chunk (the fake lacked both). Every chunk the fake
streams must validate strictly as ``ChatCompletionChunk``; every request our services send must
validate as the SDK's request params.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.audio import speech_create_params, transcription_create_params
from openai.types.chat import ChatCompletionChunk, completion_create_params
from pydantic import TypeAdapter

from callpipe.audio.wav import pcm_to_wav
from callpipe.frames.frames import (
    InputAudioRawFrame,
    LLMMessagesFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeOpenAIServer
from callpipe.testing.fakes.openai import tone_pcm
from callpipe.testing.pipeline import SleepFrame

CHAT_PARAMS = TypeAdapter(completion_create_params.CompletionCreateParamsStreaming)
SPEECH_PARAMS = TypeAdapter(speech_create_params.SpeechCreateParams)
# The file field's type (IO[bytes] | ...) has no pydantic schema: check the fields by name.
TRANSCRIPTION_FIELDS = transcription_create_params.TranscriptionCreateParamsNonStreaming


def sdk(fake: FakeOpenAIServer, key: str = "test-key") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=key, base_url=fake.base_url, max_retries=0)


async def raw_chunks(fake: FakeOpenAIServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{fake.base_url}/chat/completions",
            json=body,
            headers={"Authorization": "Bearer test-key"},
        )
    lines = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


async def test_stream_helper_builds_the_completion_with_usage() -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply("Hello from the fake.")
        async with sdk(fake).chat.completions.stream(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        ) as stream:
            completion = await stream.get_final_completion()
    assert completion.choices[0].message.content == "Hello from the fake."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


async def test_stream_helper_assembles_tool_calls() -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
        tools: list[Any] = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ]
        async with sdk(fake).chat.completions.stream(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=tools
        ) as stream:
            completion = await stream.get_final_completion()
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]


async def test_every_streamed_chunk_validates_strictly() -> None:
    async with FakeOpenAIServer() as fake:
        fake.add_chat_reply("Some words here.", tool_calls=[{"name": "f", "arguments": {}}])
        chunks = await raw_chunks(
            fake,
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
    assert chunks and chunks[-1]["usage"]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk, strict=False)
        assert {"id", "object", "created", "model", "choices"} <= set(chunk)


async def test_speech_transcription_models_and_errors_through_the_sdk() -> None:
    async with FakeOpenAIServer() as fake:
        fake.transcripts.append("hello there")
        client = sdk(fake)
        async with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="alloy", input="Two words.", response_format="pcm"
        ) as response:
            audio = await response.read()
        wav = pcm_to_wav(tone_pcm(0.2, 8000), 8000)
        text = await client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=("a.wav", wav, "audio/wav")
        )
        models = await client.models.list()
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk(fake, "wrong").models.list()
    assert len(audio) == int(2 * 0.1 * 24000) * 2
    assert text.text == "hello there"
    assert [m.id for m in models.data]
    assert "Incorrect API key" in str(caught.value)


async def test_our_requests_validate_as_sdk_params() -> None:
    async with FakeOpenAIServer() as fake:
        llm = OpenAILLMService(api_key="test-key", base_url=fake.base_url, model="gpt-4o-mini")
        tts = OpenAITTSService(api_key="test-key", base_url=fake.base_url, instructions="calm")
        params = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
        await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "hi"}])], params=params)
        await run_test(tts, [TTSSpeakFrame("Hello there.")])
        stt = OpenAISTTService(api_key="test-key", base_url=fake.base_url, prompt="menu")
        pcm = tone_pcm(0.4, 16000)
        await run_test(
            stt,
            [
                UserStartedSpeakingFrame(),
                *(InputAudioRawFrame(pcm[i : i + 640], 16000) for i in range(0, len(pcm), 640)),
                UserStoppedSpeakingFrame(),
                SleepFrame(0.3),
            ],
        )
    assert fake.chat_requests and fake.speech_requests and fake.transcription_requests
    for body in fake.chat_requests:
        CHAT_PARAMS.validate_python(body)
    for body in fake.speech_requests:
        SPEECH_PARAMS.validate_python(body)
    for fields in fake.transcription_requests:
        form = {k for k in fields if not k.endswith(".filename")}
        assert TRANSCRIPTION_FIELDS.__required_keys__ <= form
        assert (
            form <= TRANSCRIPTION_FIELDS.__required_keys__ | TRANSCRIPTION_FIELDS.__optional_keys__
        )
        assert fields["file.filename"].endswith(".wav")


async def test_a_wrong_path_gets_openais_not_found() -> None:
    async with FakeOpenAIServer() as fake:
        client = AsyncOpenAI(api_key="test-key", base_url=fake.base_url + "/v2", max_retries=0)
        with pytest.raises(openai.NotFoundError) as caught:
            await client.models.list()
    assert "Invalid URL (GET /v1/v2/models)" in str(caught.value)
