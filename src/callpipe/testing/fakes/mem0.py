"""FakeMem0Server: the Mem0 Platform REST API (``api.mem0.ai``) on 127.0.0.1.

The contract, as Mem0's API reference (https://docs.mem0.ai/api-reference) and the official
``mem0ai`` SDK's ``MemoryClient`` (2.x) have it:

- Every request carries ``Authorization: Token <key>``; a wrong key gets 401 ``{"detail": ...}``.
- ``GET /v1/ping/``: the key check the SDK's client makes when it is created; answers the
  organisation and project the key belongs to.
- ``POST /v3/memories/add/``: ``messages`` (``role`` ``user``/``assistant``/``system``, string
  ``content``), at least one entity id (``user_id``, ``agent_id``, ``app_id``, ``run_id``) at the
  top level, optional ``metadata`` and ``infer``. Processing is queued: the answer is
  ``{"message", "status": "PENDING", "event_id"}``. Here the "inference" is naive and
  immediate: each user message (every message with ``infer: false``) becomes one memory.
- ``POST /v3/memories/search/``: ``query`` (non-empty) and ``filters`` (entity ids, flat or
  under ``AND``/``OR``), optional ``top_k`` (default 10) and ``threshold`` (default 0.1) →
  ``{"results": [memory, ...]}`` best first, each with its ``score``. The score is a naive
  keyword overlap (the share of the query's words found in the memory), not an embedding.
- ``POST /v3/memories/``: every memory the ``filters`` match, paginated
  (``{"count", "next", "previous", "results"}``).
- A refused body gets 400 ``{"error": "400 Bad Request", "details": {"message"}}``.

Scripting: :meth:`remember` stores a memory up front; ``search_delay`` and ``add_delay`` hold
each search or add answer (a slow Mem0); ``fail_status`` answers add and search with that
status (and ``fail_detail``). Request bodies are recorded in ``adds`` and ``searches`` as they
arrive (headers in ``headers``); ``adds_done`` counts the adds answered.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from callpipe.testing.fakes._server import LocalASGIServer, ServedHTTPFake, fake_app

ENTITY_IDS = ("user_id", "agent_id", "app_id", "run_id")
ROLES = frozenset({"user", "assistant", "system"})
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class StoredMemory:
    """One memory as the API returns it."""

    memory: str
    ids: dict[str, str]
    metadata: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def as_json(self, score: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "memory": self.memory,
            **{name: self.ids.get(name) for name in ENTITY_IDS},
            "metadata": self.metadata or None,
            "categories": [],
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }
        if score is not None:
            out["score"] = score
        return out


def matches(filters: Any, ids: dict[str, str]) -> bool:
    """Whether a memory with ``ids`` passes Mem0's entity ``filters`` (flat, ``AND``, ``OR``;
    ``"*"`` matches any value that is set)."""
    if not isinstance(filters, dict):
        return False
    for key, value in filters.items():
        if key in ("AND", "OR"):
            clauses = value if isinstance(value, list) else []
            results = [matches(clause, ids) for clause in clauses]
            if not (all(results) if key == "AND" else any(results)):
                return False
        elif key in ENTITY_IDS:
            have = ids.get(key)
            if value == "*":
                if have is None:
                    return False
            elif isinstance(value, dict) and isinstance(value.get("in"), list):
                if have not in value["in"]:
                    return False
            elif have != value:
                return False
    return True


def _has_entity(filters: Any) -> bool:
    if not isinstance(filters, dict):
        return False
    for key, value in filters.items():
        if key in ENTITY_IDS:
            return True
        if key in ("AND", "OR") and isinstance(value, list):
            if any(_has_entity(clause) for clause in value):
                return True
    return False


def keyword_score(query: str, memory: str) -> float:
    """The share of the query's words (of three letters or more) the memory contains."""
    wanted = {w for w in _WORD.findall(query.lower()) if len(w) > 2}
    if not wanted:
        return 0.0
    have = set(_WORD.findall(memory.lower()))
    return round(len(wanted & have) / len(wanted), 4)


def _bad_request(message: str) -> Response:
    return JSONResponse(
        {"error": "400 Bad Request", "details": {"message": message}}, status_code=400
    )


