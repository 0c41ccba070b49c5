"""The console script's help and version, local-mode detection, and what ``-v`` turns on."""

from __future__ import annotations

import logging

import pytest

from callpipe import __version__
from callpipe.cli import main
from callpipe.runner.local import banner, is_loopback
from callpipe.runner.run import (
    REST_LOGGERS,
    WIRE_LOGGERS,
    _local_mode,
    build_parser,
    configure_logging,
)
from callpipe.runner.server import uvicorn_config


def test_run_help_is_the_full_runner_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--proxy", "--insecure", "--wire-debug", "--max-calls", "local mode"):
        assert flag in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"callpipe {__version__}"


@pytest.mark.parametrize(
    ("argv", "local"),
    [
        ([], True),
        (["--host", "127.0.0.1"], True),
        (["--host", "::1"], True),
        (["-x", "bot.example"], False),
        (["--host", "0.0.0.0"], False),  # reachable by others: stays secure without -x
        (["--host", "0.0.0.0", "--insecure"], True),
        (["--ws-auth", "token"], False),  # Pipecat's flag: tokens on loopback too
        (["--ws-auth", "none"], True),
        (["-x", "bot.example", "--ws-auth", "none"], False),  # never weakens a public server
    ],
)
def test_local_mode_needs_no_x_and_a_loopback_address(argv: list[str], local: bool) -> None:
    args = build_parser().parse_args(argv)
    assert _local_mode(args) is local
    assert args.insecure is (local or "--insecure" in argv)


def test_loopback_detection() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("bot.example")


def test_banner_same_lines_for_any_bot() -> None:
    text = banner("my bot", "127.0.0.1", 7860, None)
    assert "http://localhost:7860/phone" in text and "callpipe call ws://localhost:7860/ws" in text
    assert "Vonage" in text
    public = banner("my bot", "0.0.0.0", 7860, "bot.example")
    assert "https://bot.example/" in public and "/phone" not in public


def test_verbose_is_not_the_wire_dump() -> None:
    assert uvicorn_config(object(), "127.0.0.1", 1, 1).log_level == "info"
    assert uvicorn_config(object(), "127.0.0.1", 1, 0, wire_debug=True).log_level == "debug"
    turns = logging.getLogger("callpipe.turns")
    before = turns.level
    try:
        configure_logging(1)
        assert turns.isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("uvicorn.error").isEnabledFor(logging.DEBUG)
    finally:
        turns.setLevel(before)
        for name in WIRE_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_rest_request_urls_stay_out_of_the_log_unless_wire_debug() -> None:
    """httpx logs each request's URL at INFO; call-control URLs carry the raw call id."""
    httpx_log = logging.getLogger("httpx")
    root = logging.getLogger()
    before = root.level
    try:
        for verbose in (0, 2):
            configure_logging(verbose)
            root.setLevel(logging.DEBUG)  # as basicConfig sets it without pytest's handlers
            assert not httpx_log.isEnabledFor(logging.INFO)
            assert httpx_log.isEnabledFor(logging.WARNING)
        configure_logging(0, wire_debug=True)
        assert httpx_log.isEnabledFor(logging.INFO)
    finally:
        root.setLevel(before)
        for name in (*WIRE_LOGGERS, *REST_LOGGERS):
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_ws_auth_comes_from_pipecat_s_variable_and_cannot_be_insecure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CALLPIPE_WEBSOCKET_AUTH", raising=False)
    monkeypatch.setenv("PIPECAT_WEBSOCKET_AUTH", "token")
    args = build_parser().parse_args([])
    assert args.ws_auth == "token" and _local_mode(args) is False and args.insecure is False
    with pytest.raises(SystemExit, match="contradict"):
        _local_mode(build_parser().parse_args(["--insecure"]))
    monkeypatch.setenv("CALLPIPE_WEBSOCKET_AUTH", "none")
    assert build_parser().parse_args([]).ws_auth == "none"
