"""A phone bot in your own FastAPI app, without callpipe's runner.

    uvicorn server:app --host 0.0.0.0 --port 7860     # or: python server.py

``POST /`` answers Twilio's voice webhook with TwiML that opens a media stream to ``/ws``;
``/ws`` reads the stream's handshake, builds the transport and runs STT → LLM → TTS on it.
Use this shape when the bot is one part of a larger app. The runner (``main()``) adds webhook
signature checks, one-time stream tokens, capacity limits and graceful drain; here those are
yours to add (see README.md).
"""

from __future__ import annotations

import logging
import os
from typing import Any
from xml.sax.saxutils import quoteattr

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response

from callpipe.audio.vad.silero import SileroVADAnalyzer
from callpipe.errors import ProtocolError
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.aggregators.openai_llm_context import OpenAILLMContext
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.cartesia.tts import CARTESIA_URL, CartesiaTTSService
from callpipe.services.deepgram.stt import DEEPGRAM_URL, DeepgramSTTService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are a friendly phone assistant. Greet the caller in one short sentence, then answer "
    "in one or two short sentences without lists or emojis: everything you write is spoken."
)

# Load the Silero model when the server imports this file, not inside the first call (where
# building the ONNX session would stall every call on the event loop for a moment).
SileroVADAnalyzer()

app = FastAPI()


@app.post("/")
async def voice_webhook(request: Request) -> Response:
    """TwiML for an incoming call: stream the call's audio to our /ws, both ways."""
    host = os.getenv("PUBLIC_HOST") or request.headers.get("host", "localhost")
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(f'wss://{host}/ws')} /></Connect></Response>"
    )
    return Response(content=twiml, media_type="application/xml")


@app.websocket("/ws")
async def media_stream(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        transport_type, call_data = await parse_telephony_websocket(websocket)
    except ProtocolError as exc:  # silent peer, garbage, or not a telephony stream
        logger.info("refused a media stream: %s", exc)
        await websocket.close(code=1002)
        return
    if transport_type != "twilio":
        logger.info("refused a %s media stream: this server speaks Twilio", transport_type)
        await websocket.close(code=1003)
        return
    await run_bot(websocket, call_data["stream_id"], call_data["call_id"])


async def run_bot(websocket: WebSocket, stream_sid: str, call_sid: str) -> None:
    account_sid = os.getenv("TWILIO_ACCOUNT_SID")
    auth_token = os.getenv("TWILIO_AUTH_TOKEN")
    serializer = TwilioFrameSerializer(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=account_sid,
        auth_token=auth_token,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=bool(account_sid and auth_token)),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            vad_analyzer=SileroVADAnalyzer(),
            serializer=serializer,
            session_timeout=5 * 60,
        ),
    )
    stt = DeepgramSTTService(
        encoding="mulaw", url=os.getenv("CALLPIPE_DEEPGRAM_URL") or DEEPGRAM_URL
    )
    llm = OpenAILLMService(
        api_key=os.getenv("OPENAI_API_KEY"),
        model=os.getenv("OPENAI_MODEL", "gpt-4o-mini"),
        base_url=os.getenv("OPENAI_BASE_URL") or None,  # None: api.openai.com
    )
    tts = CartesiaTTSService(
        voice_id=os.getenv("CARTESIA_VOICE_ID", "79a125e8-cd45-4c13-8a67-188112f4dd22"),
        url=os.getenv("CALLPIPE_CARTESIA_URL") or CARTESIA_URL,
    )
    context = OpenAILLMContext([{"role": "system", "content": SYSTEM_PROMPT}])
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
        pipeline, params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000)
    )

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, websocket: Any) -> None:
        await task.queue_frames([context_aggregator.user().get_context_frame()])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, websocket: Any) -> None:
        await task.cancel()

    await PipelineRunner(handle_sigint=False).run(task)


if __name__ == "__main__":
    import uvicorn

    logging.basicConfig(level=logging.INFO)
    uvicorn.run(app, host=os.getenv("HOST", "127.0.0.1"), port=int(os.getenv("PORT", "7860")))
