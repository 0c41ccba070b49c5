"""The callpipe console script's dispatch (the `run` path is exercised by a subprocess test)."""

from __future__ import annotations

import pytest

from callpipe.cli import main
from callpipe.runner.run import _normalise_proxy, build_parser


def test_help_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "run BOT.py" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_run_needs_an_existing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert main(["run", "/nonexistent/bot.py"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_runner_flags_and_defaults() -> None:
    args = build_parser().parse_args(["-t", "telnyx", "-x", "h.example", "--max-calls", "3"])
    assert (args.transport, args.proxy, args.host, args.port) == (
        "telnyx",
        "h.example",
        "localhost",
        7860,
    )
    assert args.max_calls == 3 and args.workers == 1 and args.insecure is False
    with pytest.raises(SystemExit):
        build_parser().parse_args(["-t", "daily"])


def test_proxy_normalisation() -> None:
    assert _normalise_proxy("https://h.example/") == "h.example"
    assert _normalise_proxy("h.example") == "h.example"
    assert _normalise_proxy(None) is None
