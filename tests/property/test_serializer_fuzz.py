"""Property tests: no input from the network makes a serializer raise.

Random text, random bytes, random JSON values, provider-shaped messages with random fields, and
mutated real fixtures all go through ``deserialize``; the answer is always None, a frame, or a
list of frames, and every skipped message is counted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.frames.frames import Frame, StartFrame
from callpipe.serializers.bandwidth import BandwidthFrameSerializer
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.exotel import ExotelFrameSerializer
from callpipe.serializers.generic import GenericFrameSerializer
from callpipe.serializers.plivo import PlivoFrameSerializer
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.serializers.vonage import VonageFrameSerializer

T = TypeVar("T")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers"
_loop = asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return _loop.run_until_complete(coro)


FACTORIES: dict[str, Callable[[], FrameSerializer]] = {
    "twilio": lambda: TwilioFrameSerializer(
        "MZ1", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    ),
    "telnyx": lambda: TelnyxFrameSerializer(
        "s1", "PCMU", "PCMU", params=TelnyxFrameSerializer.InputParams(auto_hang_up=False)
    ),
    "plivo": lambda: PlivoFrameSerializer(
        "s1", params=PlivoFrameSerializer.InputParams(auto_hang_up=False)
    ),
    "exotel": lambda: ExotelFrameSerializer("s1"),
    "vonage": VonageFrameSerializer,
    "generic": GenericFrameSerializer,
    "bandwidth": lambda: BandwidthFrameSerializer(
        "s1", params=BandwidthFrameSerializer.InputParams(auto_hang_up=False)
    ),
}


def _serializers() -> dict[str, FrameSerializer]:
    out = {}
    for name, make in FACTORIES.items():
        ser = make()
        run(ser.setup(StartFrame(audio_in_sample_rate=16000)))
        out[name] = ser
    return out


SERIALIZERS = _serializers()
EVENTS = [
    "connected", "start", "media", "dtmf", "mark", "stop", "error", "playedStream",
    "clearedAudio", "websocket:connected", "websocket:dtmf", "websocket:notify",
    "websocket:cleared", "",
]  # fmt: skip
KEYS = ["media", "dtmf", "mark", "stop", "payload", "digit", "name", "track", "type", "start"]
KEYS += ["eventType", "metadata"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)
shaped = st.fixed_dictionaries(
    {"event": st.sampled_from(EVENTS) | json_values, "type": st.sampled_from(["dtmf", "mark"])},
    optional={
        **{k: json_values for k in KEYS if k not in ("type", "eventType")},
        "eventType": st.sampled_from(EVENTS) | json_values,
    },
)
fixture_texts = [p.read_text() for p in sorted(FIXTURES.rglob("*.json"))]


def _check(ser: FrameSerializer, data: str | bytes) -> None:
    before = sum(ser.malformed_counts.values())
    result = run(ser.deserialize(data))
    assert result is None or isinstance(result, Frame | list)
    if isinstance(result, list):
        assert all(isinstance(f, Frame) for f in result)
    assert sum(ser.malformed_counts.values()) in (before, before + 1)
    # The catch-all is a safety net; every input must be handled by an explicit rule.
    assert "internal_error" not in ser.malformed_counts


COMMON = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(
    name=st.sampled_from(sorted(SERIALIZERS)), data=st.text(max_size=300) | st.binary(max_size=300)
)
def test_random_text_and_bytes(name: str, data: str | bytes) -> None:
    _check(SERIALIZERS[name], data)


@COMMON
@given(name=st.sampled_from(sorted(SERIALIZERS)), value=json_values)
def test_random_json_values(name: str, value: Any) -> None:
    _check(SERIALIZERS[name], json.dumps(value))


@COMMON
@given(name=st.sampled_from(sorted(SERIALIZERS)), message=shaped)
def test_provider_shaped_messages(name: str, message: dict[str, Any]) -> None:
    _check(SERIALIZERS[name], json.dumps(message))


@COMMON
@given(
    name=st.sampled_from(sorted(SERIALIZERS)),
    index=st.integers(0, len(fixture_texts) - 1),
    cut=st.integers(0, 2000),
    char=st.characters(),
    where=st.integers(0, 2000),
)
def test_mutated_fixtures(name: str, index: int, cut: int, char: str, where: int) -> None:
    text = fixture_texts[index]
    where %= max(1, len(text))
    mutated = text[:where] + char + text[where + 1 :]
    _check(SERIALIZERS[name], mutated)
    _check(SERIALIZERS[name], text[: cut % max(1, len(text))])
