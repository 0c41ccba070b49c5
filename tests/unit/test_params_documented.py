"""Every public settings option is described: in its Field, in help(), and (for the transport)
in the transport guide."""

from __future__ import annotations

import pydoc
from pathlib import Path

import pytest
from pydantic import BaseModel

from callpipe.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from callpipe.audio.vad.vad_analyzer import VADParams
from callpipe.pipeline.task import PipelineParams
from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketParams

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "transport.md"
MODELS = [FastAPIWebsocketParams, PipelineParams, VADParams, SmartTurnParams]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_has_a_description(model: type[BaseModel]) -> None:
    assert [n for n, f in model.model_fields.items() if not f.description] == []


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_help_lists_every_field_with_its_description(model: type[BaseModel]) -> None:
    rendered = pydoc.render_doc(model, renderer=pydoc.plaintext)
    text = " ".join(word for word in rendered.split() if word != "|")  # help()'s margin
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        assert f"{name} = {default!r}" in text
        assert " ".join((field.description or "").split()) in text


def test_the_transport_guide_covers_every_field() -> None:
    guide = GUIDE.read_text()
    assert [n for n in FastAPIWebsocketParams.model_fields if f"`{n}`" not in guide] == []
