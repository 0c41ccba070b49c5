"""Download the smart-turn v3.2 model: ``callpipe models fetch smart-turn [--dest PATH]``
(or ``python -m callpipe.audio.turn.smart_turn.fetch [--dest PATH]``).

Sources and verification: see :mod:`callpipe.audio.turn.smart_turn.model_file`. Exits 0 when the
verified file is in place (already or now), 1 when no source worked, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from callpipe.audio.turn.smart_turn.model_file import cache_path, fetch_model

_WORDS = ("fetch", "smart-turn")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="callpipe models",
        description="Download model weights callpipe does not ship. The only one so far: "
        "smart-turn v3.2 (Daily, BSD-2-Clause), from Hugging Face or the pipecat-ai wheel on "
        "PyPI, SHA-256 checked.",
    )
    parser.add_argument("words", nargs="*", help="fetch smart-turn (the default)")
    parser.add_argument(
        "--dest", type=Path, default=None, help=f"where to put it (default: {cache_path()})"
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if tuple(args.words) != _WORDS[: len(args.words)]:
        parser.error("usage: callpipe models fetch smart-turn [--dest PATH]")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_model(args.dest)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
