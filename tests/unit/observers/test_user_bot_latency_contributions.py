"""UserBotLatencyObserver's contributions: where a wait went, part by part.

First through a real pipeline (a stand-in STT, the user aggregator, OpenAILLMService on the
fake server, a TTS service, an output transport), then frame by frame on a clock the test
moves, for the parts a plain turn does not have (turn completion, the greeting, barge-in).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    ClientConnectedFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMMarkerFrame,
    LLMTextFrame,
    MetricsFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import TTFBMetricsData
from callpipe.observers.base_observer import FramePushed
from callpipe.observers.user_bot_latency_observer import (
    LatencyBreakdown,
    LatencyContribution,
    LatencyOwnerKind,
    MeasuredFrom,
    UserBotLatencyObserver,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.processors.aggregators.llm_text_processor import LLMTextProcessor
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.services.tts_service import TTSService
from callpipe.testing.fakes.openai import FakeOpenAIServer, tone_pcm
from callpipe.transports.base_output import BaseOutputTransport
from callpipe.transports.base_transport import TransportParams
from callpipe.turns.user_turn_strategies import (
    SpeechTimeoutUserTurnStopStrategy,
    UserTurnStrategies,
)

RATE = 8000
STOP_SECS = 0.2
STT_SECS = 0.08
TURN_SECS = 0.1
TTS_SECS = 0.07
HANDLER_SECS = 0.15
SETTING = LatencyOwnerKind.SETTING


# ---------------------------------------------------------------------- checks


def check_timeline(breakdown: LatencyBreakdown) -> None:
    """Contributions in order, none negative, each after the one before, summing to the
    measured wait (the ``pipeline`` remainder, when there is one, last)."""
    parts = breakdown.contributions
    assert parts, "no contributions"
    assert all(c.duration_secs >= 0 for c in parts)
    named = [c for c in parts if c.key != "pipeline"]
    assert [c.key for c in parts].count("pipeline") <= 1
    if len(named) < len(parts):
        assert parts[-1].key == "pipeline" and parts[-1].owner_kind is LatencyOwnerKind.PIPELINE
    for before, after in zip(named, named[1:], strict=False):
        assert after.start_time >= before.start_time + before.duration_secs - 1e-6, (before, after)
    assert abs(sum(c.duration_secs for c in parts) - breakdown.total_secs) < 0.001


def keys(parts: Sequence[LatencyContribution], *, leave_out: Sequence[str] = ()) -> list[str]:
    return [c.key for c in parts if c.key not in leave_out]


def part(breakdown: LatencyBreakdown, key: str, n: int = 0) -> LatencyContribution:
    return [c for c in breakdown.contributions if c.key == key][n]


# ---------------------------------------------------------------------- a real pipeline


class StandInSTT(FrameProcessor):
    """A streaming STT's last final transcript, ``STT_SECS`` after the VAD's stop."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            await asyncio.sleep(STT_SECS)
            await self.push_frame(
                TranscriptionFrame("weather in Paris?", user_id="caller", timestamp="")
            )


class SlowTTS(TTSService):
    """A provider answering each sentence with audio ``TTS_SECS`` after it was sent."""

    def __init__(self) -> None:
        super().__init__(sample_rate=RATE)

    async def run_tts(self, text: str, context_id: str) -> None:
        await asyncio.sleep(TTS_SECS)
        await self.append_audio(context_id, tone_pcm(0.2, RATE))


class Speaker(BaseOutputTransport):
    def __init__(self) -> None:
        super().__init__(TransportParams(audio_out_enabled=True, audio_out_sample_rate=RATE))

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        return True


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


async def one_turn(
    llm: OpenAILLMService,
    tts: TTSService,
    *,
    metrics: bool,
    sentences: FrameProcessor | None = None,
) -> tuple[LatencyBreakdown, float]:
    """The caller speaks once; returns the breakdown of the wait and the wait measured."""
    context = LLMContext([{"role": "system", "content": "Be brief."}])
    turns = UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.1)])
    user = LLMContextAggregatorPair(
        context, user_params=LLMUserAggregatorParams(user_turn_strategies=turns)
    ).user()
    observer = UserBotLatencyObserver()
    breakdowns: list[LatencyBreakdown] = []
    waits: list[float] = []
    observer.add_event_handler("on_latency_breakdown", lambda o, b: breakdowns.append(b))
    observer.add_event_handler("on_latency_measured", lambda o, secs: waits.append(secs))
    processors = [StandInSTT(name="stt"), user, llm, *([sentences] if sentences else []), tts]
    task = PipelineTask(
        Pipeline([*processors, Speaker()]),
        params=PipelineParams(
            audio_in_sample_rate=RATE, audio_out_sample_rate=RATE, enable_metrics=metrics
        ),
        observers=[observer],
        idle_timeout_secs=None,
    )

    async def caller() -> None:
        await asyncio.sleep(0.1)
        await task.queue_frame(VADUserStartedSpeakingFrame())
        await asyncio.sleep(0.2)
        await task.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS))
        for _ in range(500):
            if breakdowns:
                break
            await asyncio.sleep(0.01)
        await task.queue_frame(EndFrame())

    talking = asyncio.get_running_loop().create_task(caller())
    await task.run()
    await talking
    assert len(breakdowns) == 1 and len(waits) == 1
    return breakdowns[0], waits[0]


