"""The README's "Write your own bot" file, run as written in local mode with no Twilio
credentials: the call stays up until the caller hangs up (it used to fail at once)."""

from __future__ import annotations

import re
import types
from pathlib import Path
from typing import Any

import pytest

from callpipe.frames.frames import Frame
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.testing.server import running_server
from callpipe.testing.simulator.call import SimulatedCall

pytest.importorskip("onnxruntime", reason="the README bot uses Silero VAD")

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[3] / "README.md"


class Passthrough(FrameProcessor):
    """Stands in for the README's services (stt, llm, tts, the context aggregators)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class Aggregators:
    def user(self) -> FrameProcessor:
        return Passthrough()

    def assistant(self) -> FrameProcessor:
        return Passthrough()


def readme_bot_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    source = next(b for b in blocks if "async def bot(runner_args" in b)
    module = types.ModuleType("readme_bot")
    module.__dict__.update(
        stt=Passthrough(), llm=Passthrough(), tts=Passthrough(), context_aggregator=Aggregators()
    )
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    exec(compile(source, str(README), "exec"), module.__dict__)  # our own README
    return module


async def test_readme_bot_takes_a_local_call_without_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bot: Any = readme_bot_module(monkeypatch).bot
    app = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials())
    async with running_server(app) as host:
        async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
            assert not await call.wait_for_hangup(timeout=2.0), call.result().timeline()
    result = call.result()
    assert result.ended_by == "caller" and result.duration >= 2.0
