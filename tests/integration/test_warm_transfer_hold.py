"""Warm transfer on a real uvicorn server: the caller hears a hold prompt, then hold music mixed
by the output transport, until the bridge (or, when the agent is busy, the bot comes back).

A second local server fakes Twilio's REST API (Basic auth checked, form bodies recorded); the
agent's leg answers (or is busy) after a delay. When the fake sees the caller moved into the
conference it ends the caller's media stream, as Twilio does on new TwiML.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import pytest

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from fastapi import FastAPI, Request, Response, WebSocket

from callpipe.audio.mixers.hold_music import _CHORDS, HoldMusicMixer
from callpipe.extensions.warm_transfer import WarmTransferProcessor
from callpipe.providers.twilio.warm_transfer import twilio_warm_transfer
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.espeak import ESpeakTTSService
from callpipe.telephony.dial import ProviderAccount
from callpipe.telephony.dial.warm_transfer import WarmTransferResult
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time

from .call_bot import RATE, call_bot, phone_task, phone_transport, run_until_hangup

pytestmark = pytest.mark.integration

AGENT = "+15550001111"
AUTH = "Basic " + base64.b64encode(b"AC1:tok").decode()


@dataclass
class FakeTwilio:
    """Twilio's Calls resource: the agent's leg answers ``agent_status`` after ``ring_secs``."""

    agent_status: str
    ring_secs: float
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bad_auth: int = 0
    dialed_at: float | None = None
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    bridged: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/2010-04-01/Accounts/AC1/{rest:path}", methods=["GET", "POST"])
        async def calls(rest: str, request: Request) -> Response:
            if request.headers.get("authorization") != AUTH:
                self.bad_auth += 1
                return Response(status_code=401)
            body = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            self.requests.append((request.method, "/" + rest, body))
            loop = asyncio.get_running_loop()
            if request.method == "POST" and rest == "Calls.json":
                self.dialed_at = loop.time()
                return _json(201, {"sid": "CAagent", "status": "queued"})
            if request.method == "GET" and rest == "Calls/CAagent.json":
                assert self.dialed_at is not None
                if loop.time() - self.dialed_at < self.ring_secs:
                    return _json(200, {"sid": "CAagent", "status": "ringing"})
                self.decided.set()
                return _json(200, {"sid": "CAagent", "status": self.agent_status})
            if request.method == "POST" and rest.startswith("Calls/CAcaller"):
                if "Twiml" in body:
                    # Twilio stops the stream as it runs the new TwiML, before its answer here.
                    self.bridged.set()
                    await asyncio.sleep(0.3)
                return _json(200, {"sid": "CAcaller", "status": "in-progress"})
            return _json(404, {"code": 20404})

        return app


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


@dataclass
class Bot:
    rest_url: str
    results: list[WarmTransferResult | None] = field(default_factory=list)
    events: list[str] = field(default_factory=list)


async def run_bot(websocket: WebSocket, start: dict[str, Any], bot: Bot) -> None:
    serializer = TwilioFrameSerializer(
        stream_sid=start["start"]["streamSid"],
        call_sid="CAcaller",
        account_sid="AC1",
        auth_token="tok",
        base_url=bot.rest_url,  # a wrong hang-up would reach the fake
    )
    account = ProviderAccount.from_env(
        "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"}
    )
    start_transfer = functools.partial(
        twilio_warm_transfer,
        account,
        "CAcaller",
        AGENT,
        from_="+15557654321",
        summary="Ada wants to move her appointment to Friday.",
        poll=0.2,
        base_url=bot.rest_url,
    )
    await hold_then_transfer(websocket, serializer, start_transfer, bot.events, bot.results)


async def hold_then_transfer(
    websocket: WebSocket,
    serializer: FrameSerializer,
    start_transfer: Callable[[], Awaitable[WarmTransferResult]],
    events: list[str],
    results: list[WarmTransferResult | None],
) -> None:
    """The bot: once the caller is connected it holds them (prompt, then hold music) while
    ``start_transfer`` runs; "bridged"/"failed" go to ``events``, the outcome to ``results``."""
    transport = phone_transport(websocket, serializer, audio_out_mixer=HoldMusicMixer())
    hold = WarmTransferProcessor()
    task = phone_task([transport.input(), hold, ESpeakTTSService(), transport.output()])

    @hold.event_handler("on_transfer_bridged")
    async def bridged(_: Any, result: WarmTransferResult) -> None:
        events.append("bridged")

    @hold.event_handler("on_transfer_failed")
    async def failed(_: Any, result: WarmTransferResult | None) -> None:
        events.append("failed")

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        results.append(await hold.transfer(start_transfer))

    await run_until_hangup(transport, task)


# ---------------------------------------------------------------------------- audio checks

_NOTES = sorted({f * k for chord in _CHORDS for f in chord for k in (1, 2)})


def window(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * RATE) : int(end * RATE)].astype(np.float64)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else 0.0


def music_share(x: np.ndarray) -> float:
    """Share of the window's energy within 10 Hz of the hold tune's notes (speech: low)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    near = np.zeros(len(freqs), dtype=bool)
    for f in _NOTES:
        near |= np.abs(freqs - f) <= 10.0
    return float(spectrum[near].sum() / max(spectrum.sum(), 1e-9))