@pytest.mark.parametrize("cut_by_processor", [False, True])
async def test_a_plain_turn_is_cut_at_each_stage(
    server: FakeOpenAIServer, cut_by_processor: bool
) -> None:
    server.add_chat_reply(
        "Sunny all day in Paris. Enjoy it!", first_chunk_delay=0.1, chunk_delay=0.03
    )
    llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="fake-model")
    tts = SlowTTS()
    cutter = LLMTextProcessor() if cut_by_processor else None
    breakdown, wait = await one_turn(llm, tts, metrics=False, sentences=cutter)

    check_timeline(breakdown)
    assert breakdown.measured_from is MeasuredFrom.USER_SILENCE
    assert abs(breakdown.total_secs - wait) < 0.001
    # Parts a frame hop long (output transport) go into the pipeline entry.
    assert keys(breakdown.contributions, leave_out=("output_transport", "pipeline")) == [
        "endpointing_wait",
        "transcription",
        "turn_detection",
        "llm_inference",
        "sentence_aggregation",
        "speech_synthesis",
    ]
    endpointing = part(breakdown, "endpointing_wait")
    assert (endpointing.owner, endpointing.owner_kind) == ("config: VAD stop_secs", SETTING)
    assert abs(endpointing.duration_secs - STOP_SECS) < 0.001
    assert endpointing.start_time == breakdown.user_turn_start_time
    transcription = part(breakdown, "transcription")
    assert transcription.owner == "stt" and transcription.owner_kind is LatencyOwnerKind.SERVICE
    assert transcription.duration_secs >= STT_SECS - 0.005
    assert part(breakdown, "turn_detection").owner == "config: user turn strategies"
    assert part(breakdown, "llm_inference").owner == llm.name
    assert part(breakdown, "llm_inference").duration_secs >= 0.1
    assert part(breakdown, "sentence_aggregation").owner == "config: text_aggregation_mode"
    synthesis = part(breakdown, "speech_synthesis")
    assert synthesis.owner == tts.name and synthesis.duration_secs >= TTS_SECS - 0.005

    # The first sentence was whole after 5 words, 4 chunk delays after the first text.
    aggregation = breakdown.text_aggregation
    assert aggregation is not None
    assert aggregation.processor == (cutter.name if cutter else tts.name)
    assert aggregation.duration_secs >= 0.1
    assert (
        abs(aggregation.duration_secs - part(breakdown, "sentence_aggregation").duration_secs)
        < 1e-6
    )


async def test_a_turn_with_a_function_call(server: FakeOpenAIServer) -> None:
    server.add_chat_reply(
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
        first_chunk_delay=0.1,
        chunk_delay=0.03,
    )
    server.add_chat_reply(
        "Sunny all day in Paris. Enjoy it!", first_chunk_delay=0.1, chunk_delay=0.03
    )
    llm = OpenAILLMService(api_key="test-key", base_url=server.base_url, model="fake-model")

    async def get_weather(params: FunctionCallParams) -> None:
        await asyncio.sleep(HANDLER_SECS)
        await params.result_callback({"conditions": "sunny"})

    llm.register_function("get_weather", get_weather)
    tts = SlowTTS()
    breakdown, wait = await one_turn(llm, tts, metrics=True)

    check_timeline(breakdown)
    assert abs(breakdown.total_secs - wait) < 0.001
    # With metrics the LLM's time to first byte splits its thinking from writing the call.
    assert keys(breakdown.contributions, leave_out=("output_transport", "pipeline")) == [
        "endpointing_wait",
        "transcription",
        "turn_detection",
        "llm_inference",
        "llm_tool_call",
        "function_handler",
        "llm_inference",
        "sentence_aggregation",
        "speech_synthesis",
    ]
    handler = part(breakdown, "function_handler")
    assert handler.owner == "get_weather" and handler.duration_secs >= HANDLER_SECS - 0.005
    assert part(breakdown, "llm_tool_call").owner == llm.name
    assert {part(breakdown, "llm_inference", n).owner for n in (0, 1)} == {llm.name}
    [call] = breakdown.function_calls
    assert call.function_name == "get_weather"
    assert abs(call.duration_secs - handler.duration_secs) < 0.001
    assert [t.processor for t in breakdown.ttfb].count(llm.name) == 2


