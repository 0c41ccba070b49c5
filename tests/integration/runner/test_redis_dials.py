"""Dial records shared by a fleet through a real ``redis-server`` (CALLPIPE_REDIS_URL).

Two runner instances (each its own app, DialBook and Redis connections; only Redis is shared):
a dial placed on one is answered, streamed and called back on the other, ``GET /calls/{id}``
answers on both, a dial id is placed once however the retries spread over the fleet, statuses
only move forward under concurrent callbacks, and a Redis outage refuses dials rather than
ringing someone untracked. Last, the same across real processes: this process dials, a runner
subprocess (``--redis-url``) takes the webhook, the stream and the callback.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.dials import DialEvent, current_dial_events
from callpipe.telephony.dial import ProviderAccount
from callpipe.testing.server import running_server
from unit.telephony._server import ProviderServer, Reply

from .harness import fake_call, redis_server, requires_redis, run_bot_process, twilio_signed

pytestmark = [pytest.mark.integration, requires_redis]

HOST = "fleet.example.test"
KEY = "k" * 32
TOKEN = "twilio-auth-token"
SECRET = b"fleet-shared-secret-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def signed(path: str, fields: dict[str, str]) -> dict[str, Any]:
    return twilio_signed(HOST, TOKEN, path, fields)


def fleet_app(bot: Any, url: str, provider: ProviderServer) -> Any:
    app = create_app(
        bot,
        RunnerConfig(proxy=HOST, transport="twilio", redis_url=url),
        credentials=Credentials(twilio_auth_token=TOKEN, api_key=KEY),
        secret=SECRET,
    )
    app.state.outbound.accounts["twilio"] = ProviderAccount.from_env(
        "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "rest-tok"}
    )
    app.state.outbound.base_urls["twilio"] = provider.url
    return app


async def close(*apps: Any) -> None:
    for app in apps:
        await app.state.runner.dials.aclose()
        await app.state.runner.tokens.store.aclose()


DIAL = {
    "to": "+15551234567",
    "from": "+15557654321",
    "provider": "twilio",
    "metadata": {"name": "Ada", "reason": "reminder"},
}


async def test_dial_on_one_instance_answer_stream_and_callbacks_on_the_other(
    provider: ProviderServer,
) -> None:
    seen: list[dict[str, Any]] = []
    later: list[tuple[str, str]] = []
    started = asyncio.Event()

    async def bot(args: Any) -> None:
        seen.append(dict(args.body))
        queue = current_dial_events()
        started.set()
        if queue is None:
            return
        while True:  # the call's later events, whichever instance got the callbacks
            event: DialEvent = await asyncio.wait_for(queue.get(), 10)
            later.append((event.kind, event.value))
            if event.value == "completed":
                return

    provider.script(Reply(201, {"sid": "CA900", "status": "queued"}))
    async with redis_server() as url:
        a, b = fleet_app(bot, url, provider), fleet_app(bot, url, provider)
        listened: list[DialEvent] = []
        b.state.runner.dials.add_listener(listened.append)
        async with (
            running_server(a) as host_a,
            running_server(b) as host_b,
            httpx.AsyncClient(timeout=10) as http,
        ):
            placed = await http.post(f"http://{host_a}/calls", json=DIAL, headers=AUTH)
            assert placed.status_code == 201, placed.text
            dial_id = placed.json()["dial_id"]
            # B knows the dial A placed.
            on_b = await http.get(f"http://{host_b}/calls/{dial_id}", headers=AUTH)
            assert on_b.status_code == 200 and on_b.json()["call_id"] == "CA900"

            # Twilio's answer webhook lands on B; so does the media stream.
            answer = {"CallSid": "CA900", "From": DIAL["from"], "To": DIAL["to"]}
            twiml = await http.post(f"http://{host_b}/", **signed("/", answer))
            match = re.search(r"/ws/([^\"]+)\"", twiml.text)
            assert twiml.status_code == 200 and match is not None
            call = asyncio.create_task(
                fake_call(f"ws://{host_b}/ws/{match.group(1)}", "twilio", call_id="CA900")
            )
            await asyncio.wait_for(started.wait(), 10)
            assert seen[0]["name"] == "Ada" and seen[0]["dial"]["dial_id"] == dial_id

            # Callbacks land on A (and one on B): the bot on B hears them all.
            for host, fields in (
                (host_a, {"CallSid": "CA900", "CallStatus": "in-progress"}),
                (host_b, {"CallSid": "CA900", "AnsweredBy": "human"}),
                (host_a, {"CallSid": "CA900", "CallStatus": "ringing"}),  # late: ignored
                (host_a, {"CallSid": "CA900", "CallStatus": "completed"}),
            ):
                r = await http.post(
                    f"http://{host}/calls/status", **signed("/calls/status", fields)
                )
                assert r.status_code == 204
            result = await asyncio.wait_for(call, 15)
            assert result.close_code in (None, 1000)
            assert later == [("status", "answered"), ("amd", "human"), ("status", "completed")]
            # Listeners fire once in the fleet: on the instance that applied the callback.
            assert [(e.kind, e.value) for e in listened] == [("amd", "human")]
            for host in (host_a, host_b):
                state = (await http.get(f"http://{host}/calls/{dial_id}", headers=AUTH)).json()
                assert state["status"] == "completed" and state["answered_by"] == "human"
                assert [tuple(h) for h in state["history"]] == [
                    ("status", "answered"),
                    ("amd", "human"),
                    ("status", "completed"),
                ]
        await close(a, b)
    assert len(provider.requests) == 1


async def test_a_dial_id_is_placed_once_across_the_fleet(provider: ProviderServer) -> None:
    async def bot(args: Any) -> None:
        return None

    provider.script(Reply(201, {"sid": "CA1", "status": "queued"}))
    async with redis_server() as url:
        a, b = fleet_app(bot, url, provider), fleet_app(bot, url, provider)
        async with (
            running_server(a) as host_a,
            running_server(b) as host_b,
            httpx.AsyncClient(timeout=10) as http,
        ):
            body = {**DIAL, "dial_id": "campaign-0001"}
            replies = await asyncio.gather(
                *(
                    http.post(f"http://{host}/calls", json=body, headers=AUTH)
                    for host in (host_a, host_b) * 5
                )
            )
            assert sorted(r.status_code for r in replies) == [200] * 9 + [201]
            assert {r.json()["dial_id"] for r in replies} == {"campaign-0001"}
            assert len(provider.requests) == 1  # one call, however many retries
            # A refused create-call frees the id again (on any instance).
            provider.script(Reply(400, {"message": "bad number"}))
            fail = await http.post(
                f"http://{host_a}/calls", json={**DIAL, "dial_id": "campaign-0002"}, headers=AUTH
            )
            assert fail.status_code == 502
            provider.script(Reply(201, {"sid": "CA77", "status": "queued"}))
            again = await http.post(
                f"http://{host_b}/calls", json={**DIAL, "dial_id": "campaign-0002"}, headers=AUTH
            )
            assert again.status_code == 201 and again.json()["call_id"] == "CA77"
        await close(a, b)


async def test_concurrent_callbacks_only_move_a_call_forward(provider: ProviderServer) -> None:
    async def bot(args: Any) -> None:
        return None

    provider.script(Reply(201, {"sid": "CA55", "status": "queued"}))
    async with redis_server() as url:
        a, b = fleet_app(bot, url, provider), fleet_app(bot, url, provider)
        async with (
            running_server(a) as host_a,
            running_server(b) as host_b,
            httpx.AsyncClient(timeout=10) as http,
        ):
            placed = await http.post(f"http://{host_a}/calls", json=DIAL, headers=AUTH)
            dial_id = placed.json()["dial_id"]
            statuses = ["ringing", "in-progress", "completed", "busy"] * 3
            await asyncio.gather(
                *(
                    http.post(
                        f"http://{(host_a, host_b)[i % 2]}/calls/status",
                        **signed("/calls/status", {"CallSid": "CA55", "CallStatus": status}),
                    )
                    for i, status in enumerate(statuses)
                )
            )
            state = (await http.get(f"http://{host_b}/calls/{dial_id}", headers=AUTH)).json()
        await close(a, b)
    history = [v for k, v in state["history"] if k == "status"]
    order = {"initiated": 0, "ringing": 1, "answered": 2}
    ranks = [order.get(v, 3) for v in history]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)  # strictly forward
    assert history[-1] in ("completed", "busy") and state["status"] == history[-1]
    assert sum(1 for v in history if v in ("completed", "busy")) == 1  # one terminal status


async def test_redis_outage_refuses_dials_and_lookups(provider: ProviderServer) -> None:
    async def bot(args: Any) -> None:
        return None

    async with redis_server() as url:
        app = fleet_app(bot, url, provider)
    # The server is gone now.
    async with running_server(app) as host, httpx.AsyncClient(timeout=10) as http:
        dial = await http.post(f"http://{host}/calls", json=DIAL, headers=AUTH)
        look = await http.get(f"http://{host}/calls/some-dial-id", headers=AUTH)
        cb = await http.post(
            f"http://{host}/calls/status",
            **signed("/calls/status", {"CallSid": "CA1", "CallStatus": "completed"}),
        )
    assert dial.status_code == 503 and provider.requests == []  # nobody rang
    assert look.status_code == 503 and cb.status_code == 503
    await close(app)


async def test_a_runner_process_serves_a_dial_placed_by_another(
    provider: ProviderServer, tmp_path: Path
) -> None:
    """Two processes: this one dials; a ``python bot.py --redis-url`` subprocess takes the
    answer webhook, the stream (its bot gets the metadata) and a callback."""

    async def bot(args: Any) -> None:
        return None

    provider.script(Reply(201, {"sid": "CA4242", "status": "queued"}))
    async with redis_server() as url:
        dialer = fleet_app(bot, url, provider)
        env = {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "CALLPIPE_API_KEY": KEY,
            "CALLPIPE_STREAM_SECRET": SECRET.decode(),
        }
        args = ["-t", "twilio", "-x", HOST, "--redis-url", url]
        with run_bot_process(tmp_path, args, env) as other:
            async with running_server(dialer) as host_a, httpx.AsyncClient(timeout=10) as http:
                placed = await http.post(f"http://{host_a}/calls", json=DIAL, headers=AUTH)
                assert placed.status_code == 201, placed.text
                dial_id = placed.json()["dial_id"]
                answer = {"CallSid": "CA4242", "From": DIAL["from"], "To": DIAL["to"]}
                twiml = await http.post(f"{other.base}/", **signed("/", answer))
                match = re.search(r"/ws/([^\"]+)\"", twiml.text)
                assert twiml.status_code == 200 and match is not None, other.output()
                ws_url = f"ws://127.0.0.1:{other.port}/ws/{match.group(1)}"
                await fake_call(ws_url, "twilio", call_id="CA4242", max_secs=5)
                done = {"CallSid": "CA4242", "CallStatus": "completed"}
                r = await http.post(f"{other.base}/calls/status", **signed("/calls/status", done))
                assert r.status_code == 204
                state = (await http.get(f"http://{host_a}/calls/{dial_id}", headers=AUTH)).json()
            (report,) = other.reports("bot")
        await close(dialer)
    assert report["pid"] != os.getpid()
    assert report["body"]["name"] == "Ada" and report["body"]["dial"]["dial_id"] == dial_id
    assert state["status"] == "completed"


async def test_records_expire_and_waiters_hear_other_instances(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from callpipe.runner import dials
    from callpipe.runner.dial_store_redis import RedisDialStore
    from callpipe.runner.dials import DialBook
    from callpipe.telephony.dial.types import CallHandle

    monkeypatch.setattr(dials, "WAIT_POLL_SECS", 60.0)  # only the pushed event can wake it
    async with redis_server() as url:
        a = DialBook(store=RedisDialStore(url), ttl=30)
        b = DialBook(store=RedisDialStore(url), ttl=30)
        await a.add(CallHandle("twilio", "CA1", "d1", "+1555", metadata={"name": "Ada"}))
        waiter = asyncio.create_task(b.wait_done("d1"))
        await asyncio.sleep(0.1)
        assert not waiter.done()
        await a.on_callback("twilio", {"CallSid": "CA1", "CallStatus": "no-answer"})
        done = await asyncio.wait_for(waiter, 10)  # pushed over pub/sub from a
        assert done is not None and done.status == "no-answer" and done.metadata == {"name": "Ada"}

        short = DialBook(store=RedisDialStore(url), ttl=0.3)
        await short.add(CallHandle("twilio", "CA2", "d2", "+1555"))
        assert await short.find("twilio", "CA2") is not None
        await asyncio.sleep(0.5)
        assert await short.get("d2") is None and await short.find("twilio", "CA2") is None
        for book in (a, b, short):
            await book.aclose()
