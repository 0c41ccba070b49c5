"""Campaigns: dial a CSV of numbers through a runner, N at a time, resumably.

Each number is dialed with ``POST /calls`` and followed with ``GET /calls/{dial_id}`` until it
ends; ``busy`` and ``no-answer`` are retried after a delay, up to ``retries`` times. At most
``concurrency`` calls are in flight and dials start at most ``rate`` per second; a runner at
capacity (503) is waited for, so the runner's ``--max-calls`` bounds the campaign too.

The state file (JSON, rewritten atomically after every change) records each number's attempts,
current dial and result: an interrupted campaign started again with the same state file skips
finished numbers and resumes following calls still in flight (redialing only those the runner no
longer knows). The result file is a CSV, one row per number.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from callpipe.log import mask_number
from callpipe.telephony.dial.types import TERMINAL_STATUSES

logger = logging.getLogger(__name__)

RETRYABLE = frozenset({"busy", "no-answer"})
RESULT_COLUMNS = ("number", "result", "answered_by", "attempts", "dial_id")


@dataclass
class CampaignSettings:
    from_: str
    provider: str
    machine_detection: str = "off"
    metadata: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 5
    rate: float = 1.0
    retries: int = 1
    retry_delay: float = 60.0
    call_timeout: float = 600.0
    poll: float = 2.0


def read_numbers(path: str | Path) -> list[tuple[str, dict[str, str]]]:
    """``(number, metadata)`` rows: the ``number`` column (else the first), the rest metadata."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        key = "number" if "number" in columns else (columns[0] if columns else "number")
        rows = []
        for row in reader:
            number = (row.get(key) or "").strip()
            if number:
                rows.append((number, {k: v for k, v in row.items() if k != key and k}))
        return rows


