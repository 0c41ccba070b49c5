"""Pipecat 1.14's service options callpipe used to refuse as unknown: each is taken, and either
acts as in 1.14 or is ignored with one warning naming it; and the deprecated runtime setters
(``set_model``, ``set_voice``, ``set_language``) apply a settings update."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

import callpipe.utils.base_object as base_object
from callpipe.audio.wav import read_wav
from callpipe.frames.frames import (
    ErrorFrame,
    Frame,
    MetricsFrame,
    STTMuteFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.pipeline.task import PipelineParams
from callpipe.services.anthropic.llm import AnthropicLLMService
from callpipe.services.assemblyai.stt import AssemblyAISTTService
from callpipe.services.azure.stt import AzureSTTService
from callpipe.services.azure.tts import AzureTTSService
from callpipe.services.cartesia.stt import CartesiaSTTService
from callpipe.services.cartesia.tts import CartesiaHttpTTSService, CartesiaTTSService
from callpipe.services.deepgram.flux.stt import DeepgramFluxSTTService
from callpipe.services.deepgram.stt import DeepgramSTTService, LiveOptions
from callpipe.services.deepgram.tts import DeepgramTTSService
from callpipe.services.elevenlabs.stt import ElevenLabsRealtimeSTTService, ElevenLabsSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsHttpTTSService, ElevenLabsTTSService
from callpipe.services.gladia.stt import GladiaSTTService
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.google.tts import GoogleHttpTTSService
from callpipe.services.groq.llm import GroqLLMService
from callpipe.services.groq.stt import GroqSTTService
from callpipe.services.groq.tts import GroqTTSService
from callpipe.services.nvidia.stt import NvidiaSTTService
from callpipe.services.nvidia.tts import NvidiaTTSService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.openai.stt import OpenAISTTService
from callpipe.services.openai.tts import OpenAITTSService
from callpipe.services.rime.tts import RimeHttpTTSService, RimeTTSService
from callpipe.services.speechmatics.stt import SpeechmaticsSTTService
from callpipe.services.speechmatics.tts import SpeechmaticsTTSService
from callpipe.services.stt_service import SegmentedSTTService, StreamingSTTService, STTService
from callpipe.services.tts_service import TextAggregationMode, TTSService
from callpipe.services.websocket_service import ProviderWebsocket
from callpipe.testing import run_test
from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.gemini import FakeGeminiServer
from callpipe.testing.pipeline import SleepFrame
from callpipe.transcriptions.language import Language
from callpipe.turns.user_turn_strategies import EagerUserTurnStrategies, ExactMatch

from .helpers import PHONE as PARAMS
from .helpers import caller_audio, reply

RATE = 8000


class Call(SleepFrame):
    """Not a frame: runs ``action`` at this point of the test's frames (mid-call)."""

    def __init__(self, action: Callable[[], Awaitable[None]]) -> None:
        super().__init__(0.0)
        self.action = action

    async def wait(self) -> None:
        await self.action()


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-class warnings as if none was given yet."""
    monkeypatch.setattr(base_object, "_warned_ignored", set())


def warned(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# ---------------------------------------------------------------------- deprecated setters


@pytest.fixture
async def cartesia() -> AsyncIterator[FakeCartesiaServer]:
    async with FakeCartesiaServer(secs_per_word=0.01, chunk_secs=0.04) as fake:
        yield fake


@pytest.fixture
async def deepgram() -> AsyncIterator[FakeDeepgramServer]:
    async with FakeDeepgramServer() as fake:
        yield fake


async def test_set_voice_and_set_model_change_the_next_request(
    cartesia: FakeCartesiaServer,
) -> None:
    tts = CartesiaTTSService(api_key="test-key", voice_id="voice-1", url=cartesia.url)

    async def switch() -> None:
        await tts.set_voice("voice-2")
        await tts.set_model("sonic-3")

    frames = [TTSSpeakFrame("Hello there."), SleepFrame(0.3), Call(switch)]
    frames += [TTSSpeakFrame("And welcome.")]
    with pytest.warns(DeprecationWarning) as caught:
        _, up = await run_test(tts, frames, params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    said = [m for m in cartesia.messages if m.get("transcript", "").strip()]
    assert said[0]["voice"]["id"] == "voice-1"
    assert said[-1]["voice"]["id"] == "voice-2" and said[-1]["model_id"] == "sonic-3"
    assert tts.settings.voice == "voice-2" and tts.model_name == "sonic-3"
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any("set_voice is deprecated" in m for m in messages)
    assert any("set_model is deprecated" in m for m in messages)


async def test_set_language_mid_call_reopens_the_socket_with_it(
    deepgram: FakeDeepgramServer,
) -> None:
    deepgram.transcripts.extend(["good morning", "buenos dias"])
    stt = DeepgramSTTService(
        api_key="test-key", url=deepgram.url, live_options=LiveOptions(interim_results=False)
    )

    def results(n: int) -> Callable[[], bool]:
        return lambda: sum(r["is_final"] for r in deepgram.results) >= n

    speech = [*caller_audio(0.3, loud=True), *caller_audio(0.5, loud=False)]
    frames: list[Frame] = [*speech, SleepFrame(5.0, until=results(1))]
    frames += [Call(lambda: stt.set_language(Language.ES))]
    frames += [SleepFrame(5.0, until=lambda: deepgram.connections == 2)]
    frames += [*speech, SleepFrame(5.0, until=results(2))]
    with pytest.warns(DeprecationWarning, match="set_language is deprecated"):
        await run_test(stt, frames, params=PARAMS)
    assert [q["language"] for q in deepgram.queries] == ["en", "es"]
    assert stt.settings.language == "es"


async def test_stt_set_model_before_the_call_is_the_model_used(
    deepgram: FakeDeepgramServer,
) -> None:
    stt = DeepgramSTTService(api_key="test-key", url=deepgram.url)
    with pytest.warns(DeprecationWarning, match="set_model is deprecated"):
        await stt.set_model("nova-2")
    await run_test(stt, [SleepFrame(5.0, until=lambda: bool(deepgram.queries))], params=PARAMS)
    assert deepgram.queries[0]["model"] == "nova-2"
    assert stt.model_name == "nova-2"


@pytest.mark.parametrize("cls", [NvidiaSTTService, NvidiaTTSService])
async def test_nvidia_set_model_changes_nothing_as_in_pipecat(
    cls: type[NvidiaSTTService] | type[NvidiaTTSService],
) -> None:
    service = cls(api_key="k")
    before = service.settings.model
    with pytest.warns(DeprecationWarning, match="no effect"):
        await service.set_model("another-model")
    assert service.settings.model == before


# ---------------------------------------------------------------------- TTS options


class RecordingTTS(TTSService):
    """Records what it is sent; answers with 10 ms of audio (none when ``silent``)."""

    def __init__(self, *, silent: bool = False, **kwargs: Any) -> None:
        super().__init__(sample_rate=RATE, **kwargs)
        self.sent: list[str] = []
        self.silent = silent

    async def run_tts(self, text: str, context_id: str) -> None:
        self.sent.append(text)
        if not self.silent:
            await self.append_audio(context_id, b"\x00\x00" * 80)


async def test_append_trailing_space_is_added_to_sentences_only() -> None:
    tts = RecordingTTS(append_trailing_space=True)
    await run_test(tts, reply("Hello there. How are you?"), params=PARAMS)
    assert tts.sent == ["Hello there. ", "How are you? "]
    tts = RecordingTTS(append_trailing_space=True, text_aggregation_mode=TextAggregationMode.TOKEN)
    await run_test(tts, reply("Hello", " there."), params=PARAMS)
    assert tts.sent == ["Hello", " there."]  # a token's own spacing is kept
    tts = RecordingTTS()
    await run_test(tts, reply("Hello there."), params=PARAMS)
    assert tts.sent == ["Hello there."]


async def test_transport_destination_is_set_on_the_speech_frames() -> None:
    down, _ = await run_test(
        RecordingTTS(transport_destination="agent"), reply("Hello there."), params=PARAMS
    )
    speech = [
        f
        for f in down
        if isinstance(f, TTSStartedFrame | TTSAudioRawFrame | TTSTextFrame | TTSStoppedFrame)
    ]
    assert len(speech) >= 4
    assert {f.transport_destination for f in speech} == {"agent"}
    down, _ = await run_test(RecordingTTS(), reply("Hello there."), params=PARAMS)
    assert {f.transport_destination for f in down if isinstance(f, TTSAudioRawFrame)} == {None}


async def test_silent_replies_are_reported_and_the_service_written_off_at_the_limit() -> None:
    tts = RecordingTTS(silent=True, max_consecutive_zero_audio_contexts=2)
    usable: list[bool] = []
    tts.add_event_handler("on_usable_changed", lambda s, u: usable.append(u))
    frames = [TTSSpeakFrame("One."), TTSSpeakFrame("Two."), SleepFrame(0.1)]
    _, up = await run_test(tts, frames, params=PARAMS)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 2 and all("without any audio" in e for e in errors)
    assert "giving up" not in errors[0] and "giving up" in errors[1]
    assert not tts.is_usable and usable == [False]
    await tts.set_usable(True)  # the application fixed it: the count starts over
    assert tts._silent_contexts == 0


async def test_a_reply_with_audio_starts_the_silent_count_over() -> None:
    tts = RecordingTTS(silent=True, max_consecutive_zero_audio_contexts=2)

    async def speak_again() -> None:
        tts.silent = False

    async def go_silent() -> None:
        tts.silent = True

    frames: list[Frame] = [TTSSpeakFrame("One."), SleepFrame(0.1), Call(speak_again)]
    frames += [TTSSpeakFrame("Two."), SleepFrame(0.1), Call(go_silent), TTSSpeakFrame("Three.")]
    _, up = await run_test(tts, frames, params=PARAMS)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 2 and not any("giving up" in e for e in errors)
    assert tts.is_usable


async def test_silent_replies_are_not_checked_unless_asked() -> None:
    tts = RecordingTTS(silent=True)
    _, up = await run_test(tts, [TTSSpeakFrame("One."), TTSSpeakFrame("Two.")], params=PARAMS)
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    tts = RecordingTTS(silent=True, max_consecutive_zero_audio_contexts=0)  # report only
    _, up = await run_test(tts, [TTSSpeakFrame(f"{n}.") for n in range(4)], params=PARAMS)
    assert len([f for f in up if isinstance(f, ErrorFrame)]) == 4 and tts.is_usable


async def test_the_pipecat_subclass_options_are_ignored_with_one_warning_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = {
        "push_text_frames": False,
        "push_stop_frames": True,
        "push_start_frame": True,
        "stop_frame_timeout_s": 2.0,
        "pause_frame_processing": True,
        "reuse_context_id_within_turn": False,
    }

    class PipecatStyleTTS(RecordingTTS):
        pass

    with caplog.at_level(logging.WARNING):
        PipecatStyleTTS(**options)
        tts = PipecatStyleTTS(**options)
    messages = warned(caplog)
    for option in options:
        mine = [m for m in messages if f"{option} is accepted" in m and "ignored" in m]
        assert len(mine) == 1, option
    assert not [m for m in messages if "no such option" in m]
    # And the service works as without them.
    await run_test(tts, reply("Hello there."), params=PARAMS)
    assert tts.sent == ["Hello there."]


def test_pause_watchdog_timeout_s_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="pause_watchdog_timeout_s"):
        RecordingTTS(pause_watchdog_timeout_s=5.0)


# ---------------------------------------------------------------------- STT options


class QueuedSTT(StreamingSTTService):
    """A streaming STT whose provider is a list of the chunks sent to it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(sample_rate=RATE, **kwargs)
        self.chunks: list[bytes] = []

    async def send_audio(self, audio: bytes) -> bool:
        self.chunks.append(audio)
        return True


