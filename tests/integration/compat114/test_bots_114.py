"""Bots written in Pipecat 1.14 style run as real processes under the runner and hold a call.

Each bot (``bots/``) is started like a user would (``python bot.py -t PROVIDER ...``) and called
by the simulator speaking real (eSpeak NG) speech; Silero VAD runs in a ``VADProcessor``. One
bot per provider family: Twilio, Telnyx (with background audio from ``SoundfileMixer``), and
Plivo/Exotel (with RNNoise on the caller's audio).
"""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the silero extra")
pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.testing.simulator import CallIdentity, CallResult, SimulatedCall

from ..runner.harness import RunnerProcess, run_bot_process

pytestmark = pytest.mark.integration

BOTS = Path(__file__).parent / "bots"
NO_CREDS = {
    name: ""
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TELNYX_API_KEY",
        "TELNYX_PUBLIC_KEY",
        "PLIVO_AUTH_ID",
        "PLIVO_AUTH_TOKEN",
        "CALLPIPE_STREAM_SECRET",
    )
}


def reports(runner: RunnerProcess, event: str) -> list[dict[str, Any]]:
    return runner.reports(event)


async def echo_call(url: str, provider: str, identity: CallIdentity) -> CallResult:
    """Greeting, one utterance echoed back, then '#': goodbye and the bot hangs up."""
    async with SimulatedCall(url, provider, identity=identity) as call:
        assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), "no greeting"
        await call.say("Hello there, how are you today?")
        assert await call.wait_for_bot_speech(timeout=8), "no echo"
        assert await call.wait_for_bot_turn(timeout=12, quiet_secs=0.6)
        await call.press("#")
        assert await call.wait_for_hangup(timeout=10), "# did not end the call"
        return call.result()


def check_echo(result: CallResult) -> None:
    assert result.ended_by == "bot"
    [turn] = result.turns()
    assert turn.latency is not None and 0.0 < turn.latency < 2.5
    said = turn.caller_end - turn.caller_start
    echoed = result.bot_speech_secs(turn.caller_end, result.duration)
    assert echoed > said + 0.4  # "you said:" + the caller's own words + "goodbye"
    assert result.bot_speech_secs(0.0, turn.caller_start) > 0.5  # the greeting
    assert result.dtmf_sent == "#"


def run(tmp_path: Path, bot: str, provider: str) -> Any:
    args = ["-t", provider, "-x", "example.test", "--insecure"]
    return run_bot_process(tmp_path, args, NO_CREDS, bot=BOTS / bot)


async def test_twilio_bot(tmp_path: Path) -> None:
    identity = CallIdentity(stream_id="MZ114", call_id="CA114")
    with run(tmp_path, "twilio_bot.py", "twilio") as runner:
        result = await echo_call(f"ws://127.0.0.1:{runner.port}/ws", "twilio", identity)
        check_echo(result)
        [seen] = reports(runner, "bot")
        assert seen == {"event": "bot", "transport_type": "twilio", "stream_id": "MZ114"}
        [finished] = await_report(runner, "finished")
    assert finished["frame"] == "EndFrame"  # EndWorkerFrame became a graceful end
    assert finished["turns"] == 1  # the BaseObserver saw the caller's one turn


async def test_telnyx_bot_with_background_audio(tmp_path: Path) -> None:
    identity = CallIdentity(stream_id="st-114", call_id="v3:telnyx-114")
    with run(tmp_path, "telnyx_bot.py", "telnyx") as runner:
        result = await echo_call(f"ws://127.0.0.1:{runner.port}/ws", "telnyx", identity)
        check_echo(result)
        [seen] = reports(runner, "bot")
        assert seen["call_control_id"] == "v3:telnyx-114"
        assert seen["outbound_encoding"] == "PCMU"
        [finished] = await_report(runner, "finished")
    assert finished["frame"] == "EndFrame"
    # Between the greeting and the caller's words the line carries the quiet hum, not silence.
    [turn] = result.turns()
    bot = bot_track(result)
    gap = bot[int((turn.caller_start - 0.6) * 8000) : int((turn.caller_start - 0.1) * 8000)]
    level = 20 * np.log10(np.sqrt(np.mean(gap.astype(np.float64) ** 2)) / 32768 + 1e-12)
    assert -65.0 < level < -45.0


@pytest.mark.parametrize("provider", ["plivo", "exotel"])
async def test_plivo_exotel_bot_with_noise_filter(tmp_path: Path, provider: str) -> None:
    pytest.importorskip("pyrnnoise", reason="needs the rnnoise extra")
    identity = CallIdentity(stream_id="s-114", call_id=f"{provider}-call-114")
    with run(tmp_path, "plivo_exotel_bot.py", provider) as runner:
        result = await echo_call(f"ws://127.0.0.1:{runner.port}/ws", provider, identity)
        check_echo(result)
        [seen] = reports(runner, "bot")
        assert seen == {"event": "bot", "transport_type": provider, "call_id": identity.call_id}
        [finished] = await_report(runner, "finished")
    assert finished["frame"] == "EndFrame"


def bot_track(result: CallResult) -> np.ndarray:  # type: ignore[type-arg]
    with wave.open(io.BytesIO(result.stereo_wav())) as wav:
        frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 1]


def await_report(runner: RunnerProcess, event: str) -> list[dict[str, Any]]:
    """The bot reports 'finished' right after the call; give it a moment to be written."""
    for _ in range(100):
        found = reports(runner, event)
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} report; runner output:\n{runner.output()[-3000:]}")
