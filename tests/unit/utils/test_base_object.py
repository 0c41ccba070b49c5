"""``BaseObject`` at Pipecat's path: a custom class written against ``pipecat.utils.base_object``
gets names and event handlers the way callpipe's own processors do."""

from __future__ import annotations

import asyncio

from callpipe.processors import base_object as processors_base_object
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.utils.base_object import BaseObject


class Doorbell(BaseObject):
    def __init__(self) -> None:
        super().__init__()
        self._register_event_handler("on_ring")

    async def ring(self, who: str) -> None:
        await self._call_event_handler("on_ring", who)


def test_one_class_under_both_paths() -> None:
    assert processors_base_object.BaseObject is BaseObject
    assert issubclass(FrameProcessor, BaseObject)


async def test_a_custom_object_names_itself_and_runs_handlers() -> None:
    first, second = Doorbell(), Doorbell()
    assert first.name.startswith("Doorbell#") and first.name != second.name
    heard: list[tuple[BaseObject, str]] = []

    @first.event_handler("on_ring")
    async def on_ring(bell: BaseObject, who: str) -> None:
        heard.append((bell, who))

    await first.ring("postman")
    await asyncio.sleep(0)
    assert heard == [(first, "postman")]
    first.remove_event_handler("on_ring", on_ring)
    await first.ring("again")
    assert heard == [(first, "postman")]


def test_pipecat_path_through_the_alias() -> None:
    import importlib

    from callpipe.utils.pipecat_alias import install_pipecat_alias, uninstall_pipecat_alias

    install_pipecat_alias()
    try:
        module = importlib.import_module("pipecat.utils.base_object")
        assert module.BaseObject is BaseObject
    finally:
        uninstall_pipecat_alias()
