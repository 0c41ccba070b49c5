"""IPA pronunciations (Pipecat 1.14's ``pronunciation_transform_ipa``): each provider gets its
own markup, and a service whose model or settings cannot read it gets the words as written."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    TTSAudioRawFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.services.cartesia.tts import CartesiaHttpTTSService, CartesiaTTSService
from callpipe.services.deepgram.tts import DeepgramTTSService, format_deepgram_pronunciation
from callpipe.services.elevenlabs.tts import (
    ElevenLabsHttpTTSService,
    ElevenLabsTTSService,
    format_elevenlabs_pronunciation,
)
from callpipe.services.inworld.tts import InworldHttpTTSService, InworldTTSService
from callpipe.services.settings import TTSSettings
from callpipe.services.tts_service import TTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaHTTPServer, FakeCartesiaServer
from callpipe.testing.fakes.deepgram_tts import FakeDeepgramTTSServer
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsHTTPServer, FakeElevenLabsServer
from callpipe.testing.fakes.inworld import FakeInworldHTTPServer, FakeInworldServer
from callpipe.utils.text.transforms.strip_markdown import StripMarkdown

from .helpers import PHONE, reply

IPA = {"Metformin": "mɛtˈfɔɹmɪn"}
SAID = "Take **Metformin** with food."
CARTESIA = "<<m|ɛ|t|f|ˈ|ɔ|ɹ|m|ɪ|n>>"
ELEVENLABS = '<phoneme alphabet="ipa" ph="mɛtˈfɔɹmɪn">Metformin</phoneme>'
NOT_READ = "does not read pronunciation markup"


def errors(frames: list[Frame]) -> list[ErrorFrame]:
    return [f for f in frames if isinstance(f, ErrorFrame)]


def skip_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if NOT_READ in r.getMessage()]


# ---------------------------------------------------------------------- the base class


class RecordingTTS(TTSService):
    """Reads ``[word:ipa]`` markup with its model ``reads-ipa`` only; records what it is sent."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(sample_rate=8000, **kwargs)
        self.sent: list[str] = []

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        return f"[{word}:{ipa}]"

    @property
    def supports_pronunciations(self) -> bool:
        return self.model_name == "reads-ipa"

    async def run_tts(self, text: str, context_id: str) -> None:
        self.sent.append(text)
        await self.append_audio(context_id, b"\x00\x00" * 80)


def switch_model(model: str) -> TTSUpdateSettingsFrame:
    return TTSUpdateSettingsFrame(delta=TTSSettings(model=model))


def test_the_base_class_has_no_markup_so_every_word_is_spoken_as_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert TTSService.format_pronunciation("Metformin", "mɛtˈfɔɹmɪn") is None
    with caplog.at_level(logging.WARNING):
        transform = TTSService.pronunciation_transform_ipa(IPA)
    assert transform.words == frozenset()
    [warning] = [r.getMessage() for r in caplog.records]
    assert "TTSService" in warning and "Metformin" in warning


