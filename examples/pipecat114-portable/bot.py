# Its imports are `pipecat` (untyped to mypy here), so its decorators are untyped too:
# mypy: disable-error-code="untyped-decorator"
"""One file, two frameworks: a Pipecat 1.14 phone bot that also runs on callpipe unchanged.

The imports are Pipecat's. With callpipe installed, the import hook at the top answers them with
callpipe's modules; in a Pipecat environment (no callpipe) they are Pipecat's own.

    python bot.py -t twilio -x your-host.example   # either framework's development runner
    python bot.py --check                          # build the pipeline and print it, no call

Environment: OPENAI_API_KEY, DEEPGRAM_API_KEY, CARTESIA_API_KEY, CARTESIA_VOICE_ID (and, for
hang-up, TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN). Uses PipelineTask/PipelineRunner, which
Pipecat 1.14 still runs (deprecated there in favour of PipelineWorker/WorkerRunner).
"""

from __future__ import annotations

import os
import sys
from typing import Any

try:
    from callpipe.utils.pipecat_alias import install_pipecat_alias
except ImportError:
    pass  # Pipecat's own environment: the imports below are the real thing
else:
    install_pipecat_alias()

from pipecat.adapters.schemas.function_schema import FunctionSchema
from pipecat.adapters.schemas.tools_schema import ToolsSchema
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.services.deepgram.stt import DeepgramSTTService
from pipecat.services.llm_service import FunctionCallParams
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.turns.user_mute import FunctionCallUserMuteStrategy

HOURS = FunctionSchema(
    name="opening_hours",
    description="Opening hours for a day of the week.",
    properties={"day": {"type": "string"}},
    required=["day"],
)


async def opening_hours(params: FunctionCallParams) -> None:
    closed = str(params.arguments.get("day", "")).lower() == "monday"
    await params.result_callback({"hours": "closed" if closed else "12:00-22:00"})


def build(websocket: Any, stream_id: str, call_id: str) -> tuple[PipelineTask, list[Any]]:
    """The call's pipeline: transport, STT, context, LLM with a tool, TTS."""
    sid, token = os.getenv("TWILIO_ACCOUNT_SID"), os.getenv("TWILIO_AUTH_TOKEN")
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=TwilioFrameSerializer(
                stream_sid=stream_id,
                call_sid=call_id,
                account_sid=sid,
                auth_token=token,
                params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(sid and token)),
            ),
        ),
    )
    stt = DeepgramSTTService(
        api_key=os.getenv("DEEPGRAM_API_KEY", ""),
        settings=DeepgramSTTService.Settings(model="nova-3"),
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY", ""),
        settings=OpenAILLMService.Settings(model="gpt-4o-mini", temperature=0.3),
    )
    llm.register_function("opening_hours", opening_hours)
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY", ""),
        settings=CartesiaTTSService.Settings(voice=os.getenv("CARTESIA_VOICE_ID", "voice")),
    )
    context = LLMContext(
        [{"role": "system", "content": "You answer a restaurant's phone. Be brief."}],
        tools=ToolsSchema(standard_tools=[HOURS]),
    )
    user, assistant = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            user_mute_strategies=[FunctionCallUserMuteStrategy()],
        ),
    )
    processors = [transport.input(), stt, user, llm, tts, transport.output(), assistant]
    pipeline = Pipeline(processors)
    task = PipelineTask(
        pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await task.cancel()

    return task, processors


async def bot(runner_args: Any) -> None:
    from pipecat.runner.utils import parse_telephony_websocket

    _, call_data = await parse_telephony_websocket(runner_args.websocket)
    task, _ = build(runner_args.websocket, call_data["stream_id"], call_data["call_id"])
    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    if "--check" in sys.argv:

        class _NoSocket:
            """Stands in for the call's WebSocket: --check builds, it does not connect."""

        for key in ("OPENAI_API_KEY", "DEEPGRAM_API_KEY", "CARTESIA_API_KEY"):
            os.environ.setdefault(key, "check-only")  # nothing is called in --check
        task, processors = build(_NoSocket(), "MZ-check", "CA-check")
        framework = type(task).__module__.split(".")[0]
        print(f"{framework}: pipeline built: {[type(p).__name__ for p in processors]}")
    else:
        from pipecat.runner.run import main

        main()
