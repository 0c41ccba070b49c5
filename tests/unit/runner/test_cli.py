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


# ------------------------------------------------------------- issue 14: no silent downgrade


@pytest.mark.parametrize(
    "argv", [["--prox", "h.example"], ["--insec"], ["--max", "2"], ["--work", "2"]]
)
def test_no_abbreviated_flags(argv: list[str]) -> None:
    import argparse

    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    own = argparse.ArgumentParser()  # a bot's own parser gets the same rule
    with pytest.raises(SystemExit):
        build_parser(own).parse_args(argv)


def test_demo_and_call_parsers_take_no_abbreviations() -> None:
    from callpipe.demo.main import build_parser as demo_parser
    from callpipe.testing.cli import build_parser as call_parser

    assert demo_parser().allow_abbrev is False and call_parser().allow_abbrev is False
    args = build_parser(demo_parser()).parse_args(["-xh.example"])
    assert args.proxy == "h.example" and args.insecure is False


def _config(*argv: str):  # type: ignore[no-untyped-def]
    from callpipe.runner.run import _config_from_args

    return _config_from_args(build_parser().parse_args(list(argv)))


@pytest.mark.parametrize(
    ("argv", "env", "refused"),
    [
        (["-x", "h"], {}, True),
        (["-x", "h"], {"TWILIO_AUTH_TOKEN": "t"}, False),
        (["-t", "twilio", "-x", "h"], {"PLIVO_AUTH_TOKEN": "t"}, True),
        (["-t", "twilio", "-x", "h"], {"TWILIO_WEBHOOK_SHARED_KEY": "k"}, False),
        (["-t", "telnyx", "-x", "h"], {"TELNYX_PUBLIC_KEY": "k"}, False),
        (["-t", "exotel", "-x", "h"], {"TWILIO_AUTH_TOKEN": "t"}, True),
        (["-t", "websocket", "-x", "h"], {}, True),
        (["-t", "websocket", "-x", "h"], {"CALLPIPE_API_KEY": "k"}, False),
        (["-x", "h", "--insecure"], {}, False),
        (["-t", "twilio"], {}, False),  # no -x: local
    ],
)
def test_public_mode_needs_a_webhook_secret(
    argv: list[str], env: dict[str, str], refused: bool
) -> None:
    from callpipe.runner.run import startup_refusal

    assert (startup_refusal(_config(*argv), env) is not None) is refused


def test_every_startup_note_is_true() -> None:
    from callpipe.runner.run import security_notes

    def text(*argv: str, env: dict[str, str] | None = None) -> str:
        return "\n".join(m for _, m in security_notes(_config(*argv), env or {}, 1))

    detect = text("-x", "h", env={"TWILIO_AUTH_TOKEN": "t"})
    assert "accepted only when signed by twilio" in detect and "plivo" in detect
    assert "still protect" not in detect
    assert "/ws accepts any connection" in text("-x", "h", "--insecure")
    assert "refused (403)" in text("-t", "twilio")  # no -x: nothing can be verified
    assert "POST /start refuses every client" in text("-t", "websocket")