def add_problem(body: Any) -> str | None:
    """Why ``POST /v3/memories/add/`` would refuse ``body`` (None: it would not)."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: This field is required."
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"messages[{n}].role: must be one of user, assistant, system."
        if not isinstance(message.get("content"), str):
            return f"messages[{n}].content: must be a string."
    if not any(isinstance(body.get(name), str) and body[name] for name in ENTITY_IDS):
        return "At least one of user_id, agent_id, app_id or run_id is required."
    if "metadata" in body and not isinstance(body["metadata"], dict | None):
        return "metadata: must be an object."
    return None


class FakeMem0Server(ServedHTTPFake):
    """See the module docstring. ``async with FakeMem0Server() as fake: fake.base_url``."""

    def __init__(self, *, api_key: str | None = "test-key") -> None:
        self.api_key = api_key
        self.memories: list[StoredMemory] = []
        self.adds: list[dict[str, Any]] = []
        self.searches: list[dict[str, Any]] = []
        self.lists: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.search_delay = 0.0
        self.add_delay = 0.0
        self.adds_done = 0
        self.fail_status: int | None = None
        self.fail_detail = "fake failure"
        self._server = LocalASGIServer(
            fake_app(
                [
                    Route("/v1/ping/", self._ping, methods=["GET"]),
                    Route("/v3/memories/add/", self._add, methods=["POST"]),
                    Route("/v3/memories/search/", self._search, methods=["POST"]),
                    Route("/v3/memories/", self._list, methods=["POST"]),
                ]
            )
        )

    def remember(self, memory: str, **ids: str) -> StoredMemory:
        """Store ``memory`` for the given entity ids (``user_id="+1555…"``)."""
        stored = StoredMemory(memory=memory, ids=dict(ids))
        self.memories.append(stored)
        return stored

    def _denied(self, request: Request) -> Response | None:
        self.headers.append(dict(request.headers))
        if self.api_key is None:
            return None
        if request.headers.get("authorization") == f"Token {self.api_key}":
            return None
        return JSONResponse({"detail": "Invalid API key."}, status_code=401)

    async def _body(self, request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            return None

    async def _ping(self, request: Request) -> Response:
        return self._denied(request) or JSONResponse(
            {"status": "ok", "org_id": "org-fake", "project_id": "proj-fake", "user_email": None}
        )

    async def _add(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = await self._body(request)
        self.adds.append(body)
        if self.add_delay:
            await asyncio.sleep(self.add_delay)
        self.adds_done += 1
        if self.fail_status is not None:
            return JSONResponse({"detail": self.fail_detail}, status_code=self.fail_status)
        problem = add_problem(body)
        if problem is not None:
            return _bad_request(problem)
        ids = {name: body[name] for name in ENTITY_IDS if isinstance(body.get(name), str)}
        infer = body.get("infer", True) is not False
        for message in body["messages"]:
            if message["content"].strip() and (not infer or message["role"] == "user"):
                metadata = dict(body.get("metadata") or {})
                self.memories.append(StoredMemory(message["content"], ids, metadata))
        return JSONResponse(
            {
                "message": "Memory processing has been queued for background execution",
                "status": "PENDING",
                "event_id": str(uuid.uuid4()),
            }
        )

    async def _search(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = await self._body(request)
        self.searches.append(body)
        if self.search_delay:
            await asyncio.sleep(self.search_delay)
        if self.fail_status is not None:
            return JSONResponse({"detail": self.fail_detail}, status_code=self.fail_status)
        if not isinstance(body, dict):
            return _bad_request("The request body must be a JSON object.")
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return _bad_request("query: This field may not be blank.")
        filters = body.get("filters")
        if not _has_entity(filters):
            return _bad_request("filters: at least one entity id is required.")
        top_k = body.get("top_k", 10)
        threshold = body.get("threshold", 0.1)
        if not isinstance(top_k, int) or top_k < 1:
            return _bad_request("top_k: must be a positive integer.")
        if not isinstance(threshold, int | float):
            return _bad_request("threshold: must be a number.")
        scored = [
            (keyword_score(query, m.memory), m) for m in self.memories if matches(filters, m.ids)
        ]
        best = sorted((s for s in scored if s[0] >= threshold), key=lambda s: -s[0])[:top_k]
        return JSONResponse({"results": [m.as_json(score) for score, m in best]})

    async def _list(self, request: Request) -> Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        body = await self._body(request)
        self.lists.append(body)
        if not isinstance(body, dict) or not _has_entity(body.get("filters")):
            return _bad_request("filters: at least one entity id is required.")
        found = [m.as_json() for m in self.memories if matches(body["filters"], m.ids)]
        return JSONResponse({"count": len(found), "next": None, "previous": None, "results": found})
