"""The Mem0 fake and Mem0MemoryService's requests against Mem0's API reference and, when it is
installed, the official ``mem0ai`` SDK's ``MemoryClient``.

Docs (https://docs.mem0.ai/api-reference/memory/add-memories, ``.../search-memories``): the add
body's fields and roles are the documented ones, entity ids at the top level; the fake answers
an add with ``{"message", "status", "event_id"}`` and a search with ``{"results": [...]}``.

SDK: ``MemoryClient(api_key=..., host=fake)`` checks its key against the fake (``/v1/ping/``),
adds, searches and lists, and reads the answers; a refused key and a refused body raise the
SDK's own errors. Our service's add and search bodies are the ones the SDK sends when called as
Pipecat 1.14's ``Mem0MemoryService`` calls it, with the same ``Authorization`` header.

``mem0ai`` is not in the ``dev`` extra: it pins ``protobuf<7``, which conflicts with other test
dependencies (gRPC tools), so the SDK half is skipped where it is not installed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import LLMContextFrame
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.mem0.memory import Mem0MemoryService
from callpipe.testing import run_test
from callpipe.testing.fakes.mem0 import FakeMem0Server

KEY = "test-key"
CALLER = "+15551234567"
IDS = {"user_id": CALLER, "agent_id": "bakery-bot", "run_id": "CA123"}
MESSAGES = [
    {"role": "user", "content": "I'd like rye bread on Fridays."},
    {"role": "assistant", "content": "Noted: rye bread on Fridays."},
    {"role": "user", "content": "Do you have rye bread today?"},
]
ADD_FIELDS = {
    "messages",
    "user_id",
    "agent_id",
    "run_id",
    "app_id",
    "metadata",
    "custom_instructions",
    "infer",
}
"""The add body's properties in the API reference's OpenAPI schema."""
SEARCH_FIELDS = {"query", "filters", "top_k", "threshold", "rerank", "fields", "categories"}

needs_sdk = pytest.mark.skipif(
    importlib.util.find_spec("mem0") is None, reason="the mem0ai SDK is not installed"
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeMem0Server]:
    async with FakeMem0Server(api_key=KEY) as server:
        server.remember("Wants rye bread on Fridays", user_id=CALLER)
        yield server


async def run_service(fake: FakeMem0Server) -> None:
    """One turn of our service with MESSAGES, its store answered before the call ends."""
    service = Mem0MemoryService(api_key=KEY, host=fake.base_url, **IDS)
    context = LLMContext([{"role": "system", "content": "You answer a bakery's phone."}])
    context.add_messages([dict(m) for m in MESSAGES])
    await run_test(service, [LLMContextFrame(context=context)])
    assert fake.adds and fake.searches


async def test_our_requests_and_the_fakes_answers_are_the_documented_ones(
    fake: FakeMem0Server,
) -> None:
    await run_service(fake)
    [add] = fake.adds
    assert set(add) <= ADD_FIELDS
    assert all(set(m) == {"role", "content"} for m in add["messages"])
    assert all(m["role"] in ("user", "assistant", "system") for m in add["messages"])
    assert all(isinstance(m["content"], str) for m in add["messages"])
    [search] = fake.searches
    assert set(search) <= SEARCH_FIELDS
    assert all(h["authorization"] == f"Token {KEY}" for h in fake.headers)
    assert all(h["accept"] == "application/json" for h in fake.headers)


def _sdk_client(fake: FakeMem0Server, key: str = KEY) -> Any:
    os.environ.setdefault("MEM0_TELEMETRY", "False")
    os.environ.setdefault("MEM0_DIR", os.path.join(tempfile.gettempdir(), "callpipe-mem0-test"))
    from mem0 import MemoryClient

    return MemoryClient(api_key=key, host=fake.base_url)


@needs_sdk
async def test_the_sdk_adds_searches_and_lists_against_the_fake(fake: FakeMem0Server) -> None:
    client = await asyncio.to_thread(_sdk_client, fake)
    added = await asyncio.to_thread(
        client.add, MESSAGES[:2], user_id=CALLER, metadata={"platform": "pipecat"}
    )
    assert added["status"] == "PENDING" and added["event_id"]
    found = await asyncio.to_thread(
        client.search, "rye bread", filters={"OR": [{"user_id": CALLER}]}, top_k=5
    )
    assert [m["memory"] for m in found["results"]][:1] == ["Wants rye bread on Fridays"]
    assert all(0.0 <= m["score"] <= 1.0 for m in found["results"])
    listed = await asyncio.to_thread(client.get_all, filters={"user_id": CALLER})
    assert listed["count"] == len(listed["results"]) >= 2


@needs_sdk
async def test_the_sdk_raises_its_own_errors_for_a_bad_key_and_a_bad_body(
    fake: FakeMem0Server,
) -> None:
    from mem0.exceptions import AuthenticationError, ValidationError

    with pytest.raises(ValueError, match="Invalid API key"):
        await asyncio.to_thread(_sdk_client, fake, "wrong")
    client = await asyncio.to_thread(_sdk_client, fake)
    with pytest.raises(ValidationError):
        await asyncio.to_thread(client.add, [{"role": "user", "content": "hi"}])  # no entity id
    fake.api_key = "rotated"
    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(client.search, "rye", filters={"user_id": CALLER})


@needs_sdk
async def test_our_requests_are_the_ones_the_sdk_sends(fake: FakeMem0Server) -> None:
    client = await asyncio.to_thread(_sdk_client, fake)
    # As the SDK is called for the service's requests: every id given to the add; the search
    # narrowed to the caller (Pipecat ORs every id; see the service).
    await asyncio.to_thread(
        client.add, [dict(m) for m in MESSAGES], metadata={"platform": "pipecat"}, **IDS
    )
    filters = {"user_id": IDS["user_id"]}
    await asyncio.to_thread(
        client.search,
        query=MESSAGES[-1]["content"],
        filters=filters,
        top_k=10,
        threshold=0.1,
    )
    sdk_add, sdk_search = fake.adds[-1], fake.searches[-1]
    sdk_auth = fake.headers[-1]["authorization"]
    fake.adds.clear()
    fake.searches.clear()
    fake.headers.clear()
    await run_service(fake)
    assert fake.adds == [sdk_add]
    assert fake.searches == [sdk_search]
    assert {h["authorization"] for h in fake.headers} == {sdk_auth}
