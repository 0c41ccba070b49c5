"""StripMarkdown and MarkdownTextFilter on what LLM replies contain: the words, numbers and
punctuation a caller should hear stay; the markdown a TTS engine would read aloud goes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import callpipe.utils.text
from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.base_text_filter import BaseTextFilter
from callpipe.utils.text.markdown_text_filter import MarkdownTextFilter
from callpipe.utils.text.transforms import StripMarkdown, TextTransform, strip_markdown

from .. import test_layers

REPLY = (
    "**Sure!** Here are 3 options:\n"
    "1. **Pizza** – $10.99\n"
    "2. *Pasta* (about 3.5 hours)\n"
    "3. `Salad`, 50% off"
)
SPOKEN = (
    "Sure! Here are 3 options:\n1. Pizza – $10.99\n2. Pasta (about 3.5 hours)\n3. Salad, 50% off"
)


async def strip(text: str) -> str:
    return await StripMarkdown()(text, TextType.SENTENCE)


async def test_a_typical_reply_keeps_its_words_numbers_and_list_numbers() -> None:
    # "1." stays: the number is what the caller answers with, the full stop is the pause.
    assert await strip(REPLY) == SPOKEN


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        ("## Opening hours\nWe open at 9.", "Opening hours\nWe open at 9."),
        ("- Pizza\n- Pasta\n* Salad\n+ Soup", "Pizza\nPasta\nSalad\nSoup"),
        ("  - nested item", "nested item"),
        ("Call ***now*** or __later__, _maybe_.", "Call now or later, maybe."),
        ("See [our menu](https://example.com/menu).", "See our menu."),
        ("![the logo](logo.png) is ours", "the logo is ours"),
        ("Visit <https://example.com> today", "Visit https://example.com today"),
        ("Run `make test` first.", "Run make test first."),
        ("The price is ~~$12~~ $10.", "The price is $10."),
        ("> Quoted advice.", "Quoted advice."),
        ("Above.\n---\nBelow.", "Above.\nBelow."),
        ("| Item | Price |\n|---|---:|\n| Pizza | $10 |", "Item, Price\nPizza, $10"),
    ],
)
async def test_markdown_constructs(markdown: str, spoken: str) -> None:
    assert await strip(markdown) == spoken


@pytest.mark.parametrize(
    "text",
    [
        "Press * then # to confirm.",
        "2*3 is 6 and 2**10 is 1024.",
        "Your order number is #4512, total $1,234.50 (that's 15% off).",
        "Set my_var_name to 3.5, e.g. now!",
        "Dr. Smith's office: 555-0100 ~ about 10 minutes away?",
    ],
)
async def test_plain_text_and_content_symbols_pass_unchanged(text: str) -> None:
    assert await strip(text) == text


async def test_escaped_markdown_characters_are_kept_without_the_backslash() -> None:
    assert await strip(r"Type \*77 or \_x\_ please") == "Type *77 or _x_ please"


async def test_a_code_block_is_not_read_aloud() -> None:
    text = "Here you go:\n```python\nprint('hi')\n```\nThat prints hi."
    assert await strip(text) == "Here you go:\n\nThat prints hi."


@pytest.mark.parametrize(
    ("piece", "spoken"),
    [
        # An emphasis cut by a sentence split (or a token boundary) loses both markers.
        ("**Sure!", "Sure!"),
        ("** Here are three options.", " Here are three options."),
        ("_Great", "Great"),
        ("*", ""),
        ("**", ""),
        # A fence whose partner is in another piece loses its marker and language tag.
        ("Try this:\n```python\nx = 1.", "Try this:\n\nx = 1."),
        # Leading and trailing spaces are the token's: the provider joins tokens.
        (" **bold** ", " bold "),
    ],
)
async def test_pieces_of_a_split_reply(piece: str, spoken: str) -> None:
    assert await strip(piece) == spoken


async def test_links_stay_when_urls_are_not_stripped() -> None:
    text = "See [the menu](https://example.com)."
    assert await StripMarkdown(strip_urls=False)(text, "*") == text


async def test_the_ready_instance_and_the_transform_type() -> None:
    transform: TextTransform = strip_markdown
    assert await transform("**Hi**", "sentence") == "Hi"
    assert TextType("sentence") is TextType.SENTENCE and str(TextType.TOKEN) == "token"


# ---------------------------------------------------------------------- MarkdownTextFilter


async def test_filter_removes_markdown_and_keeps_code_content_by_default() -> None:
    md = MarkdownTextFilter()
    assert isinstance(md, BaseTextFilter)
    assert await md.filter(REPLY) == SPOKEN
    assert await md.filter("Run:\n```bash\nls -la\n```") == "Run:\nls -la\n"


async def test_filter_drops_code_across_pieces_until_reset() -> None:
    md = MarkdownTextFilter(MarkdownTextFilter.InputParams(filter_code=True))
    assert await md.filter("Run this:\n```python\nx = 1.") == "Run this:\n"
    assert await md.filter("print(x)") == ""
    assert await md.filter("y = 2\n```\nThen it prints 1.") == "\nThen it prints 1."
    # A reply that ends (or is interrupted) inside a block does not swallow the next one.
    await md.filter("```python\nopen")
    await md.handle_interruption()
    await md.reset_interruption()
    assert await md.filter("Hello again.") == "Hello again."


async def test_filter_tables_and_repeated_symbols() -> None:
    table = "Prices:\n| Item | Price |\n|---|---|\n| Pizza | $10 |\nThat's all."
    spoken = "Prices:\nItem, Price\nPizza, $10\nThat's all."
    assert await MarkdownTextFilter().filter(table) == spoken
    no_tables = MarkdownTextFilter(MarkdownTextFilter.InputParams(filter_tables=True))
    assert await no_tables.filter(table) == "Prices:\nThat's all."
    md = MarkdownTextFilter()
    assert await md.filter("Total ======== 1000000 calls") == "Total 1000000 calls"


async def test_filter_reads_links_without_the_scheme() -> None:
    assert await MarkdownTextFilter().filter("Go to https://example.com now") == (
        "Go to example.com now"
    )


async def test_filter_can_be_disabled_and_updated() -> None:
    md = MarkdownTextFilter(MarkdownTextFilter.InputParams(enable_text_filter=False))
    assert await md.filter("**Hi**") == "**Hi**"
    await md.update_settings({"enable_text_filter": True, "not_an_option": 1})
    assert await md.filter("**Hi**") == "Hi"


def test_the_text_helpers_stay_in_the_bottom_layer() -> None:
    # utils is rank 1 (tests/unit/test_layers.py): the TTS service imports these, never the
    # other way round; they need nothing but each other and callpipe.errors (rank 0: the
    # voice transforms' MissingDependencyError when num2words is not installed).
    package = Path(callpipe.utils.text.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) >= 6
    imported = {
        node.module
        for path in modules
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("callpipe")
    }
    assert imported and all(
        name.startswith("callpipe.utils.") or name == "callpipe.errors" for name in imported
    )
    test_layers.test_imports_point_downward()  # raises on an upward import
