"""One exception tree: every public exception callpipe defines derives from CallpipeError."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import callpipe
from callpipe.errors import (
    CallEnded,
    CallpipeError,
    ConfigurationError,
    InvalidStateError,
    ProtocolError,
    ServiceAuthError,
    StreamTokenError,
)


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(callpipe.__path__, "callpipe."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]):
            continue  # private modules and __main__ entry points
        names.append(info.name)
    return names


def test_every_public_exception_class_is_in_the_tree() -> None:
    outside = []
    for name in _public_modules():
        try:
            module = importlib.import_module(name)
        except ImportError:  # an optional extra that is not installed
            continue
        for attr, value in vars(module).items():
            if attr.startswith("_") or not inspect.isclass(value):
                continue
            home = value.__module__.split(".")
            if home[0] != "callpipe" or any(p.startswith("_") for p in home[1:]):
                continue  # not ours, or internal to a private module (never escapes it)
            if issubclass(value, BaseException) and not issubclass(value, CallpipeError):
                outside.append(f"{value.__module__}.{attr}")
    assert outside == []


def test_old_homes_still_export_the_same_classes() -> None:
    from callpipe.runner.security import TokenError
    from callpipe.services.ai_service import ServiceAuthError as FromServices
    from callpipe.testing.simulator import CallEnded as FromSimulator

    assert TokenError is StreamTokenError
    assert FromServices is ServiceAuthError
    assert FromSimulator is CallEnded and issubclass(CallEnded, InvalidStateError)


async def test_handshake_errors_are_value_errors_for_pipecat_style_callers() -> None:
    """Pipecat's parse_telephony_websocket raises ValueError; code catching that keeps working."""
    assert issubclass(ProtocolError, ValueError)

    from callpipe.runner.utils import parse_telephony_websocket

    class Closed:
        async def receive(self) -> dict[str, str]:
            return {"type": "websocket.disconnect"}

    with pytest.raises(ValueError, match="closed before the telephony handshake"):
        await parse_telephony_websocket(Closed())  # type: ignore[arg-type]


def test_bad_arguments_raise_configuration_error() -> None:
    from callpipe.frames.frames import InputAudioRawFrame
    from callpipe.pipeline.parallel_pipeline import ParallelPipeline
    from callpipe.runner.security import StreamTokens
    from callpipe.testing.simulator.script import parse_dtmf_schedule

    with pytest.raises(ConfigurationError, match="at least one branch"):
        ParallelPipeline()
    # Odd-length PCM is not an error (as in Pipecat): the dangling half sample is dropped.
    assert InputAudioRawFrame(b"\x00\x01\x02", 8000, 1).audio == b"\x00\x01"
    with pytest.raises(ConfigurationError, match="16 bytes"):
        StreamTokens(b"short")
    with pytest.raises(ConfigurationError, match="not 0-9"):
        parse_dtmf_schedule("x@1")


def test_call_control_error_reason_is_the_providers_side_only() -> None:
    from callpipe.errors import CallControlError

    message = "asterisk POST /channels/1.2/dtmf: HTTP 500 boom"
    err = CallControlError(message, reason="HTTP 500 boom")
    assert str(err).endswith("HTTP 500 boom") and err.reason == "HTTP 500 boom"
    assert CallControlError("no detail").reason == "no detail"


def test_error_categories_come_from_the_quoted_http_status_then_the_reason() -> None:
    from callpipe.frames.frames import ErrorFrame, TTSStartedFrame, TTSTextFrame
    from callpipe.utils.errors import (
        ErrorCategory,
        classify_exception,
        classify_http_status_code,
        classify_service_error,
    )

    assert classify_http_status_code(429) is ErrorCategory.RATE_LIMIT
    assert classify_http_status_code(402) is ErrorCategory.QUOTA
    assert classify_http_status_code(503) is ErrorCategory.SERVER
    assert classify_http_status_code(418) is ErrorCategory.UNKNOWN
    assert classify_service_error("x: HTTP 429 from https://api: slow down", "http") is (
        ErrorCategory.RATE_LIMIT
    )
    assert classify_service_error("x: HTTP 404 from ...", "provider") is (
        ErrorCategory.INVALID_REQUEST
    )
    assert classify_service_error("x: socket closed", "disconnected") is ErrorCategory.CONNECTIVITY
    assert classify_service_error("x: HTTP 418: teapot", "auth") is ErrorCategory.AUTHENTICATION
    assert classify_service_error("x: said something odd", "provider") is ErrorCategory.UNKNOWN
    assert classify_exception(ConnectionResetError()) is ErrorCategory.CONNECTIVITY
    assert classify_exception(KeyError()) is ErrorCategory.UNKNOWN
    assert ErrorCategory.AUTHENTICATION.is_permanent and not ErrorCategory.SERVER.is_permanent
    # Pipecat 1.14's frame forms.
    assert ErrorFrame("bad", category=ErrorCategory.QUOTA).category is ErrorCategory.QUOTA
    assert TTSStartedFrame(append_to_context=False).append_to_context is False
    word = TTSTextFrame("hi", "word", context_id="c1")
    assert (word.text_type, word.context_id, word.aggregated_by) == ("word", "c1", "word")
    assert TTSTextFrame("older form").text_type == "sentence"


def test_http_exceptions_are_classified_by_their_status() -> None:
    import httpx
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.http11 import Response

    from callpipe.utils.errors import (
        ErrorCategory,
        classify_http_exception,
        extract_http_status_code,
    )

    request = httpx.Request("POST", "https://api.example/v1")
    limited = httpx.HTTPStatusError(
        "slow down", request=request, response=httpx.Response(429, request=request)
    )
    refused = InvalidStatus(Response(401, "Unauthorized", Headers()))
    assert extract_http_status_code(limited) == 429
    assert extract_http_status_code(refused) == 401
    assert extract_http_status_code(ValueError("no status")) is None
    assert classify_http_exception(limited) is ErrorCategory.RATE_LIMIT
    assert classify_http_exception(refused) is ErrorCategory.AUTHENTICATION
    assert classify_http_exception(httpx.ConnectError("down")) is ErrorCategory.CONNECTIVITY
    assert classify_http_exception(TimeoutError()) is ErrorCategory.CONNECTIVITY
    assert classify_http_exception(KeyError("x")) is ErrorCategory.UNKNOWN


def test_given_values_are_required_where_a_service_cannot_do_without() -> None:
    from callpipe.utils.types import NOT_GIVEN, assert_given, require_given

    assert assert_given("sonic-2") == "sonic-2"
    assert assert_given(None) is None
    with pytest.raises(RuntimeError):
        assert_given(NOT_GIVEN)
    assert require_given("aura", "voice") == "aura"
    for empty in (None, ""):
        with pytest.raises(ValueError, match="Piper TTS voice must be specified"):
            require_given(empty, "Piper TTS voice")
    with pytest.raises(RuntimeError):
        require_given(NOT_GIVEN, "voice")
