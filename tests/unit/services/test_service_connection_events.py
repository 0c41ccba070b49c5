"""Pipecat 1.14's STT/TTS service events and ``settings=`` on the base service classes.

``on_connected`` / ``on_disconnected`` / ``on_connection_error`` (every STT and TTS service;
the socket services fire them as their provider socket opens, closes or fails to connect),
``on_tts_request`` (every TTS service, per piece of text sent for synthesis) and
``super().__init__(settings=...)`` in a custom subclass of ``STTService`` / ``TTSService`` /
``LLMService``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from warnings import catch_warnings, simplefilter

import pytest

import callpipe.services
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSUpdateSettingsFrame,
)
from callpipe.processors.frame_processor import FrameProcessor
from callpipe.services.ai_service import AIService
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.llm_service import LLMService
from callpipe.services.settings import LLMSettings, STTSettings, TTSSettings
from callpipe.services.stt_service import STTService
from callpipe.services.tts_service import TTSService
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.utils.types import NotGiven

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, reply

CONNECTION_EVENTS = ("on_connected", "on_disconnected", "on_connection_error")


@dataclass
class Recorder:
    """What the handlers saw, in order: ``(event, args after the service)``."""

    events: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def attach(self, service: FrameProcessor, *names: str) -> None:
        for name in names:
            self._add(service, name)

    def _add(self, service: FrameProcessor, name: str) -> None:
        @service.event_handler(name)
        async def handler(source: FrameProcessor, *args: Any) -> None:
            assert source is service
            self.events.append((name, args))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def args(self, name: str) -> list[tuple[Any, ...]]:
        return [args for event, args in self.events if event == name]


# ---------------------------------------------------------------------- Deepgram STT


@pytest.fixture
async def deepgram() -> AsyncIterator[FakeDeepgramServer]:
    async with FakeDeepgramServer() as fake:
        yield fake


def deepgram_stt(server: FakeDeepgramServer, **kwargs: Any) -> DeepgramSTTService:
    return DeepgramSTTService(
        api_key=kwargs.pop("api_key", "test-key"),
        url=server.url,
        live_options=LiveOptions(interim_results=False),
        **kwargs,
    )


class Snapshot(SleepFrame):
    """Waits like a SleepFrame, then notes the events seen so far (mid-call)."""

    def __init__(self, seen: Recorder, seconds: float, **kwargs: Any) -> None:
        super().__init__(seconds, **kwargs)
        self.seen = seen
        self.names: list[str] = []

    async def wait(self) -> None:
        await super().wait()
        self.names = self.seen.names()


async def test_deepgram_stt_connects_at_start_and_disconnects_at_the_end(
    deepgram: FakeDeepgramServer,
) -> None:
    deepgram.transcripts.append("hello")
    stt = deepgram_stt(deepgram)
    seen = Recorder()
    seen.attach(stt, *CONNECTION_EVENTS)
    mid_call = Snapshot(seen, 5.0, until=lambda: bool(deepgram.results))
    frames: list[Frame] = [
        *caller_audio(0.3, loud=True),
        *caller_audio(0.5, loud=False),
        mid_call,
    ]
    down, up = await run_test(stt, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["hello"]
    assert mid_call.names == ["on_connected"]  # fired as the socket opened, not at the end
    assert seen.names() == ["on_connected", "on_disconnected"]
    assert seen.args("on_connected") == [()] and seen.args("on_disconnected") == [()]


async def test_deepgram_stt_refused_connection_is_a_connection_error(
    deepgram: FakeDeepgramServer,
) -> None:
    stt = deepgram_stt(deepgram, api_key="wrong")
    seen = Recorder()
    seen.attach(stt, *CONNECTION_EVENTS)
    _, up = await run_test(stt, [SleepFrame(5.0, until=lambda: bool(seen.events))], params=PARAMS)
    assert [f for f in up if isinstance(f, ErrorFrame) and f.fatal]
    assert seen.names() == ["on_connection_error"]  # never connected: no on_disconnected
    (error,) = seen.args("on_connection_error")[0]
    assert isinstance(error, str) and "401" in error


async def test_deepgram_stt_drop_and_reconnect_are_told(deepgram: FakeDeepgramServer) -> None:
    deepgram.transcripts.extend(["first", "second", "third"])
    deepgram.drop_after_results = 1
    stt = deepgram_stt(deepgram)
    seen = Recorder()
    seen.attach(stt, *CONNECTION_EVENTS)
    utterance = [*caller_audio(0.3, loud=True), *caller_audio(0.5, loud=False), SleepFrame(0.3)]
    await run_test(stt, utterance * 3, params=PARAMS)
    assert deepgram.connections == 2
    assert seen.names() == ["on_connected", "on_disconnected", "on_connected", "on_disconnected"]


async def test_deepgram_stt_reconnect_that_fails_is_a_connection_error(
    deepgram: FakeDeepgramServer,
) -> None:
    deepgram.drop_after_results = 0
    deepgram.transcripts.append("lost")
    deepgram.max_connections = 1  # the reconnect is refused
    stt = deepgram_stt(deepgram)
    seen = Recorder()
    seen.attach(stt, *CONNECTION_EVENTS)
    frames = [*caller_audio(0.3, loud=True), *caller_audio(0.5, loud=False), SleepFrame(2.2)]
    await run_test(stt, frames, params=PARAMS)
    assert seen.names() == ["on_connected", "on_disconnected", "on_connection_error"]
    (error,) = seen.args("on_connection_error")[0]
    assert "reconnecting failed" in error


async def test_a_settings_switch_is_no_new_connection(deepgram: FakeDeepgramServer) -> None:
    """The socket reopened for new settings replaces the old one: the service stays connected
    (a bot tracking the state from the events would otherwise end up with it wrong)."""
    stt = deepgram_stt(deepgram)
    seen = Recorder()
    seen.attach(stt, *CONNECTION_EVENTS)
    frames: list[Frame] = [
        SleepFrame(5.0, until=lambda: deepgram.connections == 1),
        STTUpdateSettingsFrame(delta=STTSettings(language="es")),
        SleepFrame(5.0, until=lambda: deepgram.connections == 2),
        SleepFrame(0.2),
    ]
    await run_test(stt, frames, params=PARAMS)
    assert [q["language"] for q in deepgram.queries] == ["en", "es"]
    assert seen.names() == ["on_connected", "on_disconnected"]


# ---------------------------------------------------------------------- Cartesia TTS


@pytest.fixture
async def cartesia() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.05, chunk_secs=0.04) as fake:
        yield fake


def cartesia_tts(server: FakeCartesiaServer, api_key: str = "test-key") -> CartesiaTTSService:
    return CartesiaTTSService(api_key=api_key, voice_id="voice-1", url=server.url)


async def test_cartesia_tts_events_across_a_call(cartesia: FakeCartesiaServer) -> None:
    tts = cartesia_tts(cartesia)
    seen = Recorder()
    seen.attach(tts, *CONNECTION_EVENTS, "on_tts_request")
    frames: list[Frame] = [*reply("Hi there.", " How are", " you?"), TTSSpeakFrame("Bye now.")]
    down, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    assert seen.names() == [
        "on_connected",
        "on_tts_request",
        "on_tts_request",
        "on_tts_request",
        "on_disconnected",
    ]
    requests = seen.args("on_tts_request")
    # (context_id, text): the text of each synthesis request, with the reply's context id.
    assert [text.strip() for _, text in requests] == ["Hi there.", "How are you?", "Bye now."]
    sent = [m["transcript"].strip() for m in cartesia.messages if m.get("transcript")]
    assert sent == ["Hi there.", "How are you?", "Bye now."]
    audio_contexts = list(
        dict.fromkeys(f.context_id for f in down if isinstance(f, TTSAudioRawFrame))
    )
    assert [cid for cid, _ in requests] == [audio_contexts[0]] * 2 + [audio_contexts[1]]


async def test_cartesia_tts_refused_connection_is_a_connection_error(
    cartesia: FakeCartesiaServer,
) -> None:
    tts = cartesia_tts(cartesia, api_key="wrong")
    seen = Recorder()
    seen.attach(tts, *CONNECTION_EVENTS)
    _, up = await run_test(tts, [SleepFrame(5.0, until=lambda: bool(seen.events))], params=PARAMS)
    assert [f for f in up if isinstance(f, ErrorFrame) and f.fatal]
    assert seen.names() == ["on_connection_error"]
    (error,) = seen.args("on_connection_error")[0]
    assert "401" in error


async def test_a_slow_handler_never_holds_speech_back(cartesia: FakeCartesiaServer) -> None:
    tts = cartesia_tts(cartesia)
    never = asyncio.Event()
    calls: list[str] = []

    @tts.event_handler("on_tts_request")
    async def stuck(service: TTSService, context_id: str, text: str) -> None:
        calls.append(text)
        await never.wait()

    @tts.event_handler("on_connected")
    async def stuck_too(service: TTSService) -> None:
        await never.wait()

    down, _ = await run_test(tts, reply("One two.", " Three four."), params=PARAMS)
    assert len(calls) == 2
    assert sum(isinstance(f, TTSAudioRawFrame) for f in down) > 0
    assert [m["transcript"].strip() for m in cartesia.messages if m.get("transcript")] == [
        "One two.",
        "Three four.",
    ]


# ---------------------------------------------------------------------- every service


def _speech_service_classes() -> list[type[AIService]]:
    """Every STT and TTS service class in ``callpipe.services`` (bases included)."""
    found: set[type[AIService]] = set()
    for info in pkgutil.walk_packages(callpipe.services.__path__, "callpipe.services."):
        with catch_warnings():  # callpipe.services.grok: a deprecated alias of xai
            simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, STTService | TTSService)
                and value.__module__ == info.name
            ):
                found.add(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


SPEECH_SERVICES = _speech_service_classes()

_NEEDS: dict[str, dict[str, Any]] = {
    "AzureSTTService": {"region": "eastus"},
    "AzureBaseTTSService": {"region": "eastus"},
    "AzureHttpTTSService": {"region": "eastus"},
    "AzureTTSService": {"region": "eastus"},
    "GoogleSTTService": {"url": "http://127.0.0.1:9"},
}
_NO_KEY = {"GeminiTTSService"}  # Google Cloud credentials (the fake URL stands for them)


def test_the_walk_found_the_services() -> None:
    stt = [c for c in SPEECH_SERVICES if issubclass(c, STTService)]
    tts = [c for c in SPEECH_SERVICES if issubclass(c, TTSService)]
    assert len(stt) >= 24 and len(tts) >= 39  # Pipecat 1.14's counts, with callpipe's bases


async def _not_used(self: object) -> None:
    """An abstract socket method of a base, for building it here."""


@pytest.mark.parametrize("cls", SPEECH_SERVICES, ids=lambda cls: cls.__qualname__)
def test_every_speech_service_takes_the_1_14_event_handlers(
    cls: type[AIService], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLPIPE_GOOGLE_TTS_GRPC_URL", "http://127.0.0.1:9")
    if inspect.isabstract(cls):  # Pipecat's WebSocket bases: a subclass implements the socket
        cls = type(cls.__name__, (cls,), dict.fromkeys(cls.__abstractmethods__, _not_used))
    kwargs: dict[str, Any] = dict(_NEEDS.get(cls.__name__, {}))
    parameters = inspect.signature(cls).parameters
    for name, value in (("api_key", "k"), ("voice_id", "v")):
        if name in parameters and cls.__name__ not in _NO_KEY:
            kwargs[name] = value
    service = cls(**kwargs)

    def handler(*args: object) -> None:
        pass

    names = CONNECTION_EVENTS + (("on_tts_request",) if issubclass(cls, TTSService) else ())
    for name in names:
        service.add_event_handler(name, handler)  # raised ConfigurationError before 1.14 parity
        assert service.has_event_handlers(name)


# ---------------------------------------------------------------------- settings= on the bases


@dataclass
class VoiceSettings(TTSSettings):
    """A custom service's own Settings with a field of its own."""

    pitch: float | None | NotGiven = field(default=None)


