"""examples/dtmf_menu: keys pick prompts, a key cuts the prompt off, * says goodbye and ends."""

from __future__ import annotations

import pytest

from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

from .helpers import load_example, provider_fakes, serve_bot

pytestmark = pytest.mark.integration


@virtual_time
async def test_keypad_menu_over_a_simulated_call(monkeypatch: pytest.MonkeyPatch) -> None:
    example = load_example("dtmf_menu/bot.py", monkeypatch)
    async with provider_fakes(monkeypatch) as fakes:
        async with serve_bot(example.bot, "twilio") as url:
            async with SimulatedCall(url, "twilio") as call:
                assert await call.wait_for_bot_speech(timeout=10), "no menu"
                await call.pause(0.5)
                await call.press("1")  # while the menu is still playing
                clear = await call.wait_for_event("clear", timeout=5)
                assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.4)
                await call.press("2")
                await call.pause(0.3)
                await call.press("1234#", gap=0.1)
                assert await call.wait_for_bot_speech(timeout=10)
                await call.press("7")  # no such option
                await call.pause(0.3)
                await call.press("*")
                assert await call.wait_for_hangup(timeout=10), "the bot did not hang up"
                result = call.result()

    assert clear is not None, "a key did not cut off the prompt"
    spoken = fakes.spoken()
    assert spoken[0] == example.MENU and spoken[1] == example.HOURS
    assert spoken[2] == example.ENTER_BOOKING
    assert spoken[3].startswith("Booking 1 2 3 4 is a table for two")
    assert spoken[4].startswith(example.NOT_UNDERSTOOD)
    assert spoken[-1] == example.GOODBYE
    assert result.hung_up_by_bot
    # The goodbye was played before the hang-up, not dropped.
    star = result.events_of("dtmf")[-1].t
    assert result.bot_speech_secs(star, result.duration) > 0.5
