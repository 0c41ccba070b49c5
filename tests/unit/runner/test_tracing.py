"""A call's record exported as one OpenTelemetry trace: nesting, timing, GenAI attributes."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from callpipe.frames.frames import (
    BotInterruptedFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InputDTMFFrame,
    KeypadEntry,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TranscriptionFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.tracing import trace_exporter
from callpipe.transports.call_record import CallRecorder

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        self.t = max(self.t, deadline)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


def simulated_record() -> dict[str, Any]:
    """A greeting, then a caller turn whose answer (one LLM request) is cut by DTMF-less
    barge-in, driven through the recorder's frame and service hooks on a fake clock."""
    clock = Clock()
    rec = CallRecorder(clock=clock, call_id="CA0123456789abcdef", provider="twilio")
    a, b = FrameProcessor(), FrameProcessor()

    def push(frame: Any, direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
        rec.on_push_frame(a, b, frame, direction)

    def at(t: float) -> None:
        clock.t = 50.0 + t

    at(0.1)
    rec.service_ttfb("tts", 0.05, "sonic", "CartesiaTTSService")
    push(BotStartedSpeakingFrame())
    at(1.5)
    push(TTSStoppedFrame())
    push(BotStoppedSpeakingFrame())
    at(3.0)
    push(VADUserStartedSpeakingFrame(start_secs=0.2))
    at(4.8)
    push(VADUserStoppedSpeakingFrame(stop_secs=0.8))
    rec.service_ttfb("stt", 0.3, None, "DeepgramSTTService")
    push(TranscriptionFrame(text="book a table", user_id="", timestamp=""))
    at(4.9)
    push(LLMFullResponseStartFrame())
    rec.service_ttfb("llm", 0.1, "gpt-x", "OpenAILLMService")
    push(LLMTextFrame(text="Sure, for how many?"))
    at(5.2)
    push(MetricsFrame(data=[LLMUsageMetricsData("llm", "gpt-x", LLMTokenUsage(12, 7, 19))]))
    push(LLMFullResponseEndFrame())
    rec.service_ttfb("tts", 0.08, "sonic", "CartesiaTTSService")
    at(5.3)
    push(BotStartedSpeakingFrame())
    at(5.9)
    push(InputDTMFFrame(button=KeypadEntry.ONE))
    at(6.5)
    push(VADUserStartedSpeakingFrame(start_secs=0.2))
    push(BotInterruptedFrame(heard_secs=1.2, heard_text="Sure,"))
    push(BotStoppedSpeakingFrame())
    at(7.0)
    push(VADUserStoppedSpeakingFrame(stop_secs=0.8))
    at(8.0)
    rec.note_end("caller hung up (remote closed)")
    record = rec.finish("ok")
    record["record_id"] = "r1"
    return record


def test_the_record_of_that_call() -> None:
    record = simulated_record()
    greeting, turn, last = record["turns"]
    assert greeting["caller"] is None and greeting["bot"]["end"] == pytest.approx(1.5)
    assert turn["caller"] == {
        "start": pytest.approx(2.8),
        "end": pytest.approx(4.0),
        "text": "book a table",
        "transcripts": [{"t": pytest.approx(4.8), "text": "book a table"}],
    }
    bot = turn["bot"]
    assert bot["generated"] == "Sure, for how many?" and bot["heard"] == "Sure,"
    assert bot["interrupted"] and bot["heard_secs"] == 1.2 and bot["end"] == pytest.approx(6.5)
    assert turn["dtmf"] == [{"t": pytest.approx(5.9), "digit": "1", "direction": "in"}]
    assert turn["latency"]["first_audio_sent_secs"] == pytest.approx(1.3)
    assert turn["latency"]["llm_ttft_secs"] == pytest.approx(0.1)
    assert [r["kind"] for r in turn["requests"]] == ["stt", "llm", "tts"]
    assert turn["requests"][1]["usage"] == {"input_tokens": 12, "output_tokens": 7}
    assert last["caller"]["start"] == pytest.approx(6.3) and last["bot"] is None
    assert record["end"]["by"] == "caller"


def test_one_trace_per_call_with_nested_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    export = trace_exporter(provider)
    assert export is not None
    export(simulated_record())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {
        "call",
        "turn 0",
        "turn 1",
        "turn 2",
        "chat gpt-x",
        "stt DeepgramSTTService",
        "tts CartesiaTTSService",
    }
    finished = exporter.get_finished_spans()
    assert len(finished) == 8  # the greeting's TTS request and the answer's: two "tts" spans
    assert len({s.context.trace_id for s in finished}) == 1  # one trace
    root = spans["call"]
    assert root.parent is None and root.attributes["callpipe.call.id"] == "CA01…ef"
    assert root.attributes["callpipe.end.by"] == "caller"
    by_id = {s.context.span_id: s for s in finished}
    for span in finished:
        if span is root:
            continue
        parent = by_id[span.parent.span_id]
        assert parent.start_time <= span.start_time and span.end_time <= parent.end_time
        if span.name.startswith("turn"):
            assert parent is root
        else:
            assert parent.name.startswith("turn")
    chat = spans["chat gpt-x"]
    assert by_id[chat.parent.span_id].name == "turn 1"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "openai"
    assert chat.attributes["gen_ai.request.model"] == "gpt-x"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12
    assert chat.attributes["gen_ai.usage.output_tokens"] == 7
    assert (chat.end_time - chat.start_time) / 1e9 == pytest.approx(0.4, abs=1e-3)
    turn = spans["turn 1"]
    assert [e.name for e in turn.events] == ["interrupted", "dtmf"]
    assert turn.attributes["callpipe.latency.first_audio_sent_secs"] == pytest.approx(1.3)


def test_no_opentelemetry_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    assert trace_exporter() is None


def test_callpipe_otel_turns_records_on_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    from callpipe.runner.app import Credentials, RunnerConfig, create_app

    async def bot(args: Any) -> None:
        return None

    monkeypatch.delenv("CALLPIPE_RECORDS", raising=False)
    monkeypatch.delenv("CALLPIPE_RECORDS_DIR", raising=False)
    off = create_app(bot, RunnerConfig(proxy="h.example"), credentials=Credentials())
    assert not off.state.runner.records.enabled
    monkeypatch.setenv("CALLPIPE_OTEL", "1")
    on = create_app(bot, RunnerConfig(proxy="h.example"), credentials=Credentials())
    assert on.state.runner.records.enabled
