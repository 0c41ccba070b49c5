"""Outbound end to end on the runner: dial, answered by a voicemail, message after the beep.

POST /calls places the call at a fake Twilio; the signed answer webhook hands out the stream
token; the call simulator plays the voicemail persona on that stream; the bot (VoicemailDetector
+ eSpeak TTS) greets nobody during the greeting, leaves a message naming the dial's metadata
after the beep, and hangs up through the Twilio REST API.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from callpipe.extensions.voicemail import VoicemailDetector
from callpipe.frames.frames import TTSSpeakFrame
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.security import twilio_signature
from callpipe.runner.types import WebSocketRunnerArguments
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.services.espeak import ESpeakTTSService
from callpipe.telephony.dial import ProviderAccount
from callpipe.testing.server import running_server
from callpipe.testing.simulator import CallIdentity, SimulatedCall
from callpipe.testing.simulator.personas import PERSONAS
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from unit.telephony._server import ProviderServer, Reply

pytestmark = pytest.mark.integration

HOST = "bot.example.test"
KEY = "k" * 32
TOKEN = "twilio-auth-token"


async def test_dialed_voicemail_gets_the_personal_message(provider: ProviderServer) -> None:
    messages: list[str] = []

    async def bot(args: WebSocketRunnerArguments) -> None:
        assert args.call_data is not None
        message = f"Hi {args.body['name']}, this is the clinic. Please call us back. Goodbye."
        messages.append(message)
        transport = FastAPIWebsocketTransport(
            websocket=args.websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                serializer=TwilioFrameSerializer(
                    args.call_data.stream_id or "",
                    args.call_data.call_id or "",
                    account_sid="AC1",
                    auth_token="rest-tok",
                    base_url=provider.url,
                ),
            ),
        )
        detector = VoicemailDetector(voicemail_message=message)
        task = PipelineTask(
            Pipeline(
                [
                    transport.input(),
                    detector.detector(),
                    ESpeakTTSService(),
                    detector.gate(),
                    transport.output(),
                ]
            ),
            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        )

        @transport.event_handler("on_client_connected")
        async def greet(transport: Any, client: Any) -> None:
            await task.queue_frames([TTSSpeakFrame(f"Hello {args.body['name']}!")])

        await PipelineRunner(handle_sigint=False).run(task)

    app = create_app(
        bot,
        RunnerConfig(proxy=HOST, transport="twilio"),
        credentials=Credentials(twilio_auth_token=TOKEN, api_key=KEY),
        secret=b"s" * 32,
    )
    app.state.outbound.accounts["twilio"] = ProviderAccount.from_env(
        "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "rest-tok"}
    )
    app.state.outbound.base_urls["twilio"] = provider.url
    provider.script(Reply(201, {"sid": "CA900", "status": "queued"}))

    async with running_server(app) as addr, httpx.AsyncClient(base_url=f"http://{addr}") as http:
        placed = await http.post(
            "/calls",
            json={"to": "+15551234567", "from": "+15557654321", "metadata": {"name": "Ada"}},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert placed.status_code == 201, placed.text
        fields = {"CallSid": "CA900", "From": "+15557654321", "To": "+15551234567"}
        signature = twilio_signature(TOKEN, f"https://{HOST}/", fields.items())
        twiml = await http.post(
            "/",
            content=urlencode(fields),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        token = re.search(r"/ws/([^\"]+)\"", twiml.text)
        assert token is not None
        identity = CallIdentity(call_id="CA900", stream_id="MZ900")
        url = f"ws://{addr}/ws/{token.group(1)}"
        async with SimulatedCall(url, "twilio", identity=identity) as call:
            callee = asyncio.create_task(PERSONAS["voicemail"].answer(call))
            await call.wait_for_hangup(timeout=20.0)
            callee.cancel()
            result = call.result()

    beep_end = await PERSONAS["voicemail"].beep_end(8000)
    assert beep_end is not None
    assert messages == ["Hi Ada, this is the clinic. Please call us back. Goodbye."]
    assert result.bot_speech_secs(0.0, beep_end) < 0.05  # "Hello Ada!" was held, then dropped
    assert result.bot_speech_secs(beep_end, result.duration) > 2.0
    assert result.hung_up_by_bot
    hang_up = [r for r in provider.requests if r.path.endswith("/Calls/CA900.json")]
    assert hang_up and hang_up[-1].body == b"Status=completed"
