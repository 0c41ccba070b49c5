"""Where services connect and how: base URLs from the environment, OpenAI headers, and the
WebSocket reconnect bound."""

from __future__ import annotations

import asyncio
import json

import pytest

from callpipe.frames.frames import LLMMessagesFrame, LLMTextFrame
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.services.websocket_service import ProviderWebsocket
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeDeepgramServer, FakeOpenAIServer


async def test_openai_base_url_and_project_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeOpenAIServer() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_env")
        llm = OpenAILLMService(api_key="test-key", model="fake-model", organization="org_1")
        frames = [LLMMessagesFrame([{"role": "user", "content": "hi"}])]
        down, _ = await run_test(llm, frames)
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == "You said: hi"
    headers = fake.request_headers[-1]
    assert headers["openai-organization"] == "org_1"
    assert headers["openai-project"] == "proj_env"


async def test_explicit_base_url_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/nowhere")
    tts = OpenAITTSService(api_key="k", base_url="http://127.0.0.1:1234/v1", project="p")
    assert tts._base_url == "http://127.0.0.1:1234/v1"
    assert tts._make_client().headers["OpenAI-Project"] == "p"


def test_websocket_services_read_their_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CALLPIPE_DEEPGRAM_URL", "ws://127.0.0.1:1/dg/")
    monkeypatch.setenv("CALLPIPE_CARTESIA_URL", "ws://127.0.0.1:2")
    monkeypatch.setenv("CALLPIPE_ELEVENLABS_URL", "ws://127.0.0.1:3")
    assert DeepgramSTTService(api_key="k")._url == "ws://127.0.0.1:1/dg"
    assert CartesiaTTSService(api_key="k", voice_id="v")._url == "ws://127.0.0.1:2"
    assert ElevenLabsTTSService(api_key="k", voice_id="v")._url == "ws://127.0.0.1:3"
    explicit = CartesiaTTSService(api_key="k", voice_id="v", url="ws://127.0.0.1:4")
    assert explicit._url == "ws://127.0.0.1:4"


def test_a_base_url_left_at_the_providers_default_yields_to_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callpipe.services._env import defaulted_base_url

    default = "https://api.example.com"
    monkeypatch.delenv("CALLPIPE_PROBE_URL", raising=False)
    assert defaulted_base_url(default, "CALLPIPE_PROBE_URL", default) == default
    monkeypatch.setenv("CALLPIPE_PROBE_URL", "http://127.0.0.1:7/")
    for left_at_default in (default, "", None):
        found = defaulted_base_url(left_at_default, "CALLPIPE_PROBE_URL", default)
        assert found == "http://127.0.0.1:7"
    mine = defaulted_base_url("https://eu.example.com/", "CALLPIPE_PROBE_URL", default)
    assert mine == "https://eu.example.com"


async def test_a_provider_that_keeps_closing_is_not_hammered() -> None:
    """Transient closes are reconnected with backoff, but only so many times a minute."""
    async with FakeDeepgramServer() as fake:
        failures: list[str] = []

        async def on_failed(message: str) -> None:
            failures.append(message)

        async def on_message(message: str | bytes) -> None:
            pass

        socket = ProviderWebsocket(
            owner="probe",
            url=f"{fake.url}/v1/listen?encoding=linear16&sample_rate=8000",
            headers={"Authorization": "Token test-key"},
            on_message=on_message,
            on_failed=on_failed,
            reconnect_backoff_secs=0.01,
            max_drops_per_minute=3,
        )
        await socket.connect()
        for _ in range(200):
            if failures:
                break
            fake.close_next(1011, "NET-0000")
            await socket.send(json.dumps({"type": "KeepAlive"}), wait_secs=0.5)
            await asyncio.sleep(0.02)
        await socket.close()
    assert len(failures) == 1 and "dropping repeatedly" in failures[0]
    assert fake.connections == 4  # the first connection and three reconnects


@pytest.mark.parametrize(
    ("code", "reason", "transient"),
    [
        (None, "", True),
        (1000, "", True),
        (1011, "NET-0000", True),
        (1011, "NET-0001", True),
        (1008, "Have not received a new text input within the timeout of 20 seconds", True),
        (1008, "DATA-0000", False),
        (1008, "max_active_conversations", False),
        (1007, "", False),
        (4001, "unauthorized", False),
        (1011, "DATA-0000", False),
    ],
)
def test_which_closes_are_reconnected(code: int | None, reason: str, transient: bool) -> None:
    from callpipe.services.websocket_service import is_transient_close

    assert is_transient_close(code, reason) is transient
