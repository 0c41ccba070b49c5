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
        description="Run the built-in offline demo bot (echo, DTMF read-out, barge-in).",
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=None,
        help="say goodbye and hang up after this many seconds (default 120; 0 = never)",
    )
    parser.add_argument("--greeting", default=None, help="what the bot says when a call starts")
    parser.set_defaults(bot_file=str(BOT_FILE))
    return parser


def banner(host: str, port: int, proxy: str | None) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::", "127.0.0.1") else host
    local = f"{shown}:{port}"
    lines = [
        "",
        "callpipe demo bot — offline: eSpeak NG voice, Silero VAD, echo, DTMF, barge-in",
        f"  talk to it in a browser:  http://{local}/phone",
        f'  or call it from a shell:  callpipe call ws://{local}/ws --say "hello"',
        f'                            callpipe call ws://{local}/ws --say "hi" --dtmf "5@6,#@9"',
    ]
    if proxy:
        lines.append(f"  point your provider at:   https://{proxy}/   (answer webhook, POST)")
    else:
        lines.append(
            "  real phone number: expose this port (e.g. a tunnel) and run "
            "`callpipe demo -x <public host>`, then set your Twilio/Telnyx/Plivo number's "
            "voice webhook to https://<public host>/"
        )
    lines.append("")
    return "\n".join(lines)


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
    host, port = parsed.host, parsed.port
    print(banner(host, port, proxy), flush=True)
    run.main(build_parser(), args)
    return 0
