"""The softphone page (GET /phone) in headless Chromium, with a fake microphone fed from a WAV
file, talking to the demo bot through the runner exactly as Twilio would.

Driven over the Chrome DevTools protocol with the ``websockets`` library (no browser-automation
dependency). Skipped when no Chromium is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

pytest.importorskip("onnxruntime", reason="the demo bot needs the silero extra")
pytest.importorskip("espeakng_loader", reason="the demo bot needs the espeak extra")

from callpipe.audio.espeak import synthesize
from callpipe.demo.bot import bot
from callpipe.runner.app import RunnerConfig, create_app
from callpipe.testing.server import running_server

from .browser import CHROMIUM, devtools_page

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)"
    ),
]

GREETING = "Hello! This is the demo."


def write_mic_wav(path: Path) -> float:
    """1 s silence, a sentence, 3 s silence (Chromium loops the file); returns speech secs."""
    rate = 16000
    speech = synthesize("Hello, can you hear me?", rate)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(2 * rate) + speech + bytes(6 * rate))
    return len(speech) / (2 * rate)


def chromium(url: str, tmp: Path, mic_wav: Path) -> contextlib.AbstractAsyncContextManager[str]:
    """Headless Chromium on ``url`` with ``mic_wav`` as its microphone; yields the page's
    DevTools WebSocket URL."""
    return devtools_page(url, tmp, page_path="/phone", extra=fake_microphone(mic_wav))


def fake_microphone(wav: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]


class Page:
    """Minimal CDP client: evaluate JavaScript in the page."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def eval(self, expression: str) -> Any:
        self.next_id += 1
        await self.ws.send(
            json.dumps(
                {
                    "id": self.next_id,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "returnByValue": True},
                }
            )
        )
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                return reply.get("result", {}).get("result", {}).get("value")

    async def stats(self) -> dict[str, Any]:
        raw = await self.eval("JSON.stringify(window.softphone ? window.softphone.stats : {})")
        return dict(json.loads(raw or "{}"))

    async def wait(self, predicate: Any, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        stats: dict[str, Any] = {}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while True:  # polling the browser: there is no event to wait on
                    stats = await self.stats()
                    if predicate(stats):
                        break
                    await asyncio.sleep(0.2)
        return stats


async def test_softphone_page_talks_to_the_demo_bot(tmp_path: Path) -> None:
    mic = tmp_path / "mic.wav"
    speech_secs = write_mic_wav(mic)
    cli_args = argparse.Namespace(greeting=GREETING, session_timeout=0, echo=True)
    app = create_app(bot, RunnerConfig(insecure=True, cli_args=cli_args))
    async with running_server(app) as addr:
        async with httpx.AsyncClient() as client:
            page_html = (await client.get(f"http://{addr}/phone")).text
        assert "callpipe softphone" in page_html
        url = f"http://{addr}/phone?autostart=1"
        async with chromium(url, tmp_path, mic) as page_ws, connect(page_ws) as ws:
            page = Page(ws)
            # The call starts, the microphone streams, and the greeting arrives.
            stats = await page.wait(lambda s: s.get("botVoicedPackets", 0) > 20, timeout=20)
            assert stats.get("state") == "in call", stats
            assert stats["mediaSent"] > 0
            greeting_secs = stats["botAudioSecs"]
            # The fake microphone's sentence is echoed back: "you said:" + the sentence.
            stats = await page.wait(
                lambda s: s.get("botAudioSecs", 0) > greeting_secs + speech_secs + 0.5,
                timeout=20,
            )
            assert stats["botAudioSecs"] > greeting_secs + speech_secs + 0.5, stats
            assert stats["mediaSent"] > 100  # ~50 packets/s from the microphone
            assert stats["marksAcked"] > 0  # playback marks echoed after playout
            # A key from the page's keypad: # says goodbye and the bot hangs up.
            await page.eval("window.softphone.press('#')")
            stats = await page.wait(lambda s: s.get("closeCode") is not None, timeout=15)
            assert stats.get("closeCode") == 1000, stats
            assert stats["dtmfSent"] == "#"
