"""The built-in demo bot, served by the real runner app on uvicorn, called by the simulator.

Real speech (eSpeak NG) goes in, real Silero VAD finds the turns, and the simulator checks what a
caller would hear: the greeting, "you said:" + their own words after they stop, keys read out,
barge-in (a clear, and the reply stops), goodbye + hang-up on ``#`` and on session timeout — for
every provider dialect the runner detects on ``/ws``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the demo bot needs the silero extra")
pytest.importorskip("espeakng_loader", reason="the demo bot needs the espeak extra")

from callpipe.demo.bot import bot
from callpipe.runner.app import RunnerConfig, create_app
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallEvent, CallResult, SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

pytestmark = pytest.mark.integration

GREETING = "Hello! This is the demo."


@asynccontextmanager
async def demo_server(session_timeout: float = 0.0) -> AsyncIterator[str]:
    cli_args = argparse.Namespace(greeting=GREETING, session_timeout=session_timeout, echo=True)
    app = create_app(bot, RunnerConfig(insecure=True, cli_args=cli_args))
    async with running_server(app) as addr:
        yield f"ws://{addr}/ws"


def bot_speech(result: CallResult, start: float, end: float) -> float:
    return result.bot_speech_secs(start, end)


async def greeted_then_goodbye(provider: str = "twilio", **call_args: Any) -> CallResult:
    """One call to the demo bot in ``provider``'s dialect: it greets, the caller presses ``#``,
    the bot says goodbye and hangs up (all asserted here)."""
    async with demo_server() as url, SimulatedCall(url, provider, **call_args) as call:
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.5), "no greeting"
        await call.press("#")
        assert await call.wait_for_hangup(timeout=8)
        result = call.result()
    assert result.bot_speech_secs(0.0, 3.0) > 0.8
    assert result.ended_by == "bot"
    return result


async def barge_in(call: SimulatedCall) -> tuple[float, CallEvent, float]:
    """The caller talks over the bot's echo of a long sentence: when they started, the clear
    the bot sent (asserted), when they stopped."""
    assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
    await call.say("This is a long sentence that the demo bot will say back to me, slowly.")
    assert await call.wait_for_bot_speech(timeout=5)
    await call.pause(1.2)  # the echo is playing
    barge_at = call.now()
    await call.say("Stop, please.", wait=False)
    clear = await call.wait_for_event("clear", timeout=3)
    assert clear is not None, "barge-in produced no clear"
    while call.caller_speaking:
        await call.pause(0.05)
    return barge_at, clear, call.now()


@virtual_time
async def test_greeting_echo_dtmf_and_pound_hang_up() -> None:
    async with demo_server() as url, SimulatedCall(url, "twilio") as call:
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6), "no greeting"
        said_at = call.now()
        await call.say("Hello there, how are you today?")
        said_end = call.now()
        assert await call.wait_for_bot_speech(timeout=5), "no echo"
        assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
        dtmf_at = call.now()
        await call.press("5")
        assert await call.wait_for_bot_turn(timeout=6, quiet_secs=0.6), "key not read out"
        pound_at = call.now()
        await call.press("#")
        assert await call.wait_for_hangup(timeout=8), "# did not end the call"
        result = call.result()

    assert result.ended_by == "bot" and result.close_code == 1000
    # Greeting: speech right after connecting, before the caller said anything.
    assert bot_speech(result, 0.0, said_at) > 0.8
    # Echo: after the caller stopped, "you said:" (~0.7 s) plus their own ~2 s of speech.
    [turn] = result.turns()
    assert turn.caller_start == pytest.approx(said_at, abs=0.3)
    assert turn.latency is not None and 0.0 < turn.latency < 2.0
    utterance = turn.caller_end - turn.caller_start
    assert bot_speech(result, said_end, dtmf_at) > utterance + 0.4
    assert bot_speech(result, said_at, turn.caller_end) < 0.05  # silent while the caller talks
    # "You pressed 5." then "Goodbye!" after #, then the hang-up.
    assert bot_speech(result, dtmf_at, pound_at) > 0.5
    assert bot_speech(result, pound_at, result.duration) > 0.3
    assert result.dtmf_sent == "5#"

    # The stereo recording has the same regions: caller left, bot right.
    import io
    import wave

    with wave.open(io.BytesIO(result.stereo_wav())) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    caller_start, caller_end = int(turn.caller_start * 8000), int(turn.caller_end * 8000)
    assert np.abs(frames[caller_start:caller_end, 0]).max() > 3000
    assert np.abs(frames[: int(said_at * 8000), 1]).max() > 3000  # greeting on the right
    assert np.abs(frames[: int(said_at * 8000), 0]).max() == 0  # caller silent meanwhile


@virtual_time
async def test_barge_in_clears_and_stops_the_reply() -> None:
    async with demo_server() as url, SimulatedCall(url, "twilio") as call:
        barge_at, clear, barge_end = await barge_in(call)
        await call.wait_for_bot_turn(timeout=8, quiet_secs=0.6)
        result = call.result()

    assert barge_at < clear.t < barge_at + 1.5
    assert "dropped" in clear.detail
    # The interrupted reply stops at the clear: nothing plays while the caller keeps talking.
    assert bot_speech(result, clear.t + 0.1, barge_end) < 0.1
    interrupted = [t for t in result.turns() if t.clear_at is not None]
    assert interrupted and interrupted[0].interrupt_latency is not None


@virtual_time
async def test_session_timeout_says_goodbye_and_hangs_up() -> None:
    async with demo_server(session_timeout=2.5) as url, SimulatedCall(url, "twilio") as call:
        assert await call.wait_for_hangup(timeout=10)
        result = call.result()
    assert result.ended_by == "bot"
    assert 2.5 < result.duration < 7.0
    assert result.bot_speech_secs(2.4, result.duration) > 0.5  # "Our time is up. Goodbye!"


@pytest.mark.parametrize("provider", ["telnyx", "plivo", "exotel", "vonage"])
@virtual_time
async def test_every_provider_dialect_is_answered(provider: str) -> None:
    await greeted_then_goodbye(provider)
