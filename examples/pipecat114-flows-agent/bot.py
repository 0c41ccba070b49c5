"""A Pipecat 1.14-style Flows phone agent: a dental office's appointment line in three nodes.

1. ``greet``: the bot greets the caller and asks for their name; ``record_name(name)`` keeps it
   in ``flow_manager.state`` and moves on.
2. ``choose_time``: the caller picks a slot; ``choose_time(time)`` checks it against the open
   slots (a taken time stays on the node and the model offers the others) and moves on.
3. ``confirm``: a ``tts_say`` pre-action, the context reset to just the booking, the model
   confirms it, and the ``end_conversation`` post-action hangs up.

Written the way a current Pipecat Flows telephony bot is, with ``callpipe`` for ``pipecat``.

    python bot.py -t twilio -x your-host.example      # OPENAI_API_KEY, DEEPGRAM_API_KEY,
                                                       # CARTESIA_API_KEY, CARTESIA_VOICE_ID
    python bot.py -t twilio --insecure                 # local testing (no signatures/tokens)

``OPENAI_BASE_URL``, ``DEEPGRAM_URL`` and ``CARTESIA_URL`` point the services elsewhere (the
local fakes in ``callpipe.testing.fakes`` in the tests).
"""

from __future__ import annotations

import os
from typing import Any

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.flows import (
    ContextStrategy,
    ContextStrategyConfig,
    FlowArgs,
    FlowManager,
    FlowResult,
    FlowsFunctionSchema,
    NodeConfig,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.turns.user_mute import (
    FunctionCallUserMuteStrategy,
    MuteUntilFirstBotCompleteUserMuteStrategy,
)

OPEN_SLOTS = ["09:00", "11:00", "14:30"]
"""Tomorrow's free appointments (a real bot would ask the practice's calendar)."""

ROLE = (
    "You answer the phone for Doctor Lee's dental practice and book appointments. "
    "This is a phone call: keep every answer to one or two short sentences."
)


# ---------------------------------------------------------------------------- functions


async def record_name(args: FlowArgs, flow_manager: FlowManager) -> tuple[FlowResult, NodeConfig]:
    """The caller said their name: keep it for the rest of the call and ask for a time."""
    name = str(args["name"]).strip()
    flow_manager.state["name"] = name
    return {"status": "success"}, create_time_node(name)


async def choose_time(
    args: FlowArgs, flow_manager: FlowManager
) -> tuple[dict[str, Any], NodeConfig | None]:
    """Book the slot if it is open; otherwise stay here and let the model offer the others."""
    time = str(args["time"]).strip()
    booked: list[str] = flow_manager.state.setdefault("booked", [])
    free = [slot for slot in OPEN_SLOTS if slot not in booked]
    if time not in free:
        return {"available": False, "open_slots": free}, None
    booked.append(time)
    flow_manager.state["time"] = time
    return {"available": True, "time": time}, create_confirm_node(flow_manager.state["name"], time)


# ---------------------------------------------------------------------------- nodes


def create_initial_node() -> NodeConfig:
    return {
        "name": "greet",
        "role_message": ROLE,
        "task_messages": [
            {
                "role": "system",
                "content": "Greet the caller and ask for their name. When they tell you, "
                "call record_name.",
            }
        ],
        "functions": [
            FlowsFunctionSchema(
                name="record_name",
                description="Record the caller's name.",
                properties={"name": {"type": "string", "description": "The caller's name"}},
                required=["name"],
                handler=record_name,
            )
        ],
    }


def create_time_node(name: str) -> NodeConfig:
    return {
        "name": "choose_time",
        "task_messages": [
            {
                "role": "system",
                "content": f"The caller is {name}. Offer tomorrow's open times "
                f"({', '.join(OPEN_SLOTS)}) and call choose_time with the one they pick, "
                "as 24-hour HH:MM.",
            }
        ],
        "functions": [
            FlowsFunctionSchema(
                name="choose_time",
                description="Book tomorrow's appointment at the time the caller picked.",
                properties={"time": {"type": "string", "description": "Time, 24-hour HH:MM"}},
                required=["time"],
                handler=choose_time,
            )
        ],
    }


def create_confirm_node(name: str, time: str) -> NodeConfig:
    # The booking is done: the conversation so far is no longer needed, so the context starts
    # over with just the booking (RESET), and the call ends after the confirmation.
    return {
        "name": "confirm",
        "task_messages": [
            {
                "role": "system",
                "content": f"{name} is booked for tomorrow at {time}. Confirm the day and "
                "time, thank them and say goodbye.",
            }
        ],
        "functions": [],
        "context_strategy": ContextStrategyConfig(strategy=ContextStrategy.RESET),
        "pre_actions": [{"type": "tts_say", "text": "One moment, I'm writing that down."}],
        "post_actions": [{"type": "end_conversation"}],
    }


# ---------------------------------------------------------------------------- the bot


def _services() -> tuple[DeepgramSTTService, OpenAILLMService, CartesiaTTSService]:
    stt = DeepgramSTTService(
        api_key=os.getenv("DEEPGRAM_API_KEY"),
        url=os.getenv("DEEPGRAM_URL", "wss://api.deepgram.com"),
        settings=DeepgramSTTService.Settings(model="nova-3", language="en"),
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY"),
        base_url=os.getenv("OPENAI_BASE_URL"),
        settings=OpenAILLMService.Settings(model="gpt-4o-mini", temperature=0.3),
    )
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY"),
        url=os.getenv("CARTESIA_URL", "wss://api.cartesia.ai"),
        settings=CartesiaTTSService.Settings(voice=os.getenv("CARTESIA_VOICE_ID", "default")),
    )
    return stt, llm, tts


async def bot(runner_args: RunnerArguments) -> None:
    assert isinstance(runner_args, WebSocketRunnerArguments)
    _, call_data = await parse_telephony_websocket(runner_args.websocket)
    account_sid, auth_token = os.getenv("TWILIO_ACCOUNT_SID"), os.getenv("TWILIO_AUTH_TOKEN")
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        account_sid=account_sid,
        auth_token=auth_token,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(account_sid and auth_token)),
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
        ),
    )
    stt, llm, tts = _services()

    # The flow sets the system instruction, messages and tools node by node.
    context = LLMContext()
    context_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(),
            user_mute_strategies=[
                MuteUntilFirstBotCompleteUserMuteStrategy(),
                FunctionCallUserMuteStrategy(),
            ],
        ),
    )

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
    runner_args.attach(task)

    flow_manager = FlowManager(
        task=task, llm=llm, context_aggregator=context_aggregator, transport=transport
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        await flow_manager.initialize(create_initial_node())

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
