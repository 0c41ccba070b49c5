"""The two 1.14-style example agents, each run as ``python bot.py`` under the runner and called
by the simulator, with the OpenAI, Deepgram and Cartesia fakes standing in for the providers.

- tools agent: greeting, the caller asks (real eSpeak speech, Silero VAD in the aggregator),
  the LLM asks for ``check_availability``, the handler's result goes back, the answer is spoken.
- DTMF agent: greeting, the caller types ``1234#``, "DTMF: 1234#" reaches the LLM as the user's
  turn, the schema's own handler looks the account up, the answer is spoken.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the agents use Silero VAD (silero extra)")
pytest.importorskip("espeakng_loader", reason="the caller speaks with eSpeak (espeak extra)")

from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.simulator import SimulatedCall

from ..runner.harness import run_bot_process

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@asynccontextmanager
async def fakes() -> AsyncIterator[
    tuple[FakeOpenAIServer, FakeDeepgramServer, FakeCartesiaServer, dict[str, str]]
]:
    async with (
        FakeOpenAIServer() as openai,
        FakeDeepgramServer() as deepgram,
        FakeCartesiaServer(secs_per_word=0.2) as cartesia,
    ):
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
        yield openai, deepgram, cartesia, env


def roles(messages: list[dict[str, object]]) -> list[object]:
    return [m["role"] for m in messages]


async def test_tools_agent_runs_a_function_call_turn(tmp_path: Path) -> None:
    recording = tmp_path / "call.wav"
    async with fakes() as (openai, deepgram, cartesia, env):
        openai.add_chat_reply("Hello, Bella's restaurant.")
        openai.add_chat_reply(
            tool_calls=[
                {"name": "check_availability", "arguments": {"party_size": 2, "time": "20:00"}}
            ]
        )
        openai.add_chat_reply("Yes, table twelve is free at eight. Try the gnocchi.")
        deepgram.transcripts.append("A table for two at eight please")
        env["RECORDING_PATH"] = str(recording)
        bot = EXAMPLES / "pipecat114-tools-agent" / "bot.py"
        with run_bot_process(tmp_path, ["-t", "twilio", "--insecure"], env, bot=bot) as runner:
            url = f"ws://127.0.0.1:{runner.port}/ws"
            async with SimulatedCall(url, "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), runner.output()
                asked_at = call.now()
                await call.say("A table for two at eight please")
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.8), runner.output()
                # On a loaded machine the caller may speak into the greeting: that turn's
                # "silence" can then be the cut greeting's, before the answer. Wait on.
                for _ in range(3):
                    if call.result().bot_speech_secs(asked_at + 1.0) > 1.0:
                        break
                    await call.wait_for_bot_turn(timeout=15, quiet_secs=0.8)
                await call.hang_up()
                result = call.result()
            for _ in range(50):
                if recording.exists():
                    break
                await __import__("asyncio").sleep(0.1)
            spoken = " ".join(m["transcript"] for m in cartesia.messages if "transcript" in m)
            output = runner.output()

    requests = openai.chat_requests
    # Greeting, the caller's turn (a tool call), the answer after the tool result. On a loaded
    # machine the caller may start before the greeting's end (a barge-in), which can add one.
    assert len(requests) in (3, 4), runner.output()
    asked = [
        i
        for i, r in enumerate(requests)
        if r["messages"][-1] == {"role": "user", "content": "A table for two at eight please"}
    ]
    assert asked and asked[0] + 1 < len(requests), runner.output()
    turn = asked[0]
    assert requests[turn]["tools"][0]["function"]["name"] == "check_availability"
    tool_message = requests[turn + 1]["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"]) == {"available": True, "table": 12}
    assert roles(requests[turn + 1]["messages"])[-2:] == ["assistant", "tool"]
    # The answer was spoken after the caller's turn ("Yes, table twelve is free at eight.").
    assert result.bot_speech_secs(asked_at + 1.0, result.duration) > 1.0, runner.output()
    assert recording.exists() and recording.stat().st_size > 44 + 8000 * 4  # > 1 s stereo
    # The bot's IPA pronunciations reach Cartesia as its inline phonemes, in place of the words.
    assert "<<n|j|ˈ|ɔ|k|i>>" in spoken and "gnocchi" not in spoken, spoken
    assert "<<b|ˈ|ɛ|l|ə|z>>" in spoken, spoken
    # The latency breakdown is logged after the turns: its parts and the total. (Speech
    # synthesis is left out when it took no time: with the local Cartesia fake on a loaded host,
    # the reply's start and its first audio can leave in the same tick.)
    assert "LLM inference" in output and "TOTAL" in output, output


async def test_dtmf_agent_hands_the_keys_to_the_llm(tmp_path: Path) -> None:
    async with fakes() as (openai, _deepgram, _cartesia, env):
        openai.add_chat_reply("Please type your account number, then pound.")
        openai.add_chat_reply(
            tool_calls=[{"name": "lookup_account", "arguments": {"account_number": "1234"}}]
        )
        openai.add_chat_reply("Your balance is 152 dollars and 40 cents.")
        bot = EXAMPLES / "pipecat114-dtmf-agent" / "bot.py"
        with run_bot_process(tmp_path, ["-t", "twilio", "--insecure"], env, bot=bot) as runner:
            url = f"ws://127.0.0.1:{runner.port}/ws"
            async with SimulatedCall(url, "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), runner.output()
                pressed_at = call.now()
                await call.press("1234#", gap=0.2)
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.8), runner.output()
                await call.hang_up()
                result = call.result()

    requests = openai.chat_requests
    assert len(requests) == 3, runner.output()
    assert requests[1]["messages"][-1] == {"role": "user", "content": "DTMF: 1234#"}
    tool_message = requests[2]["messages"][-1]
    assert json.loads(tool_message["content"]) == {"found": "yes", "balance": "152.40 dollars"}
    assert result.dtmf_sent == "1234#"
    assert result.bot_speech_secs(pressed_at + 0.8, result.duration) > 1.0
