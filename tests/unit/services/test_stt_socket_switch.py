"""The socket switch every ProviderSocketSTTService shares: updates during a switch, refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import STTUpdateSettingsFrame
from callpipe.services.assemblyai.stt import AssemblyAISTTService
from callpipe.services.elevenlabs.stt import ElevenLabsRealtimeSTTService
from callpipe.services.websocket_service import ProviderWebsocket
from callpipe.testing import run_test
from callpipe.testing.fakes.assemblyai import FakeAssemblyAIServer
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsSTTServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS
from .helpers import errors

RATE = 8000
ElevenSettings = ElevenLabsRealtimeSTTService.Settings
REFUSED_KEYTERMS = ["a term far longer than twenty"]
"""The ElevenLabs fake refuses the handshake of a socket with these."""


class GatedSTT(ElevenLabsRealtimeSTTService):
    """Its sockets wait for :attr:`gate` before they connect (open at first)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    def _build_socket(self) -> ProviderWebsocket:
        ws = super()._build_socket()
        connect = ws.connect

        async def gated() -> None:
            self.waiting += 1
            await self.gate.wait()
            await connect()

        ws.connect = gated  # type: ignore[method-assign]
        return ws


def call(action: Any) -> SleepFrame:
    """Run ``action()`` at this point of the frames."""
    return SleepFrame(0.0, until=lambda: action() or True)


def opened(fake: Any) -> SleepFrame:
    """Wait for the fake's first connection."""
    return SleepFrame(5.0, until=lambda: fake.connections == 1)


def refused(fake: Any) -> list[SleepFrame]:
    """Wait for the fake to refuse a handshake, and a little more for the service's answer."""
    return [SleepFrame(3.0, until=lambda: fake.rejected == 1), SleepFrame(0.1)]


@pytest.fixture
async def eleven() -> AsyncIterator[FakeElevenLabsSTTServer]:
    async with FakeElevenLabsSTTServer() as fake:
        yield fake


@pytest.fixture
def stt(eleven: FakeElevenLabsSTTServer) -> GatedSTT:
    return GatedSTT(api_key="test-key", base_url=eleven.url)


async def test_a_refused_socket_puts_back_every_update_it_carried(
    eleven: FakeElevenLabsSTTServer, stt: GatedSTT
) -> None:
    frames = [
        opened(eleven),
        STTUpdateSettingsFrame(delta=ElevenSettings(language="fr")),
        STTUpdateSettingsFrame(delta=ElevenSettings(keyterms=REFUSED_KEYTERMS)),
        *refused(eleven),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    assert eleven.connections == 1
    # Both updates went into the refused socket: both go back, to what the live one carries.
    assert stt.settings.language is None and stt.settings.keyterms is None  # type: ignore[attr-defined]
    assert len(errors(up)) == 1 and not errors(up)[0].fatal


async def test_an_update_during_a_switch_gets_a_socket_of_its_own(
    eleven: FakeElevenLabsSTTServer, stt: GatedSTT
) -> None:
    frames = [
        opened(eleven),
        call(stt.gate.clear),
        STTUpdateSettingsFrame(delta=ElevenSettings(language="fr")),
        SleepFrame(3.0, until=lambda: stt.waiting == 2),  # the French socket is being opened
        STTUpdateSettingsFrame(delta=ElevenSettings(keyterms=REFUSED_KEYTERMS)),
        call(stt.gate.set),
        *refused(eleven),
    ]
    _, up = await run_test(stt, frames, params=PARAMS)
    # The French socket opened and went live; the later update was tried on its own socket,
    # refused, and only it went back.
    assert [q.get("language_code") for q in eleven.queries] == [None, ["fr"]]
    assert stt.settings.language == "fr" and stt.settings.keyterms is None  # type: ignore[attr-defined]
    assert len(errors(up)) == 1 and not errors(up)[0].fatal


async def test_a_refused_assemblyai_socket_keeps_the_old_one_and_its_settings() -> None:
    async with FakeAssemblyAIServer() as server:
        aai = AssemblyAISTTService(api_key="test-key", api_endpoint_base_url=server.url)
        frames = [
            opened(server),
            call(lambda: server._server.fail_handshakes.append(400)),
            STTUpdateSettingsFrame(delta=AssemblyAISTTService.Settings(keyterms_prompt=["Acme"])),
            *refused(server),
        ]
        _, up = await run_test(aai, frames, params=PARAMS)
    assert server.connections == 1
    assert aai.assemblyai_settings.keyterms_prompt is None
    assert "keyterms_prompt" not in aai.socket_url()  # nor in the URL a reconnect opens
    assert len(errors(up)) == 1 and "previous ones" in errors(up)[0].error
