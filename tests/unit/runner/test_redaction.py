"""Stream tokens are redacted from uvicorn's request lines."""

from __future__ import annotations

import logging

from callpipe.runner.redaction import StreamTokenFilter, install_token_redaction, redact_tokens


def test_tokens_in_paths_and_queries_are_redacted() -> None:
    assert redact_tokens("/ws/eyJh.c2ln") == "/ws/<token>"
    assert (
        redact_tokens('"WebSocket /ws/abc.def" [accepted]') == '"WebSocket /ws/<token>" [accepted]'
    )
    assert redact_tokens("/ws?token=abc&x=1") == "/ws?token=<token>&x=1"
    assert redact_tokens("/ws?a=1&callpipe_token=abc") == "/ws?a=1&callpipe_token=<token>"
    assert redact_tokens("/ws") == "/ws"
    assert redact_tokens("/health") == "/health"


def test_the_filter_rewrites_arguments_and_is_installed_once() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s"',
        ("1.2.3.4", "/ws/t.s"),
        None,
    )
    assert StreamTokenFilter().filter(record)
    assert record.getMessage() == '1.2.3.4 - "WebSocket /ws/<token>"'
    install_token_redaction()
    install_token_redaction()
    filters = logging.getLogger("uvicorn.error").filters
    assert sum(isinstance(f, StreamTokenFilter) for f in filters) == 1


def test_bearer_credentials_and_start_parameters_are_redacted() -> None:
    """At -v the WebSocket library logs each request header and frame (issue 14)."""
    record = logging.LogRecord(
        "uvicorn.error",
        logging.DEBUG,
        __file__,
        1,
        "< %s: %s",
        ("authorization", "Bearer k1"),
        None,
    )
    StreamTokenFilter().filter(record)
    assert record.getMessage() == "< authorization: Bearer <token>"
    assert redact_tokens("authorization: bearer abc.def") == "authorization: bearer <token>"
    frame = '< TEXT \'{"customParameters":{"callpipe_token":"a.b"}}\''
    assert "a.b" not in redact_tokens(frame)
    install_token_redaction()
    assert any(
        isinstance(f, StreamTokenFilter) for f in logging.getLogger("websockets.server").filters
    )


def test_masked_ids_cannot_forge_log_lines() -> None:
    from callpipe.log import mask

    assert mask("CA\n\r12345678\x1b") == "CA\\n\\r…8\\x1b"
    assert mask("CA0123456789") == "CA01…89"
