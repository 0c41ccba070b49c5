"""Every transport option is described: in the field, in help(), and in the transport guide."""

from __future__ import annotations

import pydoc
from pathlib import Path

from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketParams

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "transport.md"


def test_every_field_has_a_description() -> None:
    missing = [n for n, f in FastAPIWebsocketParams.model_fields.items() if not f.description]
    assert missing == []


def test_help_lists_every_field_with_its_description() -> None:
    text = pydoc.render_doc(FastAPIWebsocketParams, renderer=pydoc.plaintext)
    for name, field in FastAPIWebsocketParams.model_fields.items():
        assert f"{name} = {field.default!r}" in text
    assert "Older Pipecat name of audio_in_passthrough" in " ".join(text.split())


def test_the_transport_guide_covers_every_field() -> None:
    guide = GUIDE.read_text()
    assert [n for n in FastAPIWebsocketParams.model_fields if f"`{n}`" not in guide] == []
