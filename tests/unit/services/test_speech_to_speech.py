"""What the speech-to-speech services share (``services._speech_to_speech``), checked on both."""

from __future__ import annotations

from callpipe.frames.frames import EndFrame, LLMContextFrame, TTSAudioRawFrame
from callpipe.pipeline.task import PipelineParams
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.services.google.gemini_live.llm import GeminiLiveLLMService
from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.gemini_live import FakeGeminiLiveServer, b64decode
from callpipe.testing.fakes.openai_realtime import FakeOpenAIRealtimeServer, RealtimeReply
from callpipe.testing.pipeline import SleepFrame

from .helpers import of
from .speech_to_speech import PARAMS, RATE, audio


def until_sent(server: FakeOpenAIRealtimeServer, kind: str, count: int = 1) -> SleepFrame:
    return SleepFrame(5.0, until=lambda: sum(e["type"] == kind for e in server.sent) >= count)


async def test_packets_longer_than_a_batch_leave_no_backlog() -> None:
    """60 ms packets, 40 ms batches: each message takes every whole batch there is, so the
    audio held back never grows (one batch per packet would fall behind by 20 ms a packet)."""
    async with FakeGeminiLiveServer() as server:
        llm = GeminiLiveLLMService(api_key="test-key", http_options={"base_url": server.base_url})
        frames = [
            SleepFrame(5.0, until=lambda: any("setupComplete" in m for m in server.sent)),
            *audio(1.2, loud=False, packet_ms=60),
            SleepFrame(0.1),
        ]
        await run_test(llm, frames, params=PARAMS)
    sizes = [
        len(b64decode(m["audio"]["data"])) for m in server.of_kind("realtimeInput") if "audio" in m
    ]
    assert sizes and all(size % 640 == 0 for size in sizes)  # whole 40 ms batches at 8 kHz
    assert sum(sizes) >= 1.16 * 16000  # all but the last part batch


async def test_the_end_of_the_call_waits_for_the_goodbye() -> None:
    """An ``EndFrame`` while OpenAI is still sending its reply waits for the reply's end."""
    async with FakeOpenAIRealtimeServer(pace_secs=0.01) as server:
        server.replies.append(RealtimeReply("Thank you for calling, goodbye", audio_ms=1000))
        llm = OpenAIRealtimeLLMService(api_key="test-key", base_url=server.base_url)
        frames = [
            LLMContextFrame(LLMContext()),
            until_sent(server, "response.output_audio.delta", 2),
        ]
        down, _ = await run_test(llm, frames, params=PARAMS)  # then the EndFrame
    assert isinstance(down[-1], EndFrame)
    assert sum(len(f.audio) for f in of(down, TTSAudioRawFrame)) == RATE * 2  # all 1 s of it


async def test_resampled_replies_reach_the_line_whole() -> None:
    """The resampler's last samples are flushed at the end of each reply."""
    rate = 16000
    async with FakeOpenAIRealtimeServer() as server:
        server.replies.append(RealtimeReply("Hi", audio_ms=400))
        llm = OpenAIRealtimeLLMService(api_key="test-key", base_url=server.base_url)
        frames = [LLMContextFrame(LLMContext()), until_sent(server, "response.done")]
        params = PipelineParams(audio_in_sample_rate=rate, audio_out_sample_rate=rate)
        down, _ = await run_test(llm, frames, params=params)
    out = of(down, TTSAudioRawFrame)
    assert {f.sample_rate for f in out} == {rate}
    assert sum(len(f.audio) for f in out) == int(0.4 * rate) * 2
