"""examples/phone_agent: the LLM phone agent, called over Twilio, Telnyx and Plivo.

Each test serves the example's ``bot`` under the runner, points its services at the local
fakes through the environment (as ``.env.example`` documents), and places a simulated call that
speaks real (eSpeak NG) audio, so Silero VAD finds the turns.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .helpers import load_example, provider_fakes, serve_bot

pytestmark = pytest.mark.integration

GREETING = "Hello, this is Luigi's. How can I help?"
ANSWER = "Yes, a table for four at half past seven is free."


@virtual_time
async def test_twilio_agent_greets_uses_a_tool_and_says_goodbye_before_hanging_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = load_example("phone_agent/bot_twilio.py", monkeypatch)
    async with provider_fakes(monkeypatch) as fakes:
        fakes.openai.add_chat_reply(GREETING)
        fakes.openai.add_chat_reply(
            tool_calls=[
                {"name": "check_availability", "arguments": {"party_size": 4, "time": "19:30"}}
            ]
        )
        fakes.openai.add_chat_reply(ANSWER)
        fakes.openai.add_chat_reply(tool_calls=[{"name": "end_call", "arguments": {}}])
        fakes.openai.add_chat_reply("")  # the model adds nothing after end_call
        fakes.deepgram.transcripts.extend(["A table for four at seven thirty?", "Thanks, bye"])
        async with serve_bot(example.bot, "twilio") as url:
            async with SimulatedCall(url, "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no greeting"
                await call.say("Do you have a table for four at seven thirty?")
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no answer"
                bye_at = call.now()
                await call.say("Thanks, bye")
                assert await call.wait_for_hangup(timeout=10), "the bot did not hang up"
                result = call.result()

    # The model was offered both tools and got the booking system's answer.
    first = fakes.openai.chat_requests[0]
    assert [t["function"]["name"] for t in first["tools"]] == ["check_availability", "end_call"]
    after_tool = fakes.openai.chat_requests[2]["messages"]
    assert after_tool[-1]["role"] == "tool"
    assert json.loads(after_tool[-1]["content"])["available"] is True
    # What the caller heard, in order: greeting, answer, then the fixed goodbye.
    spoken = " ".join(fakes.spoken())
    assert spoken.index("Luigi's") < spoken.index("half past seven") < spoken.index("Goodbye!")
    assert fakes.spoken()[-1] == example.run_agent.__globals__["GOODBYE"]
    # The bot ended the call, and only after the goodbye was played to the caller.
    assert result.hung_up_by_bot
    assert result.bot_speech_secs(bye_at, result.duration) > 0.5


@pytest.mark.parametrize("provider", ["telnyx", "plivo"])
@virtual_time
async def test_the_same_agent_on_telnyx_and_plivo(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example(f"phone_agent/bot_{provider}.py", monkeypatch)
    async with provider_fakes(monkeypatch) as fakes:
        fakes.openai.add_chat_reply(GREETING)
        fakes.openai.add_chat_reply(tool_calls=[{"name": "end_call", "arguments": {}}])
        fakes.openai.add_chat_reply("")
        fakes.deepgram.transcripts.append("Goodbye")
        async with serve_bot(example.bot, provider) as url:
            async with SimulatedCall(url, provider) as call:
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no greeting"
                await call.say("Goodbye")
                assert await call.wait_for_hangup(timeout=10), "the bot did not hang up"
                result = call.result()

    assert fakes.deepgram.queries[0]["encoding"] == "mulaw"
    assert fakes.spoken()[-1] == "Thank you for calling Luigi's. Goodbye!"
    assert fakes.openai.chat_requests[1]["messages"][-1] == {"role": "user", "content": "Goodbye"}
    assert result.hung_up_by_bot
