"""The 1.14-style Flows example (``examples/pipecat114-flows-agent``) run as ``python bot.py``
under the runner and called by the simulator, with the OpenAI, Deepgram and Cartesia fakes.

The caller says their name (real eSpeak speech), the model calls ``record_name`` and the flow
moves to the time node; the caller picks a time, the model first asks for a taken slot (the
handler's check keeps the flow where it is), then for an open one; the confirm node resets the
context, says its pre-action line, lets the model confirm, and its post-action hangs up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime", reason="the agent uses Silero VAD (silero extra)")
pytest.importorskip("espeakng_loader", reason="the caller speaks with eSpeak (espeak extra)")

from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.simulator import SimulatedCall

from ..runner.harness import run_bot_process

pytestmark = pytest.mark.integration

BOT = Path(__file__).resolve().parents[3] / "examples" / "pipecat114-flows-agent" / "bot.py"

GREETING = "Hello, Doctor Lee's practice. May I have your name?"
OFFER = "Thanks Anna. We have nine, eleven or half past two tomorrow."
CONFIRMATION = "You are booked for tomorrow at eleven. Thank you, goodbye."
PRE_ACTION = "One moment, I'm writing that down."


def tool_names(request: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in request.get("tools", [])]


def last_message(request: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = request["messages"][-1]
    return message


async def test_flows_agent_books_an_appointment_and_hangs_up(tmp_path: Path) -> None:
    async with (
        FakeOpenAIServer() as openai,
        FakeDeepgramServer() as deepgram,
        FakeCartesiaServer(secs_per_word=0.1) as cartesia,
    ):
        openai.add_chat_reply(GREETING)
        openai.add_chat_reply(tool_calls=[{"name": "record_name", "arguments": {"name": "Anna"}}])
        openai.add_chat_reply(OFFER)
        openai.add_chat_reply(tool_calls=[{"name": "choose_time", "arguments": {"time": "10:00"}}])
        openai.add_chat_reply(tool_calls=[{"name": "choose_time", "arguments": {"time": "11:00"}}])
        openai.add_chat_reply(CONFIRMATION)
        deepgram.transcripts.extend(["My name is Anna", "Eleven please"])
        env = {
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": openai.base_url,
            "DEEPGRAM_API_KEY": "test-key",
            "DEEPGRAM_URL": deepgram.url,
            "CARTESIA_API_KEY": "test-key",
            "CARTESIA_URL": cartesia.url,
            "CARTESIA_VOICE_ID": "voice-1",
            "TWILIO_ACCOUNT_SID": "",
            "TWILIO_AUTH_TOKEN": "",
        }
        with run_bot_process(tmp_path, ["-t", "twilio", "--insecure"], env, bot=BOT) as runner:
            url = f"ws://127.0.0.1:{runner.port}/ws"
            async with SimulatedCall(url, "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), runner.output()
                named_at = call.now()
                await call.say("My name is Anna")
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), runner.output()
                picked_at = call.now()
                await call.say("Eleven please")
                hung_up = await call.wait_for_hangup(timeout=20)
                result = call.result()
            spoken = [str(m.get("transcript", "")) for m in cartesia.messages]

    requests = openai.chat_requests
    assert len(requests) == 6, runner.output()
    greet, named, offer, taken, picked, confirm = requests

    # Node 1 (greet): only record_name is offered; the caller's name is the user's turn.
    assert tool_names(greet) == ["record_name"]
    assert tool_names(named) == ["record_name"]
    assert last_message(named) == {"role": "user", "content": "My name is Anna"}

    # record_name moved the flow to node 2: its task and only its tool, after the tool result.
    assert tool_names(offer) == ["choose_time"]
    roles = [m["role"] for m in offer["messages"]]
    assert roles[-3:] == ["assistant", "tool", "system"]
    assert json.loads(offer["messages"][-2]["content"]) == {"status": "success"}
    assert "The caller is Anna." in offer["messages"][-1]["content"]
    assert last_message(taken) == {"role": "user", "content": "Eleven please"}

    # 10:00 is not open: the flow stays on node 2 and the model sees the open slots.
    assert tool_names(picked) == ["choose_time"]
    assert json.loads(last_message(picked)["content"]) == {
        "available": False,
        "open_slots": ["09:00", "11:00", "14:30"],
    }

    # 11:00 moved it to the confirm node: no tools, and the context was RESET to the booking
    # (the role stays: it is the LLM's system instruction, not a context message).
    assert tool_names(confirm) == []
    contents = [str(m.get("content")) for m in confirm["messages"]]
    assert "Anna is booked for tomorrow at 11:00" in contents[-1], contents
    assert not any("Anna" in c for c in contents[:-1]), contents
    assert len(contents) == 2 and "Doctor Lee's dental practice" in contents[0], contents

    # The caller heard every turn, the pre-action's line was spoken, and the bot hung up.
    said = "".join(spoken)
    places = [said.find(text) for text in (GREETING, OFFER, PRE_ACTION, CONFIRMATION)]
    assert -1 not in places and places == sorted(places), said
    assert result.bot_speech_secs(named_at + 1.0, picked_at) > 1.0, result.timeline()
    assert result.bot_speech_secs(picked_at + 1.0, result.duration) > 1.0, result.timeline()
    assert hung_up and result.hung_up_by_bot, result.timeline()
