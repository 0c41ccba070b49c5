"""Fleet-wide stream tokens in a real ``redis-server`` (CALLPIPE_REDIS_URL).

Two runner instances share one Redis: a token redeemed on one is refused on the other, a call id
mints one token whichever instance answers its webhook, records expire, and a Redis outage
fails closed (the webhook gets 503, a stream is refused) instead of admitting calls unchecked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.security import StreamTokens, TokenError
from callpipe.runner.token_store import RedisTokenStore, TokenStoreError
from callpipe.testing.server import running_server

from .harness import fake_call, redis_server, requires_redis

pytestmark = pytest.mark.integration

SECRET = b"fleet-shared-secret-0123456789"


@requires_redis
async def test_tokens_are_single_use_and_minted_once_across_instances() -> None:
    async with redis_server() as url:
        a = StreamTokens(SECRET, store=RedisTokenStore(url))
        b = StreamTokens(SECRET, store=RedisTokenStore(url))
        token = await a.issue_for_call(provider="twilio", call_id="CA1", bind=True)
        assert await b.issue_for_call(provider="twilio", call_id="CA1", bind=True) == token
        await b.redeem_async(token, provider="twilio", call_id="CA1")
        with pytest.raises(TokenError, match="already used"):
            await a.redeem_async(token, provider="twilio", call_id="CA1")
        # Records expire: a 0.2 s record is gone after it.
        short = StreamTokens(SECRET, store=RedisTokenStore(url), ttl=0.2, replay_window=0.2)
        first = await short.issue_for_call(provider="plivo", call_id="u1", bind=True)
        await asyncio.sleep(0.4)
        assert await short.issue_for_call(provider="plivo", call_id="u1", bind=True) != first
        for tokens in (a, b, short):
            await tokens.store.aclose()


@requires_redis
async def test_concurrent_redeems_admit_exactly_one() -> None:
    async with redis_server() as url:
        instances = [StreamTokens(SECRET, store=RedisTokenStore(url)) for _ in range(4)]
        token = instances[0].issue(provider="twilio", call_id="CA2")

        async def redeem(tokens: StreamTokens) -> bool:
            try:
                await tokens.redeem_async(token, provider="twilio", call_id="CA2")
            except TokenError:
                return False
            return True

        results = await asyncio.gather(*(redeem(t) for t in instances * 5))
        assert sum(results) == 1
        for tokens in instances:
            await tokens.store.aclose()


@requires_redis
async def test_redis_outage_fails_closed() -> None:
    async with redis_server() as url:
        store = RedisTokenStore(url, timeout=0.5)
        tokens = StreamTokens(SECRET, store=store)
        token = tokens.issue(provider="twilio", call_id="CA3")
    # The server is gone now.
    started = time.monotonic()
    with pytest.raises(TokenError, match="unavailable"):
        await tokens.redeem_async(token, provider="twilio", call_id="CA3")
    with pytest.raises(TokenStoreError):
        await tokens.issue_for_call(provider="twilio", call_id="CA3", bind=True)
    assert time.monotonic() - started < 5.0  # bounded by the store's timeout
    await store.aclose()


def _signed(call_id: str) -> dict[str, Any]:
    form = {"CallSid": call_id, "From": "+15551112222"}
    sig = RequestValidator("authtok").compute_signature("https://example.test/", form)
    return {"data": form, "headers": {"X-Twilio-Signature": sig}}


async def _bot(args: Any) -> None:
    await args.websocket.send_text('{"event":"clear","streamSid":"MZ1"}')
    await asyncio.sleep(0.2)


@requires_redis
async def test_two_runner_instances_share_the_used_token_set() -> None:
    async with redis_server() as url:
        config = RunnerConfig(transport="twilio", proxy="example.test", redis_url=url)
        creds = Credentials(twilio_auth_token="authtok")
        apps = [create_app(_bot, config, credentials=creds, secret=SECRET) for _ in range(2)]
        async with running_server(apps[0]) as host_a, running_server(apps[1]) as host_b:
            async with httpx.AsyncClient(timeout=5) as http:
                doc_a = (await http.post(f"http://{host_a}/", **_signed("CA5"))).text
                doc_b = (await http.post(f"http://{host_b}/", **_signed("CA5"))).text
            token = doc_a.split("/ws/", 1)[1].split('"', 1)[0]
            assert token in doc_b  # the replay on another instance got the same token
            first = await fake_call(
                f"ws://{host_a}/ws/{token}", "twilio", call_id="CA5", max_secs=2
            )
            assert first.close_code == 1000
            replay = await fake_call(
                f"ws://{host_b}/ws/{token}", "twilio", call_id="CA5", max_secs=2
            )
            assert replay.close_code == 4003 or replay.http_status == 403
        # Redis gone: the webhook refuses (503) rather than minting an unrecorded token.
    async with running_server(apps[0]) as host_a, httpx.AsyncClient(timeout=10) as http:
        down = await http.post(f"http://{host_a}/", **_signed("CA6"))
    assert down.status_code == 503 and "Reject" in down.text
    for app in apps:
        await app.state.runner.tokens.store.aclose()
