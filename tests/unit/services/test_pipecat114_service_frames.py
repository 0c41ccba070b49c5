"""The services' side of Pipecat 1.14's frames: STT mute and metadata, LLM metadata, output
configuration and thoughts, and what the TTS services speak or pass on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from callpipe.frames.frames import (
    AggregatedTextFrame,
    EagerTranscriptionFrame,
    Frame,
    InputAudioRawFrame,
    InputTextRawFrame,
    LLMConfigureOutputFrame,
    LLMFullResponseEndFrame,
    LLMMessagesFrame,
    LLMServiceMetadataFrame,
    LLMTextFrame,
    LLMThoughtEndFrame,
    LLMThoughtStartFrame,
    LLMThoughtTextFrame,
    ServiceSwitcherRequestMetadataFrame,
    STTMetadataFrame,
    STTMuteFrame,
    TextFrame,
    TranslationFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from callpipe.services.ai_service import AIService
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.espeak import ESpeakTTSService
from callpipe.services.google.llm import GoogleLLMService, GoogleThinkingConfig
from callpipe.services.llm_service import LLMService, ToolCall
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.services.stt_service import STTService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer
from callpipe.testing.fakes.gemini import FakeGeminiServer
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame

from .helpers import PHONE as PARAMS
from .helpers import reply

RATE = 8000
HELLO = [LLMMessagesFrame([{"role": "user", "content": "hi"}])]


F = TypeVar("F", bound=Frame)


def of(kind: type[F], frames: list[Frame]) -> list[F]:
    return [f for f in frames if isinstance(f, kind)]


# ------------------------------------------------------------------ STT


async def test_a_muted_stt_sends_no_audio_until_unmuted() -> None:
    async with FakeDeepgramServer() as server:
        stt = DeepgramSTTService(api_key="test-key", url=server.url)
        packet = bytes(RATE // 50 * 2)  # 20 ms
        frames: list[Frame] = [
            SleepFrame(2.0, until=lambda: bool(server.queries)),
            STTMuteFrame(mute=True),
            *(InputAudioRawFrame(packet, RATE) for _ in range(10)),
            STTMuteFrame(mute=False),
            *(InputAudioRawFrame(packet, RATE) for _ in range(5)),
            SleepFrame(2.0, until=lambda: server.audio_bytes >= 5 * RATE // 50),
            SleepFrame(0.1),
        ]
        down, _ = await run_test(stt, frames, params=PARAMS)
    assert server.audio_bytes == 5 * RATE // 50  # μ-law: one byte a sample
    assert len(of(InputAudioRawFrame, down)) == 15  # the audio itself still passes on
    assert not of(STTMuteFrame, down)


async def test_stt_services_announce_their_p99_latency_and_again_when_switched_to() -> None:
    async with FakeDeepgramServer() as server:
        stt = DeepgramSTTService(api_key="test-key", url=server.url)
        down, up = await run_test(stt, [ServiceSwitcherRequestMetadataFrame(service=stt)])
        custom, _ = await run_test(
            DeepgramSTTService(api_key="test-key", url=server.url, ttfs_p99_latency=0.45), []
        )
    assert [f.ttfs_p99_latency for f in of(STTMetadataFrame, down)] == [0.35, 0.35]
    assert of(STTMetadataFrame, down)[0].service_name == stt.name
    assert len(of(STTMetadataFrame, up)) == 2  # broadcast: upstream too
    assert [f.ttfs_p99_latency for f in of(STTMetadataFrame, custom)] == [0.45]
    assert OpenAISTTService(api_key="k").service_metadata_frame().ttfs_p99_latency == 2.01

    class Plain(STTService):
        async def process_audio(self, audio: bytes) -> None:
            pass

    assert Plain().service_metadata_frame().ttfs_p99_latency == 1.0
    assert AIService().service_metadata_frame() is None  # TTS and others: nothing


# ------------------------------------------------------------------ LLM


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as server:
        yield server


def openai_llm(server: FakeOpenAIServer) -> OpenAILLMService:
    return OpenAILLMService(api_key="test-key", base_url=server.base_url, model="fake-model")


async def test_llm_services_announce_themselves(openai: FakeOpenAIServer) -> None:
    llm = openai_llm(openai)
    down, up = await run_test(llm, [])
    assert [f.service_name for f in of(LLMServiceMetadataFrame, down)] == [llm.name]
    assert not of(LLMServiceMetadataFrame, down)[0].is_realtime_service
    assert len(of(LLMServiceMetadataFrame, up)) == 1


async def test_configure_output_marks_the_following_text_skip_tts(
    openai: FakeOpenAIServer,
) -> None:
    for _ in range(3):
        openai.add_chat_reply("Hello there.")
    frames: list[Frame] = [
        *HELLO,
        LLMConfigureOutputFrame(skip_tts=True),
        *HELLO,
        LLMConfigureOutputFrame(skip_tts=False),
        *HELLO,
    ]
    down, _ = await run_test(openai_llm(openai), frames)
    marks = [f.skip_tts for f in of(LLMTextFrame, down)]
    assert marks == [None, None, True, True, False, False]
    assert not of(LLMConfigureOutputFrame, down)


async def test_openai_reasoning_content_becomes_a_thought(openai: FakeOpenAIServer) -> None:
    openai.add_chat_reply("It is noon.", reasoning="The user wants the time.")
    down, _ = await run_test(openai_llm(openai), HELLO)
    kinds = [type(f) for f in down]
    thought = "".join(f.text for f in of(LLMThoughtTextFrame, down))
    assert thought == "The user wants the time."
    assert kinds.count(LLMThoughtStartFrame) == 1 and kinds.count(LLMThoughtEndFrame) == 1
    assert kinds.index(LLMThoughtEndFrame) < kinds.index(LLMTextFrame)
    assert "".join(f.text for f in of(LLMTextFrame, down)) == "It is noon."


async def test_a_thought_still_open_at_the_end_is_closed(openai: FakeOpenAIServer) -> None:
    openai.add_chat_reply("", reasoning="Nothing to say.")
    down, _ = await run_test(openai_llm(openai), HELLO)
    kinds = [type(f) for f in down]
    assert kinds.index(LLMThoughtEndFrame) < kinds.index(LLMFullResponseEndFrame)


class ThinkingLLM(LLMService):
    """Pushes a thought kept in the context, then a plain one, through the shared helpers."""

    async def run_completion(self, context: Any) -> list[ToolCall]:
        await self.push_thought("Weighing ", append_to_context=True, llm="anthropic")
        await self.push_thought("it.")  # the thought is open: no new start frame
        await self.end_thought("sig-1")
        await self.push_thought("")  # opens a plain thought with no text yet
        await self.end_thought()
        await self.end_thought()  # none open: nothing
        return []


async def test_the_thought_helpers_carry_context_and_signature_fields() -> None:
    down, _ = await run_test(ThinkingLLM(), HELLO)
    starts = [(f.append_to_context, f.llm) for f in of(LLMThoughtStartFrame, down)]
    assert starts == [(True, "anthropic"), (False, None)]
    assert [f.text for f in of(LLMThoughtTextFrame, down)] == ["Weighing ", "it."]
    assert [f.signature for f in of(LLMThoughtEndFrame, down)] == ["sig-1", None]


@pytest.mark.parametrize("include", [True, False])
async def test_gemini_thought_parts_become_thoughts_when_included(include: bool) -> None:
    async with FakeGeminiServer() as server:
        server.add_reply("It is noon.", thoughts="Thinking about the time.")
        thinking = GoogleThinkingConfig(thinking_budget=128, include_thoughts=include)
        llm = GoogleLLMService(
            api_key="test-key",
            base_url=server.base_url,
            params=GoogleLLMService.InputParams(thinking=thinking),
        )
        down, _ = await run_test(llm, HELLO)
    texts = [f.text for f in of(LLMThoughtTextFrame, down)]
    assert texts == (["Thinking about the time."] if include else [])
    assert len(of(LLMThoughtStartFrame, down)) == len(of(LLMThoughtEndFrame, down)) == len(texts)
    assert "".join(f.text for f in of(LLMTextFrame, down)) == "It is noon."


# ------------------------------------------------------------------ TTS


@pytest.fixture
async def cartesia() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as fake:
        yield fake


def cartesia_tts(server: FakeCartesiaServer, **kwargs: Any) -> CartesiaTTSService:
    return CartesiaTTSService(api_key="test-key", voice_id="v", url=server.url, **kwargs)


def cartesia_sent(server: FakeCartesiaServer) -> list[str]:
    return [m["transcript"].strip() for m in server.messages if m.get("transcript", "").strip()]


def skipped_reply() -> list[Frame]:
    frames = reply("Internal note. ", "Not for the caller.")
    for frame in of(LLMTextFrame, frames):
        frame.skip_tts = True
    return frames


async def test_skip_tts_text_passes_on_unspoken_cartesia(cartesia: FakeCartesiaServer) -> None:
    down, _ = await run_test(cartesia_tts(cartesia), skipped_reply(), params=PARAMS)
    assert cartesia_sent(cartesia) == [] and not of(TTSAudioRawFrame, down)
    texts = of(LLMTextFrame, down)
    assert [f.text for f in texts] == ["Internal note. ", "Not for the caller."]
    assert all(f.skip_tts for f in texts)


async def test_skip_tts_text_passes_on_unspoken_elevenlabs() -> None:
    async with FakeElevenLabsServer(secs_per_char=0.01, chunk_secs=0.05) as server:
        tts = ElevenLabsTTSService(api_key="test-key", voice_id="v", url=server.url)
        down, _ = await run_test(tts, skipped_reply(), params=PARAMS)
    assert not [m for m in server.messages if str(m.get("text", "")).strip()]
    assert not of(TTSAudioRawFrame, down)
    assert [f.text for f in of(LLMTextFrame, down)] == ["Internal note. ", "Not for the caller."]


async def test_what_the_caller_said_is_never_spoken(cartesia: FakeCartesiaServer) -> None:
    frames: list[Frame] = [
        TranslationFrame("Hola"),
        EagerTranscriptionFrame("I want a"),
        InputTextRawFrame("typed text"),
    ]
    down, _ = await run_test(cartesia_tts(cartesia), frames, params=PARAMS)
    assert cartesia_sent(cartesia) == [] and not of(TTSAudioRawFrame, down)
    assert [type(f) for f in of(TextFrame, down)] == [
        InputTextRawFrame,  # a system frame: straight on
        TranslationFrame,
        EagerTranscriptionFrame,
    ]


async def test_speak_frame_text_type_and_append_to_context(cartesia: FakeCartesiaServer) -> None:
    async def shout(text: str, text_type: str) -> str:
        return text.upper()

    tts = cartesia_tts(cartesia, text_transforms=[("hold", shout)])
    frames: list[Frame] = [
        TTSSpeakFrame("please hold.", append_to_context=False, text_type="hold"),
        TTSSpeakFrame("thanks."),
    ]
    down, _ = await run_test(tts, frames, params=PARAMS)
    assert cartesia_sent(cartesia) == ["PLEASE HOLD.", "thanks."]
    # Cartesia times words: one TTSTextFrame per word.
    spoken = [(f.text.lower(), f.append_to_context) for f in of(TTSTextFrame, down)]
    assert spoken == [("please", False), ("hold.", False), ("thanks.", True)]


async def test_aggregated_text_is_spoken_whole_or_skipped_by_type(
    cartesia: FakeCartesiaServer,
) -> None:
    tts = cartesia_tts(cartesia, skip_text_types=["code"])
    whole = AggregatedTextFrame("Hi there. How are you today?", "custom")
    code = AggregatedTextFrame("print(1)", "code")
    down, _ = await run_test(tts, [whole, code], params=PARAMS)
    assert cartesia_sent(cartesia) == ["Hi there. How are you today?"]  # one piece, not two
    # TTSTextFrame is an AggregatedTextFrame too (1.14): only the pieces handed to the TTS.
    out = [f for f in of(AggregatedTextFrame, down) if not isinstance(f, TTSTextFrame)]
    assert [(f.text, f.will_be_spoken, f.skip_tts) for f in out] == [
        ("Hi there. How are you today?", True, None),
        ("print(1)", False, True),
    ]
    assert not out[0].append_to_context  # the TTSTextFrames after the audio carry it
    kinds = [type(f) for f in down]
    assert kinds.index(AggregatedTextFrame) < kinds.index(TTSAudioRawFrame)


# ------------------------------------------------------------------ eSpeak


async def test_espeak_skips_what_it_must_and_marks_what_it_speaks() -> None:
    pytest.importorskip("espeakng_loader", reason="needs the espeak extra")
    tts = ESpeakTTSService(skip_text_types=["code"])
    frames: list[Frame] = [
        *skipped_reply(),
        TranslationFrame("Hola"),
        AggregatedTextFrame("print(1)", "code"),
        TTSSpeakFrame("Please hold.", append_to_context=False),
        AggregatedTextFrame("One moment. Still here.", "custom"),
    ]
    down, _ = await run_test(tts, frames, params=PARAMS)
    spoken = of(TTSTextFrame, down)
    assert [(f.text, f.append_to_context) for f in spoken] == [
        ("Please hold.", False),
        ("One moment. Still here.", True),
    ]
    assert [f.text for f in of(LLMTextFrame, down)] == ["Internal note. ", "Not for the caller."]
    assert len(of(TranslationFrame, down)) == 1
    # TTSTextFrame is an AggregatedTextFrame too (1.14): only the pieces handed to the TTS.
    out = [f for f in of(AggregatedTextFrame, down) if not isinstance(f, TTSTextFrame)]
    assert [(f.text_type, f.skip_tts, f.will_be_spoken) for f in out] == [
        ("code", True, False),
        ("custom", None, True),
    ]
