"""The phone agent on Telnyx (TeXML application with a media stream).

    python bot_telnyx.py -t telnyx -x HOST

See README.md in this folder.
"""

from __future__ import annotations

import os

from agent import run_agent

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.telnyx import TelnyxFrameSerializer
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

# Load the Silero model when the server imports this file, not inside the first call (where
# building the ONNX session would stall every call on the event loop for a moment).
SileroVADAnalyzer()


async def bot(runner_args: WebSocketRunnerArguments) -> None:
    transport_type, call_data = await parse_telephony_websocket(runner_args.websocket)
    api_key = os.getenv("TELNYX_API_KEY")
    serializer = TelnyxFrameSerializer(
        stream_id=call_data["stream_id"],
        # The codec Telnyx announced in its start message (PCMU or PCMA); we answer in kind.
        outbound_encoding=call_data.get("outbound_encoding", "PCMU"),
        inbound_encoding="PCMU",
        call_control_id=call_data["call_id"],
        api_key=api_key,
        params=TelnyxFrameSerializer.InputParams(auto_hang_up=bool(api_key)),
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
