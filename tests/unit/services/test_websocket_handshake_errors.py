"""Every WebSocket service against its fake when the handshake fails (429, 500, 401)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
)
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeElevenLabsServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.testing.virtual_calls import virtual_time

from .helpers import PHONE as PARAMS

Fake = FakeCartesiaServer | FakeDeepgramServer | FakeElevenLabsServer

SERVICES: dict[str, tuple[type[Any], Callable[[Any, str], Any]]] = {
    "cartesia": (
        FakeCartesiaServer,
        lambda fake, key: CartesiaTTSService(api_key=key, voice_id="v", url=fake.url),
    ),
    "elevenlabs": (
        FakeElevenLabsServer,
        lambda fake, key: ElevenLabsTTSService(api_key=key, voice_id="v", url=fake.url),
    ),
    "deepgram": (
        FakeDeepgramServer,
        lambda fake, key: DeepgramSTTService(api_key=key, url=fake.url),
    ),
}


@pytest.fixture(params=sorted(SERVICES))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@asynccontextmanager
async def fake_for(name: str) -> AsyncIterator[Any]:
    """The service's fake, opened inside the test (the tests run on virtual time: the retry
    back-off costs no real time)."""
    fake_cls, _ = SERVICES[name]
    async with fake_cls() as fake:
        yield fake


def frames_for(name: str) -> list[Frame]:
    if name == "deepgram":
        return [SleepFrame(0.6)]
    return [
        SleepFrame(0.4),
        LLMFullResponseStartFrame(),
        LLMTextFrame("Hello there."),
        LLMFullResponseEndFrame(),
    ]


@pytest.mark.parametrize("status", [429, 500])
@virtual_time
async def test_transient_handshake_failure_is_retried(name: str, status: int) -> None:
    async with fake_for(name) as fake:
        fake.fail_handshakes.append(status)
        service = SERVICES[name][1](fake, "test-key")
        down, up = await run_test(service, frames_for(name), params=PARAMS)
        assert not [f for f in up if isinstance(f, ErrorFrame)]
        assert fake.connections == 1
        if name != "deepgram":
            assert any(isinstance(f, TTSAudioRawFrame) for f in down)


@pytest.mark.parametrize("status", [429, 500])
@virtual_time
async def test_persistent_handshake_failure_is_reported(name: str, status: int) -> None:
    async with fake_for(name) as fake:
        fake.fail_handshakes.extend([status, status])
        service = SERVICES[name][1](fake, "test-key")
        down, up = await run_test(service, frames_for(name), params=PARAMS)
        errors = [f for f in up if isinstance(f, ErrorFrame)]
        assert errors and not errors[0].fatal
        assert f"HTTP {status}" in errors[0].error
        assert not any(isinstance(f, TTSAudioRawFrame) for f in down)
        # The pipeline carried on to its end.
        assert down and type(down[-1]).__name__ == "EndFrame"


@virtual_time
async def test_rejected_key_is_fatal_and_names_the_variable(name: str) -> None:
    async with fake_for(name) as fake:
        service = SERVICES[name][1](fake, "wrong-key")
        _, up = await run_test(service, [SleepFrame(10)], params=PARAMS)
        errors = [f for f in up if isinstance(f, ErrorFrame)]
        assert errors and errors[0].fatal
        assert f"{name.upper()}_API_KEY" in errors[0].error
