"""A 1.14-style bot with ``LocalSmartTurnAnalyzerV3`` holds a real call (simulator, eSpeak speech).

The bot keeps callpipe's default VAD (``stop_secs`` 0.8 s; the analyzer shows the model only
200 ms of it). The caller first trails off ("Can you tell me um", which the model scores far
below 0.5 on eSpeak at 8 kHz), pauses for a second, then finishes ("how much it costs"): the
model holds the turn open across the pause, so the LLM gets ONE user message with both parts
(a plain VAD turn would have answered after the first part). Providers: the local fakes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.testing.simulator import SimulatedCall
from unit.audio.smart_turn_model import smart_turn_model

from ..runner.harness import run_bot_process
from .test_example_agents import fakes

pytestmark = pytest.mark.integration

BOT = Path(__file__).parent / "bots" / "smart_turn_bot.py"


async def test_smart_turn_holds_a_trailing_off_turn(tmp_path: Path) -> None:
    model = smart_turn_model()
    async with fakes() as (openai, deepgram, _cartesia, env):
        openai.add_chat_reply("Hello, the shop.")
        openai.add_chat_reply("We open at nine.")
        deepgram.transcripts.extend(["Can you tell me um", "how much it costs"])
        env["CALLPIPE_SMART_TURN_MODEL"] = str(model)
        with run_bot_process(tmp_path, ["-t", "twilio", "--insecure"], env, bot=BOT) as runner:
            url = f"ws://127.0.0.1:{runner.port}/ws"
            async with SimulatedCall(url, "twilio") as call:
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), runner.output()
                await call.say("Can you tell me um")
                await call.pause(1.0)
                await call.say("how much it costs")
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.8), runner.output()
                await call.hang_up()
            for _ in range(30):
                if runner.reports("user_turn"):
                    break
                await asyncio.sleep(0.1)
            verdicts = runner.reports("verdict")
            turns = runner.reports("user_turn")

    requests = openai.chat_requests
    assert len(requests) == 2, (verdicts, turns, runner.output())
    assert requests[1]["messages"][-1] == {
        "role": "user",
        "content": "Can you tell me um how much it costs",
    }
    assert [t["strategy"] for t in turns] == ["TurnAnalyzerUserTurnStopStrategy"]
    assert all(0.0 <= v["probability"] <= 1.0 for v in verdicts)
    # "Can you tell me um" held open (p = 0.02 measured), then the whole turn complete (0.96):
    # the model, not the 3 s fallback, ended it.
    assert [v["complete"] for v in verdicts] == [False, True], verdicts
