"""Email addresses as said aloud (Pipecat 1.14's ``email_to_speech``).

``jane.doe@example.com`` → "jane dot doe at example dot com".
"""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType

_EMAIL = re.compile(
    r"(?<![\w.%+\-])(?P<local>[\w.%+\-]+)@(?P<domain>(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,})(?![\w\-])"
)
_LOCAL_SYMBOLS = {".": " dot ", "_": " underscore ", "-": " dash ", "+": " plus "}
_DOMAIN_SYMBOLS = {".": " dot ", "-": " dash "}
_SPACES = re.compile(r" {2,}")


def _say_symbols(part: str, symbols: dict[str, str]) -> str:
    return _SPACES.sub(" ", "".join(symbols.get(c, c) for c in part)).strip()


def _spoken_email(match: re.Match[str]) -> str:
    local = _say_symbols(match.group("local").lower(), _LOCAL_SYMBOLS)
    domain = _say_symbols(match.group("domain").lower(), _DOMAIN_SYMBOLS)
    return f"{local} at {domain}"


async def email_to_speech(text: str, text_type: str | TextType) -> str:
    """Rewrite email addresses as said aloud.

    ``"Contact user@example.com today"`` → ``"Contact user at example dot com today"``;
    in the part before the ``@``, ``.`` ``_`` ``-`` ``+`` are said ("dot", "underscore",
    "dash", "plus"), in the domain ``.`` and ``-``.

    Unlike Pipecat's, the address is lowercased: case cannot be heard, and an upper-case
    address (``JOHN.SMITH@ACME.COM``) would otherwise be spelled letter by letter by
    :func:`normalize_acronyms` afterwards. ``text_type`` is not used.
    """
    return _EMAIL.sub(_spoken_email, text)