class CampaignState:
    """Per-number progress, persisted to ``path`` (None: in memory only)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.numbers: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            self.numbers = json.loads(self.path.read_text(encoding="utf-8"))["numbers"]

    def entry(self, number: str) -> dict[str, Any]:
        return self.numbers.setdefault(number, {"attempts": 0, "result": None, "dial_id": None})

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps({"numbers": self.numbers}, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


class _RateLimiter:
    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
            self._next = max(now, self._next) + self._interval


class Campaign:
    """Run a list of numbers through ``http`` (a client whose base URL is the runner)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: CampaignSettings,
        state: CampaignState,
        *,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.http = http
        self.settings = settings
        self.state = state
        self._progress = progress or (lambda line: None)
        self._limiter = _RateLimiter(settings.rate)
        self._done = 0
        self._total = 0

    async def run(self, rows: list[tuple[str, dict[str, str]]]) -> dict[str, dict[str, Any]]:
        for number, _ in rows:
            self.state.entry(number)
        self.state.save()
        todo = [(n, m) for n, m in rows if self.state.entry(n)["result"] is None]
        self._total, self._done = len(rows), len(rows) - len(todo)
        slots = asyncio.Semaphore(max(1, self.settings.concurrency))

        async def one(number: str, metadata: dict[str, str]) -> None:
            async with slots:
                await self._call_number(number, metadata)

        async with asyncio.TaskGroup() as group:
            for number, metadata in todo:
                group.create_task(one(number, metadata))
        return self.state.numbers

    async def _call_number(self, number: str, metadata: dict[str, str]) -> None:
        entry = self.state.entry(number)
        s = self.settings
        while True:
            dial_id = entry.get("dial_id")
            status: dict[str, Any] | None = None
            if dial_id:  # resumed: follow the call still in flight, if the runner knows it
                status = await self._follow(dial_id)
                if status is None:  # interrupted before the runner placed it: not an attempt
                    entry["attempts"] = max(0, entry["attempts"] - 1)
            if status is None:
                # The id is chosen and saved before the request: if we are interrupted while
                # it is in flight, the resumed campaign finds the call instead of redialing.
                dial_id = uuid.uuid4().hex
                entry["attempts"] += 1
                entry["dial_id"] = dial_id
                self.state.save()
                if not await self._place(number, metadata, dial_id):
                    self._finish(number, "failed", None)
                    return
                status = await self._follow(dial_id)
            result = status["status"] if status else "failed"
            if result in RETRYABLE and entry["attempts"] <= s.retries:
                entry["dial_id"] = None
                self.state.save()
                self._progress(f"{mask_number(number)} {result}, retrying in {s.retry_delay:g}s")
                await asyncio.sleep(s.retry_delay)
                continue
            self._finish(number, result, status.get("answered_by") if status else None)
            return

    async def _place(self, number: str, metadata: dict[str, str], dial_id: str) -> bool:
        s = self.settings
        body = {
            "dial_id": dial_id,
            "to": number,
            "from": s.from_,
            "provider": s.provider,
            "machine_detection": s.machine_detection,
            "metadata": {**s.metadata, **metadata},
        }
        for _ in range(1000):
            await self._limiter.wait()
            response = await self.http.post("/calls", json=body)
            if response.status_code in (200, 201):
                return True
            if response.status_code == 503:  # the runner is full: wait for a free line
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            self._progress(f"{mask_number(number)} refused: HTTP {response.status_code}")
            return False
        return False

    async def _follow(self, dial_id: str) -> dict[str, Any] | None:
        """Poll until the dial ends; None if the runner does not know it (any more)."""
        s = self.settings
        try:
            async with asyncio.timeout(s.call_timeout):
                while True:
                    response = await self.http.get(f"/calls/{dial_id}")
                    if response.status_code == 404:
                        return None
                    data: dict[str, Any] = response.json()
                    if data.get("status") in TERMINAL_STATUSES:
                        return data
                    await asyncio.sleep(s.poll)
        except TimeoutError:
            return {"status": "failed", "answered_by": None}

    def _finish(self, number: str, result: str, answered_by: str | None) -> None:
        entry = self.state.entry(number)
        entry["result"] = result
        entry["answered_by"] = answered_by
        self.state.save()
        self._done += 1
        width = 20
        filled = int(width * self._done / max(1, self._total))
        bar = "#" * filled + "." * (width - filled)
        self._progress(f"[{bar}] {self._done}/{self._total} {mask_number(number)} {result}")


def write_results(path: str | Path, numbers: dict[str, dict[str, Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(RESULT_COLUMNS)
        for number, entry in numbers.items():
            writer.writerow(
                [
                    number,
                    entry.get("result") or "pending",
                    entry.get("answered_by") or "",
                    entry.get("attempts", 0),
                    entry.get("dial_id") or "",
                ]
            )


async def run_campaign_cli(args: argparse.Namespace, api_key: str) -> int:
    """``callpipe dial --csv``: run, print progress to stderr, write state and results."""
    rows = read_numbers(args.csv)
    state_path = args.state or f"{args.csv}.state.json"
    results_path = args.results or f"{args.csv}.results.csv"
    state = CampaignState(state_path)
    settings = CampaignSettings(
        from_=args.from_,
        provider=args.provider,
        machine_detection=args.machine_detection,
        metadata=json.loads(args.metadata),
        concurrency=args.concurrency,
        rate=args.rate,
        retries=args.retries,
        retry_delay=args.retry_delay,
        call_timeout=args.call_timeout,
        poll=args.poll,
    )
    headers = {"Authorization": f"Bearer {api_key}"}
    url = f"{args.scheme}://{args.host}"
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as http:
        campaign = Campaign(
            http, settings, state, progress=lambda line: print(line, file=sys.stderr)
        )
        try:
            numbers = await campaign.run(rows)
        finally:
            write_results(results_path, state.numbers)
    failed = sum(1 for e in numbers.values() if e.get("result") != "completed")
    print(f"{len(numbers) - failed} completed, {failed} not; results in {results_path}")
    return 0