def silences(stt: QueuedSTT) -> list[bytes]:
    return [c for c in stt.chunks if c == bytes(len(c)) and len(c) == RATE // 10 * 2]


async def test_keepalive_sends_silence_once_the_provider_heard_nothing_for_a_while() -> None:
    stt = QueuedSTT(keepalive_timeout=0.15, keepalive_interval=0.05)
    frames: list[Frame] = [*caller_audio(0.4, loud=True), STTMuteFrame(mute=True)]
    frames += [SleepFrame(0.6)]
    await run_test(stt, frames, params=PARAMS)
    assert len(silences(stt)) >= 2 and stt.keepalives_sent == len(silences(stt))
    # Not while the caller's audio flowed: the first keep-alive follows the audio.
    first = stt.chunks.index(silences(stt)[0])
    assert sum(len(c) for c in stt.chunks[:first]) >= int(0.4 * RATE) * 2


async def test_no_keepalive_unless_asked() -> None:
    stt = QueuedSTT()
    await run_test(stt, [STTMuteFrame(mute=True), SleepFrame(0.4)], params=PARAMS)
    assert stt.chunks == [] and stt.keepalives_sent == 0


async def test_keepalive_reaches_a_real_provider_while_muted(deepgram: FakeDeepgramServer) -> None:
    stt = DeepgramSTTService(
        api_key="test-key", url=deepgram.url, keepalive_timeout=0.1, keepalive_interval=0.05
    )
    frames: list[Frame] = [
        STTMuteFrame(mute=True),
        SleepFrame(5.0, until=lambda: bool(deepgram.audio_bytes)),
    ]
    await run_test(stt, frames, params=PARAMS)
    assert deepgram.audio_bytes > 0 and stt.keepalives_sent >= 1


class WavSTT(SegmentedSTTService):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wavs: list[bytes] = []

    async def run_stt(self, wav: bytes) -> str | None:
        self.wavs.append(wav)
        return "heard"


def utterance(secs: float) -> list[Frame]:
    return [UserStartedSpeakingFrame(), *caller_audio(secs, loud=True), UserStoppedSpeakingFrame()]


@pytest.mark.parametrize("trailing", [0.0, 0.5])
async def test_trailing_silence_is_appended_to_each_utterance(trailing: float) -> None:
    stt = WavSTT(trailing_silence_secs=trailing, preroll_secs=0.0)
    await run_test(stt, utterance(0.4), params=PARAMS)
    fmt, pcm = read_wav(stt.wavs[0])
    assert fmt.sample_rate == RATE
    assert len(pcm) == int(0.4 * RATE) * 2 + int(trailing * RATE) * 2
    if trailing:
        assert pcm[-int(trailing * RATE) * 2 :] == bytes(int(trailing * RATE) * 2)


def test_a_segmented_service_ignores_keepalive_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        WavSTT(keepalive_timeout=5.0)
    assert [m for m in warned(caplog) if "keepalive_timeout is accepted" in m]


class LateSTT(STTService):
    """Its final transcript comes ``delay`` seconds after the caller stopped."""

    def __init__(self, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    async def process_audio(self, audio: bytes) -> None:
        pass

    async def on_user_stopped_speaking(self) -> None:
        self.create_task(self._answer(), "answer")

    async def _answer(self) -> None:
        await asyncio.sleep(self.delay)
        await self.push_transcript("hello", final=True)


def ttfb(frames: list[Frame]) -> list[float]:
    return [
        d.value
        for f in frames
        if isinstance(f, MetricsFrame)
        for d in f.data
        if isinstance(d, TTFBMetricsData)
    ]


@pytest.mark.parametrize(
    ("delay", "limit", "measured"), [(0.3, None, True), (0.3, 0.1, False), (0.05, 1.0, True)]
)
async def test_stt_ttfb_timeout_leaves_a_late_final_unmeasured(
    delay: float, limit: float | None, measured: bool
) -> None:
    stt = LateSTT(delay, stt_ttfb_timeout=limit)
    frames = [UserStartedSpeakingFrame(), UserStoppedSpeakingFrame(), SleepFrame(delay + 0.2)]
    params = PipelineParams(
        audio_in_sample_rate=RATE, audio_out_sample_rate=RATE, enable_metrics=True
    )
    down, _ = await run_test(stt, frames, params=params)
    assert bool(ttfb(down)) is measured


# ---------------------------------------------------------------------- socket options


async def test_reconnect_on_error_false_reports_a_drop_instead(
    deepgram: FakeDeepgramServer,
) -> None:
    deepgram.transcripts.extend(["first", "second"])
    deepgram.drop_after_results = 1
    stt = DeepgramSTTService(
        api_key="test-key",
        url=deepgram.url,
        live_options=LiveOptions(interim_results=False),
        reconnect_on_error=False,
    )
    speech = [*caller_audio(0.3, loud=True), *caller_audio(0.5, loud=False), SleepFrame(0.3)]
    _, up = await run_test(stt, speech * 2, params=PARAMS)
    errors = [f.error for f in up if isinstance(f, ErrorFrame)]
    assert errors and "reconnect_on_error is off" in errors[0]
    assert deepgram.connections == 1


def test_ws_close_timeout_bounds_the_close_of_the_service_s_sockets() -> None:
    async def ignore(message: object) -> None:
        pass

    def socket(listener: object) -> ProviderWebsocket:
        ws = ProviderWebsocket(owner="t", url="ws://127.0.0.1:9", on_message=ignore)
        ws.listener = listener  # type: ignore[assignment]
        return ws

    assert socket(DeepgramSTTService(api_key="k", ws_close_timeout=0.5))._close_timeout() == 0.5
    assert socket(DeepgramSTTService(api_key="k"))._close_timeout() == 2.0
    assert socket(None)._close_timeout() == 2.0


# ---------------------------------------------------------------------- LLM options


def test_file_resolver_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        AnthropicLLMService(api_key="k", file_resolver=object())
    assert [m for m in warned(caplog) if "file_resolver is accepted" in m]


async def test_google_http_options_and_stream_idle_timeout() -> None:
    async with FakeGeminiServer() as fake:
        fake.add_reply("Hello.")
        llm = GoogleLLMService(
            api_key="test-key",
            http_options={
                "base_url": fake.base_url,
                "api_version": "v1",
                "headers": {"x-team": "calls"},
                "timeout": 12_000,
            },
            stream_idle_timeout_secs=7.0,
        )
        assert llm._client_headers()["x-team"] == "calls"
        client = llm._make_client()
        assert client.timeout.read == 7.0 and client.timeout.write == 12.0
        await client.aclose()
        from callpipe.frames.frames import LLMMessagesFrame

        await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "Hi"}])])
        assert fake.paths[-1].startswith("/v1/models/")