def quiet_windows(samples: np.ndarray, start: float, end: float, step: float = 0.2) -> int:
    edges = np.arange(start, end - step / 2, step)
    return sum(rms(window(samples, t, t + step)) < 100.0 for t in edges)


async def place(fake: FakeTwilio, after_decision_secs: float) -> tuple[Bot, Any, float]:
    async with running_server(fake.app()) as rest_addr:
        bot = Bot(rest_url=f"http://{rest_addr}")
        async with call_bot(functools.partial(run_bot, bot=bot)) as call:
            await asyncio.wait_for(fake.decided.wait(), 20)
            decided_at = call.now()
            if fake.agent_status == "in-progress":
                await asyncio.wait_for(fake.bridged.wait(), 5)
                decided_at = call.now()
                await call.hang_up()
            else:
                await asyncio.sleep(after_decision_secs)
                await call.hang_up()  # the caller, later
            result = call.result()
    return bot, result, decided_at


@virtual_time
async def test_caller_hears_prompt_then_music_until_the_bridge() -> None:
    fake = FakeTwilio(agent_status="in-progress", ring_secs=5.0)
    bot, result, bridged_at = await place(fake, 0.0)

    assert fake.bad_auth == 0
    assert bot.events == ["bridged"] and bot.results[0] is not None
    assert bot.results[0].outcome == "bridged"
    methods_paths = [(m, p) for m, p, _ in fake.requests]
    assert methods_paths[0] == ("POST", "/Calls.json")
    assert set(methods_paths[1:-1]) == {("GET", "/Calls/CAagent.json")}
    assert methods_paths[-1] == ("POST", "/Calls/CAcaller.json")  # and no hang-up after it
    dial, caller = fake.requests[0][2], fake.requests[-1][2]
    assert dial["To"] == AGENT and dial["From"] == "+15557654321"
    assert dial["Twiml"].startswith("<Response><Say>Ada wants to move her appointment")
    assert "Status" not in caller and 'startConferenceOnEnter="false"' in caller["Twiml"]

    bot_audio = result.bot
    assert bridged_at > 4.5
    # The prompt is speech (broadband), right at the start.
    prompt = window(bot_audio, 0.2, 1.2)
    assert rms(prompt) > 300.0 and music_share(prompt) < 0.5
    # Then music, without a silent gap, until the bridge.
    assert quiet_windows(bot_audio, 0.3, bridged_at - 0.2) == 0
    hold = window(bot_audio, bridged_at - 1.5, bridged_at - 0.2)
    assert rms(hold) > 300.0 and music_share(hold) > 0.7


async def test_busy_agent_stops_the_music_and_the_bot_comes_back() -> None:
    fake = FakeTwilio(agent_status="busy", ring_secs=4.5)
    bot, result, busy_at = await place(fake, 5.0)

    assert bot.events == ["failed"] and bot.results[0] is not None
    assert bot.results[0].outcome == "agent-unavailable"
    assert bot.results[0].agent_status == "busy"
    paths = [p for _, p, _ in fake.requests]
    assert paths[0] == "/Calls.json" and all(p == "/Calls/CAagent.json" for p in paths[1:])

    bot_audio = result.bot
    hold = window(bot_audio, busy_at - 1.5, busy_at - 0.1)
    assert rms(hold) > 300.0 and music_share(hold) > 0.7
    # The bot says it is back (speech, not music) within 3 s of the busy answer (it learns of it
    # at its next status poll; on a loaded machine its speech starts later) ...
    starts = np.arange(busy_at + 0.3, busy_at + 2.0, 0.25)
    back = [window(bot_audio, t, t + 1.0) for t in starts]
    assert any(rms(w) > 300.0 and music_share(w) < 0.5 for w in back)
    # ... and the music stays off afterwards: the line is quiet at the end.
    assert rms(window(bot_audio, result.duration - 1.0, result.duration - 0.1)) < 100.0
