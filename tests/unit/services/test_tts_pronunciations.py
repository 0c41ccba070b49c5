"""IPA pronunciations (Pipecat 1.14's ``pronunciation_transform_ipa``): each provider gets its
own markup, and a service whose model or settings cannot read it gets the words as written."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.frames.frames import ErrorFrame, Frame, TTSTextFrame, TTSUpdateSettingsFrame
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
from callpipe.testing.fakes.inworld import FakeInworldServer
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
