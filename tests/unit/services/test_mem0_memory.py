"""Mem0MemoryService against the Mem0 fake: memories put into the context, what is stored and
under which ids, and a slow, failing or refusing Mem0 never holding the turn."""

from __future__ import annotations

import importlib.machinery
import logging
import sys
import threading
import types
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.frames.frames import Frame, LLMContextFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.mem0 import memory as memory_module
from callpipe.services.mem0.memory import Mem0MemoryService
from callpipe.testing import run_test
from callpipe.testing.fakes.mem0 import FakeMem0Server
from callpipe.testing.pipeline import SleepFrame

from .helpers import errors, eventually

CALLER = "+15551234567"
PROMPT = Mem0MemoryService.InputParams().system_prompt
SYSTEM = {"role": "system", "content": "You answer a bakery's phone."}


@pytest.fixture
async def server() -> AsyncIterator[FakeMem0Server]:
    async with FakeMem0Server() as fake:
        yield fake


def make_memory(server: FakeMem0Server, **kwargs: Any) -> Mem0MemoryService:
    kwargs.setdefault("user_id", CALLER)
    return Mem0MemoryService(api_key="test-key", host=server.base_url, **kwargs)


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


class After(SleepFrame):
    """Waits (at most 2 s) until ``until()`` holds, then runs ``action``."""

    def __init__(self, until: Callable[[], bool], action: Callable[[], None]) -> None:
        super().__init__(2.0, until=until)
        self.action = action

    async def wait(self) -> None:
        await super().wait()
        self.action()


def contexts(frames: list[Frame]) -> list[LLMContextFrame]:
    return [f for f in frames if isinstance(f, LLMContextFrame)]


async def test_memories_go_in_as_a_system_message_after_the_prompt(
    server: FakeMem0Server,
) -> None:
    server.remember("Likes rye bread", user_id=CALLER)
    server.remember("Lives in Leeds", user_id="+15550000000")
    context = LLMContext([SYSTEM, user("Do you have rye bread today?")])
    down, up = await run_test(make_memory(server), [LLMContextFrame(context=context)])
    assert not errors(up)
    assert contexts(down)[0].context is context
    assert context.messages == [
        SYSTEM,
        {"role": "system", "content": f"{PROMPT}1. Likes rye bread"},
        user("Do you have rye bread today?"),
    ]
    assert server.searches == [
        {
            "query": "Do you have rye bread today?",
            "filters": {"user_id": CALLER},
            "top_k": 10,
            "threshold": 0.1,
        }
    ]


async def test_as_a_user_message_at_the_given_position(server: FakeMem0Server) -> None:
    server.remember("Likes rye bread", user_id=CALLER)
    params = Mem0MemoryService.InputParams(
        add_as_system_message=False, position=0, system_prompt="Known: ", search_limit=3
    )
    context = OpenAILLMContext([SYSTEM, user("Any rye bread?")])
    await run_test(make_memory(server, params=params), [OpenAILLMContextFrame(context=context)])
    assert context.messages[0] == {"role": "user", "content": "Known: 1. Likes rye bread"}
    assert context.messages[1:] == [SYSTEM, user("Any rye bread?")]
    assert server.searches[0]["top_k"] == 3


