"""``callpipe demo``: serve the offline demo bot with the development runner.

Local by default: binds ``localhost:7860``, accepts every provider dialect on ``/ws`` without
stream tokens (there are no provider credentials to check on a laptop). With ``-x HOST`` (a
public host name, e.g. a tunnel) the runner's normal security is on: it starts only with a
provider's webhook secret set (e.g. ``TWILIO_AUTH_TOKEN``), accepts only that provider's signed
webhooks, and answers them with one-time stream tokens.
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
        allow_abbrev=False,
        description="Run the built-in offline demo bot (a small phone script; --echo echoes).",
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
    # Parse with the real parser (no abbreviations): `-xHOST` or `--proxy=HOST` is public mode,
    # and a typo is an error, never a silent switch to the unverified local mode.
    parsed = run.build_parser(build_parser()).parse_args(args)
    proxy = run._normalise_proxy(parsed.proxy)
    if proxy is None and not parsed.insecure:
        args.append("--insecure")  # local mode: nothing to verify without provider accounts
    run.main(build_parser(), args)
    return 0
