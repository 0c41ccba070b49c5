"""The voice text transforms (Pipecat 1.14's ``pipecat.utils.text.transforms``) on what a phone
bot says: phone numbers, money, dates, emails, percentages, units, acronyms and numbers come out
as a caller should hear them, alone, bundled in VoiceFormatter, and through a TTS service."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

import callpipe.utils.text.transforms as transforms
from callpipe.errors import MissingDependencyError
from callpipe.frames.frames import ErrorFrame, TTSSpeakFrame, TTSTextFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.tts_service import TTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.utils.pipecat_alias import install_pipecat_alias, uninstall_pipecat_alias
from callpipe.utils.text.base_text_aggregator import TextType
from callpipe.utils.text.transforms import (
    TextTransform,
    VoiceFormatter,
    _spoken,
    email_to_speech,
    expand_currency,
    expand_numbers,
    expand_percentages,
    expand_phone_numbers,
    expand_units,
    normalize_acronyms,
    normalize_dates,
    replace_text,
)

from ..services.helpers import reply

PARAMS = PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)


async def apply(transform: TextTransform, text: str) -> str:
    return await transform(text, TextType.SENTENCE)


# --- phone numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Call 555-123-4567 now.", "Call 5 5 5, 1 2 3, 4 5 6 7 now."),
        ("(555) 123-4567", "5 5 5, 1 2 3, 4 5 6 7"),
        ("(555)123-4567", "5 5 5, 1 2 3, 4 5 6 7"),
        ("555.123.4567.", "5 5 5, 1 2 3, 4 5 6 7."),
        ("555 123 4567", "5 5 5, 1 2 3, 4 5 6 7"),
        ("5551234567", "5 5 5, 1 2 3, 4 5 6 7"),
        ("1-800-555-0199", "1, 8 0 0, 5 5 5, 0 1 9 9"),
        ("+1 555 123 4567", "plus 1, 5 5 5, 1 2 3, 4 5 6 7"),
        ("+1 (555) 123-4567", "plus 1, 5 5 5, 1 2 3, 4 5 6 7"),
        ("+15551234567", "plus 1, 5 5 5, 1 2 3, 4 5 6 7"),
        ("Call +44 20 7946 0958.", "Call plus 4 4, 2 0, 7 9 4 6, 0 9 5 8."),
        ("+33 1 23 45 67 89", "plus 3 3, 1, 2 3, 4 5, 6 7, 8 9"),
        ("+44 (0)20 7946 0958", "plus 4 4, 0, 2 0, 7 9 4 6, 0 9 5 8"),
        ("+4930123456", "plus 4 9 3 0 1 2 3 4 5 6"),
    ],
)
async def test_phone_numbers_are_read_digit_by_digit_in_groups(written: str, spoken: str) -> None:
    assert await apply(expand_phone_numbers, written) == spoken


@pytest.mark.parametrize(
    "text",
    [
        "We have 1,234,567 customers.",  # thousands commas: an amount
        "It costs $5551234567.",  # an amount
        "Pi is 3.1415926535.",  # a decimal
        "Order 12345678901234 shipped.",  # too long for a North American number
        "Open 2023-05-10, pages 100-200, room 555-1234.",  # dates, ranges, local numbers
        "Dial +1 2 for sales.",  # a '+' with too few digits
        "Firmware v1.555.123.4567",  # inside a word
    ],
)
async def test_digit_groups_that_are_not_phone_numbers_are_left_alone(text: str) -> None:
    assert await apply(expand_phone_numbers, text) == text


# --- currency ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Your balance is $42.50.", "Your balance is forty-two dollars and fifty cents."),
        ("$12.50", "twelve dollars and fifty cents"),
        ("$12", "twelve dollars"),
        ("$1", "one dollar"),
        ("$1.00", "one dollar"),
        ("$1.01", "one dollar and one cent"),
        ("$12.5", "twelve dollars and fifty cents"),
        ("$1,200", "one thousand two hundred dollars"),
        ("$1,234.56", "one thousand two hundred and thirty-four dollars and fifty-six cents"),
        ("$1,000,000", "one million dollars"),
        ("$ 20", "twenty dollars"),
        # Where Pipecat's reading would puzzle a caller:
        ("$0.99", "ninety-nine cents"),
        ("$9.999", "ten dollars"),
        ("$1.5 million", "one point five million dollars"),
        ("$2M", "two million dollars"),
        ("€5k", "five thousand euros"),
        ("£3bn", "three billion pounds"),
        # Other currencies:
        ("€20.05", "twenty euros and five cents"),
        ("£1.01", "one pound and one penny"),
        ("£0.50", "fifty pence"),
        ("¥500", "five hundred yen"),
        ("₹100.25", "one hundred rupees and twenty-five paise"),
        ("It's $5, or $6.", "It's five dollars, or six dollars."),
    ],
)
async def test_currency_amounts_are_said_in_words(written: str, spoken: str) -> None:
    assert await apply(expand_currency, written) == spoken


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Meeting on 2023-05-10.", "Meeting on May 10th, two thousand and twenty-three."),
        ("05/10/2023", "May 10th, two thousand and twenty-three"),
        ("5-10-2023", "May 10th, two thousand and twenty-three"),
        ("1/2/2000", "January 2nd, two thousand"),
        ("11/11/2011", "November 11th, two thousand and eleven"),
        ("12/23/2024", "December 23rd, two thousand and twenty-four"),
        ("3/15/25", "March 15th, two thousand and twenty-five"),
        # Dates of birth: years read as years.
        ("Born 1985-03-01", "Born March 1st, nineteen eighty-five"),
        ("3/15/85", "March 15th, nineteen eighty-five"),
        ("1/3/1905", "January 3rd, nineteen oh-five"),
        # Day first when the first number cannot be a month.
        ("25/12/2023", "December 25th, two thousand and twenty-three"),
    ],
)
async def test_dates_are_said_as_dates(written: str, spoken: str) -> None:
    assert await apply(normalize_dates, written) == spoken


@pytest.mark.parametrize(
    "text", ["2023-02-30", "13/13/2023", "2023-05-10T14:30", "scores 10-12-14", "1/2 cup"]
)
async def test_what_is_not_a_real_date_is_left_alone(text: str) -> None:
    assert await apply(normalize_dates, text) == text


# --- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Contact user@example.com today.", "Contact user at example dot com today."),
        (
            "Email jane.doe+bills@my-shop.co.uk.",
            "Email jane dot doe plus bills at my dash shop dot co dot uk.",
        ),
        (
            "first_last-x@mail.example.org",
            "first underscore last dash x at mail dot example dot org",
        ),
        ("JOHN.SMITH@EXAMPLE.COM", "john dot smith at example dot com"),
    ],
)
async def test_email_addresses_are_said_aloud(written: str, spoken: str) -> None:
    assert await apply(email_to_speech, written) == spoken


@pytest.mark.parametrize("text", ["Meet @ noon", "a@b.c", "x@localhost", "@handle"])
async def test_what_is_not_an_email_address_is_left_alone(text: str) -> None:
    assert await apply(email_to_speech, text) == text


# --- percentages -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("50% off today", "fifty percent off today"),
        ("50 %", "fifty percent"),
        ("100%.", "one hundred percent."),
        ("12.5%", "twelve point five percent"),
        ("2.50%", "two point five zero percent"),
        ("1,000%", "one thousand percent"),
        ("rates of 3-5%", "rates of three to five percent"),
        ("rates of 3%-5%", "rates of three to five percent"),
        ("3–5%", "three to five percent"),
        ("down -2% and up +5%.", "down minus two percent and up plus five percent."),
    ],
)
async def test_percentages_are_said_in_words(written: str, spoken: str) -> None:
    assert await apply(expand_percentages, written) == spoken


# --- units -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Run 5km at 100kph", "Run 5 kilometers at 100 kilometers per hour"),
        ("Only 1km left", "Only 1 kilometer left"),
        ("1.0 km", "1.0 kilometers"),
        ("6ft 2in", "6 feet 2 inches"),
        ("2L of water and 500ml", "2 liters of water and 500 milliliters"),
        ("5m away", "5 meters away"),
        ("16GB and 2 TB", "16 gigabytes and 2 terabytes"),
        ("3.5 GHz", "3.5 gigahertz"),
        ("60 MPH", "60 miles per hour"),
        ("60 km/h", "60 kilometers per hour"),
        ("5 lbs", "5 pounds"),
        ("1,000 km", "1,000 kilometers"),
        ("72°F today, 20 °C", "72 degrees Fahrenheit today, 20 degrees Celsius"),
    ],
)
async def test_unit_abbreviations_are_said_in_words(written: str, spoken: str) -> None:
    assert await apply(expand_units, written) == spoken


@pytest.mark.parametrize("text", ["1 in 5 people", "5 m people", "our 5G network", "5M users"])
async def test_unit_letters_that_are_words_or_other_things_are_left_alone(text: str) -> None:
    assert await apply(expand_units, text) == text


# --- acronyms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("Use the API or HTTP endpoint", "Use the A P I or H T T P endpoint"),
        ("the US and UK", "the U S and U K"),
        ("the API's docs", "the A P I's docs"),
        # Said as words, and Roman numerals: kept whole.
        ("Enter your PIN and SIM number", "Enter your PIN and SIM number"),
        ("your ZIP code", "your ZIP code"),
        ("World War II and Henry VIII", "World War II and Henry VIII"),
        # Not all capitals, or with digits.
        ("iPhone McDonald MP3 APIs", "iPhone McDonald MP3 APIs"),
    ],
)
async def test_acronyms_are_spelled_out(written: str, spoken: str) -> None:
    assert await apply(normalize_acronyms, written) == spoken


# --- numbers -----------------------------------------------------------------------------------


async def test_numbers_up_to_the_cutoff_are_quantities_and_above_it_digits() -> None:
    transform = expand_numbers()  # Pipecat's default cutoff: 2025
    assert await apply(transform, "Room 42 has 1234 seats and opens in 2026") == (
        "Room forty-two has one thousand two hundred and thirty-four seats and opens in 2 0 2 6"
    )
    assert await apply(transform, "2025 and 2026.5") == (
        "two thousand and twenty-five and 2 0 2 6 point 5"
    )
    assert await apply(expand_numbers(digit_cutoff=99), "99 or 100") == "ninety-nine or 1 0 0"
    assert await apply(expand_numbers(digit_cutoff=None), "order 12345678") == (
        "order twelve million three hundred and forty-five thousand six hundred and seventy-eight"
    )


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("3.14", "three point one four"),
        ("1.0", "one point zero"),
        ("0.05", "zero point zero five"),
        # Thousands commas make a quantity whatever the cutoff.
        (
            "1,234,567 people",
            "one million two hundred and thirty-four thousand five hundred and sixty-seven people",
        ),
        ("Pick 1. Or 2.", "Pick one. Or two."),
        ("Note: 5 items", "Note: five items"),
        ("5 5 5, 1 2 3, 4 5 6 7", "five five five, one two three, four five six seven"),
        # Left alone: ordinals, words with digits, dotted numbers, times.
        ("10th and 21st", "10th and 21st"),
        ("MP3 v1.2.3 at 3:30pm", "MP3 v1.2.3 at 3:30pm"),
    ],
)
async def test_numbers_in_words(written: str, spoken: str) -> None:
    assert await apply(expand_numbers(), written) == spoken


async def test_a_number_too_large_for_words_is_read_as_digits() -> None:
    huge = "9" * 400
    assert await apply(expand_numbers(digit_cutoff=None), huge) == " ".join(huge)


# --- replacements ------------------------------------------------------------------------------


async def test_replacements_apply_in_order_with_regex_groups() -> None:
    transform = replace_text(
        [(r"\bDr\.", "Doctor"), (r"\bSt\.", "Street"), (r"(\d+)x", r"\1 times"), ("Doctor", "Dr")]
    )
    assert (
        await apply(transform, "Dr. Lee on Main St. said 3x")
        == "Dr Lee on Main Street said 3 times"
    )
    literal = replace_text([(re.escape("a.b"), "A B"), (re.compile("(?i)ok"), "okay")])
    assert await apply(literal, "a.b axb OK") == "A B axb okay"


def test_a_bad_replacement_pattern_fails_when_the_bot_is_built() -> None:
    with pytest.raises(re.error):
        replace_text([("(unclosed", "x")])
    with pytest.raises(re.error):
        VoiceFormatter(custom_replacements=[("[", "x")])


# --- VoiceFormatter ----------------------------------------------------------------------------

REPLY = (
    "**Sure!** Call **555-123-4567** or email JANE.DOE@ACME.COM about your $1,234.56 bill, "
    "due 2024-03-15. That's 50% of your 16GB API quota, and 3 items."
)


async def test_voice_formatter_defaults_combine_the_transforms() -> None:
    assert await apply(VoiceFormatter(), REPLY) == (
        "Sure! Call 5 5 5, 1 2 3, 4 5 6 7 or email jane dot doe at acme dot com about your one "
        "thousand two hundred and thirty-four dollars and fifty-six cents bill, due March 15th, "
        "two thousand and twenty-four. That's fifty percent of your 16 gigabytes A P I quota, "
        "and 3 items."
    )


async def test_voice_formatter_with_numbers_says_every_digit_and_replacements_come_last() -> None:
    formatter = VoiceFormatter(
        expand_numbers=True,
        number_digit_cutoff=2025,
        custom_replacements=[(r"\bgigabytes\b", "gigs"), (r"\bDr\.", "Doctor")],
    )
    assert await apply(formatter, REPLY) == (
        "Sure! Call five five five, one two three, four five six seven or email jane dot doe at "
        "acme dot com about your one thousand two hundred and thirty-four dollars and fifty-six "
        "cents bill, due March 15th, two thousand and twenty-four. That's fifty percent of your "
        "sixteen gigs A P I quota, and three items."
    )
    assert await apply(formatter, "Dr. Who, order 48213.") == "Doctor Who, order 4 8 2 1 3."


async def test_voice_formatter_options_turn_each_transform_off() -> None:
    off = VoiceFormatter(
        strip_markdown=False,
        expand_phone_numbers=False,
        normalize_acronyms=False,
        expand_currency=False,
        expand_percentages=False,
        expand_units=False,
        email_to_speech=False,
        normalize_dates=False,
    )
    assert await apply(off, REPLY) == REPLY
    links = "See [the FAQ](https://example.com/faq)."
    assert await apply(VoiceFormatter(), links) == "See the F A Q."
    assert await apply(VoiceFormatter(strip_urls=False), links) == (
        "See [the F A Q](https://example.com/faq)."
    )


async def test_voice_formatter_order_keeps_emails_and_units_whole() -> None:
    # Email before phone numbers (which would take a digit-only domain, leaving "ops@" and
    # ".com" to be read as symbols) and before acronyms; units before acronyms ("MB" would be
    # spelled and no longer be a unit).
    formatter = VoiceFormatter()
    assert await apply(formatter, "Write to ops@5551234567.com") == (
        "Write to ops at 5 5 5, 1 2 3, 4 5 6 7 dot com"
    )
    assert await apply(formatter, "A 500MB file at 60 MPH") == (
        "A 500 megabytes file at 60 miles per hour"
    )


def test_voice_formatter_keeps_pipecats_options_and_defaults() -> None:
    parameters = inspect.signature(VoiceFormatter).parameters
    assert {name: p.default for name, p in parameters.items()} == {
        "strip_markdown": True,
        "strip_urls": True,
        "expand_phone_numbers": True,
        "normalize_acronyms": True,
        "expand_currency": True,
        "expand_numbers": False,
        "number_digit_cutoff": None,
        "expand_percentages": True,
        "expand_units": True,
        "email_to_speech": True,
        "normalize_dates": True,
        "custom_replacements": None,
    }
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert inspect.signature(expand_numbers).parameters["digit_cutoff"].default == 2025


def test_the_package_exports_pipecats_names() -> None:
    assert set(transforms.__all__) == {
        "TextTransform",
        "normalize_acronyms",
        "expand_currency",
        "normalize_dates",
        "email_to_speech",
        "expand_numbers",
        "expand_percentages",
        "expand_phone_numbers",
        "replace_text",
        "StripMarkdown",
        "strip_markdown",
        "expand_units",
        "VoiceFormatter",
    }
    for name in transforms.__all__:
        assert getattr(transforms, name) is not None
    for module, name in [
        ("acronyms", "normalize_acronyms"),
        ("currency", "expand_currency"),
        ("dates", "normalize_dates"),
        ("email", "email_to_speech"),
        ("numbers", "expand_numbers"),
        ("percentages", "expand_percentages"),
        ("phone", "expand_phone_numbers"),
        ("replacements", "replace_text"),
        ("units", "expand_units"),
        ("voice_formatter", "VoiceFormatter"),
    ]:
        full = f"callpipe.utils.text.transforms.{module}"
        assert getattr(sys.modules[full], name) is getattr(transforms, name)


@pytest.mark.parametrize(
    "transform",
    [
        expand_phone_numbers,
        expand_currency,
        normalize_dates,
        email_to_speech,
        expand_percentages,
        expand_units,
        normalize_acronyms,
        expand_numbers(),
        VoiceFormatter(expand_numbers=True),
    ],
)
async def test_transforms_work_the_same_for_every_text_type(transform: TextTransform) -> None:
    # As Pipecat's: the text type only chooses which transforms a TTS service runs
    # (text_transforms=[(type, transform)]); the transform itself ignores it.
    text = "Call 555-123-4567 about $5 and 50% of 5km by 2024-01-02 at a@b.com via API."
    results = {await transform(text, kind) for kind in [*TextType, "*", "custom"]}
    assert len(results) == 1 and results != {text}


# --- without num2words -------------------------------------------------------------------------


@pytest.fixture
def without_num2words(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    _spoken._num2words.cache_clear()
    monkeypatch.setitem(sys.modules, "num2words", None)  # makes `import num2words` fail
    yield
    _spoken._num2words.cache_clear()


@pytest.mark.usefixtures("without_num2words")
async def test_without_num2words_the_number_transforms_name_the_extra() -> None:
    for transform in (expand_currency, normalize_dates, expand_percentages):
        with pytest.raises(MissingDependencyError, match=re.escape("callpipe[text]")) as caught:
            await apply(transform, "$5 on 2024-01-02 at 5%")
        assert caught.value.extra == "text"
        assert isinstance(caught.value, ImportError)
    with pytest.raises(MissingDependencyError, match="num2words"):
        expand_numbers()
    with pytest.raises(MissingDependencyError, match="num2words"):
        VoiceFormatter()  # at construction, not in the middle of a call
    # What needs no number words still works.
    formatter = VoiceFormatter(
        expand_currency=False, expand_percentages=False, normalize_dates=False
    )
    assert await apply(formatter, "**Call** 555-123-4567, API, 5km, a@b.com") == (
        "Call 5 5 5, 1 2 3, 4 5 6 7, A P I, 5 kilometers, a at b dot com"
    )


# --- through a TTS service ---------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as fake:
        yield fake


def sent_text(server: FakeCartesiaServer) -> str:
    return "".join(m["transcript"] for m in server.messages if "transcript" in m)


async def test_the_provider_hears_the_formatted_reply(server: FakeCartesiaServer) -> None:
    # The reply streams in as an LLM sends it: the amount, the phone number and the email
    # are cut across chunks; sentence aggregation makes them whole before the transform.
    tts = CartesiaTTSService(
        api_key="test-key",
        voice_id="voice-1",
        url=server.url,
        text_transforms=[("*", VoiceFormatter())],
    )
    chunks = (
        "Your total is $",
        "12",
        ".",
        "50",
        ". Call 555",
        ".123.4567 or email JOHN.SMITH@",
        "EXAMPLE.COM by 2024-03-15.",
    )
    _, up = await run_test(tts, reply(*chunks), params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert " ".join(sent_text(server).split()) == (
        "Your total is twelve dollars and fifty cents. Call 5 5 5, 1 2 3, 4 5 6 7 or email "
        "john dot smith at example dot com by March 15th, two thousand and twenty-four."
    )


async def test_a_transform_registered_for_tokens_leaves_sentences_alone(
    server: FakeCartesiaServer,
) -> None:
    tts = CartesiaTTSService(
        api_key="test-key",
        voice_id="voice-1",
        url=server.url,
        text_transforms=[(TextType.TOKEN, expand_currency), (TextType.SENTENCE, expand_units)],
    )
    await run_test(tts, [TTSSpeakFrame("It is $5 for 2km.")], params=PARAMS)
    assert sent_text(server).strip() == "It is $5 for 2 kilometers."


class RecordingTTS(TTSService):
    """A provider without word timing: records what it is sent, answers with 10 ms of audio."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(sample_rate=8000, **kwargs)  # type: ignore[arg-type]
        self.sent: list[str] = []

    async def run_tts(self, text: str, context_id: str) -> None:
        self.sent.append(text)
        await self.append_audio(context_id, b"\x00\x00" * 80)


async def test_the_context_keeps_what_the_llm_wrote() -> None:
    tts = RecordingTTS(text_transforms=[("*", VoiceFormatter(expand_numbers=True))])
    down, _ = await run_test(tts, reply("Call +1 555 123 4567 for 50% off."), params=PARAMS)
    assert tts.sent == [
        "Call plus one, five five five, one two three, four five six seven for fifty percent off."
    ]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == [
        "Call +1 555 123 4567 for 50% off."
    ]


def test_pipecat_imports_reach_the_transforms() -> None:
    # A Pipecat bot's imports, with `pipecat` mapped to callpipe (callpipe.utils.pipecat_alias).
    install_pipecat_alias()
    try:
        currency = importlib.import_module("pipecat.utils.text.transforms.currency")
        package = importlib.import_module("pipecat.utils.text.transforms")
    finally:
        uninstall_pipecat_alias()
    assert currency.expand_currency is expand_currency
    assert package.VoiceFormatter is VoiceFormatter
