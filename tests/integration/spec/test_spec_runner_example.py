"""The spec's development-runner example as a real process: ``python bot.py -t twilio -x HOST``.

Twilio is impersonated end to end: a signed answer webhook (signature from Twilio's own SDK),
the stream URL taken from the TwiML, then a media stream with real speech. The bot must detect
Twilio, build the serializer from the environment, find the caller's turn with Silero VAD, and
play the utterance back.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import httpx
import pytest

from ..runner.harness import run_bot_process
from ..speech import speech_8k
from ..twilio_harness import ACCOUNT_SID, CALL_SID, TwilioClient

pytestmark = pytest.mark.integration

BOT = Path(__file__).with_name("bot.py")
TOKEN_RE = re.compile(r'<Stream url="wss://example\.test(/ws/[^"]+)"')


async def test_spec_runner_example_serves_a_twilio_call(tmp_path: Path) -> None:
    from twilio.request_validator import RequestValidator

    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": "auth-token-for-tests",
        "CALLPIPE_STREAM_SECRET": "",
    }
    utterance = speech_8k("Good morning, can you hear me?")
    with run_bot_process(tmp_path, ["-t", "twilio", "-x", "example.test"], env, bot=BOT) as runner:
        form = {"CallSid": CALL_SID, "AccountSid": ACCOUNT_SID, "From": "+15550001", "To": "+1555"}
        signature = RequestValidator("auth-token-for-tests").compute_signature(
            "https://example.test/", form
        )
        async with httpx.AsyncClient(base_url=runner.base, timeout=5) as http:
            answer = await http.post("/", data=form, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200, answer.text
        match = TOKEN_RE.search(answer.text)
        assert match, answer.text
        async with TwilioClient(f"ws://127.0.0.1:{runner.port}{match.group(1)}") as client:
            await client.send_silence(0.3)
            await client.send_media(utterance.pcm)
            await client.send_silence(1.2 + utterance.seconds)
            await client.stop()
            await asyncio.sleep(0.5)
        events = [json.loads(line) for line in runner.report.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert events[0] == {"event": "parsed", "transport_type": "twilio", "call_id": CALL_SID}
    assert names.count("on_client_connected") == 1
    assert "UserStartedSpeakingFrame" in names and "UserStoppedSpeakingFrame" in names
    assert names.count("on_client_disconnected") == 1
    assert events[-1] == {"event": "finished", "utterances": 1}
    echoed = len(client.audio()) / 8000
    assert echoed >= utterance.voice_end - utterance.voice_start