# ---------------------------------------------------------------------- frame by frame


class Script:
    """Hands frames to the observer as a processor's first push, on a clock it moves."""

    def __init__(self, **kwargs: float) -> None:
        self.t = 1000.0
        self.observer = UserBotLatencyObserver(time_source=lambda: self.t, **kwargs)
        self.breakdowns: list[LatencyBreakdown] = []
        self.observer.add_event_handler(
            "on_latency_breakdown", lambda o, b: self.breakdowns.append(b)
        )
        self._processors: dict[str, FrameProcessor] = {}

    def processor(self, name: str) -> FrameProcessor:
        if name not in self._processors:
            self._processors[name] = FrameProcessor(name=name)
        return self._processors[name]

    async def push(self, after: float, source: str, *frames: Frame) -> None:
        self.t += after
        src = self.processor(source)
        for frame in frames:
            event = FramePushed(src, src, frame, FrameDirection.DOWNSTREAM, 0)
            await self.observer.on_push_frame(event)

    async def caller_stops(self, stop_secs: float = 0.3) -> None:
        await self.push(0, "vad", VADUserStartedSpeakingFrame())
        await self.push(1.0, "vad", VADUserStoppedSpeakingFrame(stop_secs=stop_secs))


def ttfb(processor: str, secs: float) -> MetricsFrame:
    return MetricsFrame(data=[TTFBMetricsData(processor=processor, value=secs)])


def timeline(breakdown: LatencyBreakdown) -> list[tuple[str, str, float]]:
    return [(c.key, c.owner, round(c.duration_secs, 6)) for c in breakdown.contributions]


async def test_turn_completion_markers_and_the_wait_for_the_caller() -> None:
    s = Script()
    completion = "config: filter_incomplete_user_turns"
    await s.caller_stops()
    await s.push(0.1, "stt", TranscriptionFrame("so I was", user_id="c", timestamp=""))
    await s.push(0.2, "llm", LLMFullResponseStartFrame())
    await s.push(0.32, "llm", ttfb("llm", 0.3), LLMMarkerFrame(marker="○"))
    await s.push(2.0, "llm", LLMFullResponseStartFrame())  # the nudge, the caller still quiet
    await s.push(
        0.26,
        "llm",
        ttfb("llm", 0.25),
        LLMMarkerFrame(marker="●", append_to_context_immediately=False),
    )
    await s.push(0.04, "llm", LLMTextFrame("Take"))
    await s.push(0.3, "tts", TTSStartedFrame())
    await s.push(0.2, "tts", TTSAudioRawFrame(b"\0\0", RATE, 1))
    await s.push(0.01, "out", BotStartedSpeakingFrame())
    [breakdown] = s.breakdowns
    check_timeline(breakdown)
    assert timeline(breakdown) == [
        ("endpointing_wait", "config: VAD stop_secs", 0.3),
        ("transcription", "stt", 0.1),
        ("turn_detection", "config: user turn strategies", 0.2),
        ("llm_inference", "llm", 0.3),
        ("turn_completion", completion, 0.02),
        ("waiting_for_user", completion, 2.0),
        ("llm_inference", "llm", 0.25),
        ("turn_completion", completion, 0.05),  # first output → marker → first text: one part
        ("sentence_aggregation", "config: text_aggregation_mode", 0.3),
        ("speech_synthesis", "tts", 0.2),
        ("output_transport", "out", 0.01),
    ]
    assert round(breakdown.total_secs, 6) == 3.73

    # Turn completion is on: a reply with no marker is held whole before it can be spoken.
    await s.caller_stops()
    await s.push(0.1, "stt", TranscriptionFrame("thanks", user_id="c", timestamp=""))
    await s.push(0.2, "llm", LLMFullResponseStartFrame())
    await s.push(0.3, "llm", ttfb("llm", 0.3))
    await s.push(0.5, "llm", LLMTextFrame("Bye."))
    await s.push(0.2, "tts", TTSStartedFrame(), TTSAudioRawFrame(b"\0\0", RATE, 1))
    await s.push(0.01, "out", BotStartedSpeakingFrame())
    held = s.breakdowns[1]
    check_timeline(held)
    assert keys(held.contributions)[3:5] == ["llm_inference", "awaiting_speakable_text"]
    assert part(held, "awaiting_speakable_text").owner == "llm"


