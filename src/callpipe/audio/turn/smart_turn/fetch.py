"""``python -m callpipe.audio.turn.smart_turn.fetch [DEST]``: download the smart-turn v3.2 model.

Sources and verification: see :mod:`callpipe.audio.turn.smart_turn.model_file`. Exits 0 when the
verified file is in place (already or now), 1 when no source worked.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from callpipe.audio.turn.smart_turn.model_file import fetch_model


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_model(Path(args[0]) if args else None)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
