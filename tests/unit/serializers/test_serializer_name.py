"""Serializers take Pipecat's ``name=`` (a custom serializer passing it to its base works)."""

from __future__ import annotations

from callpipe.frames.frames import Frame
from callpipe.serializers.base_serializer import FrameSerializer
from callpipe.serializers.genesys import GenesysAudioHookSerializer
from callpipe.serializers.twilio import TwilioFrameSerializer


class _Echo(FrameSerializer):
    def __init__(self, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]

    async def serialize(self, frame: Frame) -> str | bytes | None:
        return None

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        return None


def test_custom_serializer_keeps_the_name_it_was_given() -> None:
    assert _Echo(name="lobby").name == "lobby"
    assert _Echo().name == "_Echo"


def test_provider_serializers_default_to_their_class_name() -> None:
    params = TwilioFrameSerializer.InputParams(auto_hang_up=False)
    assert TwilioFrameSerializer("MZ1", params=params).name == "TwilioFrameSerializer"
    assert GenesysAudioHookSerializer(name="gx").name == "gx"
