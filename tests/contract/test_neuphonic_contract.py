"""The official ``pyneuphonic`` SDK's clients against the Neuphonic fakes, and our services'
requests against the SDK's.

The SDK's ``AsyncSSEClient`` and ``AsyncTTSWebsocketClient`` (``base_url`` pointed at the fakes;
the SDK speaks plain ``http``/``ws`` to a ``localhost`` one) speak through the fakes, and every
message the fakes send must validate as the SDK's ``APIResponse[TTSResponse]`` with no field it
lacks, except the socket's ``stop`` flag, which the official JavaScript SDK reads and
pyneuphonic's open model lets through. Our socket URL and key header, and our HTTP path and
body, must be the ones the SDK builds for the same options.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pyneuphonic._sse import AsyncSSEClient
from pyneuphonic._websocket import AsyncTTSWebsocketClient
from pyneuphonic.models import APIResponse, TTSConfig, TTSResponse

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
)
from callpipe.pipeline.task import PipelineParams
from callpipe.services.neuphonic.tts import NeuphonicHttpTTSService, NeuphonicTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.neuphonic import FakeNeuphonicHTTPServer, FakeNeuphonicServer
from callpipe.transcriptions.language import Language

KEY = "test-key"
PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
SOCKET_ONLY = frozenset({"stop"})
"""Fields of the socket's messages that pyneuphonic's ``TTSResponse`` does not name."""


def _localhost(origin: str) -> str:
    """The SDK's ``base_url`` for a fake: a host without a scheme, ``localhost`` so that the
    SDK uses no TLS."""
    return urlsplit(origin).netloc.replace("127.0.0.1", "localhost")


def reply(text: str) -> list[Frame]:
    return [LLMFullResponseStartFrame(), LLMTextFrame(text), LLMFullResponseEndFrame()]


def audio_secs(frames: list[Frame]) -> float:
    return sum(len(f.audio) / 2 / f.sample_rate for f in frames if isinstance(f, TTSAudioRawFrame))


def errors(frames: list[Frame]) -> list[ErrorFrame]:
    return [f for f in frames if isinstance(f, ErrorFrame)]


def _check_event(event: dict[str, Any], extra: frozenset[str] = frozenset()) -> None:
    """``event`` validates as the SDK's response and has no field the SDK's models lack."""
    parsed = APIResponse[TTSResponse].model_validate(event)
    assert set(event) <= set(APIResponse.model_fields), event.keys()
    if parsed.data is not None:
        assert set(event["data"]) <= set(TTSResponse.model_fields) | extra, event["data"].keys()


async def test_sdk_speaks_through_the_socket_fake_and_every_message_validates() -> None:
    async with FakeNeuphonicServer(api_key=KEY) as server:
        ws = AsyncTTSWebsocketClient(api_key=KEY, base_url=_localhost(server.url))
        await ws.open(TTSConfig(sampling_rate=8000, encoding="pcm_mulaw", voice_id="v-1"))
        await ws.send("Hello there.", autocomplete=True)
        received: list[APIResponse[TTSResponse]] = []
        async with asyncio.timeout(5):
            while True:
                message = await ws.receive()
                received.append(message)
                assert message.data is not None
                if (message.data.model_extra or {}).get("stop"):
                    break
        await ws.send({"text": 42})  # not a string: an error answer, the socket stays open
        async with asyncio.timeout(5):
            error = await ws.receive()
        await ws.close()
    # The SDK sends a str bare and its completion token as {"text"}: both are text.
    assert server.messages == ["Hello there.", {"text": " <STOP>"}]
    assert server.passages == ["Hello there. "]
    audio = b"".join(m.data.audio or b"" for m in received if m.data is not None)
    assert len(audio) == 2 * 0.1 * 8000  # two words of mu-law, a byte a sample
    assert error.errors and error.status_code == 400
    assert server.events
    for event in server.events:
        _check_event(event, SOCKET_ONLY)


async def test_our_socket_url_and_key_are_the_sdks() -> None:
    settings = NeuphonicTTSService.Settings(
        voice="v-1", language=Language.PT_BR, speed=1.1, temperature=0.5, ipa_key="pt-br"
    )
    async with FakeNeuphonicServer(api_key=KEY) as server:
        tts = NeuphonicTTSService(
            api_key=KEY,
            url=server.url.replace("127.0.0.1", "localhost"),
            settings=settings,
            sample_rate=8000,
        )
        config = TTSConfig(
            lang_code="pt",
            voice_id="v-1",
            speed=1.1,
            temperature=0.5,
            ipa_key="pt-br",
            sampling_rate=8000,
            encoding="pcm_mulaw",
        )
        sdk = AsyncTTSWebsocketClient(api_key=KEY, base_url=_localhost(server.url))
        assert tts.socket_url() == sdk.url(config)
        await sdk.open(config)
        await sdk.close()
        down, up = await run_test(tts, reply("Olá."), params=PARAMS)
    assert not errors(up) and audio_secs(down) > 0
    assert server.paths[0] == server.paths[1]
    sdk_headers, our_headers = server.headers
    assert our_headers["x-api-key"] == sdk_headers["x-api-key"] == KEY
    # Each passage is a {"text"} message ending in the SDK's completion token.
    assert server.messages == [{"text": "Olá. <STOP>"}]


async def test_sdk_sse_client_reads_the_http_fake_and_our_body_is_the_sdks() -> None:
    async with FakeNeuphonicHTTPServer(api_key=KEY) as server:
        sdk = AsyncSSEClient(api_key=KEY, base_url=_localhost(server.base_url))
        config = TTSConfig(voice_id="v-1", sampling_rate=8000, encoding="pcm_mulaw", speed=0.9)
        messages = [m async for m in sdk.send("Hi there.", tts_config=config)]
        tts = NeuphonicHttpTTSService(
            api_key=KEY,
            url=server.base_url,
            settings=NeuphonicHttpTTSService.Settings(voice="v-1", speed=0.9),
        )
        down, up = await run_test(tts, reply("Hi there."), params=PARAMS)
    assert not errors(up)
    assert len(messages) == 2 and all(m.status_code == 200 for m in messages)
    assert all(m.data is not None and m.data.sampling_rate == 8000 for m in messages)
    sdk_body, our_body = server.requests
    assert our_body == sdk_body
    assert server.paths == ["/sse/speak/en", "/sse/speak/en"]
    assert server.headers[0]["x-api-key"] == server.headers[1]["x-api-key"] == KEY
    assert abs(audio_secs(down) - 0.2) < 1e-6


async def test_every_sse_event_the_fake_streams_validates_including_errors() -> None:
    async with FakeNeuphonicHTTPServer(api_key=KEY) as server:
        server.error_after = 2
        events: list[dict[str, Any]] = []
        async with (
            httpx.AsyncClient(base_url=server.base_url) as http,
            http.stream(
                "POST",
                "/sse/speak/en",
                json={"text": "One two three.", "sampling_rate": 16000},
                headers={"X-API-KEY": KEY},
            ) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            kinds = []
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kinds.append(line[7:])
                elif line.startswith("data: "):
                    events.append(json.loads(line[6:]))
        # The SDK's client raises on the error event, after the audio before it.
        server.error_after = 1
        sdk = AsyncSSEClient(api_key=KEY, base_url=_localhost(server.base_url))
        got: list[APIResponse[TTSResponse]] = []
        with pytest.raises(Exception, match="synthesis failed"):
            async for message in sdk.send("One two three."):
                got.append(message)
    assert kinds == ["message", "message", "error"]
    for event in events:
        _check_event(event)
    assert events[-1]["errors"] and events[-1]["status_code"] == 500
    assert len(got) == 1 and got[0].data is not None and got[0].data.audio
    assert got[0].data.text == "One "
