"""The call inspector (``/calls``) in headless Chromium: a live call, then its record.

A simulated caller talks to the fake-services bot through the runner (local mode, recording on)
while Chromium shows ``/calls``; the DOM is asserted while the call is live and after it ended.
Screenshots go to ``$CALLPIPE_SCREENSHOTS`` when set (to look at them), else to the test's
temporary directory. Also: outside local mode the JSON routes need the API key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.types import RunnerArguments
from callpipe.testing.server import running_server

from ..browser import CHROMIUM, devtools_page

pytestmark = pytest.mark.integration


class Page:
    """Minimal Chrome DevTools client: evaluate JavaScript, take screenshots."""

    def __init__(self, ws: Any, shots: Path) -> None:
        self.ws = ws
        self.next_id = 0
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)

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

    async def until(self, expression: str, timeout: float = 10.0) -> Any:  # noqa: ASYNC109
        """Poll ``expression`` until it is truthy (the page polls its API once a second)."""
        value: Any = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not value:
                    value = await self.eval(expression)
                    if not value:
                        await asyncio.sleep(0.2)
        return value

    async def screenshot(self, name: str) -> Path:
        data = await self.command("Page.captureScreenshot", format="png")
        path = self.shots / f"calls-{name}.png"
        path.write_bytes(base64.b64decode(data["data"]))
        return path


@contextlib.asynccontextmanager
async def chromium(url: str, tmp: Path) -> AsyncIterator[Page]:
    shots = Path(os.environ.get("CALLPIPE_SCREENSHOTS") or tmp)
    async with devtools_page(url, tmp, page_path="/calls", window="1400,1000") as page_ws:
        async with connect(page_ws, max_size=2**25) as ws:
            yield Page(ws, shots)


def count(selector: str) -> str:
    return f"document.querySelectorAll({json.dumps(selector)}).length"


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (apt-get install chromium)")
async def test_inspector_shows_a_live_call_then_its_record(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="needs the silero extra")
    pytest.importorskip("espeakng_loader", reason="needs the espeak extra")
    from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
    from callpipe.testing.simulator import SimulatedCall

    from .test_call_records import GREETING, LONG_ANSWER, REQUEST, make_bot

    async with (
        FakeDeepgramServer() as deepgram,
        FakeOpenAIServer() as openai,
        FakeCartesiaServer(secs_per_word=0.25, chunk_delay=0.03) as cartesia,
    ):
        openai.add_chat_reply(GREETING)
        openai.add_chat_reply(tool_calls=[{"name": "check_table", "arguments": {"party": 2}}])
        openai.add_chat_reply(LONG_ANSWER)
        openai.add_chat_reply("Sure.")
        deepgram.transcripts.extend([REQUEST, "stop please"])
        bot = make_bot(deepgram.url, openai.base_url, cartesia.url, [])
        config = RunnerConfig(insecure=True, records_dir=str(tmp_path / "rec"), recording=True)
        app = create_app(bot, config, credentials=Credentials())
        async with running_server(app) as host:
            async with chromium(f"http://{host}/calls", tmp_path) as page:
                assert await page.until(
                    "document.getElementById('status').textContent.includes('0 live')"
                )
                async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
                    assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
                    await call.say(REQUEST)
                    assert await call.wait_for_bot_speech(timeout=10)
                    # Live: the call is listed with its state; its timeline grows.
                    assert await page.until(count("#live-calls tbody tr[data-id]") + " === 1")
                    await page.eval(
                        "location.hash = document.querySelector("
                        "'#live-calls tbody tr[data-id]').dataset.id"
                    )
                    assert await page.until(count("#timeline rect.caller") + " >= 1")
                    assert await page.until(count("#timeline rect.bot") + " >= 2")
                    state = await page.eval("document.getElementById('call-state').textContent")
                    assert state in ("bot speaking", "listening")
                    assert await page.eval("document.getElementById('call-end').textContent") == (
                        "(live)"
                    )
                    assert await page.eval(count("#recent-calls tbody tr[data-id]")) == 0
                    await page.screenshot("live")
                    await call.pause(1.0)
                    await call.say("Stop please", wait=False)
                    assert await call.wait_for_event("clear", timeout=5) is not None
                    assert await call.wait_for_bot_turn(timeout=10, quiet_secs=0.6)
                    await call.press("5")
                    await call.pause(0.3)
                    await call.hang_up()
                # Ended: in the recent list, with the whole record drawn.
                assert await page.until(count("#recent-calls tbody tr[data-id]") + " === 1")
                assert await page.until(
                    "document.getElementById('call-end').textContent.startsWith('caller')"
                )
                assert await page.eval(count("#live-calls tbody tr[data-id]")) == 0
                assert await page.until(count("#transcript li.bot-line") + " === 3")
                lines = await page.eval(
                    "[...document.querySelectorAll('#transcript li')].map(li => li.textContent)"
                )
                assert any(REQUEST in line for line in lines)
                assert any("check_table" in line for line in lines)
                unheard = await page.eval(
                    "document.querySelector('#transcript .unheard').textContent"
                )
                assert unheard and LONG_ANSWER.endswith(unheard.strip())
                assert await page.eval(count("#timeline rect.caller")) == 2
                assert await page.eval(count("#timeline rect.bot")) == 3
                assert await page.eval(count("#timeline rect.bot.cut")) == 1
                assert await page.eval(count("#timeline line.interruption")) == 1
                assert await page.eval(count("#timeline g.dtmf")) == 1
                assert await page.eval(count("#timeline .latency-label")) == 2
                assert await page.eval(count("#latency tbody tr")) == 3
                assert await page.until("document.getElementById('player') !== null")
                assert await page.until(
                    "document.getElementById('player').readyState >= 1 && "
                    "document.getElementById('player').duration > 5"
                )
                await page.screenshot("ended")


async def test_records_api_needs_the_key_outside_local_mode() -> None:
    async def bot(runner_args: RunnerArguments) -> None:
        return None

    config = RunnerConfig(proxy="bot.example", records=True)
    app = create_app(bot, config, credentials=Credentials(api_key="s3cret"))
    async with running_server(app) as host, httpx.AsyncClient() as client:
        page = await client.get(f"http://{host}/calls")
        assert page.status_code == 200 and "callpipe" in page.text  # the page holds no data
        assert (await client.get(f"http://{host}/calls/api")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.get(f"http://{host}/calls/api", headers=wrong)).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        listing = await client.get(f"http://{host}/calls/api", headers=good)
        assert listing.status_code == 200 and listing.json()["live"] == []
        missing = await client.get(f"http://{host}/calls/api/abc", headers=good)
        assert missing.status_code == 404


async def test_no_inspector_when_records_are_off() -> None:
    async def bot(runner_args: RunnerArguments) -> None:
        return None

    app = create_app(bot, RunnerConfig(proxy="bot.example"), credentials=Credentials())
    async with running_server(app) as host, httpx.AsyncClient() as client:
        # No inspector: the page and its data are not served (GET /calls/<id> is the outbound
        # dial status route, which wants the API key; GET /calls is not a route at all).
        assert (await client.get(f"http://{host}/calls/api")).status_code in (403, 404)
        assert (await client.get(f"http://{host}/calls")).status_code in (404, 405)
