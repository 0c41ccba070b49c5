"""The post-call webhook: signed, retried with backoff, never holding up the call."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response

from callpipe.metrics.registry import REGISTRY, render_prometheus_text
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.record_webhook import (
    RECORD_ID_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_DELIVERIES,
    RecordWebhook,
    sign,
    verify_signature,
)
from callpipe.runner.types import RunnerArguments
from callpipe.testing.server import running_server
from callpipe.testing.simulator import SimulatedCall
from callpipe.testing.virtual_calls import virtual_time

pytestmark = pytest.mark.integration

SECRET = "whsec-test"


class Receiver:
    """A webhook receiver that answers ``statuses`` in turn (then 200), keeping what it got."""

    def __init__(self, statuses: list[int], delays: list[float] | None = None) -> None:
        self.statuses = list(statuses)
        self.delays = list(delays or [])
        self.answered = 0
        self.requests: list[tuple[float, dict[str, str], bytes]] = []
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        self.requests.append((time.monotonic(), dict(request.headers), await request.body()))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        self.answered += 1
        return Response(status_code=status)


async def test_retried_after_two_failures_and_signed() -> None:
    receiver = Receiver([500, 503])
    ok_before = WEBHOOK_DELIVERIES.value(outcome="ok")
    retried_before = WEBHOOK_DELIVERIES.value(outcome="retried")
    async with running_server(receiver.app) as host:
        hook = RecordWebhook(f"http://{host}/hook", SECRET, backoff_secs=0.1)
        record = {"record_id": "r1", "turns": [{"caller": {"text": "héllo"}}]}
        hook.send(record)  # returns at once
        assert len(receiver.requests) == 0
        await asyncio.wait_for(hook.drain(), 10)
    assert len(receiver.requests) == 3
    times = [t for t, _, _ in receiver.requests]
    assert times[1] - times[0] >= 0.09 and times[2] - times[1] >= 0.19  # backoff doubles
    for _, headers, body in receiver.requests:
        assert json.loads(body) == record
        assert headers[RECORD_ID_HEADER.lower()] == "r1"
        assert verify_signature(SECRET, body, headers[SIGNATURE_HEADER.lower()])
        assert not verify_signature("other", body, headers[SIGNATURE_HEADER.lower()])
        assert not verify_signature(SECRET, body + b" ", headers[SIGNATURE_HEADER.lower()])
    assert WEBHOOK_DELIVERIES.value(outcome="ok") == ok_before + 1
    assert WEBHOOK_DELIVERIES.value(outcome="retried") == retried_before + 2


@virtual_time
async def test_failures_are_counted_and_4xx_is_final() -> None:
    failed_before = WEBHOOK_DELIVERIES.value(outcome="failed")
    receiver = Receiver([500, 500, 500])
    refusing = Receiver([400])
    async with running_server(receiver.app) as host, running_server(refusing.app) as other:
        hook = RecordWebhook(f"http://{host}/hook", attempts=3, backoff_secs=0.01)
        hook.send({"record_id": "r2"})
        refused = RecordWebhook(f"http://{other}/hook", attempts=3, backoff_secs=0.01)
        refused.send({"record_id": "r3"})
        await asyncio.wait_for(asyncio.gather(hook.drain(), refused.drain()), 10)
    assert len(receiver.requests) == 3 and len(refusing.requests) == 1
    assert WEBHOOK_DELIVERIES.value(outcome="failed") == failed_before + 2
    assert 'callpipe_records_webhook_total{outcome="failed"}' in render_prometheus_text(REGISTRY)


def test_stale_or_malformed_signatures_are_refused() -> None:
    body = b"{}"
    old = sign(SECRET, body, int(time.time()) - 3600)
    assert not verify_signature(SECRET, body, old)
    assert verify_signature(SECRET, body, old, tolerance_secs=7200)
    assert not verify_signature(SECRET, body, "garbage")


@virtual_time
async def test_runner_posts_each_record_without_holding_the_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver = Receiver([500, 500], delays=[1.0])

    async def bot(runner_args: RunnerArguments) -> None:
        return None  # the call ends at once

    async with running_server(receiver.app) as hook_host:
        monkeypatch.setenv("CALLPIPE_RECORDS_WEBHOOK_URL", f"http://{hook_host}/hook")
        monkeypatch.setenv("CALLPIPE_RECORDS_WEBHOOK_SECRET", SECRET)
        app = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials())
        state: Any = app.state.runner
        state.record_webhook.backoff_secs = 0.05
        async with running_server(app) as host:
            async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
                assert await call.wait_for_hangup(timeout=5)
            # The call was over (the bot hung up) while the first attempt was still unanswered.
            assert receiver.answered == 0
            assert len(state.records.recent) == 1
            await asyncio.wait_for(state.record_webhook.drain(), 10)
    assert len(receiver.requests) == 3
    [(record_id, record)] = state.records.recent.items()
    body = receiver.requests[-1][2]
    assert json.loads(body)["record_id"] == record_id
    assert json.loads(body)["schema"] == "callpipe.call-record"
