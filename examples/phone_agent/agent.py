"""The phone agent itself: STT → LLM → TTS with a greeting, two tools and a safe goodbye.

The provider-specific files (``bot_twilio.py``, ``bot_telnyx.py``, ``bot_plivo.py``) build the
transport for their provider and hand it to :func:`run_agent`; everything a caller hears is
decided here.

Services and their settings come from the environment (see ``.env.example``). The ``*_URL``
variables point a service somewhere other than the provider's public API: the local fakes
(``callpipe.testing.fakes``) in tests, or any OpenAI-compatible server for the LLM.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from callpipe.frames.frames import EndTaskFrame, TTSSpeakFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.processors.frame_processor import FrameDirection
from callpipe.runner.types import RunnerArguments
from callpipe.services.cartesia.tts import CARTESIA_URL, CartesiaTTSService
from callpipe.services.deepgram.stt import DEEPGRAM_URL, DeepgramSTTService
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.network.fastapi_websocket import FastAPIWebsocketTransport

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are the phone line of Luigi's, a small Italian restaurant open every day from noon "
    "to eleven at night. Start by greeting the caller in one short sentence. Keep every answer "
    "to one or two short sentences with no lists, markdown or emojis: everything you write is "
    "spoken. Use check_availability before promising a table. When the caller has what they "
    "need or says goodbye, call end_call; it says goodbye for you, so add nothing after it."
)
GOODBYE = "Thank you for calling Luigi's. Goodbye!"
MAX_PARTY = 8

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "check_availability",
            "description": "Check whether a table is free for a party at a time today.",
            "parameters": {
                "type": "object",
                "properties": {
                    "party_size": {"type": "integer", "description": "Number of people."},
                    "time": {"type": "string", "description": "Time today, e.g. '19:30'."},
                },
                "required": ["party_size", "time"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "end_call",
            "description": "Say goodbye and hang up. Call it when the conversation is over.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


def make_services() -> tuple[DeepgramSTTService, OpenAILLMService, CartesiaTTSService]:
    """The three services, keys from DEEPGRAM_API_KEY, OPENAI_API_KEY and CARTESIA_API_KEY."""
    stt = DeepgramSTTService(
        encoding="mulaw", url=os.getenv("CALLPIPE_DEEPGRAM_URL") or DEEPGRAM_URL
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY"),  # read explicitly: also sent to OPENAI_BASE_URL
        model=os.getenv("OPENAI_MODEL", "gpt-4o-mini"),
        base_url=os.getenv("OPENAI_BASE_URL") or None,  # None: api.openai.com
    )
    tts = CartesiaTTSService(
        voice_id=os.getenv("CARTESIA_VOICE_ID", "79a125e8-cd45-4c13-8a67-188112f4dd22"),
        url=os.getenv("CALLPIPE_CARTESIA_URL") or CARTESIA_URL,
    )
    return stt, llm, tts


async def check_availability(params: FunctionCallParams) -> dict[str, Any]:
    """A stand-in for your booking system: parties up to MAX_PARTY always fit."""
    party = int(params.arguments.get("party_size") or 0)
    when = str(params.arguments.get("time") or "")
    if not 1 <= party <= MAX_PARTY:
        return {"available": False, "reason": f"tables seat 1 to {MAX_PARTY} people"}
    return {"available": True, "party_size": party, "time": when}


class Goodbye:
    """Ends the call once, after the goodbye has been played.

    The goodbye goes to the TTS and an ``EndTaskFrame`` goes upstream to the task, which sends
    an ``EndFrame`` down the pipeline behind the goodbye: the transport plays everything queued
    before it, then hangs up. A second request (the model calls ``end_call`` twice, or the
    session times out while the goodbye plays) does nothing.
    """

    def __init__(self) -> None:
        self.started = False

    async def end_call(self, params: FunctionCallParams) -> dict[str, str]:
        await self.say_goodbye(params.llm, reason="caller done")
        return {"status": "goodbye said, the call is ending: say nothing more"}

    async def say_goodbye(self, processor: Any, *, reason: str) -> None:
        if self.started:
            return
        self.started = True
        logger.info("ending the call: %s", reason)
        await processor.push_frame(TTSSpeakFrame(GOODBYE))
        await processor.push_frame(EndTaskFrame(reason=reason), FrameDirection.UPSTREAM)


async def run_agent(transport: FastAPIWebsocketTransport, runner_args: RunnerArguments) -> None:
    """Run one call on ``transport`` until either side hangs up."""
    stt, llm, tts = make_services()
    goodbye = Goodbye()
    llm.register_function("check_availability", check_availability)
    # Not cancelled by a barge-in: once the goodbye is decided, the call ends.
    llm.register_function("end_call", goodbye.end_call, cancel_on_interruption=False)

    context = OpenAILLMContext([{"role": "system", "content": SYSTEM_PROMPT}], tools=TOOLS)
    context_aggregator = llm.create_context_aggregator(context)
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            context_aggregator.user(),
            llm,
            tts,
            transport.output(),
            context_aggregator.assistant(),
        ]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )
    runner_args.attach(task)  # on SIGTERM the runner ends this call gracefully

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        # Run the model on the system prompt alone: its first reply is the greeting.
        await task.queue_frames([context_aggregator.user().get_context_frame()])

    @transport.event_handler("on_session_timeout")
    async def on_session_timeout(transport: Any, websocket: Any) -> None:
        await goodbye.say_goodbye(llm, reason="session timeout")

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)
