"""TTS ``text_transforms`` and ``text_filters``: the provider never gets the LLM's markdown, the
context keeps the reply as written, and markdown split across streamed chunks is still removed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

import callpipe.services.tts_service as tts_service
from callpipe.frames.frames import ErrorFrame, TTSSpeakFrame, TTSTextFrame
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.tts_service import TextAggregationMode, TTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.markdown_text_filter import MarkdownTextFilter
from callpipe.utils.text.transforms.strip_markdown import StripMarkdown

from .helpers import PHONE as PARAMS
from .helpers import reply

# As an LLM streams it: the emphasis is cut between chunks, "!" and "**" included.
MARKDOWN_REPLY = (
    "**Sure",
    "!",
    "**",
    " Here are three options:",
    "\n1. **Pizza**",
    "\n2. *Pasta*",
    "\n3. Salad.",
)


@pytest.fixture
async def server() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as fake:
        yield fake


def make_tts(server: FakeCartesiaServer, **kwargs: object) -> CartesiaTTSService:
    return CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=server.url, **kwargs)  # type: ignore[arg-type]


def sent_text(server: FakeCartesiaServer) -> str:
    return "".join(m["transcript"] for m in server.messages if "transcript" in m)


@pytest.mark.parametrize(
    "options",
    [
        {"text_transforms": [("*", StripMarkdown())]},
        {"text_transforms": [(TextType.SENTENCE, StripMarkdown())]},
        {"text_filters": [MarkdownTextFilter()]},
    ],
    ids=["transform", "sentence-transform", "filter"],
)
async def test_the_provider_gets_the_reply_without_markdown(
    server: FakeCartesiaServer, options: dict[str, object]
) -> None:
    _, up = await run_test(make_tts(server, **options), reply(*MARKDOWN_REPLY), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    text = sent_text(server)
    assert "Sure! Here are three options:" in text
    assert "*" not in text
    for item in ("1. Pizza", "2. Pasta", "3. Salad."):
        assert item in text


async def test_without_transforms_the_markdown_goes_to_the_provider(
    server: FakeCartesiaServer,
) -> None:
    await run_test(make_tts(server), reply(*MARKDOWN_REPLY), params=PARAMS)
    text = sent_text(server)
    assert text.count("*") == "".join(MARKDOWN_REPLY).count("*")
    assert "**Sure!" in text and "**Pizza**" in text and "*Pasta*" in text
    # The same service with a transform, on the same provider: only the markdown differs.
    server.messages.clear()
    tts = make_tts(server, text_transforms=[("*", StripMarkdown())])
    await run_test(tts, reply(*MARKDOWN_REPLY), params=PARAMS)
    assert " ".join(sent_text(server).split()) == " ".join(text.replace("*", "").split())


async def test_token_mode_strips_each_chunk_and_keeps_the_spaces(
    server: FakeCartesiaServer,
) -> None:
    tts = make_tts(
        server,
        text_aggregation_mode=TextAggregationMode.TOKEN,
        text_transforms=[("*", StripMarkdown())],
    )
    await run_test(tts, reply("**", "Sure", "!**", " Here", " are", " **three**", " options."))
    text = sent_text(server)
    assert "*" not in text
    assert " ".join(text.split()) == "Sure! Here are three options."


async def test_a_transform_for_another_text_type_is_not_applied(
    server: FakeCartesiaServer,
) -> None:
    async def shout(text: str, text_type: str) -> str:
        assert text_type == TextType.SENTENCE
        return text.upper()

    transforms = [(TextType.TOKEN, StripMarkdown()), ("sentence", shout)]
    tts = make_tts(server, text_transforms=transforms)
    await run_test(tts, reply("**Sure!** Fine."), params=PARAMS)
    assert "**SURE!** FINE." in sent_text(server)


async def test_spoken_text_outside_a_reply_is_transformed_too(
    server: FakeCartesiaServer,
) -> None:
    tts = make_tts(server, text_transforms=[("*", StripMarkdown())])
    await run_test(tts, [TTSSpeakFrame("Welcome to **Mario's**!")], params=PARAMS)
    assert sent_text(server).strip() == "Welcome to Mario's!"


async def test_a_code_block_split_across_sentences_is_not_spoken(
    server: FakeCartesiaServer,
) -> None:
    tts = make_tts(
        server, text_filters=[MarkdownTextFilter(MarkdownTextFilter.InputParams(filter_code=True))]
    )
    chunks = ("Run this:\n```python\nx = 1.", "\nprint(x)\n```\nIt prints one.")
    await run_test(tts, reply(*chunks), params=PARAMS)
    text = sent_text(server)
    assert "print(x)" not in text and "x = 1" not in text and "`" not in text
    assert "Run this:" in text and "It prints one." in text


async def test_a_failing_transform_is_reported_and_its_text_not_spoken(
    server: FakeCartesiaServer,
) -> None:
    async def broken(text: str, text_type: str) -> str:
        if "secret" in text:
            raise ValueError("cannot transform")
        return text

    tts = make_tts(server, text_transforms=[("*", broken)])
    _, up = await run_test(tts, reply("The secret is 42. Hello there."), params=PARAMS)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "cannot transform" in errors[0].error and not errors[0].fatal
    assert "secret" not in sent_text(server)
    assert "Hello there." in sent_text(server)


async def test_text_filters_are_deprecated_once_and_not_ignored(
    server: FakeCartesiaServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tts_service, "_warned_text_filters", False)
    with caplog.at_level(logging.INFO):
        make_tts(server, text_filters=[MarkdownTextFilter()])
        make_tts(server, text_filters=[MarkdownTextFilter()])
        make_tts(server, text_transforms=[("*", StripMarkdown())])
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "text_filters is deprecated" in m and "text_transforms" in m]
    assert len([m for m in messages if "deprecated" in m]) == 1
    assert not [m for m in messages if "no such option" in m]


class RecordingTTS(TTSService):
    """A provider without word timing: records what it is sent, answers with 10 ms of audio."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(sample_rate=8000, **kwargs)  # type: ignore[arg-type]
        self.sent: list[str] = []

    async def run_tts(self, text: str, context_id: str) -> None:
        self.sent.append(text)
        await self.append_audio(context_id, b"\x00\x00" * 80)


