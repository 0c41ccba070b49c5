"""examples/manual_fastapi: the webhook's TwiML, and a call through the app's own /ws."""

from __future__ import annotations

import logging

import httpx
import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .helpers import load_example, provider_fakes

pytestmark = pytest.mark.integration


@virtual_time
async def test_webhook_answers_with_a_stream_to_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    example = load_example("manual_fastapi/server.py", monkeypatch)
    monkeypatch.setenv("PUBLIC_HOST", "bot.example.com")
    transport = httpx.ASGITransport(app=example.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/", data={"CallSid": "CA1"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert '<Stream url="wss://bot.example.com/ws" />' in response.text


@virtual_time
async def test_a_call_is_answered_and_ends_cleanly_when_the_caller_hangs_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    example = load_example("manual_fastapi/server.py", monkeypatch)
    caplog.set_level(logging.INFO)
    async with provider_fakes(monkeypatch) as fakes:
        fakes.openai.add_chat_reply("Hi, how can I help?")
        fakes.openai.add_chat_reply("We open at noon.")
        fakes.deepgram.transcripts.append("When do you open?")
        async with running_server(example.app) as addr:
            async with SimulatedCall(f"ws://{addr}/ws", "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no greeting"
                await call.say("When do you open?")
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no answer"
                await call.hang_up()

    assert fakes.spoken() == ["Hi, how can I help?", "We open at noon."]
    last = fakes.openai.chat_requests[-1]["messages"]
    assert last[-2:] == [
        {"role": "assistant", "content": "Hi, how can I help?"},
        {"role": "user", "content": "When do you open?"},
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
