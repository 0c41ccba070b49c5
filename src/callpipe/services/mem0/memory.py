"""Mem0MemoryService: what a caller said on earlier calls, recalled into the LLM's context.

Placed between the user aggregator and the LLM. On each context frame (``LLMContextFrame`` or
the older ``OpenAILLMContextFrame``) it

1. searches Mem0 for memories matching the caller's latest words, for at most
   ``InputParams.search_timeout_secs`` (a few hundred milliseconds by default): on a timeout or
   an error the frame goes on with no new memories and a warning is logged;
2. puts what it found into the context as one message (``system`` role, or ``user`` with
   ``add_as_system_message=False``) at ``InputParams.position``, replacing the one it put there
   on an earlier turn;
3. sends the conversation's new user and assistant messages to Mem0 in a background task (the
   turn never waits for it; at most two such requests are in flight per call, and messages not
   sent yet go with the next turn's), and passes the frame on.

Mem0 is reached over its Platform REST API (``POST /v3/memories/add/`` and
``/v3/memories/search/``, ``Authorization: Token <key>``) through the event loop's shared
connection pool; no SDK is needed. ``local_config`` runs the open-source ``mem0.Memory`` (its own
vector store and LLM) instead: that needs the ``mem0ai`` package (``pip install
'callpipe[mem0]'``), and its blocking calls run in a worker thread.

A key Mem0 refuses is reported once as a non-fatal ``ErrorFrame`` (memory is an extra: the call
goes on) and no further requests are made. Memories and ids are never logged above DEBUG, and
then the ids are masked: ``user_id`` is often the caller's number.

Differences from Pipecat 1.14, which reaches Mem0 through its SDK:

- the search is bounded in time, and the store and search are made without the SDK's blocking
  client in a thread;
- each turn sends only the messages Mem0 has not had yet (not the whole conversation again),
  and a speculative run (an eager end of turn) is searched for but not stored;
- the context holds one memories message, replaced each turn, instead of one more per turn;
- an instruction-style memories message has the ``system`` role (Pipecat's is ``developer``),
  which every LLM service of callpipe sends as an instruction.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, Field

from callpipe.errors import (
    ConfigurationError,
    MissingDependencyError,
    ProtocolError,
    ServiceAuthError,
)
from callpipe.frames.frames import CancelFrame, EndFrame, Frame, LLMContextFrame
from callpipe.log import call_tag, mask, redact_numbers
from callpipe.processors.aggregators.llm_context import (
    LLMContext,
    LLMSpecificMessage,
    standard_message_text,
)
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services._env import MEM0_URL_ENV, base_url
from callpipe.services._http import error_message
from callpipe.utils.http_pool import pooled_transport

logger = logging.getLogger(__name__)

DEFAULT_HOST = "https://api.mem0.ai"
API_KEY_ENV = "MEM0_API_KEY"
MAX_MESSAGES_PER_ADD = 20
"""At most this many of the newest messages go in one store request (a context seeded with a
long history is not sent whole)."""
MAX_ADDS_IN_FLIGHT = 2
"""Store requests one call may have open at once; beyond, messages wait for the next turn."""
ADD_TIMEOUT_SECS = 10.0
END_GRACE_SECS = 1.0
"""How long an ending call waits for its store requests in flight before cancelling them."""
METADATA = {"platform": "pipecat"}
"""Attached to what is stored, as Pipecat does, so a bot moved to callpipe keeps its tagging."""

Ids = Mapping[str, str]
"""The entity ids memories are stored under and searched by (``user_id``, ...)."""


class _Backend(Protocol):
    async def add(self, messages: list[dict[str, str]], ids: Ids) -> None: ...

    async def search(
        self, query: str, ids: Ids, limit: int, threshold: float
    ) -> list[dict[str, Any]]: ...

    async def get_all(self, ids: Ids) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


def _scope(ids: Ids) -> Ids:
    """The ids a search or listing is narrowed to: with a ``user_id`` (on a phone bot usually
    the caller's number), that user's memories, whichever agent or call stored them; without
    one, all the ids given."""
    return {"user_id": ids["user_id"]} if "user_id" in ids else ids


def _entity_filter(ids: Ids) -> dict[str, Any]:
    """The Platform's entity filter. With a ``user_id``, only that user's memories match, so
    one caller never hears what another told an agent shared by every call; without one, any
    of the ids given matches (``OR``, as Pipecat builds it for every search): agent- or
    run-wide memory."""
    if "user_id" in ids:
        return dict(_scope(ids))
    return {"OR": [{name: value} for name, value in ids.items()]}


def _results(data: Any) -> list[dict[str, Any]]:
    """The memories of an answer: ``{"results": [...]}`` or a bare list."""
    items = data.get("results") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ProtocolError("Mem0 answered without a list of results")
    return [item for item in items if isinstance(item, dict)]


class _Platform:
    """The Mem0 Platform REST API over the loop's shared connection pool."""

    def __init__(self, api_key: str, host: str) -> None:
        self._headers = {"Authorization": f"Token {api_key}", "Accept": "application/json"}
        self._host = host
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._host,
                headers=self._headers,
                timeout=httpx.Timeout(ADD_TIMEOUT_SECS, connect=5.0),
                transport=pooled_transport(),
            )
        return self._client

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self._http().post(path, json=body)
        if response.status_code in (401, 403):
            message = error_message(response.status_code, response.content)
            raise ServiceAuthError(f"Mem0 refused the API key: {message}")
        if response.status_code >= 300:
            message = error_message(response.status_code, response.content)
            raise ProtocolError(f"Mem0 answered HTTP {response.status_code}: {message}")
        try:
            return response.json()
        except ValueError as exc:
            raise ProtocolError("Mem0 answered with something other than JSON") from exc

    async def add(self, messages: list[dict[str, str]], ids: Ids) -> None:
        await self._post(
            "/v3/memories/add/", {"messages": messages, "metadata": dict(METADATA), **ids}
        )

    async def search(
        self, query: str, ids: Ids, limit: int, threshold: float
    ) -> list[dict[str, Any]]:
        body = {
            "query": query,
            "filters": _entity_filter(ids),
            "top_k": limit,
            "threshold": threshold,
        }
        return _results(await self._post("/v3/memories/search/", body))

    async def get_all(self, ids: Ids) -> list[dict[str, Any]]:
        return _results(await self._post("/v3/memories/", {"filters": _entity_filter(ids)}))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class _Local:
    """The open-source ``mem0.Memory``, made on first use; its calls run in a worker thread."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = config
        self._memory: Any = None
        self._lock = asyncio.Lock()

    async def _get(self) -> Any:
        async with self._lock:
            if self._memory is None:
                mem0 = importlib.import_module("mem0")
                self._memory = await asyncio.to_thread(mem0.Memory.from_config, self._config)
        return self._memory

    async def add(self, messages: list[dict[str, str]], ids: Ids) -> None:
        memory = await self._get()
        await asyncio.to_thread(lambda: memory.add(messages, metadata=dict(METADATA), **ids))

    async def search(
        self, query: str, ids: Ids, limit: int, threshold: float
    ) -> list[dict[str, Any]]:
        memory = await self._get()
        found = await asyncio.to_thread(
            lambda: memory.search(
                query, filters=dict(_scope(ids)), top_k=limit, threshold=threshold
            )
        )
        return _results(found)

    async def get_all(self, ids: Ids) -> list[dict[str, Any]]:
        memory = await self._get()
        return _results(await asyncio.to_thread(lambda: memory.get_all(filters=dict(_scope(ids)))))

    async def close(self) -> None:
        return None


def _said(exc: BaseException) -> str:
    """An error for the log, with any phone number in it (Mem0 may quote a ``user_id``)
    masked."""
    return redact_numbers(f"{type(exc).__name__}: {exc}")


def _storable(message: Any) -> dict[str, str] | None:
    """A user or assistant message as Mem0 takes it (``role`` and text ``content``), or None
    for anything else (instructions, tool calls and results, provider-specific messages)."""
    if isinstance(message, LLMSpecificMessage) or not isinstance(message, dict):
        return None
    role = message.get("role")
    if role not in ("user", "assistant"):
        return None
    text = standard_message_text(message)
    return {"role": role, "content": text} if text.strip() else None


class Mem0MemoryService(FrameProcessor):
    """Long-term memory from Mem0, between the user aggregator and the LLM (module docstring).

    Give at least one of ``user_id``, ``agent_id`` and ``run_id``: memories are stored under all
    of those given. With a ``user_id``, a search finds only that user's memories (whichever
    agent or call stored them, so earlier calls are remembered). This differs from Pipecat,
    whose search matches any of the ids (``OR``): there an ``agent_id`` shared by every call
    brings back what other callers told the agent, which a phone bot must not do. Without a
    ``user_id`` the search is Pipecat's: any of the ids given.
    """

    passes_input_audio = True

    class InputParams(BaseModel):
        """How memories are searched and put into the context."""

        search_limit: int = Field(
            default=10, ge=1, description="The most memories one search brings back."
        )
        search_threshold: float = Field(
            default=0.1,
            ge=0.0,
            le=1.0,
            description="The lowest relevance score a memory needs to be brought back.",
        )
        api_version: str | None = Field(
            default=None,
            description="Deprecated and ignored (Mem0's SDK 2.x dropped it), as in Pipecat.",
        )
        system_prompt: str = Field(
            default="Based on previous conversations, I recall: \n\n",
            description="The text the memories message starts with.",
        )
        add_as_system_message: bool = Field(
            default=True,
            description="Put the memories in as an instruction (a system message); False: as "
            "a user message.",
        )
        position: int = Field(
            default=1,
            description="Where in the context the memories message goes (clamped to its length).",
        )
        search_timeout_secs: float = Field(
            default=0.4,
            gt=0.0,
            description="callpipe: the longest a turn waits for the search; then the context "
            "goes on without memories.",
        )

    def __init__(
        self,
        *,
        api_key: str | None = None,
        local_config: dict[str, Any] | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        params: InputParams | None = None,
        host: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        ids = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
        self._ids: dict[str, str] = {k: v for k, v in ids.items() if v}
        if not self._ids:
            raise ConfigurationError(
                "Mem0MemoryService: give at least one of user_id, agent_id or run_id"
            )
        p = params or Mem0MemoryService.InputParams()
        if p.api_version is not None:
            warnings.warn(
                "Mem0MemoryService.InputParams.api_version has no effect and is deprecated",
                DeprecationWarning,
                stacklevel=2,
            )
        self._params = p
        self._backend: _Backend
        if local_config:
            if importlib.util.find_spec("mem0") is None:
                raise MissingDependencyError("mem0ai (Mem0MemoryService local_config)", "mem0")
            self._backend = _Local(dict(local_config))
        else:
            key = api_key or os.environ.get(API_KEY_ENV, "")
            if not key:
                raise ConfigurationError(
                    f"Mem0MemoryService: pass api_key (or set {API_KEY_ENV}) or local_config"
                )
            self._backend = _Platform(key, base_url(host, MEM0_URL_ENV, DEFAULT_HOST))
        self._injected: dict[str, Any] | None = None
        self._last_query: str | None = None
        self._sent: list[Any] = []
        """The context messages already stored (kept so their ids stay unique)."""
        self._sent_ids: set[int] = set()
        self._adds: set[asyncio.Task[None]] = set()
        self._key_refused = False
        logger.debug(
            "%sMem0MemoryService for %s",
            call_tag(),
            ", ".join(f"{k}={mask(v)}" for k, v in self._ids.items()),
        )

    @property
    def user_id(self) -> str | None:
        return self._ids.get("user_id")

    @property
    def agent_id(self) -> str | None:
        return self._ids.get("agent_id")

    @property
    def run_id(self) -> str | None:
        return self._ids.get("run_id")

    # ------------------------------------------------------------------ outside the pipeline

    async def get_memories(self) -> list[dict[str, Any]]:
        """Every memory stored under the ids (e.g. for a greeting when the call connects);
        an empty list when Mem0 cannot be reached (logged)."""
        try:
            return await self._backend.get_all(self._ids)
        except Exception as exc:
            logger.warning("%s%s: could not list memories: %s", call_tag(), self, _said(exc))
            return []

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame | OpenAILLMContextFrame):
            context = frame.context
            if isinstance(context, LLMContext | OpenAILLMContext):
                speculative = isinstance(frame, LLMContextFrame) and frame.speculation
                await self._remember(context, store=not speculative)
        elif isinstance(frame, EndFrame):
            await self._finish_adds(END_GRACE_SECS)
        elif isinstance(frame, CancelFrame):
            await self._finish_adds(0.0)
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await self._finish_adds(0.0)
        await self._backend.close()
        await super().cleanup()

    async def _remember(self, context: LLMContext | OpenAILLMContext, *, store: bool) -> None:
        query = self._latest_user_text(context.messages)
        if not query or self._key_refused:
            return
        if query != self._last_query:
            self._last_query = query
            memories = await self._search(query)
            if memories is not None:
                self._recall(context, memories)
        if store:
            self._store_new(context.messages)

    def _recall(
        self, context: LLMContext | OpenAILLMContext, memories: Sequence[Mapping[str, Any]]
    ) -> None:
        """Put ``memories`` in the context in place of the ones an earlier turn put there."""
        # The context as it is now: others may have added to it while the search ran.
        messages: list[Any] = [m for m in context.messages if m is not self._injected]
        self._injected = None
        if memories:
            self._injected = self._memories_message(memories)
            position = max(0, min(self._params.position, len(messages)))
            messages.insert(position, self._injected)
        context.set_messages(messages)

    def _latest_user_text(self, messages: Sequence[Any]) -> str:
        """What the caller said last: the search's query (``""`` when they said nothing)."""
        for message in reversed(messages):
            if message is self._injected or not isinstance(message, dict):
                continue
            if message.get("role") == "user":
                text = standard_message_text(message).strip()
                if text:
                    return text
        return ""

    def _memories_message(self, memories: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        lines = [str(m.get("memory") or "").strip() for m in memories]
        listed = "\n".join(f"{n}. {line}" for n, line in enumerate(filter(None, lines), 1))
        role = "system" if self._params.add_as_system_message else "user"
        return {"role": role, "content": f"{self._params.system_prompt}{listed}"}

    async def _search(self, query: str) -> list[dict[str, Any]] | None:
        """The memories for ``query``; None when the search failed or took too long."""
        p = self._params
        try:
            async with asyncio.timeout(p.search_timeout_secs):
                found = await self._backend.search(
                    query, self._ids, p.search_limit, p.search_threshold
                )
        except TimeoutError:
            logger.warning(
                "%s%s: no memories this turn: the search took over %.2fs",
                call_tag(),
                self,
                p.search_timeout_secs,
            )
            return None
        except ServiceAuthError as exc:
            await self._refused(exc)
            return None
        except Exception as exc:
            logger.warning("%s%s: no memories this turn: %s", call_tag(), self, _said(exc))
            return None
        logger.debug("%s%s: %d memories found", call_tag(), self, len(found))
        return found

    # ------------------------------------------------------------------ storing

    def _store_new(self, messages: Sequence[Any]) -> None:
        """Start a store request for the messages not sent yet (newest first, back to the
        first one already sent), unless enough requests are in flight already."""
        if len(self._adds) >= MAX_ADDS_IN_FLIGHT:
            return
        new: list[Any] = []
        for message in reversed(messages):
            if id(message) in self._sent_ids or len(new) == MAX_MESSAGES_PER_ADD:
                break
            if message is not self._injected and _storable(message) is not None:
                new.append(message)
        if not new:
            return
        new.reverse()
        for message in new:
            self._sent.append(message)
            self._sent_ids.add(id(message))
        batch = [m for m in (_storable(message) for message in new) if m is not None]
        task = self.create_task(self._add(batch), name="mem0_add")
        self._adds.add(task)
        task.add_done_callback(self._adds.discard)

    async def _add(self, batch: list[dict[str, str]]) -> None:
        try:
            async with asyncio.timeout(ADD_TIMEOUT_SECS):
                await self._backend.add(batch, self._ids)
        except ServiceAuthError as exc:
            await self._refused(exc)
        except Exception as exc:
            logger.warning(
                "%s%s: could not store %d messages: %s", call_tag(), self, len(batch), _said(exc)
            )
        else:
            logger.debug("%s%s: stored %d messages", call_tag(), self, len(batch))

    async def _finish_adds(self, grace_secs: float) -> None:
        """Give the store requests in flight ``grace_secs`` to finish, then cancel them."""
        pending = set(self._adds)
        if pending and grace_secs > 0:
            await asyncio.wait(pending, timeout=grace_secs)
        for task in pending:
            if not task.done():
                await self.cancel_task(task)

    async def _refused(self, exc: ServiceAuthError) -> None:
        if self._key_refused:
            return
        self._key_refused = True
        await self.push_error(f"{self}: memory is off for this call", exception=exc)
