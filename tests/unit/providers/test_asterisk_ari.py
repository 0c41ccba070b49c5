"""The Asterisk provider gives its serializer ARI call control from the environment, or none."""

from __future__ import annotations

import json
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.providers import registry
from callpipe.providers.asterisk import ASTERISK, AsteriskCallData
from callpipe.serializers.asterisk import AsteriskFrameSerializer
from callpipe.telephony.asterisk import AsteriskAriCallControl

ARI_ENV = {
    "ASTERISK_ARI_URL": "http://pbx.internal:8088/ari",
    "ASTERISK_ARI_USER": "callpipe",
    "ASTERISK_ARI_PASSWORD": "ari-s3cret",
}
START: dict[str, Any] = {
    "event": "MEDIA_START",
    "connection_id": "media_connection1",
    "channel": "WebSocket/callpipe/0x5140001a0040",
    "channel_id": "1761245643.7",
    "format": "ulaw",
    "optimal_frame_size": 160,
    "ptime": 20,
    "channel_variables": {"CALLPIPE_CALLER_CHANNEL": "1761245640.3"},
}


def _call(start: dict[str, Any] = START) -> AsteriskCallData:
    detected = registry.detect_stream(json.loads(json.dumps(start)))
    assert detected is not None and detected[0] is ASTERISK
    assert isinstance(detected[1], AsteriskCallData)
    return detected[1]


def _no_hang_up(cls: type[Any], has_creds: bool, names: str) -> Any:
    raise AssertionError("the asterisk provider never asks the missing-credentials policy")


def _serializer(env: dict[str, str], start: dict[str, Any] = START) -> AsteriskFrameSerializer:
    serializer = ASTERISK.serializer(_call(start), env, _no_hang_up)
    assert isinstance(serializer, AsteriskFrameSerializer)
    return serializer


def test_ari_env_gives_call_control_for_the_channel_and_its_caller() -> None:
    serializer = _serializer(ARI_ENV)
    control = serializer.call_control
    assert isinstance(control, AsteriskAriCallControl)
    assert control.base_url == "http://pbx.internal:8088/ari"
    assert control.call_id == "1761245643.7"
    assert control.caller_channel_id == "1761245640.3"
    assert serializer.auto_hang_up is True


def test_without_ari_env_nothing_changes() -> None:
    serializer = _serializer({})
    assert serializer.call_control is None
    assert serializer.auto_hang_up is False  # closing the socket hangs up, as before


def test_plain_text_calls_get_ari_hang_up_but_no_caller() -> None:
    start = {k: v for k, v in START.items() if k != "channel_variables"}
    control = _serializer(ARI_ENV, start).call_control
    assert isinstance(control, AsteriskAriCallControl)
    assert control.caller_channel_id is None


def test_an_ari_url_without_credentials_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ASTERISK_ARI_PASSWORD"):
        _serializer({"ASTERISK_ARI_URL": "http://pbx:8088/ari", "ASTERISK_ARI_USER": "u"})
