"""Helpers for the example tests: import an example by path and serve it with local fakes."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from callpipe.runner.app import RunnerConfig, create_app
from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.server import running_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(relative: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``examples/<relative>`` as its own module, its folder on ``sys.path`` (as when
    it is run with ``python``), under a name no other example shares."""
    path = EXAMPLES / relative
    monkeypatch.syspath_prepend(str(path.parent))
    name = "example_" + relative.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


@dataclass
class Fakes:
    deepgram: FakeDeepgramServer
    openai: FakeOpenAIServer
    cartesia: FakeCartesiaServer

    def spoken(self) -> list[str]:
        """Every text the bot sent to the TTS, in order."""
        return [
            str(m["transcript"]).strip()
            for m in self.cartesia.messages
            if str(m.get("transcript") or "").strip()
        ]


@asynccontextmanager
async def provider_fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fakes]:
    """Deepgram, OpenAI and Cartesia fakes on loopback, exported as the examples read them."""
    async with (
        FakeDeepgramServer() as deepgram,
        FakeOpenAIServer() as openai,
        FakeCartesiaServer(secs_per_word=0.12) as cartesia,
    ):
        for name, value in {
            "DEEPGRAM_API_KEY": "test-key",
            "OPENAI_API_KEY": "test-key",
            "CARTESIA_API_KEY": "test-key",
            "CALLPIPE_DEEPGRAM_URL": deepgram.url,
            "OPENAI_BASE_URL": openai.base_url,
            "CALLPIPE_CARTESIA_URL": cartesia.url,
        }.items():
            monkeypatch.setenv(name, value)
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TELNYX_API_KEY", "PLIVO_AUTH_ID"):
            monkeypatch.delenv(name, raising=False)
        yield Fakes(deepgram, openai, cartesia)


@asynccontextmanager
async def serve_bot(bot: Any, transport: str) -> AsyncIterator[str]:
    """Serve ``bot`` under the runner as ``python bot.py -t TRANSPORT`` would, on loopback.

    ``insecure``: the simulator connects to ``/ws`` directly instead of fetching a tokenised
    stream URL from the webhook first.
    """
    app = create_app(bot, RunnerConfig(transport=transport, insecure=True))
    async with running_server(app) as addr:
        yield f"ws://{addr}/ws"
