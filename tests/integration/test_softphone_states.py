"""The softphone page's states in headless Chromium: no microphone, a live call with the
transcript side channel, hang-up releasing the microphone, a failed bot, readable end states.

Screenshots of each state go to ``$CALLPIPE_SCREENSHOTS`` when set (to look at them), else to
the test's temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

pytest.importorskip("onnxruntime", reason="the demo bot needs the silero extra")
pytest.importorskip("espeakng_loader", reason="the demo bot needs the espeak extra")

from callpipe.demo.bot import bot as demo_bot
from callpipe.errors import ConfigurationError
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.types import RunnerArguments
from callpipe.testing.server import running_server

from .browser import CHROMIUM, devtools_page
from .test_softphone import fake_microphone as fake_mic
from .test_softphone import write_mic_wav

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)"
    ),
]


@contextlib.asynccontextmanager
async def browser(url: str, tmp: Path, extra: Sequence[str]) -> AsyncIterator[Page]:
    """Headless Chromium on ``url`` (with ``extra`` flags); yields the page's CDP client."""
    async with devtools_page(
        url, tmp, page_path="/phone", window="520,760", extra=extra
    ) as page_ws:
        async with connect(page_ws, max_size=2**24) as ws:
            yield Page(ws, tmp)


class Page:
    """Minimal CDP client: evaluate JavaScript, poll the page's stats, take screenshots."""

    def __init__(self, ws: Any, tmp: Path) -> None:
        self.ws = ws
        self.next_id = 0
        self.shots = Path(os.environ.get("CALLPIPE_SCREENSHOTS") or tmp)
        self.shots.mkdir(parents=True, exist_ok=True)

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == self.next_id:
                return dict(reply.get("result", {}))

    async def eval(self, expression: str) -> Any:
        result = await self.command("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    async def stats(self) -> dict[str, Any]:
        raw = await self.eval("JSON.stringify(window.softphone ? window.softphone.stats : {})")
        stats = dict(json.loads(raw or "{}"))
        stats["buttons"] = await self.eval(
            "[document.getElementById('call').disabled, document.getElementById('hangup').disabled]"
        )
        return stats

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

    async def screenshot(self, name: str) -> Path:
        data = await self.command("Page.captureScreenshot", format="png")
        path = self.shots / f"softphone-{name}.png"
        path.write_bytes(base64.b64decode(data["data"]))
        return path


FAKE_UI = "--use-fake-ui-for-media-stream"  # grant the permission prompt


async def test_no_microphone_says_so_and_recovers(tmp_path: Path) -> None:
    async def bot(runner_args: RunnerArguments) -> None:
        raise AssertionError("no call can start without a microphone")

    app = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials())
    async with running_server(app) as addr:
        async with browser(f"http://{addr}/phone?autostart=1", tmp_path, [FAKE_UI]) as page:
            stats = await page.wait(lambda s: s.get("state") == "error", timeout=15)
            await page.screenshot("no-microphone")
            assert "No microphone found" in stats["status"], stats
            assert stats["buttons"] == [False, True]  # Call enabled again, Hang up disabled
            assert stats["micLive"] is False
            # Press Call again: the same clear message, not a stuck page.
            await page.eval("document.getElementById('status').textContent = ''")
            await page.eval("document.getElementById('call').click()")
            stats = await page.wait(
                lambda s: s.get("state") == "error" and "No microphone" in s.get("status", ""),
                timeout=10,
            )
            assert "No microphone found" in stats["status"] and stats["buttons"] == [False, True]
            shade = await page.eval("getComputedStyle(document.getElementById('hangup')).opacity")
            assert float(shade) < 0.5  # a disabled button looks disabled