async def test_each_turn_replaces_the_memories_and_sends_only_new_messages(
    server: FakeMem0Server,
) -> None:
    server.remember("Likes rye bread", user_id=CALLER)
    server.remember("Orders a birthday cake every June", user_id=CALLER)
    context = LLMContext([SYSTEM, user("Any rye bread?")])

    def next_turn() -> None:  # the assistant aggregator, then the user aggregator
        context.add_message({"role": "assistant", "content": "Yes, fresh rye."})
        context.add_message(user("And a birthday cake?"))

    memory = make_memory(server, agent_id="bakery-bot", run_id="CA123")
    frames = [LLMContextFrame(context=context), After(lambda: len(server.adds) == 1, next_turn)]
    await run_test(memory, [*frames, LLMContextFrame(context=context)])
    await eventually(lambda: len(server.adds) == 2)
    assert server.adds[0] == {
        "messages": [user("Any rye bread?")],
        "metadata": {"platform": "pipecat"},
        "user_id": CALLER,
        "agent_id": "bakery-bot",
        "run_id": "CA123",
    }
    assert server.adds[1]["messages"] == [
        {"role": "assistant", "content": "Yes, fresh rye."},
        user("And a birthday cake?"),
    ]
    # The caller's memories, from any call or agent: the other ids do not narrow it.
    assert server.searches[0]["filters"] == {"user_id": CALLER}
    recalled = [m for m in context.messages if str(m.get("content")).startswith(PROMPT)]
    assert recalled == [
        {"role": "system", "content": f"{PROMPT}1. Orders a birthday cake every June"}
    ]
    assert context.messages[1] is recalled[0]


async def test_a_caller_never_recalls_what_another_caller_told_the_same_agent(
    server: FakeMem0Server,
) -> None:
    server.remember("Allergic to nuts", user_id="+15559990000", agent_id="bakery-bot")
    server.remember("Likes rye bread", user_id=CALLER, agent_id="bakery-bot", run_id="CA1")
    context = LLMContext([SYSTEM, user("Do you have rye bread, and anything with nuts?")])
    memory = make_memory(server, agent_id="bakery-bot", run_id="CA2")
    down, up = await run_test(memory, [LLMContextFrame(context=context)])
    assert not errors(up)
    recalled = [m for m in context.messages if str(m.get("content")).startswith(PROMPT)]
    # This caller's memory from an earlier call, and nothing of the other caller's.
    assert recalled == [{"role": "system", "content": f"{PROMPT}1. Likes rye bread"}]


async def test_what_the_context_gains_during_the_search_is_kept(server: FakeMem0Server) -> None:
    server.remember("Likes rye bread", user_id=CALLER)
    server.search_delay = 0.2
    context = LLMContext([SYSTEM, user("Any rye bread?")])
    late = {"role": "user", "content": "Oh, and a baguette."}
    params = Mem0MemoryService.InputParams(search_timeout_secs=2.0)
    frames = [
        LLMContextFrame(context=context),
        After(lambda: len(server.searches) == 1, lambda: context.add_message(late)),
    ]
    await run_test(make_memory(server, params=params), frames)
    assert context.messages == [
        SYSTEM,
        {"role": "system", "content": f"{PROMPT}1. Likes rye bread"},
        user("Any rye bread?"),
        late,
    ]