class CustomTTS(TTSService):
    """A bot's own TTS on the base class, configured as Pipecat 1.14 documents it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            settings=VoiceSettings(model="m1", voice="v1", language="de", pitch=1.5), **kwargs
        )
        self.requests: list[tuple[str | None, object, object, object]] = []

    async def run_tts(self, text: str, context_id: str) -> None:
        settings = self.settings
        assert isinstance(settings, VoiceSettings)
        self.requests.append((self.model_name, settings.voice, settings.language, settings.pitch))
        await self.append_audio(context_id, b"\x00\x00" * 80)


async def test_a_custom_tts_runs_with_the_settings_it_gave_its_base() -> None:
    tts = CustomTTS()
    frames: list[Frame] = [
        TTSSpeakFrame("Hello."),
        TTSUpdateSettingsFrame(delta=TTSSettings(voice="v2")),
        TTSSpeakFrame("Again."),
    ]
    await run_test(tts, frames, params=PARAMS)
    assert tts.requests == [("m1", "v1", "de", 1.5), ("m1", "v2", "de", 1.5)]


class CustomSTT(STTService):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(settings=STTSettings(model="s1", language="de"), **kwargs)

    async def process_audio(self, audio: bytes) -> None:
        if self.settings.model == "s1":
            await self.push_transcript("hallo", final=True)


async def test_a_custom_stt_runs_with_the_settings_it_gave_its_base() -> None:
    stt = CustomSTT(language="en")  # settings= wins over the older argument
    down, _ = await run_test(stt, caller_audio(0.02, loud=True), params=PARAMS)
    assert stt.model_name == "s1"
    finals = [f for f in down if isinstance(f, TranscriptionFrame)]
    assert [(f.text, f.language) for f in finals] == [("hallo", "de")]


class CustomLLM(LLMService):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(settings=LLMSettings(model="l1", temperature=0.3), **kwargs)


async def test_a_custom_llm_keeps_the_settings_it_gave_its_base() -> None:
    llm = CustomLLM(model="ignored")
    assert llm.model_name == "l1"
    assert llm.settings.temperature == 0.3 and llm.settings.model == "l1"
    # Fields it left unset have the store's defaults; later updates merge into it.
    assert llm.settings.use_provider_thinking_default is False
    await llm.update_settings(LLMSettings(max_tokens=20))
    assert llm.settings.temperature == 0.3 and llm.settings.max_tokens == 20