async def test_live_transcript_latency_and_hang_up_releases_the_microphone(
    tmp_path: Path,
) -> None:
    mic = tmp_path / "mic.wav"
    write_mic_wav(mic)
    cli_args = argparse.Namespace(greeting="Hello! This is the demo.", session_timeout=0)
    app = create_app(demo_bot, RunnerConfig(insecure=True, cli_args=cli_args))
    async with running_server(app) as addr:
        url = f"http://{addr}/phone?autostart=1"
        async with browser(url, tmp_path, fake_mic(mic)) as page:
            stats = await page.wait(lambda s: s.get("state") == "in call", timeout=20)
            assert stats["buttons"] == [True, False], stats
            assert await page.eval("window.softphone.micLive()") is True
            keys = "[...document.querySelectorAll('#keys button')].every(b => !b.disabled)"
            assert await page.eval(keys) is True  # the keypad works during the call
            # The greeting's text arrives on the side channel once it has played; the echo
            # of the fake microphone's sentence gives a turn with a latency.
            stats = await page.wait(lambda s: len(s.get("latencies", [])) >= 1, timeout=25)
            await page.screenshot("in-call")
            bot_lines = [t["text"] for t in stats["transcript"] if t["role"] == "bot"]
            assert bot_lines and "This is the demo" in bot_lines[0], stats["transcript"]
            assert 0.0 < stats["latencies"][0] < 5.0
            log_text = await page.eval("document.getElementById('log').innerText")
            assert "Bot:" in log_text and "Reply after" in log_text
            await page.eval("window.softphone.hangUp()")
            stats = await page.wait(lambda s: s.get("state") == "ended", timeout=5)
            await page.screenshot("hung-up")
            assert stats["status"] == "Call ended. You hung up."
            assert stats["buttons"] == [False, True]
            assert await page.eval("window.softphone.micLive()") is False  # tracks stopped
            idle_keys = "[...document.querySelectorAll('#keys button')].every(b => b.disabled)"
            assert await page.eval(idle_keys) is True


async def test_failed_bot_shows_a_readable_reason(tmp_path: Path) -> None:
    mic = tmp_path / "mic.wav"
    write_mic_wav(mic)

    async def bot(runner_args: RunnerArguments) -> None:
        raise ConfigurationError("TwilioFrameSerializer: missing auth_token")

    app = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials())
    async with running_server(app) as addr:
        url = f"http://{addr}/phone?autostart=1"
        async with browser(url, tmp_path, fake_mic(mic)) as page:
            stats = await page.wait(lambda s: s.get("closeCode") is not None, timeout=15)
            stats = await page.wait(lambda s: s.get("state") == "error", timeout=5)
            await page.screenshot("bot-failed")
    assert stats["closeCode"] == 1011
    assert stats["status"].startswith("The bot failed during the call (bot failed: Configuration")
    assert "missing auth_token" in stats["status"]
    assert stats["buttons"] == [False, True] and stats["micLive"] is False


async def test_unreachable_and_refused_calls_read_as_such(tmp_path: Path) -> None:
    from callpipe.testing.server import free_port

    mic = tmp_path / "mic.wav"
    write_mic_wav(mic)

    async def bot(runner_args: RunnerArguments) -> None:
        return None

    local = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials())
    secure = create_app(bot, RunnerConfig(proxy="bot.example"), credentials=Credentials())
    async with running_server(local) as addr, running_server(secure) as secure_addr:
        targets = {
            "unreachable": f"ws://127.0.0.1:{free_port()}/ws",
            "refused": f"ws://{secure_addr}/ws",  # production mode: needs a stream token
        }
        seen: dict[str, dict[str, Any]] = {}
        for name, ws_url in targets.items():
            url = f"http://{addr}/phone?autostart=1&ws={ws_url}"
            async with browser(url, tmp_path / name, fake_mic(mic)) as page:
                seen[name] = await page.wait(lambda s: s.get("state") == "error", timeout=15)
                await page.screenshot(name)
    assert seen["unreachable"]["status"].startswith("Could not reach the bot at ws://127.0.0.1:")
    assert seen["refused"]["closeCode"] == 4003
    assert "Restart the bot without -x" in seen["refused"]["status"]
    for stats in seen.values():
        assert stats["buttons"] == [False, True] and stats["micLive"] is False
