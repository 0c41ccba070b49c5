"""Remove markdown a TTS engine would read aloud ("asterisk asterisk Sure").

The rules are deliberately hand-written regular expressions, not a markdown library: what
needs handling is the small subset LLMs put in chat replies (emphasis, headers, list bullets,
inline code, links, code fences, simple tables), the text arrives in pieces (a sentence, or a
single token) that are rarely valid markdown on their own, and a parser would add a dependency
and turn the text into HTML that must be flattened again. Each rule works on one piece without
needing its partner, so an emphasis split across pieces ("**Sure!" then "** Here") loses its
markers in both.

What stays: words, numbers and the punctuation that shapes speech (``3.5``, ``$10``, ``50%``,
``2*3``, ``snake_case``, "Press * then #"), numbered-list markers (``1.``: the number is what
the caller refers to, and the full stop gives the pause between items), leading and trailing
whitespace (token-mode pieces are joined by the provider).
"""

from __future__ import annotations

import re

from callpipe.utils.text.base_text_aggregator import TextType

# Escaped or content characters are parked in the Unicode private-use area while the rules
# run, then put back; LLM text does not contain these code points.
_PARKED = {"*": "\ue000", "_": "\ue001", "`": "\ue002", "#": "\ue003", "|": "\ue004", "~": "\ue005"}
_UNPARK = str.maketrans({v: k for k, v in _PARKED.items()})

_ESCAPE = re.compile(r"\\([*_`#|~\\\[\]()>+\-.!])")
_FENCED = re.compile(r"(`{3,}|~{3,})([^\n]*?)(?:\n([\s\S]*?))?\1")
_FENCE_MARK = re.compile(r"(?:`{3,}|~{3,})[\w+#.-]*")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*(?:\s+\"[^\"\n]*\")?\)")
_STRUCK = re.compile(r"[ \t]?~~(?=\S)[^\n]*?(?<=\S)~~")
_RULE = re.compile(r"^[ \t]*([-*_])(?:[ \t]*\1){2,}[ \t]*$\n?", re.MULTILINE)
_TABLE_SEPARATOR = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$\n?", re.MULTILINE
)
_TABLE_ROW = re.compile(r"^([ \t]*)\|(.*)\|[ \t]*$", re.MULTILINE)
_HEADER = re.compile(r"^[ \t]*#{1,6}[ \t]+(?=\S)|^[ \t]*#{2,6}[ \t]*$", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*[-+*•][ \t]+(?=\S)", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)
_DIGIT_STARS = re.compile(r"(?<=\d)\*+(?=\d)")
_STARS = re.compile(r"\*+")
_UNDERSCORES = re.compile(r"_+")
_TILDES = re.compile(r"~{2,}")
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")


def _park(text: str) -> str:
    return "".join(_PARKED.get(c, c) for c in text)


def _lone_star(match: re.Match[str]) -> str:
    """Keep a single asterisk standing between spaces ("Press * then #"); drop the rest."""
    text, start, end = match.string, match.start(), match.end()
    alone = (
        end - start == 1
        and start > 0
        and end < len(text)
        and text[start - 1].isspace()
        and text[end].isspace()
    )
    return "*" if alone else ""


def _inner_underscore(match: re.Match[str]) -> str:
    """Keep one underscore joining two letters or digits (``snake_case``); drop the rest."""
    text, start, end = match.string, match.start(), match.end()
    joins = (
        end - start == 1
        and start > 0
        and end < len(text)
        and text[start - 1].isalnum()
        and text[end].isalnum()
    )
    return "_" if joins else ""


def _table_row(match: re.Match[str]) -> str:
    cells = [cell.strip() for cell in match.group(2).split("|")]
    return match.group(1) + ", ".join(cell for cell in cells if cell)


def remove_markdown(text: str, *, strip_urls: bool = True, keep_code: bool = False) -> str:
    """``text`` without markdown syntax (see the module docstring for what is kept).

    ``strip_urls``: a link ``[label](url)`` becomes ``label`` (off: links are left as they
    are). ``keep_code``: a fenced code block keeps its content without the fences (off: the
    whole block is dropped, since code read aloud helps no caller). A fence whose partner is
    in another piece loses only its marker and language tag.
    """
    text = _ESCAPE.sub(lambda m: _park(m.group(1)), text)
    if keep_code:
        text = _FENCED.sub(lambda m: m.group(2) if m.group(3) is None else m.group(3), text)
    else:
        text = _FENCED.sub("", text)
    text = _FENCE_MARK.sub("", text)
    if strip_urls:
        text = _AUTOLINK.sub(r"\1", text)
        text = _LINK.sub(r"\1", text)
    text = text.replace("`", "")  # inline code keeps its content
    text = _STRUCK.sub("", text)  # struck-through text is what the reply takes back
    text = _RULE.sub("", text)
    text = _TABLE_SEPARATOR.sub("", text)
    text = _TABLE_ROW.sub(_table_row, text)
    text = _HEADER.sub("", text)
    text = _BULLET.sub("", text)
    text = _QUOTE.sub("", text)
    text = _DIGIT_STARS.sub(lambda m: _park(m.group(0)), text)  # 2*3, 2**10
    # Emphasis: every marker goes, paired or not, which is what makes split pieces safe.
    text = _STARS.sub(_lone_star, text)
    text = _UNDERSCORES.sub(_inner_underscore, text)
    text = _TILDES.sub("", text)
    text = text.replace("|", " ")
    text = _INNER_SPACES.sub(" ", text)
    return text.translate(_UNPARK)


class StripMarkdown:
    """A text transform removing markdown before synthesis (Pipecat 1.14's ``StripMarkdown``).

    Emphasis markers, headers, list bullets, blockquote markers, horizontal rules, inline-code
    backticks and fenced code blocks go; a link becomes its label; struck-through text is
    dropped; a table row becomes its cells separated by commas. See
    :func:`remove_markdown` for the details.

    Register it on a TTS service::

        tts = CartesiaTTSService(..., text_transforms=[("*", StripMarkdown())])
    """

    def __init__(self, *, strip_urls: bool = True) -> None:
        self._strip_urls = strip_urls

    async def __call__(self, text: str, text_type: str | TextType) -> str:
        return remove_markdown(text, strip_urls=self._strip_urls)


strip_markdown = StripMarkdown()
"""A :class:`StripMarkdown` with the default options, ready to register."""
