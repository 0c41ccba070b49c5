"""Telnyx warm transfer with the caller on hold, on a real server with the call simulator.

The REST fake stands in for Call Control (Bearer key checked) and, through ``wait_for``, for the
webhooks (``call.answered`` after the agent's ring time, ``call.speak.ended`` after the speak).
When it sees ``streaming_stop`` it ends the caller's stream, as Telnyx does.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from fastapi import FastAPI, Request, Response, WebSocket

from callpipe.providers.telnyx.warm_transfer import telnyx_warm_transfer
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.telephony.dial.warm_transfer import WarmTransferResult
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time

from .call_bot import call_bot
from .test_warm_transfer_hold import hold_then_transfer, music_share, quiet_windows, rms, window

pytestmark = pytest.mark.integration

OK = '{"data": {"result": "ok"}}'


@dataclass
class FakeTelnyx:
    answers: bool
    ring_secs: float
    requests: list[tuple[str, Any]] = field(default_factory=list)
    bad_auth: int = 0
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    speak_ended: asyncio.Event = field(default_factory=asyncio.Event)
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    stream_stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v2/{path:path}")
        async def command(path: str, request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer KEY":
                self.bad_auth += 1
                return Response(status_code=401)
            body = json.loads(await request.body())
            self.requests.append(("/v2/" + path, body))
            loop = asyncio.get_running_loop()
            if path == "calls":
                if self.answers:
                    loop.call_later(self.ring_secs, self.answered.set)
                return Response('{"data": {"call_control_id": "agent-1"}}')
            if path.endswith("/speak"):
                loop.call_later(0.5, self.speak_ended.set)
            elif path.endswith("/bridge"):
                self.decided.set()
            elif path.endswith("/streaming_stop"):
                self.stream_stopped.set()
            return Response(OK, media_type="application/json")

        return app

    async def wait_for(self, call_id: str, event: str) -> bool:
        """Your webhook handler's part: True once the event arrived, False on timeout."""
        assert call_id == "agent-1"
        flag = self.answered if event == "call.answered" else self.speak_ended
        try:
            await asyncio.wait_for(flag.wait(), self.ring_secs + 1.0)
        except TimeoutError:
            self.decided.set()
            return False
        return True


@dataclass
class Bot:
    rest_url: str
    fake: FakeTelnyx
    events: list[str] = field(default_factory=list)
    results: list[WarmTransferResult | None] = field(default_factory=list)
    caller_id: str = ""


async def run_bot(websocket: WebSocket, start: dict[str, Any], bot: Bot) -> None:
    bot.caller_id = start["start"]["call_control_id"]
    serializer = TelnyxFrameSerializer(
        start["stream_id"],
        outbound_encoding="PCMU",
        inbound_encoding="PCMU",
        call_control_id=bot.caller_id,
        api_key="KEY",
        base_url=bot.rest_url,  # a wrong hang-up would reach the fake
    )
    begin = functools.partial(
        telnyx_warm_transfer,
        api_key="KEY",
        connection_id="conn-1",
        caller_call_control_id=bot.caller_id,
        agent="+15550001111",
        from_="+15557654321",
        summary="Ada wants to move her appointment to Friday.",
        wait_for=bot.fake.wait_for,
        base_url=bot.rest_url,
    )
    await hold_then_transfer(websocket, serializer, begin, bot.events, bot.results)


async def place(fake: FakeTelnyx) -> tuple[Bot, Any, float]:
    async with running_server(fake.app()) as rest_addr:
        bot = Bot(rest_url=f"http://{rest_addr}", fake=fake)
        async with call_bot(functools.partial(run_bot, bot=bot), "telnyx") as call:
            await asyncio.wait_for(fake.decided.wait(), 20)
            decided_at = call.now()
            if fake.answers:
                await asyncio.wait_for(fake.stream_stopped.wait(), 5)
            else:
                await asyncio.sleep(5.0)
            await call.hang_up()  # Telnyx ends the stream / the caller, later
            result = call.result()
        await asyncio.sleep(0.2)  # a wrong hang-up would have been sent by now
    return bot, result, decided_at


@virtual_time
async def test_caller_hears_prompt_then_music_until_the_bridge() -> None:
    fake = FakeTelnyx(answers=True, ring_secs=4.0)
    bot, result, bridged_at = await place(fake)

    assert fake.bad_auth == 0 and bot.events == ["bridged"]
    caller = f"/v2/calls/{bot.caller_id}/actions"
    assert [p for p, _ in fake.requests] == [
        "/v2/calls",
        "/v2/calls/agent-1/actions/speak",
        f"{caller}/bridge",
        f"{caller}/streaming_stop",  # the last request: nothing after it, no hang-up
    ]
    assert fake.requests[2][1]["call_control_id"] == "agent-1"
    assert fake.requests[1][1]["payload"].startswith("Ada wants to move")

    audio = result.bot
    assert bridged_at > 4.0
    prompt = window(audio, 0.2, 1.2)
    assert rms(prompt) > 300.0 and music_share(prompt) < 0.5
    assert quiet_windows(audio, 0.3, bridged_at - 0.2) == 0
    hold = window(audio, bridged_at - 1.5, bridged_at - 0.2)
    assert rms(hold) > 300.0 and music_share(hold) > 0.7


@virtual_time
async def test_unanswered_agent_is_hung_up_and_the_bot_comes_back() -> None:
    fake = FakeTelnyx(answers=False, ring_secs=4.0)
    bot, result, gave_up_at = await place(fake)

    assert bot.events == ["failed"]
    assert [p for p, _ in fake.requests] == ["/v2/calls", "/v2/calls/agent-1/actions/hangup"]
    audio = result.bot
    hold = window(audio, gave_up_at - 1.5, gave_up_at - 0.1)
    assert rms(hold) > 300.0 and music_share(hold) > 0.7
    # Speech (not music) soon after giving up; a loaded machine may start it a little later.
    back = [window(audio, t, t + 1.0) for t in np.arange(gave_up_at + 0.3, gave_up_at + 2.0, 0.25)]
    assert any(rms(w) > 300.0 and music_share(w) < 0.5 for w in back)
    assert rms(window(audio, result.duration - 1.0, result.duration - 0.1)) < 100.0
