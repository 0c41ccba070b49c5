"""Hypothesis drives random and Twilio-shaped messages down one live call over loopback.

Unlike the serializer property tests, this exercises the whole path (uvicorn, the transport's
receive loop, the serializer, the pipeline): after every example the call must still hear a
keypress and echo audio, and nothing may be logged at ERROR.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from .helpers import BotConfig, BotServer, Caller, CallRecord, LogCapture, serve

pytestmark = pytest.mark.integration

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
events = st.sampled_from(["media", "dtmf", "mark", "start", "connected", "clear", "x"]) | st.text(
    max_size=10
)
payloads = (
    st.binary(max_size=400).map(lambda b: base64.b64encode(b).decode())
    | st.text(max_size=50)
    | json_values
)
shaped = st.fixed_dictionaries(
    {"event": events},
    optional={
        "streamSid": st.text(max_size=40) | json_values,
        "sequenceNumber": st.text(max_size=5) | st.integers(),
        "media": st.fixed_dictionaries(
            {}, optional={"payload": payloads, "track": st.sampled_from(["inbound", "outbound", 3])}
        )
        | json_values,
        "dtmf": st.fixed_dictionaries({}, optional={"digit": json_values}) | json_values,
        "mark": st.fixed_dictionaries({}, optional={"name": json_values}) | json_values,
        "start": json_values,
    },
).map(lambda d: json.dumps(d))
messages = st.one_of(
    shaped,
    json_values.map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200),
    shaped.map(lambda s: s.encode()),  # JSON in a binary frame
    shaped.map(lambda s: s[: len(s) // 2]),  # truncated
)


class LiveCall:
    """A server in a background thread, and one synchronous Twilio-speaking client."""

    def __init__(self) -> None:
        self.server = BotServer(BotConfig(digit_actions=False))  # keys are only recorded
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop = asyncio.Event()
        self.addr = ""
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._serve(),))
        self.logs = LogCapture(logging.ERROR)
        self.received = 0
        self.ws: ClientConnection | None = None
        self.digit = 0
        self._stack = contextlib.ExitStack()

    async def _serve(self) -> None:
        self.stop = asyncio.Event()
        async with serve(self.server.app) as addr:
            self.addr = addr
            self.ready.set()
            await self.stop.wait()

    def __enter__(self) -> LiveCall:
        logging.getLogger().addHandler(self.logs)
        self.thread.start()
        assert self.ready.wait(10)
        self.ws = self._stack.enter_context(
            connect(f"ws://{self.addr}/ws", compression=None, max_size=None)
        )
        caller = Caller("", 1)
        self.ws.send(json.dumps({"event": "connected"}))
        self.ws.send(json.dumps(caller.start_message()))
        self._caller = caller
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        assert self.ws is not None
        try:
            for _ in self.ws:
                self.received += 1
        except Exception:
            pass

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(15)
        logging.getLogger().removeHandler(self.logs)

    @property
    def record(self) -> CallRecord:
        return self.server.calls[0]

    def send(self, data: str | bytes) -> None:
        assert self.ws is not None
        self.ws.send(data)

    def check_alive(self) -> None:
        """A keypress is heard and a media packet is echoed, after whatever came before."""
        self.digit = (self.digit % 5) + 1  # 1..5: digits the bot only records
        heard, echoed = len(self.record.audio_in), self.received
        self.send(self._caller.media_message(bytes(320)))
        self.send(json.dumps({"event": "dtmf", "dtmf": {"digit": str(self.digit)}}))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if (
                self.record.digits[-1:] == [str(self.digit)]
                and len(self.record.audio_in) > heard
                and self.received > echoed
            ):
                return
            time.sleep(0.005)
        raise AssertionError("the call stopped working")


@pytest.fixture(scope="module")
def live_call() -> Iterator[LiveCall]:
    with LiveCall() as call:
        yield call


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(messages, min_size=1, max_size=12))
def test_random_messages_never_break_a_live_call(live_call: LiveCall, batch: list[Any]) -> None:
    for data in batch:
        text = data.decode(errors="replace") if isinstance(data, bytes) else data
        if '"stop"' in text:
            continue  # a well-formed stop legitimately ends the call
        live_call.send(data)
    live_call.check_alive()
    assert live_call.logs.records == [], [r.getMessage() for r in live_call.logs.records]
    assert "internal_error" not in live_call.record.serializer.malformed_counts
    assert not live_call.record.done.is_set()
