"""The helpers the socket STT services read provider messages with."""

from __future__ import annotations

import pytest

from callpipe.services.stt_service import json_object, message_of_type


def test_json_object_gives_an_empty_dict_for_what_has_no_type() -> None:
    assert json_object('{"type": "Results", "n": 1}') == {"type": "Results", "n": 1}
    assert json_object(b"\x00\x01") == {}
    assert json_object("[1, 2]") == {}
    with pytest.raises(ValueError):
        json_object("not json")


def test_message_of_type_matches_only_that_type() -> None:
    is_metadata = message_of_type("Metadata")
    assert is_metadata('{"type": "Metadata", "request_id": "x"}')
    assert not is_metadata('{"type": "Results", "note": "Metadata"}')
    assert not is_metadata('{"type": "Metadata"')  # cut short: not an answer
    assert not is_metadata(b'{"type": "Metadata"}')
