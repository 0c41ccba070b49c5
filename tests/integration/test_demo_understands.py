"""The offline demo that understands: Silero VAD + local Whisper + eSpeak NG, driven by the call
simulator with the bot's words checked (``wait_for_bot_to_say`` transcribes what the caller
heard). Also the same demo with an OpenAI-compatible LLM as its brain (the local fake).

Whisper tiny.en on eSpeak's phone-band voice is imperfect (WER about 0.2; "hang up" can come back
as "Daniel"), so each expectation names several words of the expected reply, any of which counts,
and starts listening from the caller's own turn (``since``)."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

pytest.importorskip("onnxruntime", reason="the demo bot needs the silero extra")
pytest.importorskip("espeakng_loader", reason="the demo bot needs the espeak extra")
pytest.importorskip("faster_whisper", reason="the understanding demo needs callpipe[whisper-model]")

from callpipe.demo import bot as demo
from callpipe.runner.app import RunnerConfig, create_app
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

pytestmark = pytest.mark.integration

if not demo.WHISPER_AVAILABLE:
    pytest.skip("the offline Whisper model is not installed", allow_module_level=True)


@asynccontextmanager
async def demo_server() -> AsyncIterator[str]:
    cli_args = argparse.Namespace(session_timeout=0)
    app = create_app(demo.bot, RunnerConfig(insecure=True, cli_args=cli_args))
    async with running_server(app) as addr:
        yield f"ws://{addr}/ws"


@virtual_time
async def test_the_demo_answers_by_intent_and_hangs_up_on_goodbye() -> None:
    async with demo_server() as url, SimulatedCall(url, "twilio") as call:
        assert await call.wait_for_bot_to_say(r"hello|appointment|goodbye|hang up", timeout=15), (
            call.bot_heard
        )
        assert await call.wait_for_bot_silence(quiet_secs=0.6, timeout=15)
        # A turn no intent matches gets the menu. Whisper rates this one "maybe silence"
        # (no-speech 0.4-0.5) though it decodes it confidently: it must not be dropped.
        t = call.now()
        await call.say("Hello, when do you open?")
        assert await call.wait_for_bot_to_say(r"appointment|order|repeat|like", 15, since=t), (
            call.bot_heard
        )
        assert await call.wait_for_bot_silence(quiet_secs=0.6, timeout=15)
        t = call.now()
        await call.say("What time is it?")
        assert await call.wait_for_bot_to_say(
            r"tim|night|morning|afternoon|evening", 15, since=t
        ), call.bot_heard
        assert await call.wait_for_bot_silence(quiet_secs=0.6, timeout=10)
        t = call.now()
        await call.say("Where is my order?")
        assert await call.wait_for_bot_to_say(r"order|number|keypad|digits", 15, since=t), (
            call.bot_heard
        )
        assert await call.wait_for_bot_silence(quiet_secs=0.6, timeout=15)
        t = call.now()
        await call.press("4")
        await call.press("2")
        await call.press("#")
        # 4 + 2 = 6 -> status 0 ("on its way, arrives tomorrow").
        assert await call.wait_for_bot_to_say(r"tomorrow|on its way|arrives", 15, since=t), (
            call.bot_heard
        )
        assert await call.wait_for_bot_silence(quiet_secs=0.6, timeout=15)
        t = call.now()
        await call.say("Thank you, goodbye.")
        assert await call.wait_for_bot_to_say(r"bye", 15, since=t), call.bot_heard
        assert await call.wait_for_hangup(timeout=10), "goodbye did not end the call"
    lines = call.result().transcript()
    caller = [line.text.lower() for line in lines if line.speaker == "caller"]
    assert any("time" in text for text in caller) and any("order" in text for text in caller)
    answers = [line for line in lines if line.speaker == "bot" and line.latency is not None]
    assert answers, "no bot line was matched to a caller turn"


@virtual_time
async def test_the_demo_uses_an_openai_compatible_llm_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with FakeOpenAIServer() as llm:
        llm.add_chat_reply("Your appointment is on Friday at noon.")
        monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        async with demo_server() as url, SimulatedCall(url, "telnyx") as call:
            assert await call.wait_for_bot_turn(timeout=20, quiet_secs=0.6)  # the greeting
            t = call.now()
            await call.say("I would like to book an appointment.")
            assert await call.wait_for_bot_to_say(r"friday|noon", 15, since=t), call.bot_heard
        # One request per caller turn (a pause can split the question into two turns).
        assert llm.chat_requests
        messages = llm.chat_requests[-1]["messages"]
        assert messages[0]["role"] == "system" and "phone" in messages[0]["content"]
        said = " ".join(str(m["content"]) for m in messages if m["role"] == "user").lower()
        # What Whisper made of the caller's words reached the model (tiny.en may mishear one).
        assert "appointment" in said or "book" in said, said
