"""``callpipe fakes``: the provider fakes on loopback, and the environment that reaches them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callpipe.frames.frames import ErrorFrame, LLMTextFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.processors.aggregators.openai_llm_context import (
    OpenAILLMContext,
    OpenAILLMContextFrame,
)
from callpipe.services.anthropic.llm import AnthropicLLMService
from callpipe.services.assemblyai.stt import AssemblyAISTTService
from callpipe.services.asyncai.tts import AsyncAIHttpTTSService, AsyncAITTSService
from callpipe.services.aws.llm import AWSBedrockLLMService
from callpipe.services.aws.tts import AWSPollyTTSService
from callpipe.services.camb.tts import CambTTSService
from callpipe.services.cartesia.stt import CartesiaSTTService
from callpipe.services.cartesia.tts import CartesiaHttpTTSService
from callpipe.services.deepgram.flux.stt import DeepgramFluxSTTService
from callpipe.services.deepgram.stt import DeepgramSTTService
from callpipe.services.elevenlabs.stt import ElevenLabsRealtimeSTTService, ElevenLabsSTTService
from callpipe.services.elevenlabs.tts import ElevenLabsHttpTTSService
from callpipe.services.gladia.stt import GladiaSTTService
from callpipe.services.google.gemini_live.llm import GeminiLiveLLMService
from callpipe.services.google.llm import GoogleLLMService
from callpipe.services.google.stt import GoogleSTTService
from callpipe.services.google.tts import GoogleHttpTTSService, GoogleTTSService
from callpipe.services.groq.llm import GroqLLMService
from callpipe.services.groq.tts import GroqTTSService
from callpipe.services.hume.tts import HumeTTSService
from callpipe.services.inworld.tts import InworldHttpTTSService, InworldTTSService
from callpipe.services.minimax.tts import MiniMaxHttpTTSService
from callpipe.services.mistral.stt import MistralSTTService
from callpipe.services.mistral.tts import MistralTTSService
from callpipe.services.neuphonic.tts import NeuphonicHttpTTSService, NeuphonicTTSService
from callpipe.services.nvidia.llm import NvidiaLLMService
from callpipe.services.nvidia.stt import NvidiaSTTService
from callpipe.services.nvidia.tts import NvidiaTTSService
from callpipe.services.openai.realtime.llm import OpenAIRealtimeLLMService
from callpipe.services.rime.tts import RimeHttpTTSService, RimeTTSService
from callpipe.services.sarvam.stt import SarvamSTTService
from callpipe.services.sarvam.tts import SarvamHttpTTSService, SarvamTTSService
from callpipe.services.soniox.stt import SonioxSTTService
from callpipe.services.soniox.tts import SonioxTTSService
from callpipe.services.speechify.tts import SpeechifyHttpTTSService
from callpipe.services.speechmatics.stt import SpeechmaticsSTTService
from callpipe.services.speechmatics.tts import SpeechmaticsTTSService
from callpipe.services.together.llm import TogetherLLMService
from callpipe.services.ultravox.llm import OneShotInputParams, UltravoxRealtimeLLMService
from callpipe.services.xai.stt import XAISTTService
from callpipe.services.xai.tts import XAIHttpTTSService, XAITTSService
from callpipe.testing import run_test

EXPECTED = {
    "OPENAI_BASE_URL",
    "CALLPIPE_OPENAI_REALTIME_URL",
    "OPENAI_API_KEY",
    "CALLPIPE_OPENAI_COMPATIBLE_URL",
    "CALLPIPE_GROQ_URL",
    "BASETEN_API_KEY",
    "CEREBRAS_API_KEY",
    "CRUSOE_API_KEY",
    "DEEPSEEK_API_KEY",
    "FIREWORKS_API_KEY",
    "GROQ_API_KEY",
    "INCEPTION_API_KEY",
    "NEBIUS_API_KEY",
    "NOVITA_API_KEY",
    "OPENROUTER_API_KEY",
    "PERPLEXITY_API_KEY",
    "QWEN_API_KEY",
    "SAMBANOVA_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
    "CALLPIPE_GEMINI_URL",
    "CALLPIPE_GEMINI_LIVE_URL",
    "CALLPIPE_ULTRAVOX_URL",
    "ULTRAVOX_API_KEY",
    "CALLPIPE_GOOGLE_TTS_URL",
    "CALLPIPE_GOOGLE_TTS_GRPC_URL",
    "CALLPIPE_GOOGLE_SPEECH_URL",
    "CALLPIPE_NVIDIA_RIVA_URL",
    "NVIDIA_API_KEY",
    "GOOGLE_API_KEY",
    "CALLPIPE_DEEPGRAM_URL",
    "CALLPIPE_DEEPGRAM_FLUX_URL",
    "CALLPIPE_DEEPGRAM_TTS_URL",
    "DEEPGRAM_API_KEY",
    "CALLPIPE_CARTESIA_URL",
    "CALLPIPE_CARTESIA_STT_URL",
    "CALLPIPE_CARTESIA_API_URL",
    "CARTESIA_API_KEY",
    "CALLPIPE_ELEVENLABS_URL",
    "CALLPIPE_ELEVENLABS_STT_URL",
    "CALLPIPE_ELEVENLABS_API_URL",
    "ELEVENLABS_API_KEY",
    "CALLPIPE_ASSEMBLYAI_URL",
    "ASSEMBLYAI_API_KEY",
    "CALLPIPE_SONIOX_URL",
    "SONIOX_API_KEY",
    "CALLPIPE_SPEECHMATICS_URL",
    "SPEECHMATICS_API_KEY",
    "CALLPIPE_SONIOX_TTS_URL",
    "CALLPIPE_SPEECHMATICS_TTS_URL",
    "CALLPIPE_GLADIA_URL",
    "GLADIA_API_KEY",
    "CALLPIPE_HUME_URL",
    "HUME_API_KEY",
    "CALLPIPE_SPEECHIFY_URL",
    "SPEECHIFY_API_KEY",
    "CALLPIPE_RIME_URL",
    "CALLPIPE_RIME_API_URL",
    "RIME_API_KEY",
    "CALLPIPE_ASYNCAI_URL",
    "CALLPIPE_ASYNCAI_API_URL",
    "ASYNCAI_API_KEY",
    "CALLPIPE_CAMB_URL",
    "CAMB_API_KEY",
    "CALLPIPE_XAI_STT_URL",
    "CALLPIPE_XAI_URL",
    "CALLPIPE_XAI_API_URL",
    "XAI_API_KEY",
    "CALLPIPE_NEUPHONIC_URL",
    "CALLPIPE_NEUPHONIC_API_URL",
    "NEUPHONIC_API_KEY",
    "CALLPIPE_INWORLD_URL",
    "CALLPIPE_INWORLD_API_URL",
    "INWORLD_API_KEY",
    "CALLPIPE_SARVAM_URL",
    "CALLPIPE_SARVAM_API_URL",
    "SARVAM_API_KEY",
    "CALLPIPE_FISH_URL",
    "CALLPIPE_MINIMAX_URL",
    "MINIMAX_API_KEY",
    "CALLPIPE_MISTRAL_URL",
    "CALLPIPE_MISTRAL_API_URL",
    "MISTRAL_API_KEY",
    "CALLPIPE_SMALLEST_URL",
    "SMALLEST_API_KEY",
    "CALLPIPE_TOGETHER_URL",
    "TOGETHER_API_KEY",
    "CALLPIPE_RESEMBLE_URL",
    "RESEMBLE_API_KEY",
    "FISH_API_KEY",
    "CALLPIPE_AZURE_SPEECH_URL",
    "AZURE_SPEECH_API_KEY",
    "CALLPIPE_AWS_POLLY_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "CALLPIPE_AWS_BEDROCK_URL",
    "CALLPIPE_AWS_TRANSCRIBE_URL",
    "CALLPIPE_MEM0_URL",
    "MEM0_API_KEY",
}


async def _read_env(proc: asyncio.subprocess.Process) -> dict[str, str]:
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while set(env) != EXPECTED:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert line, "callpipe fakes exited before printing its environment"
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    return env


# Cartesia's API (and its fake) require a version on every connection.
CARTESIA_VERSION = "cartesia_version=2025-04-16"


def _streamed_text(sse: str) -> str:
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_fakes_serve_what_the_printed_environment_points_at(tmp_path: Path) -> None:
    env_file = tmp_path / "fakes.env"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callpipe.cli",
        "fakes",
        "--reply",
        "We open at nine.",
        "--env-file",
        str(env_file),
        "--api-key",
        "k-123",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        env = await _read_env(proc)
        assert all("127.0.0.1" in env[n] for n in EXPECTED if n.endswith("URL"))
        key = env["OPENAI_API_KEY"]
        assert key == "k-123"

        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient() as http:
            chat = await http.post(
                f"{env['OPENAI_BASE_URL']}/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert chat.status_code == 200
            assert _streamed_text(chat.text) == "We open at nine."  # the scripted reply
            again = await http.post(
                f"{env['OPENAI_BASE_URL']}/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert _streamed_text(again.text) == "You said: hi"  # then it echoes
            recalled = await http.post(
                f"{env['CALLPIPE_MEM0_URL']}/v3/memories/search/",
                json={"query": "hi", "filters": {"user_id": "+15550000000"}},
                headers={"Authorization": f"Token {key}"},
            )
            assert recalled.json() == {"results": []}

        sockets = [
            (f"{env['CALLPIPE_DEEPGRAM_URL']}/v1/listen", "Authorization", f"Token {key}"),
            (f"{env['CALLPIPE_DEEPGRAM_TTS_URL']}/v1/speak", "Authorization", f"Token {key}"),
            (f"{env['CALLPIPE_CARTESIA_URL']}/tts/websocket?{CARTESIA_VERSION}", "X-API-Key", key),
            (
                f"{env['CALLPIPE_ELEVENLABS_URL']}/v1/text-to-speech/v/multi-stream-input?output_format=pcm_8000",
                "xi-api-key",
                key,
            ),
        ]
        for url, header, value in sockets:
            async with connect(url, additional_headers={header: value}):
                pass
            with pytest.raises(InvalidStatus):
                async with connect(url, additional_headers={header: "wrong"}):
                    pass
        written = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert written == env
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_by_default_any_key_is_accepted() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callpipe.cli",
        "fakes",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        env = await _read_env(proc)
        assert env["OPENAI_API_KEY"] == "fake-key"  # printed for services that require one
        async with httpx.AsyncClient() as http:
            models = await http.get(f"{env['OPENAI_BASE_URL']}/models")  # no key at all
        assert models.status_code == 200
        async with connect(f"{env['CALLPIPE_CARTESIA_URL']}/tts/websocket?{CARTESIA_VERSION}"):
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


def _tone(rate: int, secs: float, amplitude: int) -> bytes:
    """16-bit PCM: a square wave loud enough for the fakes' speech detectors (or silence)."""
    n = int(rate * secs)
    return b"".join(
        (amplitude if (i // 20) % 2 else -amplitude).to_bytes(2, "little", signed=True)
        for i in range(n)
    )


async def _until(ws: Any, kind: str, field: str = "type") -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get(field) == kind:
            return cast(dict[str, Any], message)


async def test_every_service_reads_its_own_fake_from_the_printed_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callpipe.cli",
        "fakes",
        "--reply",
        "We open at nine.",
        "--transcript",
        "hi there",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        env = await _read_env(proc)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        key = env["OPENAI_API_KEY"]

        # Each streaming service's own socket address opens on a fake that speaks its protocol.
        flux = DeepgramFluxSTTService(sample_rate=16000)
        assert flux.socket_url().startswith(f"{env['CALLPIPE_DEEPGRAM_FLUX_URL']}/v2/listen")
        cartesia = CartesiaSTTService()
        sockets: list[tuple[str, dict[str, str]]] = [
            (DeepgramSTTService()._url + "/v1/listen", {"Authorization": f"Token {key}"}),
            (cartesia.socket_url(), cartesia._headers),
            (ElevenLabsRealtimeSTTService().socket_url(), {"xi-api-key": key}),
            (AssemblyAISTTService(sample_rate=16000).socket_url(), {"Authorization": key}),
        ]
        for url, headers in sockets:
            assert "127.0.0.1" in url
            async with connect(url, additional_headers=headers) as ws:
                await asyncio.wait_for(ws.send(_tone(16000, 0.02, 0)), 5)

        # Soniox and Speechmatics take their configuration as the first message.
        soniox = SonioxSTTService(sample_rate=16000)
        async with connect(
            soniox.socket_url(), additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.send(json.dumps(soniox.config_message()))
            await ws.send(_tone(16000, 0.6, 8000))
            await ws.send("")
            results = [json.loads(m) async for m in ws]
        heard = [t["text"] for r in results for t in r["tokens"] if t["is_final"]]
        assert "".join(heard) == "hi there" and results[-1]["finished"]
        speechmatics = SpeechmaticsSTTService(sample_rate=16000)
        async with connect(
            speechmatics.socket_url(), additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.send(json.dumps(speechmatics.start_recognition()))
            await _until(ws, "RecognitionStarted", "message")
        # Gladia's session starts over HTTP; the socket to stream to comes in its answer.
        gladia = GladiaSTTService(sample_rate=16000)
        _, gladia_socket = await gladia._start_session(json.dumps(gladia.init_request()))
        await gladia.disconnect()
        async with connect(gladia_socket) as ws:
            await ws.send(_tone(16000, 0.6, 8000))
            await ws.send(_tone(16000, 0.2, 0))
            said = await _until(ws, "transcript")
        assert said["data"]["utterance"]["text"] == "hi there"

        # Ultravox's call is created over HTTP; its socket greets with the scripted reply.
        ultravox = UltravoxRealtimeLLMService(params=OneShotInputParams())
        join_url = await ultravox._create_call()
        assert join_url.startswith("ws://127.0.0.1")
        async with connect(join_url) as ws:
            while True:
                message = await asyncio.wait_for(ws.recv(), 10)
                data = json.loads(message) if isinstance(message, str) else {}
                if data.get("type") == "transcript" and data["final"]:
                    break
        assert data["text"] == "We open at nine."

        # Rime's JSON socket speaks a flushed sentence.
        rime = RimeTTSService(voice_id="astra")
        async with connect(
            rime.socket_url(), additional_headers={"Authorization": f"Bearer {key}"}
        ) as ws:
            await ws.send(json.dumps({"text": "Hello there.", "contextId": "c-0"}))
            await ws.send(json.dumps({"operation": "flush"}))
            done = await _until(ws, "done")
        assert done["contextId"] == "c-0"

        # Async's socket speaks a forced transcript once the session's init came.
        asyncai = AsyncAITTSService(voice_id="v", sample_rate=8000)
        async with connect(asyncai.socket_url()) as ws:
            await ws.send(json.dumps(asyncai.init_message()))
            await ws.send(json.dumps({"transcript": "Hi.", "context_id": "c-0", "force": True}))
            audio = await _until(ws, "c-0", "context_id")
        assert audio["audio"]

        # xAI's speech socket speaks an utterance; its speech-to-text socket hears one.
        bearer = {"Authorization": f"Bearer {key}"}
        async with connect(
            XAITTSService(sample_rate=8000).socket_url(), additional_headers=bearer
        ) as ws:
            await ws.send(json.dumps({"type": "text.delta", "delta": "Hello there."}))
            await ws.send(json.dumps({"type": "text.done"}))
            await _until(ws, "audio.done")
        async with connect(
            XAISTTService(sample_rate=16000).socket_url(), additional_headers=bearer
        ) as ws:
            await _until(ws, "transcript.created")
            await ws.send(_tone(16000, 0.6, 8000))
            await ws.send(json.dumps({"type": "audio.done"}))
            done = await _until(ws, "transcript.done")
        assert done["text"] == "hi there"

        # Inworld's socket speaks a context's text, then closes it.
        inworld = InworldTTSService(sample_rate=8000)
        inworld_key = {"Authorization": f"Basic {key}"}
        async with connect(inworld.url, additional_headers=inworld_key) as ws:
            await ws.send(json.dumps(inworld.create_message("c-0")))
            await ws.send(json.dumps({"send_text": {"text": "Hello."}, "contextId": "c-0"}))
            await ws.send(json.dumps({"close_context": {}, "contextId": "c-0"}))
            events: list[str] = []
            while "contextClosed" not in events:
                events += json.loads(await asyncio.wait_for(ws.recv(), 10))["result"]
        assert "audioChunk" in events

        # Neuphonic's socket speaks a passage up to its <STOP>.
        neuphonic = NeuphonicTTSService(sample_rate=8000)
        async with connect(neuphonic.socket_url(), additional_headers={"x-api-key": key}) as ws:
            await ws.send(json.dumps({"text": "Hello there. <STOP>"}))
            said_np = [json.loads(await asyncio.wait_for(ws.recv(), 10))["data"]]
            while not said_np[-1].get("stop"):
                said_np.append(json.loads(await asyncio.wait_for(ws.recv(), 10))["data"])
        assert [d["text"] for d in said_np] == ["Hello ", "there. "]

        # Sarvam: a flush ends the heard speech with the --transcript; speech on one origin.
        sarvam_key = {"Api-Subscription-Key": key}
        sarvam_stt = SarvamSTTService(sample_rate=16000)
        async with connect(sarvam_stt.socket_url(), additional_headers=sarvam_key) as ws:
            await ws.send(sarvam_stt.audio_message(_tone(16000, 0.6, 8000)))
            await ws.send(json.dumps({"type": "flush"}))
            transcript = await _until(ws, "data")
        assert transcript["data"]["transcript"] == "hi there"
        sarvam_tts = SarvamTTSService(sample_rate=16000)
        async with connect(sarvam_tts.socket_url(), additional_headers=sarvam_key) as ws:
            await ws.send(json.dumps(sarvam_tts.config_message()))
            await ws.send(json.dumps({"type": "text", "data": {"text": "Hello there."}}))
            await ws.send(json.dumps({"type": "flush"}))
            await _until(ws, "audio")
            await _until(ws, "event")

        # Flux hears any speech as the next --transcript.
        async with connect(
            flux.socket_url(), additional_headers={"Authorization": f"Token {key}"}
        ) as ws:
            await ws.send(_tone(16000, 0.6, 8000))
            await ws.send(_tone(16000, 0.6, 0))
            turn = await _until(ws, "EndOfTurn", "event")
        assert turn["transcript"] == "hi there"

        # OpenAI Realtime: speech is heard as the transcript, answered with --reply, then echoed.
        realtime = OpenAIRealtimeLLMService()
        assert realtime.base_url.startswith(env["CALLPIPE_OPENAI_REALTIME_URL"])
        bearer = {"Authorization": f"Bearer {key}"}
        async with connect(realtime.base_url, additional_headers=bearer) as ws:
            await _until(ws, "session.created")
            transcription = {"audio": {"input": {"transcription": {"model": "whisper-1"}}}}
            await ws.send(json.dumps({"type": "session.update", "session": transcription}))
            for amplitude, secs in ((8000, 0.6), (0, 0.7)):
                audio = base64.b64encode(_tone(24000, secs, amplitude)).decode()
                await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            heard = await _until(ws, "conversation.item.input_audio_transcription.completed")
            assert heard["transcript"] == "hi there"
            said = await _until(ws, "response.output_audio_transcript.done")
            assert said["transcript"] == "We open at nine."
            await _until(ws, "response.done")
            item = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "and Sunday?"}],
            }
            await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            await ws.send(json.dumps({"type": "response.create"}))
            said = await _until(ws, "response.output_audio_transcript.done")
            assert said["transcript"] == "You said: and Sunday?"

        # Gemini Live, the same over its own socket: speech heard, --reply said.
        live = GeminiLiveLLMService()
        async with connect(f"{live.base_url}?key={key}") as ws:
            await ws.send(json.dumps({"setup": {"model": "models/m"}}))
            for amplitude, secs in ((8000, 0.6), (0, 0.7)):
                blob = {"data": base64.b64encode(_tone(16000, secs, amplitude)).decode()}
                blob["mimeType"] = "audio/pcm;rate=16000"
                await ws.send(json.dumps({"realtimeInput": {"audio": blob}}))
            said_live = ""
            while True:
                content = json.loads(await asyncio.wait_for(ws.recv(), 10)).get("serverContent", {})
                said_live += content.get("outputTranscription", {}).get("text", "")
                if content.get("turnComplete"):
                    break
            assert said_live == "We open at nine."

        async with httpx.AsyncClient(timeout=10) as http:
            # ElevenLabs' per-utterance transcription over HTTP.
            scribe = ElevenLabsSTTService()
            form = {"model_id": "scribe_v2"}
            wav = {"file": ("a.wav", _tone(16000, 0.2, 8000), "audio/wav")}
            answer = await http.post(
                f"{scribe._base_url}/v1/speech-to-text",
                data=form,
                files=wav,
                headers={"xi-api-key": key},
            )
            assert answer.json()["text"] == "hi there"

            # Cartesia's and ElevenLabs' speech over HTTP: audio streams back.
            sonic = CartesiaHttpTTSService(voice_id="v")
            spoken = await http.post(
                f"{sonic.base_url}/tts/bytes",
                json=sonic.request_body("Hello."),
                headers={"X-API-Key": key, "Cartesia-Version": "2026-03-01"},
            )
            assert spoken.status_code == 200 and spoken.content
            flash = ElevenLabsHttpTTSService(voice_id="v")
            query, body = flash.request("Hello.")
            spoken = await http.post(
                f"{flash.base_url}/v1/text-to-speech/v/stream/with-timestamps",
                params=query,
                json=body,
                headers={"xi-api-key": key},
            )
            assert spoken.status_code == 200 and json.loads(spoken.text.splitlines()[0])
            rime_http = RimeHttpTTSService(voice_id="astra")
            spoken = await http.post(
                f"{rime_http.base_url}/v1/rime-tts",
                json=rime_http.request_body("Hello."),
                headers={"Authorization": f"Bearer {key}", "Accept": "audio/L16"},
            )
            assert spoken.status_code == 200 and spoken.content
            asyncai_http = AsyncAIHttpTTSService(voice_id="v", sample_rate=8000)
            spoken = await asyncai_http._http().post(
                "/text_to_speech/streaming", json=asyncai_http.request_body("Hello.")
            )
            await asyncai_http.disconnect()
            assert spoken.status_code == 200 and spoken.content
            camb = CambTTSService()
            spoken = await camb._http().post("tts-stream", json=camb.request_body("Hello."))
            await camb.disconnect()
            assert spoken.status_code == 200 and spoken.content
            xai_http = XAIHttpTTSService(sample_rate=8000)
            spoken = await xai_http._http().post("/v1/tts", json=xai_http.request_body("Hello."))
            await xai_http.disconnect()
            assert spoken.status_code == 200 and spoken.content
            # Polly's fake checks the SigV4 signature made with the printed AWS keys.
            polly = AWSPollyTTSService(sample_rate=8000)
            spoken = await polly._http().post("/v1/speech", json=polly.request_body("Hello."))
            await polly.disconnect()
            assert spoken.status_code == 200 and spoken.content
            bedrock = AWSBedrockLLMService()
            bedrock._ensure_client()
            assert bedrock._client is not None
            hello = {"messages": [{"role": "user", "content": [{"text": "Hi"}]}]}
            answer = await bedrock._client.post(bedrock.path, json=hello)
            await bedrock.disconnect()
            assert answer.status_code == 200 and b"contentBlockDelta" in answer.content
            inworld_http = InworldHttpTTSService(sample_rate=8000)
            spoken = await http.post(
                f"{inworld_http.base_url}/tts/v1/voice:stream",
                json=inworld_http.request_body("Hello."),
                headers={"Authorization": f"Basic {key}"},
            )
            assert spoken.status_code == 200 and json.loads(spoken.text.splitlines()[0])
            neuphonic_http = NeuphonicHttpTTSService(sample_rate=8000)
            spoken = await http.post(
                f"{neuphonic_http.base_url}/sse/speak/en",
                json=neuphonic_http.request_body("Hello."),
                headers={"X-API-KEY": key},
            )
            assert spoken.status_code == 200 and "data: " in spoken.text
            minimax = MiniMaxHttpTTSService(sample_rate=8000)
            spoken = await http.post(
                minimax.endpoint,
                json=minimax.request_body("Hello."),
                headers={"Authorization": f"Bearer {key}"},
            )
            assert spoken.status_code == 200 and '"status": 2' in spoken.text
            bulbul = SarvamHttpTTSService(sample_rate=8000)
            spoken = await http.post(
                f"{bulbul.base_url}/text-to-speech",
                json=bulbul.request_body("Hello."),
                headers={"Api-Subscription-Key": key},
            )
            assert spoken.status_code == 200 and spoken.json()["audios"]
            google_tts = GoogleHttpTTSService(voice_id="en-US-Chirp3-HD-Charon")
            spoken = await http.post(
                f"{google_tts.base_url}/v1/text:synthesize",
                json=google_tts.request_body("Hello."),
                headers={"X-Goog-Api-Key": key},
            )
            assert spoken.status_code == 200 and spoken.json()["audioContent"]
            # Google's gRPC streaming speech: its fake, reached without TLS or credentials.
            streamed, problems = await run_test(GoogleTTSService(), [TTSSpeakFrame("Hello.")])
            assert not [f for f in problems if isinstance(f, ErrorFrame)]
            assert any(isinstance(f, TTSAudioRawFrame) for f in streamed)
            # Soniox's speech socket and Speechmatics' /generate/<voice>, each from its variable.
            for speaker in (SonioxTTSService(), SpeechmaticsTTSService()):
                streamed, problems = await run_test(speaker, [TTSSpeakFrame("Hello.")])
                assert not [f for f in problems if isinstance(f, ErrorFrame)]
                assert any(isinstance(f, TTSAudioRawFrame) for f in streamed)
            octave = HumeTTSService(voice_id="v")
            spoken = await http.post(
                f"{octave.base_url}/v0/tts/stream/json",
                json=octave.request_body("Hello."),
                headers={"X-Hume-Api-Key": key},
            )
            assert spoken.status_code == 200
            assert {json.loads(line)["type"] for line in spoken.text.splitlines()} == {
                "timestamp",
                "audio",
            }
            simba = SpeechifyHttpTTSService(sample_rate=8000)
            spoken = await http.post(
                f"{simba.base_url}/v1/audio/stream/with-timestamps",
                json=simba.request_body("Hello."),
                headers={"Authorization": f"Bearer {key}"},
            )
            assert spoken.status_code == 200 and "event: speech.done" in spoken.text
            voxtral = MistralTTSService(sample_rate=8000)
            said = await http.post(
                f"{voxtral.base_url}/v1/audio/speech",
                json=voxtral.request_body("Hello."),
                headers={"Authorization": f"Bearer {key}"},
            )
            assert said.status_code == 200 and "event: speech.audio.done" in said.text
            mistral_url = MistralSTTService(sample_rate=8000).socket_url()
            assert mistral_url.startswith(env["CALLPIPE_MISTRAL_URL"] + "/v1/audio/transcriptions")

            # Google Speech-to-Text (gRPC): the service's first request, then speech.
            assert await _google_speech_heard(GoogleSTTService(sample_rate=16000)) == "hi there"

            # NVIDIA Riva (gRPC): the services' cloud default gives way to the fake.
            riva_url = env["CALLPIPE_NVIDIA_RIVA_URL"]
            assert f"http://{NvidiaSTTService()._server}" == riva_url
            riva, problems = await run_test(NvidiaTTSService(), [TTSSpeakFrame("Hello.")])
            assert not [f for f in problems if isinstance(f, ErrorFrame)]
            assert any(isinstance(f, TTSAudioRawFrame) for f in riva)

            # Anthropic and Gemini answer --reply, then echo.
            claude = AnthropicLLMService()
            message = {"model": "m", "max_tokens": 50}
            texts = []
            for said_text in ("hi", "hello?"):
                response = await http.post(
                    f"{claude._base_url}/v1/messages",
                    json={**message, "messages": [{"role": "user", "content": said_text}]},
                    headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                )
                texts.append(response.json()["content"][0]["text"])
            assert texts == ["We open at nine.", "You said: hello?"]

            gemini = GoogleLLMService()
            texts = []
            for said_text in ("hi", "hello?"):
                contents = [{"role": "user", "parts": [{"text": said_text}]}]
                response = await http.post(
                    f"{gemini._base_url}/v1beta/models/m:generateContent",
                    json={"contents": contents},
                    headers={"x-goog-api-key": key},
                )
                parts = response.json()["candidates"][0]["content"]["parts"]
                texts.append("".join(part["text"] for part in parts))
            assert texts == ["We open at nine.", "You said: hello?"]

            # The OpenAI-compatible LLMs (one variable for all, Groq's own for its three
            # services) stream from the OpenAI fake's chat script: --reply, then echo.
            said: list[str] = []
            for llm in (TogetherLLMService(), NvidiaLLMService(), GroqLLMService()):
                context = OpenAILLMContext([{"role": "user", "content": "hi"}])
                down, up = await run_test(llm, [OpenAILLMContextFrame(context=context)])
                assert not [f for f in up if isinstance(f, ErrorFrame)], type(llm).__name__
                said.append("".join(f.text for f in down if isinstance(f, LLMTextFrame)))
            assert said == ["We open at nine.", "You said: hi", "You said: hi"]
            groq_voice, problems = await run_test(GroqTTSService(), [TTSSpeakFrame("Hello.")])
            assert not [f for f in problems if isinstance(f, ErrorFrame)]
            assert any(isinstance(f, TTSAudioRawFrame) for f in groq_voice)
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def _google_speech_heard(stt: GoogleSTTService) -> str:
    """The final transcript of a second of tone sent, after ``stt``'s first request, to the
    Speech-to-Text fake named by ``CALLPIPE_GOOGLE_SPEECH_URL``."""
    import grpc
    from google.cloud import speech_v2
    from google.cloud.speech_v2.services.speech.transports import SpeechGrpcAsyncIOTransport
    from google.cloud.speech_v2.types import cloud_speech

    pcm = _tone(16000, 1.0, 8000) + bytes(16000)

    async def requests() -> Any:
        yield stt.first_request()
        for i in range(0, len(pcm), 3200):
            yield cloud_speech.StreamingRecognizeRequest(audio=pcm[i : i + 3200])

    target = os.environ["CALLPIPE_GOOGLE_SPEECH_URL"].split("://", 1)[1]
    channel = grpc.aio.insecure_channel(target)
    client = speech_v2.SpeechAsyncClient(transport=SpeechGrpcAsyncIOTransport(channel=channel))
    try:
        stream = await client.streaming_recognize(requests=requests())
        results = [r async for response in stream for r in response.results if r.is_final]
    finally:
        await client.transport.close()
    return " ".join(r.alternatives[0].transcript for r in results)


def test_a_service_with_its_own_fake_prefers_its_own_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for provider in ("DEEPGRAM", "CARTESIA", "ELEVENLABS", "OPENAI"):
        monkeypatch.setenv(f"{provider}_API_KEY", "k")
    for own in ("DEEPGRAM_FLUX", "CARTESIA_STT", "ELEVENLABS_STT", "ELEVENLABS_API"):
        monkeypatch.delenv(f"CALLPIPE_{own}_URL", raising=False)
    monkeypatch.delenv("CALLPIPE_OPENAI_REALTIME_URL", raising=False)
    for general, value in (
        ("CALLPIPE_DEEPGRAM_URL", "ws://127.0.0.1:1"),
        ("CALLPIPE_CARTESIA_URL", "ws://127.0.0.1:2"),
        ("CALLPIPE_ELEVENLABS_URL", "ws://127.0.0.1:3"),
    ):
        monkeypatch.setenv(general, value)
    # Without the specific variable, the provider's general one still applies.
    assert DeepgramFluxSTTService().socket_url().startswith("ws://127.0.0.1:1/v2/listen?")
    assert CartesiaSTTService().socket_url().startswith("ws://127.0.0.1:2/")
    assert ElevenLabsRealtimeSTTService().socket_url().startswith("ws://127.0.0.1:3/")
    assert ElevenLabsSTTService()._base_url == "https://api.elevenlabs.io"
    assert OpenAIRealtimeLLMService().base_url.startswith("wss://api.openai.com/v1/realtime?")

    monkeypatch.setenv("CALLPIPE_DEEPGRAM_FLUX_URL", "ws://127.0.0.1:11")
    monkeypatch.setenv("CALLPIPE_CARTESIA_STT_URL", "ws://127.0.0.1:12")
    monkeypatch.setenv("CALLPIPE_ELEVENLABS_STT_URL", "ws://127.0.0.1:13")
    monkeypatch.setenv("CALLPIPE_ELEVENLABS_API_URL", "http://127.0.0.1:14/")
    monkeypatch.setenv("CALLPIPE_OPENAI_REALTIME_URL", "ws://127.0.0.1:15/v1/realtime")
    assert DeepgramFluxSTTService().socket_url().startswith("ws://127.0.0.1:11/v2/listen?")
    assert CartesiaSTTService().socket_url().startswith("ws://127.0.0.1:12/")
    assert ElevenLabsRealtimeSTTService().socket_url().startswith("ws://127.0.0.1:13/")
    assert ElevenLabsSTTService()._base_url == "http://127.0.0.1:14"
    realtime = OpenAIRealtimeLLMService(model="gpt-realtime")
    assert realtime.base_url == "ws://127.0.0.1:15/v1/realtime?model=gpt-realtime"

    # An explicit address still wins over every variable.
    flux = DeepgramFluxSTTService(url="ws://127.0.0.1:21")
    assert flux.socket_url().startswith("ws://127.0.0.1:21/v2/listen?")
    assert CartesiaSTTService(url="ws://127.0.0.1:22").socket_url().startswith("ws://127.0.0.1:22/")
    scribe = ElevenLabsSTTService(base_url="http://127.0.0.1:24")
    assert scribe._base_url == "http://127.0.0.1:24"
    explicit = OpenAIRealtimeLLMService(base_url="ws://127.0.0.1:25/rt", model="m")
    assert explicit.base_url == "ws://127.0.0.1:25/rt?model=m"
