"""Settings deltas of the base class or of another provider's class (Pipecat 1.14 behaviour).

A bot may send ``LLMUpdateSettingsFrame(delta=LLMSettings(...))`` (and the TTS/STT
equivalents): every service applies the given fields it has.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from warnings import catch_warnings, simplefilter

import pytest

import callpipe.services
from callpipe.frames.frames import (
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    STTUpdateSettingsFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.elevenlabs.tts import ElevenLabsTTSService
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.llm_service import LLMService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService
from callpipe.services.settings import (
    LLMSettings,
    ServiceSettings,
    STTSettings,
    TTSSettings,
    convert_delta,
    delta_from_frame,
    store_from,
)
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.utils.types import is_given

from .helpers import PHONE as PARAMS


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_openai_llm_takes_a_base_class_delta() -> None:
    async with FakeOpenAIServer() as server:
        server.add_chat_reply("one")
        server.add_chat_reply("two")
        llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="m")
        context = LLMContext([{"role": "user", "content": "?"}])
        delta = LLMSettings(temperature=0.2, system_instruction="Be brief.")
        await run_test(
            llm,
            [
                LLMContextFrame(context=context),
                LLMUpdateSettingsFrame(delta=delta),
                LLMContextFrame(context=context),
            ],
        )
    first, second = server.chat_requests
    assert "temperature" not in first and first["messages"][0]["role"] == "user"
    assert second["temperature"] == 0.2
    assert second["messages"][0] == {"role": "system", "content": "Be brief."}
    assert second["model"] == "m"  # fields the delta left unset are kept
    assert isinstance(llm.settings, OpenAILLMService.Settings)


async def test_another_providers_delta_applies_the_shared_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm = OpenAILLMService(api_key="test-key", model="m")
    google = GoogleLLMService.Settings(temperature=0.7)
    delta = delta_from_frame(LLMUpdateSettingsFrame(delta=google), llm.Settings, llm)
    assert isinstance(delta, OpenAILLMService.Settings) and delta.temperature == 0.7
    # A subclass with a field this service lacks: the rest applies, that one is dropped loudly.
    openai = OpenAILLMService.Settings(max_completion_tokens=50, top_p=0.5, extra={"x": 1})
    with caplog.at_level(logging.WARNING):
        converted = delta_from_frame(LLMUpdateSettingsFrame(delta=openai), LLMSettings, llm)
    assert type(converted) is LLMSettings
    assert converted.top_p == 0.5 and converted.extra == {"x": 1}
    assert not is_given(converted.temperature)
    assert any("max_completion_tokens" in m for m in warnings(caplog))


def _llm_service_classes() -> list[type[LLMService]]:
    """Every LLM service class in ``callpipe.services`` (the ``*.llm`` modules)."""
    found: set[type[LLMService]] = set()
    for info in pkgutil.walk_packages(callpipe.services.__path__, "callpipe.services."):
        if not info.name.endswith(".llm"):
            continue
        with catch_warnings():  # callpipe.services.grok: a deprecated alias of xai
            simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, LLMService):
                if value.__module__ == info.name:
                    found.add(value)
    return sorted(found, key=lambda cls: cls.__qualname__)


def test_every_llm_service_takes_use_provider_thinking_default() -> None:
    classes = _llm_service_classes()
    assert len(classes) >= 30  # the walk found the services
    base = LLMSettings(use_provider_thinking_default=True)
    for cls in classes:
        own = cls.Settings(use_provider_thinking_default=True)
        mapped = cls.Settings.from_mapping({"use_provider_thinking_default": True})
        converted, ignored = convert_delta(base, cls.Settings)
        assert own.use_provider_thinking_default is True, cls
        assert mapped.use_provider_thinking_default is True and not mapped.extra, cls
        assert converted.use_provider_thinking_default is True and not ignored, cls


def test_use_provider_thinking_default_is_false_in_a_store_unless_set() -> None:
    assert store_from(LLMSettings(), None).use_provider_thinking_default is False
    flagged = store_from(LLMSettings(), LLMSettings(use_provider_thinking_default=True))
    assert flagged.use_provider_thinking_default is True
    assert not is_given(LLMSettings().use_provider_thinking_default)  # a delta leaves it unset
    # Services building their store from their own defaults, and from the base class's.
    assert OpenAILLMService(api_key="k").settings.use_provider_thinking_default is False
    assert OpenAIRealtimeLLMService(api_key="k").settings.use_provider_thinking_default is False


def test_a_delta_of_another_kind_of_service_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    llm = OpenAILLMService(api_key="test-key", model="m")
    with caplog.at_level(logging.WARNING):
        frame = LLMUpdateSettingsFrame(delta=TTSSettings(model="tts-model"))
        assert delta_from_frame(frame, llm.Settings, llm) is None
    assert any("TTSSettings" in m for m in warnings(caplog))
    # The root class belongs to every kind: its model applies.
    root = delta_from_frame(
        LLMUpdateSettingsFrame(delta=ServiceSettings(model="n")), LLMSettings, llm
    )
    assert root is not None and root.model == "n"


async def test_cartesia_takes_base_and_other_provider_deltas(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def reply(text: str) -> list[object]:
        return [LLMFullResponseStartFrame(), LLMTextFrame(text), LLMFullResponseEndFrame()]

    async with FakeCartesiaServer(secs_per_word=0.05, chunk_secs=0.04) as server:
        tts = CartesiaTTSService(api_key="test-key", voice_id="voice-a", url=server.url)
        eleven = ElevenLabsTTSService.Settings(voice="voice-c", stability=0.4)
        frames = [
            *reply("One."),
            TTSUpdateSettingsFrame(delta=TTSSettings(voice="voice-b", language="de")),
            *reply("Two."),
            TTSUpdateSettingsFrame(delta=eleven),
            *reply("Three."),
        ]
        with caplog.at_level(logging.WARNING):
            await run_test(tts, frames, params=PARAMS)  # type: ignore[arg-type]
    inputs = [m for m in server.messages if m.get("transcript")]
    assert [m["voice"]["id"] for m in inputs] == ["voice-a", "voice-b", "voice-c"]
    assert inputs[1]["language"] == "de" and inputs[2]["language"] == "de"
    assert any("stability" in m for m in warnings(caplog))


async def test_deepgram_reconnects_on_a_base_class_language_delta() -> None:
    async with FakeDeepgramServer() as server:
        stt = DeepgramSTTService(
            api_key="test-key", url=server.url, live_options=LiveOptions(interim_results=False)
        )
        frames = [
            SleepFrame(5.0, until=lambda: server.connections == 1),
            STTUpdateSettingsFrame(delta=STTSettings(language="es")),
            SleepFrame(5.0, until=lambda: server.connections == 2),
        ]
        await run_test(stt, frames, params=PARAMS)
    assert [q["language"] for q in server.queries] == ["en", "es"]
    assert server.queries[1]["model"] == "nova-3"  # the rest of the query is as it was
    assert isinstance(stt.settings, DeepgramSTTService.Settings)
