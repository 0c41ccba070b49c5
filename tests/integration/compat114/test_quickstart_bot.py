"""The common multi-transport Pipecat bot (Daily + WebRTC + Twilio, RTVI processor and observer)
answers a phone call on callpipe's runner: it imports, greets on ``on_client_connected``,
answers a spoken turn, and its RTVI parts stay silent (nothing RTVI on the Twilio WebSocket,
no ``on_client_ready``), with no error in the server log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the bot uses Silero VAD (silero extra)")
pytest.importorskip("espeakng_loader", reason="the caller speaks with eSpeak (espeak extra)")

from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer
from callpipe.testing.simulator import SimulatedCall

from ..runner.harness import run_bot_process

pytestmark = pytest.mark.integration

BOT = Path(__file__).parent / "bots" / "quickstart_bot.py"
MARKER = "rtvi-marker-4711"


async def test_quickstart_bot_answers_a_phone_call(tmp_path: Path) -> None:
    async with (
        FakeOpenAIServer() as openai,
        FakeDeepgramServer() as deepgram,
        FakeCartesiaServer(secs_per_word=0.2) as cartesia,
    ):
        openai.add_chat_reply("Hello, I am your friendly assistant.")
        openai.add_chat_reply("The weather is sunny today.")
        deepgram.transcripts.append("What is the weather like")
        env = {
            "OPENAI_API_KEY": "test-key",
            "OPENAI_BASE_URL": openai.base_url,
            "DEEPGRAM_API_KEY": "test-key",
            "DEEPGRAM_URL": deepgram.url,
            "CARTESIA_API_KEY": "test-key",
            "CARTESIA_URL": cartesia.url,
            "CARTESIA_VOICE_ID": "voice-1",
            "TWILIO_ACCOUNT_SID": "",
            "TWILIO_AUTH_TOKEN": "",
        }
        args = ["-t", "twilio", "--insecure"]
        with run_bot_process(tmp_path, args, env, bot=BOT) as runner:
            url = f"ws://127.0.0.1:{runner.port}/ws"
            async with SimulatedCall(url, "twilio", keep_messages=True) as call:
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.6), runner.output()
                asked_at = call.now()
                await call.say("What is the weather like")
                assert await call.wait_for_bot_turn(timeout=15, quiet_secs=0.8), runner.output()
                await call.hang_up()
                result = call.result()
                received = list(call.received)
            for _ in range(50):
                if runner.reports("finished"):
                    break
                await __import__("asyncio").sleep(0.1)
            output = runner.output()
            finished = runner.reports("finished")
            client_ready = runner.reports("rtvi_client_ready")

    requests = openai.chat_requests
    assert len(requests) >= 2, output
    greeting_request = requests[0]["messages"][-1]
    assert greeting_request["content"] == "Say hello and briefly introduce yourself.", output
    assert requests[1]["messages"][-1] == {"role": "user", "content": "What is the weather like"}
    assert result.bot_speech_secs(0.0, asked_at) > 0.5, output  # the greeting was spoken
    assert result.bot_speech_secs(asked_at + 1.0, result.duration) > 0.5, output  # the answer

    # RTVI stayed off the phone line: only Twilio media-stream events went out.
    assert received
    for message in received:
        assert MARKER not in (message if isinstance(message, str) else message.decode("latin-1"))
        if isinstance(message, str):
            assert json.loads(message)["event"] in {"media", "mark", "clear"}, message
    assert client_ready == [], output
    assert finished and finished[0]["bot_ready"] is False, output

    assert "ERROR" not in output and "Traceback" not in output, output