async def test_the_store_does_not_hold_the_turn(
    server: FakeMem0Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.add_delay = 0.5
    monkeypatch.setattr(memory_module, "END_GRACE_SECS", 0.05)
    seen: list[int] = []

    class LLM(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, LLMContextFrame):
                seen.append(server.adds_done)
            await self.push_frame(frame, direction)

    context = LLMContext([SYSTEM, user("Any rye bread?")])
    pipeline = Pipeline([make_memory(server), LLM()])
    await run_test(pipeline, [LLMContextFrame(context=context)])
    assert seen == [0]
    assert len(server.adds) == 1  # the request went out; its answer was not waited for


@pytest.mark.parametrize("slow", [True, False], ids=["slow", "failing"])
async def test_a_slow_or_failing_mem0_does_not_hold_the_turn(
    server: FakeMem0Server, slow: bool, caplog: pytest.LogCaptureFixture
) -> None:
    server.remember("Likes rye bread", user_id=CALLER)
    if slow:
        server.search_delay = 0.4
    else:
        server.fail_status = 500
        server.fail_detail = f"no memories for {CALLER}"  # a number in the error is masked
    params = Mem0MemoryService.InputParams(search_timeout_secs=0.05)
    context = LLMContext([SYSTEM, user("Any rye bread?")])
    with caplog.at_level(logging.WARNING, logger="callpipe.services.mem0.memory"):
        down, up = await run_test(
            make_memory(server, params=params), [LLMContextFrame(context=context)]
        )
    assert len(contexts(down)) == 1
    assert context.messages == [SYSTEM, user("Any rye bread?")]
    assert not errors(up)
    assert "no memories this turn" in caplog.text
    assert CALLER not in caplog.text


async def test_a_refused_key_is_reported_once_and_memory_stops(server: FakeMem0Server) -> None:
    memory = Mem0MemoryService(api_key="wrong", user_id=CALLER, host=server.base_url)
    first = LLMContext([SYSTEM, user("Any rye bread?")])
    second = LLMContext([SYSTEM, user("Any cake?")])
    down, up = await run_test(
        memory, [LLMContextFrame(context=first), LLMContextFrame(context=second)]
    )
    assert len(contexts(down)) == 2
    [error] = errors(up)
    assert not error.fatal
    assert "API key" in error.error
    assert len(server.headers) == 2  # the first turn's store and search; none after


async def test_a_speculative_run_is_searched_but_not_stored(server: FakeMem0Server) -> None:
    server.remember("Likes rye bread", user_id=CALLER)
    context = LLMContext([SYSTEM, user("Any rye bread?")])
    await run_test(make_memory(server), [LLMContextFrame(context=context, speculation=True)])
    assert len(server.searches) == 1
    assert server.adds == []
    assert context.messages[1]["content"].endswith("1. Likes rye bread")


def test_needs_an_id_and_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEM0_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="user_id"):
        Mem0MemoryService(api_key="k")
    with pytest.raises(ConfigurationError, match="MEM0_API_KEY"):
        Mem0MemoryService(user_id=CALLER)
    monkeypatch.setenv("MEM0_API_KEY", "from-env")
    assert Mem0MemoryService(user_id=CALLER).user_id == CALLER


class LocalMemory:
    """Stands in for the open-source ``mem0.Memory``: records each call and its thread."""

    calls: list[tuple[str, int, tuple[Any, ...], dict[str, Any]]] = []

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LocalMemory:
        cls.calls.append(("from_config", threading.get_ident(), (config,), {}))
        return cls()

    def add(self, messages: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("add", threading.get_ident(), (messages,), kwargs))
        return {"results": []}

    def search(self, query: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("search", threading.get_ident(), (query,), kwargs))
        return {"results": [{"id": "m1", "memory": "Likes rye bread", "score": 0.9}]}


async def test_local_config_runs_mem0_memory_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("mem0")
    module.__spec__ = importlib.machinery.ModuleSpec("mem0", None)
    module.Memory = LocalMemory  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mem0", module)
    monkeypatch.setattr(LocalMemory, "calls", [])
    config = {"vector_store": {"provider": "qdrant"}}
    memory = Mem0MemoryService(local_config=config, user_id=CALLER)
    context = LLMContext([SYSTEM, user("Any rye bread?")])
    await run_test(memory, [LLMContextFrame(context=context)])
    assert context.messages[1] == {"role": "system", "content": f"{PROMPT}1. Likes rye bread"}
    calls = {name: (args, kwargs) for name, _, args, kwargs in LocalMemory.calls}
    assert calls["from_config"] == ((config,), {})
    assert calls["search"] == (
        ("Any rye bread?",),
        {"filters": {"user_id": CALLER}, "top_k": 10, "threshold": 0.1},
    )
    assert calls["add"] == (
        ([user("Any rye bread?")],),
        {"metadata": {"platform": "pipecat"}, "user_id": CALLER},
    )
    assert threading.get_ident() not in {thread for _, thread, _, _ in LocalMemory.calls}


def test_local_config_needs_the_mem0_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mem0", None)
    with pytest.raises(MissingDependencyError, match=r"callpipe\[mem0\]"):
        Mem0MemoryService(local_config={"llm": {}}, user_id=CALLER)
