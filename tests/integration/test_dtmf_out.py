"""One API for pressing keys: ``OutputDTMFFrame`` goes out of band through the provider's REST API
where it can (Telnyx ``send_dtmf``), in band as tones where it cannot (Twilio: new TwiML would
end the bidirectional stream), on a real server with the call simulator and a REST fake.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, Request, Response, WebSocket

from callpipe.audio.dtmf import DTMF_FREQUENCIES
from callpipe.frames.frames import KeypadEntry, OutputDTMFFrame, OutputDTMFUrgentFrame
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time

from .call_bot import RATE, call_bot, phone_task, phone_transport, run_until_hangup

pytestmark = pytest.mark.integration

KEYS = [KeypadEntry.ONE, KeypadEntry.NINE, KeypadEntry.POUND]


@dataclass
class Rest:
    requests: list[tuple[str, str, str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def any_call(path: str, request: Request) -> Response:
            body = await request.body()
            parsed = json.loads(body) if body.startswith(b"{") else body.decode()
            auth = request.headers.get("authorization", "")
            self.requests.append((request.method, "/" + path, auth, parsed))
            return Response('{"data": {"result": "ok"}}', media_type="application/json")

        return app


def serializer_for(provider: str, start: dict[str, Any], rest_url: str) -> FrameSerializer:
    if provider == "twilio":
        return TwilioFrameSerializer(
            start["start"]["streamSid"],
            start["start"]["callSid"],
            account_sid="AC1",
            auth_token="tok",
            base_url=rest_url,
        )
    return TelnyxFrameSerializer(
        start["stream_id"],
        outbound_encoding="PCMU",
        inbound_encoding="PCMU",
        call_control_id=start["start"]["call_control_id"],
        api_key="KEY",
        base_url=rest_url,
    )


async def run_bot(
    websocket: WebSocket,
    start: dict[str, Any],
    provider: str,
    rest_url: str,
    one_frame: bool = False,
) -> None:
    transport = phone_transport(websocket, serializer_for(provider, start, rest_url))
    task = phone_task([transport.input(), transport.output()])

    @transport.event_handler("on_client_connected")
    async def connected(transport: Any, client: Any) -> None:
        if one_frame:  # Pipecat 1.14's forms: several keys in one frame, a dial string
            await task.queue_frame(OutputDTMFFrame(buttons=KEYS[:2]))
            await task.queue_frame(OutputDTMFUrgentFrame.from_string(KEYS[2].value))
        else:
            await task.queue_frames([OutputDTMFFrame(button=k) for k in KEYS[:2]])
            await task.queue_frame(OutputDTMFUrgentFrame(button=KEYS[2]))

    await run_until_hangup(transport, task)


def decode_tones(pcm: np.ndarray) -> str:
    """Keys heard in ``pcm`` (8 kHz): per 20 ms frame the strongest row and column tone; a key
    counts when it lasts two frames or more (a frame across a tone's edge can read as noise)."""
    lows = sorted({lo for lo, _ in DTMF_FREQUENCIES.values()})
    highs = sorted({hi for _, hi in DTMF_FREQUENCIES.values()})
    by_pair = {pair: key for key, pair in DTMF_FREQUENCIES.items()}
    n = RATE // 50
    t = np.arange(n) / RATE
    frames: list[str] = []
    for i in range(0, len(pcm) - n, n):
        frame = pcm[i : i + n].astype(np.float64)
        if np.sqrt(np.mean(frame**2)) < 500:
            frames.append(".")
            continue
        power = [abs(np.dot(frame, np.exp(-2j * np.pi * f * t))) for f in (*lows, *highs)]
        lo = lows[int(np.argmax(power[: len(lows)]))]
        hi = highs[int(np.argmax(power[len(lows) :]))]
        frames.append(by_pair[(lo, hi)])
    runs = [(k, len(list(g))) for k, g in itertools.groupby(frames)]
    return "".join(k for k, length in runs if k != "." and length >= 2)


async def place(provider: str, one_frame: bool = False) -> tuple[Rest, Any, str]:
    rest = Rest()
    async with running_server(rest.app()) as rest_addr:
        bot = functools.partial(
            run_bot, provider=provider, rest_url=f"http://{rest_addr}", one_frame=one_frame
        )
        async with call_bot(bot, provider) as call:
            await asyncio.sleep(1.5)
            await call.hang_up()
            result = call.result()
            call_id = call.dialect.identity.call_id
    return rest, result, call_id


@virtual_time
async def test_twilio_presses_keys_in_band_and_never_touches_the_call() -> None:
    rest, result, _ = await place("twilio")
    # The ordered keys play in order; the urgent one goes at once, or (in-band) right after
    # the key being played, never into it.
    assert decode_tones(result.bot) in ("#19", "1#9")
    assert rest.requests == []  # no TwiML update: it would have ended the stream


@virtual_time
async def test_several_keys_in_one_frame_are_pressed_in_order() -> None:
    rest, result, _ = await place("twilio", one_frame=True)
    # The two keys of the ordered frame play in order; the urgent one before or after them.
    assert decode_tones(result.bot) in ("#19", "19#")
    assert rest.requests == []


@virtual_time
async def test_telnyx_presses_keys_through_send_dtmf_and_plays_no_tones() -> None:
    rest, result, call_control_id = await place("telnyx")
    sent = [(m, p, a, b["digits"]) for m, p, a, b in rest.requests]
    path = f"/v2/calls/{call_control_id}/actions/send_dtmf"
    # One request per key; the urgent one goes at once, the ordered ones in order.
    assert sorted(sent) == sorted(("POST", path, "Bearer KEY", d) for d in "#19")
    digits = "".join(d for *_, d in sent)
    assert digits.index("1") < digits.index("9")
    assert all(b["duration_millis"] == 250 and b["command_id"] for *_, b in rest.requests)
    assert decode_tones(result.bot) == ""
