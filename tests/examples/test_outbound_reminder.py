"""examples/outbound_reminder: a person hears the reminder, a voicemail the message after the beep.

The runner (local mode) holds a dial record for the simulated call, as ``POST /calls`` would
have left it, so the dial's metadata reaches the bot; the callee is one of the simulator's
personas.
"""

from __future__ import annotations

import asyncio

import pytest

from callpipe.runner.app import RunnerConfig, create_app
from callpipe.telephony.dial.types import CallHandle
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallIdentity, CallResult, SimulatedCall
from callpipe.testing.simulator.personas import PERSONAS
from callpipe.testing.virtual_calls import virtual_time

from .helpers import load_example, provider_fakes

pytestmark = pytest.mark.integration

pytest.importorskip("espeakng_loader", reason="the personas speak with eSpeak NG")


async def call_with(persona: str, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], CallResult]:
    example = load_example("outbound_reminder/bot.py", monkeypatch)
    async with provider_fakes(monkeypatch) as fakes:
        app = create_app(example.bot, RunnerConfig(transport="twilio", insecure=True))
        await app.state.runner.dials.add(
            CallHandle(
                "twilio",
                "CAreminder",
                "dial-1",
                "+15551234567",
                metadata={"name": "Ada", "when": "tomorrow at ten"},
            )
        )
        async with running_server(app) as addr:
            identity = CallIdentity(call_id="CAreminder")
            async with SimulatedCall(f"ws://{addr}/ws", "twilio", identity=identity) as call:
                callee = asyncio.create_task(PERSONAS[persona].answer(call))
                await call.wait_for_hangup(timeout=20)
                callee.cancel()
                result = call.result()
        return fakes.spoken(), result


@virtual_time
async def test_a_person_hears_the_reminder_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    spoken, result = await call_with("human", monkeypatch)
    assert spoken == [
        "Hi Ada, this is Luigi's. Just a reminder of your table tomorrow at ten. "
        "See you then, goodbye!"
    ]
    hello_end = result.caller_regions()[0][1]
    assert result.bot_regions()[0][0] > hello_end
    assert result.hung_up_by_bot


@virtual_time
async def test_a_voicemail_gets_the_message_after_the_beep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spoken, result = await call_with("voicemail", monkeypatch)
    beep_end = await PERSONAS["voicemail"].beep_end(8000)
    assert beep_end is not None
    # The reminder went to the TTS but was held, then dropped; only the message was heard.
    assert spoken[-1].startswith("Hi Ada, this is Luigi's with a reminder")
    assert result.bot_speech_secs(0.0, beep_end) < 0.05
    assert result.bot_speech_secs(beep_end, result.duration) > 1.0
    assert result.hung_up_by_bot
