"""Post-call webhook: POST each finished call record to a URL you configure, signed.

``CALLPIPE_RECORDS_WEBHOOK_URL`` turns it on (records must be on too); with
``CALLPIPE_RECORDS_WEBHOOK_SECRET`` every request carries

    X-Callpipe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

so the receiver can check the body came from this runner and is recent (compare ``t`` with its
clock, reject old ones, compare the MAC in constant time; :func:`verify_signature` does that).
``X-Callpipe-Record-Id`` names the record (the same id on every retry: deduplicate on it).

Delivery runs in background tasks, so neither the call nor its teardown ever waits for it.
Network errors, 5xx and 429 answers are retried with exponential backoff (``attempts`` in all);
other 4xx answers are final. Outcomes are counted in ``callpipe_records_webhook_total``
(``outcome=ok|retried|failed|dropped``); at most ``max_pending`` deliveries are in flight, more
are dropped (counted) rather than piling up behind a dead receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
from typing import Any

import httpx

from callpipe.metrics.registry import REGISTRY
from callpipe.utils.tls import shared_ssl_context

logger = logging.getLogger(__name__)

WEBHOOK_URL_ENV = "CALLPIPE_RECORDS_WEBHOOK_URL"
WEBHOOK_SECRET_ENV = "CALLPIPE_RECORDS_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Callpipe-Signature"
RECORD_ID_HEADER = "X-Callpipe-Record-Id"

WEBHOOK_DELIVERIES = REGISTRY.counter(
    "callpipe_records_webhook_total",
    "Call-record webhook deliveries (labels: outcome=ok|retried|failed|dropped).",
)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_secs: float = 300.0,
    now: float | None = None,
) -> bool:
    """For receivers: is ``header`` a valid, recent signature of ``body``?"""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance_secs:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


class RecordWebhook:
    """Delivers records to one URL in the background, with retries."""

    def __init__(
        self,
        url: str,
        secret: str | None = None,
        *,
        attempts: int = 5,
        backoff_secs: float = 1.0,
        timeout_secs: float = 10.0,
        max_pending: int = 256,
    ) -> None:
        self.url = url
        self.secret = secret
        self.attempts = max(1, attempts)
        self.backoff_secs = backoff_secs
        self.timeout_secs = timeout_secs
        self.max_pending = max_pending
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def from_env(cls) -> RecordWebhook | None:
        url = os.environ.get(WEBHOOK_URL_ENV) or None
        if url is None:
            return None
        return cls(url, os.environ.get(WEBHOOK_SECRET_ENV) or None)

    def send(self, record: dict[str, Any]) -> None:
        """Queue ``record`` for delivery and return at once."""
        if len(self._tasks) >= self.max_pending:
            WEBHOOK_DELIVERIES.inc(outcome="dropped")
            logger.warning(
                "call record webhook: %d deliveries pending, dropping one", self.max_pending
            )
            return
        task = asyncio.get_running_loop().create_task(self._deliver(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver(self, record: dict[str, Any]) -> None:
        body = json.dumps(record, ensure_ascii=False, default=str).encode()
        record_id = str(record.get("record_id", ""))
        last = ""
        async with httpx.AsyncClient(
            timeout=self.timeout_secs, verify=shared_ssl_context()
        ) as client:
            for attempt in range(self.attempts):
                if attempt:
                    WEBHOOK_DELIVERIES.inc(outcome="retried")
                    await asyncio.sleep(self.backoff_secs * 2 ** (attempt - 1))
                headers = {"Content-Type": "application/json", RECORD_ID_HEADER: record_id}
                if self.secret:
                    headers[SIGNATURE_HEADER] = sign(self.secret, body, int(time.time()))
                try:
                    response = await client.post(self.url, content=body, headers=headers)
                except httpx.HTTPError as exc:
                    last = type(exc).__name__
                    continue
                if response.status_code < 300:
                    WEBHOOK_DELIVERIES.inc(outcome="ok")
                    return
                last = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refused this record: retrying will not help
        WEBHOOK_DELIVERIES.inc(outcome="failed")
        logger.warning("call record webhook: record %s not delivered (%s)", record_id, last)
