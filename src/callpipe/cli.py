"""The ``callpipe`` console script: ``run`` a bot file, plus ``demo`` and ``call`` when installed.

Kept tiny on purpose: each subcommand is owned by its module (``callpipe.runner.run``,
``callpipe.demo``, ``callpipe.testing.cli``), which parses its own flags.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

_USAGE = """usage: callpipe <command> [options]

commands:
  run BOT.py [runner flags]   serve a bot file (flags as for `python BOT.py`)
  demo [flags]                run the built-in demo bot
  call [flags]                place a simulated phone call against a running bot
  fakes [flags]               serve local fakes of every provider (no keys needed)
  test FILE.yaml [flags]      run conversation scenarios against a running bot
  dial NUMBER|--csv F [flags] place outbound calls through a running runner
  models fetch smart-turn      download the smart-turn model weights (not shipped)

`callpipe COMMAND --help` describes a command; `callpipe --version` prints the version.
"""

_OPTIONAL = {
    "demo": "callpipe.demo",
    "call": "callpipe.testing.cli",
    "fakes": "callpipe.testing.fakes.cli",
    "test": "callpipe.testing.scenarios",
    "dial": "callpipe.runner.dial_cli",
    "models": "callpipe.audio.turn.smart_turn.fetch",
}


def _run_parser(bot: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog=f"callpipe run {bot}",
        allow_abbrev=False,
        description=(
            "Serve a bot file: its `async def bot(runner_args)` gets every call. Without -x the "
            "runner is in local mode (loopback only: the softphone at /phone and `callpipe call` "
            "work, no stream tokens); with -x HOST it answers a provider's webhook with a "
            "token-protected stream URL on that public host."
        ),
    )


def _version() -> str:
    from callpipe import __version__

    return __version__


def _run(argv: Sequence[str]) -> int:
    from callpipe.runner import run

    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            run.build_parser(_run_parser("BOT.py")).print_help()
            return 0
        print(
            "usage: callpipe run BOT.py [runner flags]  (see `callpipe run --help`)",
            file=sys.stderr,
        )
        return 2
    bot_file = os.path.abspath(argv[0])
    if not os.path.exists(bot_file):
        print(f"callpipe run: no such file: {argv[0]}", file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.dirname(bot_file))
    parser = _run_parser(argv[0])
    parser.set_defaults(bot_file=bot_file)
    run.main(parser, list(argv[1:]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_USAGE)
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"callpipe {_version()}")
        return 0
    command, rest = args[0], args[1:]
    if command == "run":
        return _run(rest)
    module_name = _OPTIONAL.get(command)
    if module_name is None:
        print(f"callpipe: unknown command {command!r}\n\n{_USAGE}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"callpipe {command}: not available ({exc})", file=sys.stderr)
        return 2
    result = module.main(rest)
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
