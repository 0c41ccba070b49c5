"""``callpipe demo``: serve the offline demo bot with the development runner.

Local by default: binds ``localhost:7860``, accepts every provider dialect on ``/ws`` without
stream tokens (there are no provider credentials to check on a laptop). With ``-x HOST`` (a
public host name, e.g. a tunnel) the runner's normal security is on: answer webhooks issue
one-time stream tokens and signatures are verified when the provider's secret is set.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

BOT_FILE = Path(__file__).with_name("bot.py")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callpipe demo",
        description="Run the built-in offline demo bot (echo, DTMF read-out, barge-in).",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=None,
        help="say goodbye and hang up after this many seconds (default 120; 0 = never)",
    )
    parser.add_argument("--greeting", default=None, help="what the bot says when a call starts")
    parser.add_argument(
        "--echo",
        action="store_true",
        default=None,
        help="echo mode: play back what the caller said instead of understanding it",
    )
    parser.set_defaults(bot_file=str(BOT_FILE), banner_title=TITLE)
    return parser


def _option(argv: Sequence[str], *names: str, default: str) -> str:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return default


TITLE = "callpipe demo bot — offline: Whisper, eSpeak NG voice, Silero VAD, DTMF, barge-in"


def banner(host: str, port: int, proxy: str | None) -> str:
    """The runner prints this at startup (the same lines as for any bot in local mode)."""
    from callpipe.runner.local import banner as runner_banner

    return runner_banner(TITLE, host, port, proxy)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the demo bot until interrupted (flags: this parser's plus the runner's)."""
    from callpipe.runner import run

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        run.build_parser(build_parser()).print_help()
        return 0
    proxy = _option(args, "-x", "--proxy", default="") or None
    if proxy is None and "--insecure" not in args:
        args.append("--insecure")  # local mode: nothing to verify without provider accounts
    run.main(build_parser(), args)
    return 0
