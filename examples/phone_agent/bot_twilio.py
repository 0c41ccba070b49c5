"""The phone agent on Twilio.

    python bot_twilio.py                       # local: softphone at /phone, `callpipe call`
    python bot_twilio.py -t twilio -x HOST     # behind a public host name, for a real number

See README.md in this folder.
"""

from __future__ import annotations

import os

from agent import run_agent

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

# Load the Silero model when the server imports this file, not inside the first call (where
# building the ONNX session would stall every call on the event loop for a moment).
SileroVADAnalyzer()


async def bot(runner_args: WebSocketRunnerArguments) -> None:
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    account_sid = os.getenv("TWILIO_ACCOUNT_SID")
    auth_token = os.getenv("TWILIO_AUTH_TOKEN")
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        account_sid=account_sid,
        auth_token=auth_token,
        # With the account's credentials, the call is hung up through Twilio's API when the
        # bot ends it; without them (local tests) only the media stream is closed.
        params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(account_sid and auth_token)),
    )
    transport = FastAPIWebsocketTransport(
        websocket=runner_args.websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(),
            serializer=serializer,
            session_timeout=5 * 60,  # the agent says goodbye and hangs up after five minutes
        ),
    )
    await run_agent(transport, runner_args)


if __name__ == "__main__":
    from callpipe.runner.run import main

    main()
