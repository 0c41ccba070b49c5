"""Pipecat 1.14's tracing surface: ``setup_tracing`` plus ``PipelineWorker(enable_tracing=True)``.

A bot in its own app (a transport over a fake Twilio caller, no runner) has its call exported as
one trace with Pipecat's span names when the pipeline ends; a bot that does not ask gets no
recorder; under the runner's records the call still makes exactly one trace.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from callpipe.frames.frames import (
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSStoppedFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.runner.records import RecordsConfig, RecordStore
from callpipe.runner.tracing import trace_exporter
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing import TwilioCallerSocket, run_virtual
from callpipe.transports.call_record import CallRecorder
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.transports.record_hooks import note_service_ttfb
from callpipe.utils.tracing import setup as tracing_setup
from callpipe.utils.tracing.setup import is_tracing_available, setup_tracing

pytest.importorskip("opentelemetry.sdk.trace", reason="needs opentelemetry-sdk")
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.util._once import Once


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """``setup_tracing`` with an in-memory exporter, on a fresh global provider (OpenTelemetry
    lets a process set it once: the previous one is put back afterwards)."""
    saved = (trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE)
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = None, Once()
    memory = InMemorySpanExporter()
    assert setup_tracing(service_name="my-bot", exporter=memory)
    try:
        yield memory
    finally:
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


def finished(memory: InMemorySpanExporter) -> list[ReadableSpan]:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    provider.force_flush()
    return list(memory.get_finished_spans())


class ScriptedBot(FrameProcessor):
    """Stands for STT → LLM → TTS: once started, the caller says something, each "service"
    reports its time to first byte (as services do, from their own task) and the bot answers
    with 0.2 s of audio."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self.create_task(self._turn(), "turn")

    async def _turn(self) -> None:
        await asyncio.sleep(0.05)
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=0.0))
        await asyncio.sleep(0.2)
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=0.0))
        await asyncio.sleep(0.1)
        note_service_ttfb("stt", 0.1, "nova-3", "DeepgramSTTService")
        await self.push_frame(TranscriptionFrame(text="book a table", user_id="", timestamp=""))
        await self.push_frame(LLMFullResponseStartFrame())
        await asyncio.sleep(0.05)
        note_service_ttfb("llm", 0.05, "gpt-test", "OpenAILLMService")
        await self.push_frame(LLMTextFrame(text="For how many?"))
        await self.push_frame(LLMFullResponseEndFrame())
        await asyncio.sleep(0.02)
        note_service_ttfb("tts", 0.02, "sonic", "CartesiaTTSService")
        for _ in range(10):
            await self.push_frame(OutputAudioRawFrame(b"\x01\x00" * 160, 8000, 1))
        await self.push_frame(TTSStoppedFrame())


