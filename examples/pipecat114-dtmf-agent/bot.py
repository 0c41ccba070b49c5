"""A Pipecat 1.14-style phone agent driven by the keypad: account lookup by DTMF.

The caller types an account number and ``#``; ``DTMFAggregator`` turns the keys into one
"DTMF: 1234#" user message, the LLM answers it. Speech works too (Silero VAD in the transport,
the older placement, which 1.14 still accepts). The caller cannot barge in on the greeting
(``FirstSpeechUserMuteStrategy``), and a function looks the account up.

    python bot.py -t twilio -x your-host.example      # OPENAI_API_KEY, DEEPGRAM_API_KEY,
                                                       # CARTESIA_API_KEY, CARTESIA_VOICE_ID
    python bot.py -t twilio --insecure                 # local testing

``OPENAI_BASE_URL``, ``DEEPGRAM_URL`` and ``CARTESIA_URL`` point the services elsewhere (the
local fakes in the tests). Uses ``PipelineTask``: switch to ``PipelineWorker`` once your
callpipe has it.
"""

from __future__ import annotations

import os
from typing import Any

from callpipe.adapters.schemas.function_schema import FunctionSchema
from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.frames.frames import LLMRunFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.dtmf_aggregator import DTMFAggregator
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
from callpipe.services.llm_service import FunctionCallParams
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.turns.user_mute import FirstSpeechUserMuteStrategy

SYSTEM_PROMPT = (
    "You answer a bank's phone line. Ask the caller to type their account number on the "
    "keypad followed by the pound key. Keypad input arrives as 'DTMF: <keys>'. Look the "
    "account up with lookup_account, then read the balance."
)

ACCOUNTS = {"1234": "152.40 dollars", "9876": "3,020.00 dollars"}


async def lookup_account(params: FunctionCallParams) -> dict[str, str]:
    """A schema handler: runs without register_function (1.14)."""
    number = str(params.arguments.get("account_number", "")).strip("#")
    balance = ACCOUNTS.get(number)
    return {"found": "yes", "balance": balance} if balance else {"found": "no"}


LOOKUP = FunctionSchema(
    name="lookup_account",
    description="Find an account by number.",
    properties={"account_number": {"type": "string"}},
    required=["account_number"],
    handler=lookup_account,
)


async def bot(runner_args: RunnerArguments) -> None:
    assert isinstance(runner_args, WebSocketRunnerArguments)
    _, call_data = await parse_telephony_websocket(runner_args.websocket)
    account_sid, auth_token = os.getenv("TWILIO_ACCOUNT_SID"), os.getenv("TWILIO_AUTH_TOKEN")
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(),
            serializer=TwilioFrameSerializer(
                stream_sid=call_data["stream_id"],
                call_sid=call_data["call_id"],
                account_sid=account_sid,
                auth_token=auth_token,
                params=TwilioFrameSerializer.InputParams(
                    auto_hang_up=bool(account_sid and auth_token)
                ),
            ),
        ),
    )
    stt = DeepgramSTTService(
        api_key=os.getenv("DEEPGRAM_API_KEY"),
        url=os.getenv("DEEPGRAM_URL", "wss://api.deepgram.com"),
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY"),
        base_url=os.getenv("OPENAI_BASE_URL"),
        settings=OpenAILLMService.Settings(model="gpt-4o-mini"),
    )
    tts = CartesiaTTSService(
        api_key=os.getenv("CARTESIA_API_KEY"),
        url=os.getenv("CARTESIA_URL", "wss://api.cartesia.ai"),
        voice_id=os.getenv("CARTESIA_VOICE_ID", "default"),
    )

    context = LLMContext([{"role": "system", "content": SYSTEM_PROMPT}], tools=[LOOKUP])
    user_aggregator, assistant_aggregator = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(user_mute_strategies=[FirstSpeechUserMuteStrategy()]),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            DTMFAggregator(timeout=3.0, termination_digit="#", prefix="DTMF: "),
            stt,
            user_aggregator,
            llm,
            tts,
            transport.output(),
            assistant_aggregator,
        ]
    )
    task = PipelineTask(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
    )
    runner_args.attach(task)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        await task.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