async def test_the_greeting_is_timed_from_the_call_being_answered() -> None:
    s = Script()
    await s.observer.on_pipeline_started()
    await s.push(0.5, "transport", ClientConnectedFrame())
    await s.push(0.2, "tts", TTSStartedFrame())  # a TTSSpeakFrame greeting: no LLM
    await s.push(0.3, "tts", TTSAudioRawFrame(b"\0\0", RATE, 1))
    await s.push(0.002, "out", BotStartedSpeakingFrame())
    [breakdown] = s.breakdowns
    check_timeline(breakdown)
    assert breakdown.measured_from is MeasuredFrom.CLIENT_CONNECTED
    assert timeline(breakdown) == [
        ("first_request", "bot", 0.2),
        ("speech_synthesis", "tts", 0.3),
        ("pipeline", "callpipe", 0.002),  # output transport: too short to name
    ]
    assert breakdown.contributions[0].owner_kind is LatencyOwnerKind.BOT
    assert breakdown.text_aggregation is None
    assert breakdown.turn_contribution_lines()[-1] == " 0.502s  TOTAL (from client connected)"


async def test_a_barge_in_drops_the_cancelled_reply_but_not_the_callers_turn() -> None:
    s = Script()
    await s.caller_stops(stop_secs=0.2)
    await s.push(0.1, "stt", TranscriptionFrame("no wait", user_id="c", timestamp=""))
    await s.push(0.05, "old", LLMFullResponseStartFrame(), LLMTextFrame("As I was"))
    await s.push(0, "user", InterruptionFrame())
    await s.push(0.15, "llm", LLMFullResponseStartFrame())
    await s.push(0.3, "llm", LLMTextFrame("Sure."))
    await s.push(0.1, "tts", TTSStartedFrame())
    await s.push(0.1, "tts", TTSAudioRawFrame(b"\0\0", RATE, 1))
    await s.push(0.1, "out", BotStartedSpeakingFrame())
    [breakdown] = s.breakdowns
    check_timeline(breakdown)
    assert timeline(breakdown) == [
        ("endpointing_wait", "config: VAD stop_secs", 0.2),
        ("transcription", "stt", 0.1),
        ("turn_detection", "config: user turn strategies", 0.2),
        ("llm_inference", "llm", 0.3),
        ("sentence_aggregation", "config: text_aggregation_mode", 0.1),
        ("speech_synthesis", "tts", 0.1),
        ("output_transport", "out", 0.1),
    ]


async def test_a_transcript_before_the_vads_stop_leaves_only_turn_detection() -> None:
    s = Script(min_contribution_secs=0.05)
    await s.push(0, "vad", VADUserStartedSpeakingFrame())
    await s.push(0.5, "stt", TranscriptionFrame("hello", user_id="c", timestamp=""))
    await s.push(0.1, "vad", VADUserStoppedSpeakingFrame(stop_secs=0.3))
    await s.push(0.4, "llm", LLMFullResponseStartFrame())
    await s.push(0.002, "llm", LLMTextFrame("Hi."))  # core: listed however short
    await s.push(0.01, "tts", TTSAudioRawFrame(b"\0\0", RATE, 1))
    await s.push(0.03, "out", BotStartedSpeakingFrame())  # under 0.05 s: not named
    [breakdown] = s.breakdowns
    check_timeline(breakdown)
    assert timeline(breakdown) == [
        ("endpointing_wait", "config: VAD stop_secs", 0.3),
        ("turn_detection", "config: user turn strategies", 0.4),
        ("llm_inference", "llm", 0.002),
        ("speech_synthesis", "tts", 0.01),
        ("pipeline", "callpipe", 0.03),
    ]


async def test_frames_of_other_kinds_are_passed_over() -> None:
    s = Script()
    await s.caller_stops()
    await s.push(0.2, "transport", InputAudioRawFrame(b"\0\0" * 160, RATE))
    await s.push(0.2, "out", BotStartedSpeakingFrame())
    [breakdown] = s.breakdowns
    assert timeline(breakdown) == [
        ("endpointing_wait", "config: VAD stop_secs", 0.3),
        ("pipeline", "callpipe", 0.4),
    ]