async def call(**worker_args: Any) -> PipelineTask:
    """A Pipecat-style bot in its own app: transport, pipeline, task, runner."""
    socket = TwilioCallerSocket(30)
    serializer = TwilioFrameSerializer(
        "MZ0", "CA0123456789", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    params = FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
    )
    transport = FastAPIWebsocketTransport(socket.websocket, params)
    task = PipelineTask(
        Pipeline([transport.input(), ScriptedBot(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=None,
        **worker_args,
    )
    await PipelineRunner(handle_sigint=False).run(task)
    return task


def recorders(task: PipelineTask) -> list[Any]:
    return [o for o in task._sync_observers if isinstance(o, CallRecorder)]


def test_setup_tracing_installs_a_batching_provider(exporter: InMemorySpanExporter) -> None:
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "my-bot"
    assert "deployment.environment" in provider.resource.attributes
    trace.get_tracer("t").start_span("probe").end()
    assert [s.name for s in finished(exporter)] == ["probe"]
    assert setup_tracing(exporter=InMemorySpanExporter()) is False  # the first one stays
    assert trace.get_tracer_provider() is provider


def test_no_sdk_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    tracing_setup.is_tracing_available.cache_clear()
    try:
        assert not is_tracing_available()
        assert setup_tracing(exporter=InMemorySpanExporter()) is False
    finally:
        tracing_setup.is_tracing_available.cache_clear()


def test_a_traced_bot_exports_its_call_as_a_pipecat_style_trace(
    exporter: InMemorySpanExporter,
) -> None:
    task = run_virtual(
        call(
            enable_tracing=True,
            conversation_id="conv-42",
            additional_span_attributes={"langfuse.session.id": "s-1", "tenant": "acme"},
        )
    )
    spans = finished(exporter)
    assert len({s.context.trace_id for s in spans}) == 1  # one trace
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    assert sorted(by_name) == ["conversation", "llm", "stt", "tts", "turn"]
    (root,) = by_name["conversation"]
    assert root.parent is None
    attributes = root.attributes or {}
    assert attributes["conversation.id"] == "conv-42"
    assert attributes["conversation.type"] == "voice"
    assert attributes["langfuse.session.id"] == "s-1" and attributes["tenant"] == "acme"
    assert attributes["callpipe.provider"] == "twilio"  # the transport found the worker's record
    assert attributes["callpipe.end.by"] == "caller"
    (turn,) = by_name["turn"]
    assert turn.parent is not None and turn.parent.span_id == root.context.span_id
    turn_attributes = turn.attributes or {}
    assert turn_attributes["turn.number"] == 1
    assert turn_attributes["conversation.id"] == "conv-42"
    assert turn_attributes["turn.was_interrupted"] is False
    for kind in ("stt", "llm", "tts"):
        (service,) = by_name[kind]
        assert service.parent is not None and service.parent.span_id == turn.context.span_id
        assert "metrics.ttfb" in (service.attributes or {})
    llm = by_name["llm"][0].attributes or {}
    assert llm["gen_ai.operation.name"] == "chat"
    assert llm["gen_ai.provider.name"] == "openai"
    assert llm["gen_ai.request.model"] == "gpt-test"
    assert llm["output"] == "For how many?"
    assert (by_name["stt"][0].attributes or {})["transcript"] == "book a table"
    assert (by_name["tts"][0].attributes or {})["gen_ai.provider.name"] == "cartesia"
    assert len(recorders(task)) == 1


def test_without_enable_tracing_nothing_is_recorded_or_exported(
    exporter: InMemorySpanExporter,
) -> None:
    task = run_virtual(call(conversation_id="conv-1"))
    assert recorders(task) == []
    assert finished(exporter) == []


def test_under_the_runners_records_one_trace_per_call(exporter: InMemorySpanExporter) -> None:
    """Records on and ``CALLPIPE_OTEL=1`` (the runner's exporter hook): the bot's
    ``enable_tracing`` reuses the runner's recorder, and the call is exported once."""
    hook = trace_exporter()
    assert hook is not None

    async def served() -> tuple[PipelineTask, CallRecorder]:
        store = RecordStore(RecordsConfig(enabled=True), on_record=[hook])
        record_id, recorder = store.begin(provider="twilio", call_id="CA0123456789")
        with store.serving(record_id):
            task = await call(enable_tracing=True, conversation_id="conv-7")
        store.end(record_id, "ok")
        await store.flush()
        return task, recorder

    task, recorder = run_virtual(served())
    assert recorders(task) == [recorder]  # the runner's, not a second one
    spans = finished(exporter)
    roots = [s for s in spans if s.parent is None]
    assert [r.name for r in roots] == ["conversation"]
    assert (roots[0].attributes or {})["conversation.id"] == "conv-7"
    assert len({s.context.trace_id for s in spans}) == 1


def test_the_runners_own_traces_keep_their_names(exporter: InMemorySpanExporter) -> None:
    """A bot that does not ask (``CALLPIPE_OTEL=1`` only) keeps callpipe's span names."""
    hook = trace_exporter()
    assert hook is not None

    async def served() -> None:
        store = RecordStore(RecordsConfig(enabled=True), on_record=[hook])
        record_id, _ = store.begin(provider="twilio", call_id="CA0123456789")
        with store.serving(record_id):
            await call()
        store.end(record_id, "ok")
        await store.flush()

    run_virtual(served())
    names = sorted(s.name for s in finished(exporter))
    assert "call" in names and "turn 0" in names and "conversation" not in names
