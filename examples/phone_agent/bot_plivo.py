"""The phone agent on Plivo (XML application with a bidirectional audio stream).

    python bot_plivo.py -t plivo -x HOST

See README.md in this folder.
"""

from __future__ import annotations

import os

from agent import run_agent

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.plivo import PlivoFrameSerializer
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

# Load the Silero model when the server imports this file, not inside the first call (where
# building the ONNX session would stall every call on the event loop for a moment).
SileroVADAnalyzer()


async def bot(runner_args: WebSocketRunnerArguments) -> None:
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    auth_id = os.getenv("PLIVO_AUTH_ID")
    auth_token = os.getenv("PLIVO_AUTH_TOKEN")
    serializer = PlivoFrameSerializer(
        stream_id=call_data["stream_id"],
        call_id=call_data["call_id"],
        auth_id=auth_id,
        auth_token=auth_token,
        params=PlivoFrameSerializer.InputParams(auto_hang_up=bool(auth_id and auth_token)),
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(),
            serializer=serializer,
            session_timeout=5 * 60,
        ),
    )
    await run_agent(transport, runner_args)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