def test_google_http_options_fields_not_used_are_named(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        GoogleLLMService(api_key="k", http_options={"retry_options": {"attempts": 3}})
    assert [m for m in warned(caplog) if "http_options.retry_options is accepted" in m]


def test_flux_eager_match_policy_reaches_the_recommended_strategies() -> None:
    policy = ExactMatch()
    stt = DeepgramFluxSTTService(
        api_key="k", enable_eager_end_of_turn=True, eager_match_policy=policy
    )
    strategies = stt.service_metadata_frame().user_turn_strategies
    assert isinstance(strategies, EagerUserTurnStrategies)
    assert strategies.match_policy is policy


# ---------------------------------------------------------------------- the popular providers

WEBSOCKET = {
    "reconnect_on_error": True,
    "ws_close_timeout": 1.0,
    "ws_send_timeout": 5.0,
    "reconnect_backoff_min_wait": 4.0,
    "reconnect_backoff_max_wait": 10.0,
}
COMMON = {"metrics": None, "task_manager": None}
STT_OPTIONS = {"stt_ttfb_timeout": 2.0, "keepalive_interval": 5.0, **COMMON}
TTS_OPTIONS = {
    "push_text_frames": True,
    "push_stop_frames": False,
    "push_start_frame": False,
    "stop_frame_timeout_s": 3.0,
    "pause_frame_processing": False,
    "max_consecutive_zero_audio_contexts": 3,
    "append_trailing_space": False,
    "transport_destination": None,
    "reuse_context_id_within_turn": True,
    **COMMON,
}
LLM_OPTIONS = {"file_resolver": None, **COMMON}

PROVIDERS: list[tuple[type[Any], dict[str, Any]]] = [
    (DeepgramSTTService, {"api_key": "k", **STT_OPTIONS}),
    (DeepgramFluxSTTService, {"api_key": "k", **STT_OPTIONS, **WEBSOCKET}),
    (DeepgramTTSService, {"api_key": "k", **TTS_OPTIONS, **WEBSOCKET}),
    (CartesiaSTTService, {"api_key": "k", **STT_OPTIONS, **WEBSOCKET}),
    (CartesiaTTSService, {"api_key": "k", "voice_id": "v", **TTS_OPTIONS, **WEBSOCKET}),
    (CartesiaHttpTTSService, {"api_key": "k", "voice_id": "v", **TTS_OPTIONS}),
    (ElevenLabsSTTService, {"api_key": "k", "trailing_silence_secs": 0.5, **STT_OPTIONS}),
    (ElevenLabsRealtimeSTTService, {"api_key": "k", **STT_OPTIONS, **WEBSOCKET}),
    (ElevenLabsTTSService, {"api_key": "k", "voice_id": "v", **TTS_OPTIONS, **WEBSOCKET}),
    (ElevenLabsHttpTTSService, {"api_key": "k", "voice_id": "v", **TTS_OPTIONS}),
    (OpenAISTTService, {"api_key": "k", "trailing_silence_secs": 0.5, **STT_OPTIONS}),
    (OpenAITTSService, {"api_key": "k", **TTS_OPTIONS}),
    (OpenAILLMService, {"api_key": "k", **LLM_OPTIONS}),
    (GoogleLLMService, {"api_key": "k", "stream_idle_timeout_secs": 20.0, **LLM_OPTIONS}),
    (GoogleHttpTTSService, {"api_key": "k", **TTS_OPTIONS}),
    (AzureSTTService, {"api_key": "k", "region": "eastus", **STT_OPTIONS}),
    (AzureTTSService, {"api_key": "k", "region": "eastus", **TTS_OPTIONS}),
    (AssemblyAISTTService, {"api_key": "k", **STT_OPTIONS, **WEBSOCKET}),
    (GladiaSTTService, {"api_key": "k", **STT_OPTIONS, **WEBSOCKET}),
    (SpeechmaticsSTTService, {"api_key": "k", **STT_OPTIONS}),
    (SpeechmaticsTTSService, {"api_key": "k", **TTS_OPTIONS}),
    (RimeTTSService, {"api_key": "k", "voice_id": "v", **TTS_OPTIONS, **WEBSOCKET}),
    (RimeHttpTTSService, {"api_key": "k", "voice_id": "v", **TTS_OPTIONS}),
    (AnthropicLLMService, {"api_key": "k", **LLM_OPTIONS}),
    (GroqLLMService, {"api_key": "k", **LLM_OPTIONS}),
    (GroqSTTService, {"api_key": "k", "trailing_silence_secs": 0.5, **STT_OPTIONS}),
    (GroqTTSService, {"api_key": "k", **TTS_OPTIONS}),
]


@pytest.mark.parametrize(("cls", "options"), PROVIDERS, ids=[c.__name__ for c, _ in PROVIDERS])
def test_a_pipecat_bot_s_options_are_taken_by_the_popular_providers(
    cls: type[Any], options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        cls(**options)
    # Known to callpipe: none is dropped as an unknown option.
    assert not [m for m in warned(caplog) if "no such option" in m]
