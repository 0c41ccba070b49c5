"""The transport's typed seams: what it reads from serializers and VAD analyzers, without probes."""

from __future__ import annotations

from typing import Any

import pytest

from callpipe.audio.vad.vad_analyzer import VADParams, VADState
from callpipe.frames.frames import Frame
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.exotel import ExotelFrameSerializer
from callpipe.serializers.generic import GenericFrameSerializer
from callpipe.serializers.jambonz import JambonzFrameSerializer
from callpipe.serializers.plivo import PlivoFrameSerializer
from callpipe.serializers.signalwire import SignalWireFrameSerializer
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.serializers.vonage import VonageFrameSerializer
from callpipe.transports.base_transport import TransportParams
from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketParams, _call_id

SERIALIZERS: list[FrameSerializer] = [
    TwilioFrameSerializer(
        "MZ1", "CA1", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    ),
    SignalWireFrameSerializer(
        "s-1", "c-1", params=SignalWireFrameSerializer.InputParams(auto_hang_up=False)
    ),
    TelnyxFrameSerializer(
        "st", "PCMU", "PCMU", params=TelnyxFrameSerializer.InputParams(auto_hang_up=False)
    ),
    PlivoFrameSerializer("sp", "cp", params=PlivoFrameSerializer.InputParams(auto_hang_up=False)),
    ExotelFrameSerializer("se", "ce"),
    VonageFrameSerializer(),
    GenericFrameSerializer(),
    JambonzFrameSerializer(params=JambonzFrameSerializer.InputParams(auto_hang_up=False)),
]


class Plain(FrameSerializer):
    """A user's serializer that only encodes and decodes: no marks, no rate preference."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        return None

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        return None


@pytest.mark.parametrize("serializer", SERIALIZERS, ids=lambda s: type(s).__name__)
def test_supports_marks_says_what_serialize_mark_does(serializer: FrameSerializer) -> None:
    assert serializer.supports_marks is (serializer.serialize_mark("m") is not None)


def test_a_plain_serializer_has_the_defaults() -> None:
    plain = Plain()
    assert (plain.supports_marks, plain.wire_sample_rate, plain.preferred_10ms_chunks) == (
        False,
        None,
        None,
    )
    assert _call_id(plain) == "-" and _call_id(None) is None


def test_call_id_is_the_serializers_own() -> None:
    assert _call_id(SERIALIZERS[0]) == "CA1"
    assert _call_id(SERIALIZERS[3]) == "cp"


class DuckVAD:
    """Not a VADAnalyzer subclass: the seam is structural, so it is accepted."""

    def __init__(self) -> None:
        self.params = VADParams()

    def set_sample_rate(self, sample_rate: int) -> None:
        pass

    def set_params(self, params: VADParams) -> None:
        self.params = params

    async def analyze_audio(self, buffer: bytes) -> VADState:
        return VADState.QUIET


def test_duck_typed_vad_and_serializer_are_accepted() -> None:
    vad: Any = DuckVAD()
    assert TransportParams(vad_analyzer=vad).vad_analyzer is vad
    params = FastAPIWebsocketParams(serializer=SERIALIZERS[0])
    assert params.serializer is SERIALIZERS[0]