async def test_the_context_keeps_the_reply_as_the_llm_wrote_it() -> None:
    # As Pipecat: a transform changes what is synthesized, not what the assistant said.
    tts = RecordingTTS(text_transforms=[("*", StripMarkdown())])
    down, _ = await run_test(tts, reply("**Sure!** Here it is."), params=PARAMS)
    assert tts.sent == ["Sure! Here it is."]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["**Sure!** Here it is."]


# ---------------------------------------------------------------------- added at runtime (1.14)


async def spell_at(text: str, text_type: str) -> str:
    return text.replace("@", " at ")


async def test_an_added_transformer_changes_what_the_provider_is_sent(
    server: FakeCartesiaServer,
) -> None:
    tts = make_tts(server)
    tts.add_text_transformer(spell_at)
    await run_test(tts, reply("Write to sales@mario.example please."), params=PARAMS)
    assert "sales at mario.example" in sent_text(server)
    assert "@" not in sent_text(server)


async def test_an_added_transformer_runs_after_the_filters_and_given_transforms() -> None:
    seen: list[str] = []

    async def second(text: str, text_type: str) -> str:
        seen.append(text)
        return text.replace("Pizza", "pizza pie")

    async def first(text: str, text_type: str) -> str:
        return text.replace("Margherita", "Pizza")

    tts = RecordingTTS(text_filters=[MarkdownTextFilter()], text_transforms=[("*", first)])
    tts.add_text_transformer(second)
    down, _ = await run_test(tts, reply("**Margherita** is ready."), params=PARAMS)
    assert seen == ["Pizza is ready."]  # the filter and the first transform already ran
    assert tts.sent == ["pizza pie is ready."]
    # The context keeps what the LLM wrote.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["**Margherita** is ready."]


async def test_an_added_transformer_applies_to_its_text_type_only() -> None:
    async def shout(text: str, text_type: str) -> str:
        return text.upper()

    tts = RecordingTTS()
    tts.add_text_transformer(shout, TextType.TOKEN)
    await run_test(tts, reply("Hello there."), params=PARAMS)
    assert tts.sent == ["Hello there."]  # sentence mode: the pieces are sentences
    tts = RecordingTTS()
    tts.add_text_transformer(shout, "sentence")
    await run_test(tts, reply("Hello there."), params=PARAMS)
    assert tts.sent == ["HELLO THERE."]


async def test_a_removed_transformer_no_longer_applies() -> None:
    tts = RecordingTTS(text_transforms=[("*", spell_at)])
    tts.add_text_transformer(spell_at, TextType.SENTENCE)
    tts.remove_text_transformer(spell_at)  # the "*" one only
    assert tts._text_transforms == [(TextType.SENTENCE, spell_at)]
    tts.remove_text_transformer(spell_at, TextType.SENTENCE)
    await run_test(tts, reply("Mail a@b.example now."), params=PARAMS)
    assert tts.sent == ["Mail a@b.example now."]


async def test_aggregation_type_is_the_deprecated_name_of_text_type() -> None:
    async def shout(text: str, text_type: str) -> str:
        return text.upper()

    tts = RecordingTTS()
    with pytest.warns(DeprecationWarning, match="aggregation_type"):
        tts.add_text_transformer(shout, aggregation_type=TextType.SENTENCE)
    await run_test(tts, reply("Hello there."), params=PARAMS)
    assert tts.sent == ["HELLO THERE."]
    with pytest.warns(DeprecationWarning, match="aggregation_type"):
        tts.remove_text_transformer(shout, aggregation_type=TextType.SENTENCE)
    assert tts._text_transforms == []