async def test_the_transform_is_skipped_while_the_model_cannot_read_markup(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pronounce = RecordingTTS.pronunciation_transform_ipa(IPA)
    tts = RecordingTTS(model="reads-ipa", text_transforms=[("*", StripMarkdown())])
    tts.add_text_transformer(pronounce)
    frames = [
        *reply(SAID),
        switch_model("plain"),
        *reply(SAID),
        *reply("Metformin again."),
        switch_model("reads-ipa"),
        *reply("Metformin now."),
        switch_model("plain"),
        *reply("Metformin then."),
    ]
    with caplog.at_level(logging.WARNING):
        down, up = await run_test(tts, frames, params=PHONE)
    assert not errors(up)
    assert tts.sent == [
        "Take [Metformin:mɛtˈfɔɹmɪn] with food.",
        "Take Metformin with food.",  # markdown still stripped: only the pronunciations skip
        "Metformin again.",
        "[Metformin:mɛtˈfɔɹmɪn] now.",
        "Metformin then.",
    ]
    # One warning each time the skipping starts, not one per sentence.
    warnings = skip_warnings(caplog)
    assert len(warnings) == 2 and "plain" in warnings[0]
    # The context keeps what the LLM wrote, markup or not.
    assert [f.text for f in down if isinstance(f, TTSTextFrame)][:2] == [SAID, SAID]


# ---------------------------------------------------------------------- Cartesia


@pytest.fixture
async def cartesia() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as fake:
        yield fake


def cartesia_tts(server: FakeCartesiaServer, **kwargs: Any) -> CartesiaTTSService:
    pronounce = CartesiaTTSService.pronunciation_transform_ipa(IPA)
    return CartesiaTTSService(
        api_key="test-key",
        voice_id="voice-1",
        url=server.url,
        text_transforms=[("*", StripMarkdown()), ("*", pronounce)],
        **kwargs,
    )


def transcripts(server: FakeCartesiaServer) -> list[str]:
    return [m["transcript"] for m in server.messages if m.get("transcript")]


async def test_cartesia_gets_inline_phonemes(cartesia: FakeCartesiaServer) -> None:
    _, up = await run_test(cartesia_tts(cartesia), reply(SAID), params=PHONE)
    assert not errors(up)
    assert cartesia.messages[0]["model_id"] == "sonic-3"
    assert transcripts(cartesia) == [f"Take {CARTESIA} with food. "]


async def test_cartesia_follows_its_model_and_language(
    cartesia: FakeCartesiaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # sonic-2024-10-19 reads phonemes in English only (Cartesia's pronunciation guide).
    tts = cartesia_tts(cartesia, model="sonic-2024-10-19")
    frames = [*reply(SAID), TTSUpdateSettingsFrame(delta=TTSSettings(language="es")), *reply(SAID)]
    with caplog.at_level(logging.WARNING):
        _, up = await run_test(tts, frames, params=PHONE)
    assert not errors(up)
    assert [m["language"] for m in cartesia.messages if m.get("transcript")] == ["en", "es"]
    assert transcripts(cartesia) == [f"Take {CARTESIA} with food. ", "Take Metformin with food. "]
    [warning] = skip_warnings(caplog)
    assert "sonic-2024-10-19" in warning


async def test_cartesia_http_gets_inline_phonemes_and_not_with_an_unknown_model() -> None:
    pronounce = CartesiaHttpTTSService.pronunciation_transform_ipa(IPA)
    async with FakeCartesiaHTTPServer(secs_per_word=0.01, chunk_secs=0.04) as server:
        for model, expected in (("sonic-2", CARTESIA), ("not-sonic", "Metformin")):
            server.requests.clear()
            tts = CartesiaHttpTTSService(
                api_key="test-key",
                voice_id="voice-1",
                model=model,
                base_url=server.base_url,
                text_transforms=[("*", pronounce)],
            )
            _, up = await run_test(tts, reply("Take Metformin now."), params=PHONE)
            assert not errors(up)
            assert [r["transcript"] for r in server.requests] == [f"Take {expected} now."]
            assert server.requests[0]["model_id"] == model


# ---------------------------------------------------------------------- ElevenLabs


@pytest.fixture
async def elevenlabs() -> AsyncIterator[FakeElevenLabsServer]:
    async with FakeElevenLabsServer(secs_per_char=0.001, chunk_secs=0.05) as fake:
        yield fake


def elevenlabs_texts(server: FakeElevenLabsServer) -> list[str]:
    return [m["text"] for m in server.messages if m.get("text", "").strip()]


@pytest.mark.parametrize(
    ("model", "ssml", "expected"),
    [
        ("eleven_flash_v2", True, ELEVENLABS),
        ("eleven_turbo_v2", True, ELEVENLABS),
        ("eleven_flash_v2_5", True, "Metformin"),  # the model skips phoneme tags
        ("eleven_multilingual_v2", True, "Metformin"),
        ("eleven_flash_v2", None, "Metformin"),  # the socket would not parse the tags
    ],
)
async def test_elevenlabs_gets_phoneme_tags_only_where_they_are_read(
    elevenlabs: FakeElevenLabsServer, model: str, ssml: bool | None, expected: str
) -> None:
    tts = ElevenLabsTTSService(
        api_key="test-key",
        voice_id="voice-9",
        url=elevenlabs.url,
        model=model,
        enable_ssml_parsing=ssml,
        text_transforms=[("*", ElevenLabsTTSService.pronunciation_transform_ipa(IPA))],
    )
    _, up = await run_test(tts, reply("Take Metformin now."), params=PHONE)
    assert not errors(up)
    query = elevenlabs.queries[0]
    assert query["model_id"] == [model]
    assert query.get("enable_ssml_parsing") == (["true"] if ssml else None)
    assert elevenlabs_texts(elevenlabs) == [f"Take {expected} now. "]


async def test_elevenlabs_http_gets_phoneme_tags_with_a_phoneme_model() -> None:
    pronounce = ElevenLabsHttpTTSService.pronunciation_transform_ipa(IPA)
    async with FakeElevenLabsHTTPServer(secs_per_char=0.001, speech_chunk_secs=0.05) as server:
        for model, expected in (("eleven_flash_v2", ELEVENLABS), ("eleven_v3", "Metformin")):
            server.speech_requests.clear()
            tts = ElevenLabsHttpTTSService(
                api_key="test-key",
                voice_id="voice-1",
                model=model,
                base_url=server.base_url,
                text_transforms=[("*", pronounce)],
            )
            _, up = await run_test(tts, reply("Take Metformin now."), params=PHONE)
            assert not errors(up)
            [body] = [r["body"] for r in server.speech_requests]
            assert body["model_id"] == model
            assert body["text"] == f"Take {expected} now."


def test_elevenlabs_tags_one_word_each_and_escapes_them() -> None:
    assert format_elevenlabs_pronunciation("Dr Who", "/dɑktɚ hu/") == (
        '<phoneme alphabet="ipa" ph="dɑktɚ">Dr</phoneme> '
        '<phoneme alphabet="ipa" ph="hu">Who</phoneme>'
    )
    assert format_elevenlabs_pronunciation("A&B", 'eɪ"b') == (
        '<phoneme alphabet="ipa" ph="eɪ&quot;b">A&amp;B</phoneme>'
    )
    assert format_elevenlabs_pronunciation("Dr Who", "dɑktɚhu") is None  # 2 words, 1 of IPA
    assert format_elevenlabs_pronunciation("Who", " ") is None


# ---------------------------------------------------------------------- Deepgram, Inworld


def test_deepgram_keeps_the_word_and_moves_stress_to_the_vowel() -> None:
    assert format_deepgram_pronunciation("dupilumab", "duːˈpɪljuːmæb") == (
        '\\{"word": "dupilumab", "pronounce": "duːpˈɪljuːmæb"\\}'
    )
    assert format_deepgram_pronunciation("Mr.", "ˈmɪstɚ") == (
        '\\{"word": "Mr.", "pronounce": "mˈɪstɚ"\\}'
    )
    # IPA far longer than the word: ten characters a character, at least 15.
    assert format_deepgram_pronunciation("a", "ə" * 16) is None
    assert format_deepgram_pronunciation("a", "ə" * 15) is not None
    assert format_deepgram_pronunciation("abc", "ə" * 31) is None
    assert format_deepgram_pronunciation("abc", "ə" * 30) is not None
    assert format_deepgram_pronunciation("x" * 20, "ə" * 129) is None  # over 128 characters
    assert format_deepgram_pronunciation("x", "") is None


@pytest.mark.parametrize(
    ("voice", "expected"),
    [
        ("aura-2-thalia-en", '\\{"word": "Metformin", "pronounce": "mɛtfˈɔɹmɪn"\\}'),
        ("aura-2-celeste-es", '\\{"word": "Metformin", "pronounce": "mɛtfˈɔɹmɪn"\\}'),
        ("aura-asteria-en", "Metformin"),  # Aura-1 has no pronunciation control
        ("aura-2-julius-de", "Metformin"),  # English and Spanish voices only
    ],
)
async def test_deepgram_gets_inline_pronunciations_on_aura_2_voices(
    voice: str, expected: str
) -> None:
    pronounce = DeepgramTTSService.pronunciation_transform_ipa(IPA)
    async with FakeDeepgramTTSServer(secs_per_word=0.01, chunk_secs=0.02) as server:
        tts = DeepgramTTSService(
            api_key="test-key", voice=voice, base_url=server.url, text_transforms=[("*", pronounce)]
        )
        _, up = await run_test(tts, reply("Take Metformin now."), params=PHONE)
        assert not errors(up)
        speak = [m["text"] for m in server.messages if m["type"] == "Speak"]
        assert speak == [f"Take {expected} now. "]


async def test_inworld_services_get_ipa_between_slashes() -> None:
    # Their own form, not the base class's None (a base listed first would shadow a mixin's).
    for service in (InworldTTSService, InworldHttpTTSService):
        transform = service.pronunciation_transform_ipa({"Crete": "ˈkriːt"})
        assert await transform("To Crete.", "sentence") == "To /ˈkriːt/."
    async with FakeInworldServer(secs_per_word=0.01, chunk_secs=0.04) as server:
        tts = InworldTTSService(
            api_key="test-key",
            url=server.url,
            text_transforms=[("*", InworldTTSService.pronunciation_transform_ipa(IPA))],
        )
        _, up = await run_test(tts, reply("Take Metformin now."), params=PHONE)
        assert not errors(up)
        sent = [m["send_text"]["text"] for m in server.messages if "send_text" in m]
        assert sent == ["Take /mɛtˈfɔɹmɪn/ now. "]


# ---------------------------------------------------------------------- word timing

# A provider with word timing reports the words it was sent; callpipe's fakes, like a provider
# that echoes its input, report the markup: Cartesia's and Inworld's as one word, an ElevenLabs
# tag (from its character alignment, cut at spaces) as three. The TTSTextFrames, which are what
# the context records, still carry the words as the LLM wrote them.

LLM_SAID = ("Take Metformin daily. ", "Rest (Metformin), then eat.")
LLM_TEXT = "Take Metformin daily. Rest (Metformin), then eat."
INWORLD = "/mɛtˈfɔɹmɪn/"

Served = AsyncIterator[tuple[TTSService, Callable[[], list[str]]]]


@asynccontextmanager
async def timed_cartesia() -> Served:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as server:
        yield cartesia_tts(server), lambda: transcripts(server)


@asynccontextmanager
async def untimed_cartesia_http() -> Served:
    async with FakeCartesiaHTTPServer(secs_per_word=0.01, chunk_secs=0.04) as server:
        tts = CartesiaHttpTTSService(
            api_key="test-key",
            voice_id="voice-1",
            base_url=server.base_url,
            text_transforms=[("*", CartesiaHttpTTSService.pronunciation_transform_ipa(IPA))],
        )
        yield tts, lambda: [r["transcript"] for r in server.requests]


@asynccontextmanager
async def timed_elevenlabs() -> Served:
    async with FakeElevenLabsServer(secs_per_char=0.001, chunk_secs=0.05) as server:
        tts = ElevenLabsTTSService(
            api_key="test-key",
            voice_id="voice-9",
            url=server.url,
            model="eleven_flash_v2",
            enable_ssml_parsing=True,
            text_transforms=[("*", ElevenLabsTTSService.pronunciation_transform_ipa(IPA))],
        )
        yield tts, lambda: elevenlabs_texts(server)


@asynccontextmanager
async def timed_elevenlabs_http() -> Served:
    async with FakeElevenLabsHTTPServer(secs_per_char=0.001, speech_chunk_secs=0.05) as server:
        tts = ElevenLabsHttpTTSService(
            api_key="test-key",
            voice_id="voice-1",
            model="eleven_flash_v2",
            base_url=server.base_url,
            text_transforms=[("*", ElevenLabsHttpTTSService.pronunciation_transform_ipa(IPA))],
        )
        yield tts, lambda: [r["body"]["text"] for r in server.speech_requests]


@asynccontextmanager
async def timed_inworld() -> Served:
    async with FakeInworldServer(secs_per_word=0.01, chunk_secs=0.04) as server:
        tts = InworldTTSService(
            api_key="test-key",
            url=server.url,
            text_transforms=[("*", InworldTTSService.pronunciation_transform_ipa(IPA))],
        )
        yield tts, lambda: [m["send_text"]["text"] for m in server.messages if "send_text" in m]


@asynccontextmanager
async def timed_inworld_http() -> Served:
    async with FakeInworldHTTPServer(secs_per_word=0.01) as server:
        tts = InworldHttpTTSService(
            api_key="test-key",
            base_url=server.base_url,
            text_transforms=[("*", InworldHttpTTSService.pronunciation_transform_ipa(IPA))],
        )
        yield tts, lambda: [r["text"] for r in server.requests]


@pytest.mark.parametrize(
    ("serve", "markup"),
    [
        (timed_cartesia, CARTESIA),
        (timed_elevenlabs, ELEVENLABS),
        (timed_elevenlabs_http, ELEVENLABS),
        (timed_inworld, INWORLD),
        (timed_inworld_http, INWORLD),
        (untimed_cartesia_http, CARTESIA),  # no word timing: the LLM's text after the audio
    ],
)
async def test_the_context_gets_the_word_as_written_while_the_provider_gets_markup(
    serve: Callable[[], Served], markup: str
) -> None:
    async with serve() as (tts, sent):
        down, up = await run_test(tts, reply(*LLM_SAID), params=PHONE)
        assert not errors(up)
        # The caller hears the pronunciation: the provider was sent the markup...
        assert "".join(sent()).count(markup) == 2
    # ...and what the bot said, as the context records it, is the LLM's text.
    spoken = [f for f in down if isinstance(f, TTSTextFrame)]
    assert " ".join(f.text for f in spoken) == LLM_TEXT
    if tts.emits_word_timestamps:  # word by word, from the provider's timing
        assert [f.text for f in spoken] == LLM_TEXT.split()


class TimedTTS(TTSService):
    """ElevenLabs' phoneme tags, timed word by word: each word the provider reports (by
    default the words it was sent, the tag's pieces included) takes 0.1 s of audio."""

    emits_word_timestamps = True

    def __init__(self, report: Callable[[str], list[str]] = str.split, **kwargs: Any) -> None:
        super().__init__(sample_rate=8000, **kwargs)
        self.report = report
        self.one_word_per_message = False
        self.sent: list[str] = []

    @classmethod
    def format_pronunciation(cls, word: str, ipa: str) -> str | None:
        return format_elevenlabs_pronunciation(word, ipa)

    async def run_tts(self, text: str, context_id: str) -> None:
        self.sent.append(text)
        offset = self._contexts[context_id].audio_secs
        words = self.report(text)
        timed = [(w, offset + i / 10, offset + (i + 1) / 10) for i, w in enumerate(words)]
        if not self.one_word_per_message:
            await self.add_word_timestamps(context_id, timed)
        for word in timed:
            if self.one_word_per_message:
                await self.add_word_timestamps(context_id, [word])
            await self.append_audio(context_id, b"\x00\x00" * 800)  # 0.1 s at 8 kHz


def heard(frames: list[Frame]) -> list[str]:
    """The words in the order they go out, each audio chunk as ``|``."""
    return [
        "|" if isinstance(f, TTSAudioRawFrame) else f.text
        for f in frames
        if isinstance(f, TTSAudioRawFrame | TTSTextFrame)
    ]


@pytest.mark.parametrize("one_word_per_message", [False, True])
async def test_markup_timed_as_several_words_is_the_word_at_the_end_of_its_last_piece(
    one_word_per_message: bool,
) -> None:
    tts = TimedTTS(text_transforms=[("*", TimedTTS.pronunciation_transform_ipa(IPA))])
    tts.one_word_per_message = one_word_per_message
    down, up = await run_test(tts, reply("Take Metformin. Then Metformin, daily."), params=PHONE)
    assert not errors(up)
    assert tts.sent == [f"Take {ELEVENLABS}.", f"Then {ELEVENLABS}, daily."]
    # The tag's three pieces end 0.4 s in: "Metformin." follows the fourth 0.1 s of audio.
    assert heard(down) == [
        *("|", "Take", "|", "|", "|", "Metformin."),
        *("|", "Then", "|", "|", "|", "Metformin,", "|", "daily."),
    ]


async def test_a_provider_reporting_the_plain_word_is_left_as_it_is() -> None:
    def plain(text: str) -> list[str]:
        return re.sub(r"<phoneme [^>]*>(.*?)</phoneme>", r"\1", text).split()

    tts = TimedTTS(plain, text_transforms=[("*", TimedTTS.pronunciation_transform_ipa(IPA))])
    down, up = await run_test(tts, reply("Take Metformin daily."), params=PHONE)
    assert not errors(up)
    assert tts.sent == [f"Take {ELEVENLABS} daily."]
    assert heard(down) == ["|", "Take", "|", "Metformin", "|", "daily."]
