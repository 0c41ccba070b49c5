"""``callpipe fakes``: the provider fakes on loopback, for running a bot with no keys.

Starts a fake of every provider callpipe has a service for on 127.0.0.1 (Deepgram listen, Flux
and speak; OpenAI and OpenAI Realtime; Anthropic; Gemini; Cartesia speech and transcription;
ElevenLabs speech and both its transcription APIs; AssemblyAI; Soniox; Speechmatics; Gladia; Rime
speech; Sarvam speech-to-text and speech; Mistral speech-to-text and speech; Fish Audio speech;
Azure speech and speech-to-text; Amazon Polly speech; xAI speech-to-text and speech; Together
AI speech-to-text and speech; Resemble AI speech)
and prints the environment that points the services at them (export it, or pass
``--env-file .env`` for the runner to load). The LLMs answer the scripted ``--reply`` texts in
order, then echo the caller ("You said: …"); each LLM has its own script, so a bot sees the
replies whichever it uses. The speech-to-text fakes transcribe any speech as the next
``--transcript`` (default "hello"; AssemblyAI's and Speechmatics' "Hello."), each from its own
copy of the list; the TTS fakes speak a tone whose length follows the text. OpenAI Realtime
hears speech the same way and answers with the replies, then echoes. The fakes accept any API
key unless ``--api-key`` is given (an OpenAI-compatible client with a custom base URL may send
none).

Environment printed (the services read these when no ``url=``/``base_url=`` is passed):

- ``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL``, as the vendors' SDKs read them;
- ``CALLPIPE_OPENAI_COMPATIBLE_URL`` (the OpenAI fake's chat completions, for the
  OpenAI-compatible LLM services: Together, NVIDIA, DeepSeek, Cerebras, Fireworks, Mistral, xAI,
  OpenRouter, Perplexity, Sarvam, …) and ``CALLPIPE_GROQ_URL`` (its Groq routes, for Groq's LLM,
  STT and TTS);
- ``CALLPIPE_OPENAI_REALTIME_URL`` (the Realtime socket), ``CALLPIPE_GEMINI_URL``,
  ``CALLPIPE_GEMINI_LIVE_URL`` (the Live API, which hears and answers as OpenAI Realtime does);
- ``CALLPIPE_ULTRAVOX_URL`` (Ultravox's create-call API; the call's socket comes in its
  answer, and the agent hears and answers as OpenAI Realtime does);
- ``CALLPIPE_DEEPGRAM_URL`` (listen), ``CALLPIPE_DEEPGRAM_FLUX_URL``,
  ``CALLPIPE_DEEPGRAM_TTS_URL``;
- ``CALLPIPE_CARTESIA_URL`` (speech), ``CALLPIPE_CARTESIA_STT_URL``, ``CALLPIPE_CARTESIA_API_URL``
  (speech over HTTP);
- ``CALLPIPE_ELEVENLABS_URL`` (speech), ``CALLPIPE_ELEVENLABS_STT_URL`` (realtime
  transcription), ``CALLPIPE_ELEVENLABS_API_URL`` (per-utterance transcription and speech over
  HTTP);
- ``CALLPIPE_ASSEMBLYAI_URL``, ``CALLPIPE_SONIOX_URL``, ``CALLPIPE_SPEECHMATICS_URL``;
- ``CALLPIPE_SONIOX_TTS_URL`` (Soniox's speech socket), ``CALLPIPE_SPEECHMATICS_TTS_URL``
  (Speechmatics' ``/generate/<voice>``);
- ``CALLPIPE_GLADIA_URL`` (Gladia's session endpoint; the socket's URL comes in its answer);
- ``CALLPIPE_SARVAM_URL`` (Sarvam's speech-to-text and speech sockets, one origin),
  ``CALLPIPE_SARVAM_API_URL`` (its speech over REST);
- ``CALLPIPE_RIME_URL`` (speech over the socket), ``CALLPIPE_RIME_API_URL`` (over HTTP);
- ``CALLPIPE_ASYNCAI_URL`` (Async's speech socket), ``CALLPIPE_ASYNCAI_API_URL`` (its speech
  over HTTP), ``CALLPIPE_CAMB_URL`` (Camb.ai's ``/tts-stream``, the ``.../apis`` base);
- ``CALLPIPE_XAI_STT_URL`` (xAI's speech-to-text socket), ``CALLPIPE_XAI_URL`` (its speech
  socket), ``CALLPIPE_XAI_API_URL`` (its speech over HTTP);
- ``CALLPIPE_INWORLD_URL`` (speech over the socket), ``CALLPIPE_INWORLD_API_URL`` (over HTTP);
- ``CALLPIPE_HUME_URL`` (Hume's speech, ``/v0/tts/stream/json``);
- ``CALLPIPE_SPEECHIFY_URL`` (Speechify's speech with word timing,
  ``/v1/audio/stream/with-timestamps``);
- ``CALLPIPE_GOOGLE_TTS_URL`` (Google Cloud Text-to-Speech, ``text:synthesize``);
- ``CALLPIPE_GOOGLE_TTS_GRPC_URL`` (its gRPC ``StreamingSynthesize``, no TLS, any caller; served
  when grpcio and Google's SDK, the ``google`` extra, are installed);
- ``CALLPIPE_GOOGLE_SPEECH_URL`` (Google Cloud Speech-to-Text v2's gRPC ``StreamingRecognize``, no
  TLS, any caller; served when Google's Speech SDK, the ``google`` extra, is installed);
- ``CALLPIPE_NVIDIA_RIVA_URL`` (NVIDIA Riva's gRPC recognition and synthesis, no TLS; served when
  NVIDIA's client, the ``nvidia`` extra, is installed);
- ``CALLPIPE_MINIMAX_URL`` (MiniMax's T2A speech, ``/v1/t2a_v2``);
- ``CALLPIPE_MISTRAL_URL`` (Mistral's realtime transcription socket), ``CALLPIPE_MISTRAL_API_URL``
  (its Voxtral speech, ``/v1/audio/speech``);
- ``CALLPIPE_SMALLEST_URL`` (Smallest AI's speech-to-text and speech sockets, one origin);
- ``CALLPIPE_TOGETHER_URL`` (Together AI's transcription and speech sockets, the ``.../v1``
  base), ``CALLPIPE_RESEMBLE_URL`` (Resemble AI's streaming speech socket);
- ``CALLPIPE_FISH_URL`` (Fish Audio's live speech socket; its fake needs the ``fish`` extra
  only once a session starts);
- ``CALLPIPE_AZURE_SPEECH_URL`` (Azure Speech's REST synthesis and short-audio recognition, one
  custom-domain origin);
- ``CALLPIPE_AWS_POLLY_URL`` (Amazon Polly's ``/v1/speech``; it checks the SigV4 signature of the
  printed ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, so export them only in the bot's
  shell);
- ``CALLPIPE_AWS_BEDROCK_URL`` (Amazon Bedrock's ``ConverseStream``, signed with the same keys);
- ``CALLPIPE_AWS_TRANSCRIBE_URL`` (Amazon Transcribe's streaming socket, presigned with the same
  keys);
- ``CALLPIPE_MEM0_URL`` (the Mem0 Platform API's memory add, search and list, for
  ``Mem0MemoryService``);

and an API key variable for each provider.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from callpipe.services import _env
from callpipe.testing.fakes._server import ServedFake
from callpipe.testing.fakes.anthropic import FakeAnthropicServer
from callpipe.testing.fakes.assemblyai import FakeAssemblyAIServer
from callpipe.testing.fakes.asyncai import FakeAsyncAIHTTPServer, FakeAsyncAIServer
from callpipe.testing.fakes.aws import FAKE_ACCESS_KEY_ID, FakeAWSPollyServer
from callpipe.testing.fakes.aws_transcribe import FakeAWSTranscribeServer
from callpipe.testing.fakes.azure import FakeAzureSpeechServer
from callpipe.testing.fakes.bedrock import FakeAWSBedrockServer
from callpipe.testing.fakes.camb import FakeCambServer
from callpipe.testing.fakes.cartesia import (
    FakeCartesiaHTTPServer,
    FakeCartesiaServer,
    FakeCartesiaSTTServer,
)
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.deepgram_flux import FakeDeepgramFluxServer
from callpipe.testing.fakes.deepgram_tts import FakeDeepgramTTSServer
from callpipe.testing.fakes.elevenlabs import (
    FakeElevenLabsHTTPServer,
    FakeElevenLabsServer,
    FakeElevenLabsSTTServer,
)
from callpipe.testing.fakes.fish import FakeFishServer
from callpipe.testing.fakes.gemini import FakeGeminiServer
from callpipe.testing.fakes.gemini_live import FakeGeminiLiveServer, LiveReply
from callpipe.testing.fakes.gladia import FakeGladiaServer
from callpipe.testing.fakes.google_speech import FakeGoogleSpeechServer
from callpipe.testing.fakes.google_tts import FakeGoogleTTSServer
from callpipe.testing.fakes.hume import FakeHumeServer
from callpipe.testing.fakes.inworld import FakeInworldHTTPServer, FakeInworldServer
from callpipe.testing.fakes.mem0 import FakeMem0Server
from callpipe.testing.fakes.minimax import FakeMiniMaxServer
from callpipe.testing.fakes.mistral import FakeMistralRealtimeServer, FakeMistralSpeechServer
from callpipe.testing.fakes.neuphonic import FakeNeuphonicHTTPServer, FakeNeuphonicServer
from callpipe.testing.fakes.nvidia_riva import FakeRivaServer
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.fakes.openai_realtime import FakeOpenAIRealtimeServer, RealtimeReply
from callpipe.testing.fakes.resembleai import FakeResembleServer
from callpipe.testing.fakes.rime import FakeRimeHTTPServer, FakeRimeServer
from callpipe.testing.fakes.sarvam import FakeSarvamHTTPServer, FakeSarvamServer
from callpipe.testing.fakes.smallest import FakeSmallestServer
from callpipe.testing.fakes.soniox import PATH as SONIOX_PATH
from callpipe.testing.fakes.soniox import FakeSonioxServer, FakeSonioxTTSServer
from callpipe.testing.fakes.speechify import FakeSpeechifyServer
from callpipe.testing.fakes.speechmatics import PATH as SPEECHMATICS_PATH
from callpipe.testing.fakes.speechmatics import FakeSpeechmaticsServer, FakeSpeechmaticsTTSServer
from callpipe.testing.fakes.together import FakeTogetherServer
from callpipe.testing.fakes.ultravox import FakeUltravoxServer, UltravoxReply
from callpipe.testing.fakes.xai import FakeXAIHTTPTTSServer, FakeXAISTTServer, FakeXAITTSServer

if TYPE_CHECKING:
    from callpipe.testing.fakes.google_tts_grpc import FakeGoogleTTSGrpcServer

DEFAULT_KEY = "fake-key"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callpipe fakes",
        description=(
            "Serve local fakes of every provider callpipe supports (Deepgram, OpenAI, Anthropic, "
            "Gemini, Cartesia, ElevenLabs, AssemblyAI, Soniox, Speechmatics, Gladia, Rime, Sarvam) "
            "on "
            "127.0.0.1 "
            "and print the environment that points callpipe's services at them."
        ),
    )
    p.add_argument(
        "--reply",
        action="append",
        default=[],
        metavar="TEXT",
        help="the LLM's next answer; repeatable (then it echoes the caller)",
    )
    p.add_argument(
        "--transcript",
        action="append",
        default=[],
        metavar="TEXT",
        help='what the STT fakes hear; repeatable (default "hello")',
    )
    p.add_argument(
        "--api-key",
        default=None,
        help=f"make every fake require this key (default: accept any; {DEFAULT_KEY!r} is printed)",
    )
    p.add_argument("--env-file", metavar="PATH", help="also write the environment to PATH")
    return p


class Fakes:
    """The fakes, scripted from the command line."""

    def __init__(
        self, api_key: str | None, replies: Sequence[str], transcripts: Sequence[str]
    ) -> None:
        self.deepgram = FakeDeepgramServer(api_key=api_key)
        self.deepgram_flux = FakeDeepgramFluxServer(api_key=api_key)
        self.deepgram_tts = FakeDeepgramTTSServer(api_key=api_key)
        self.openai = FakeOpenAIServer(api_key=api_key)
        self.openai_realtime = FakeOpenAIRealtimeServer(api_key=api_key)
        self.anthropic = FakeAnthropicServer(api_key=api_key)
        self.gemini = FakeGeminiServer(api_key=api_key)
        self.gemini_live = FakeGeminiLiveServer(api_key=api_key)
        self.ultravox = FakeUltravoxServer(api_key=api_key)
        self.cartesia = FakeCartesiaServer(api_key=api_key)
        self.cartesia_stt = FakeCartesiaSTTServer(api_key=api_key)
        self.cartesia_api = FakeCartesiaHTTPServer(api_key=api_key)
        self.elevenlabs = FakeElevenLabsServer(api_key=api_key)
        self.elevenlabs_stt = FakeElevenLabsSTTServer(api_key=api_key)
        self.elevenlabs_api = FakeElevenLabsHTTPServer(api_key=api_key)
        self.assemblyai = FakeAssemblyAIServer(api_key=api_key)
        self.soniox = FakeSonioxServer(api_key=api_key)
        self.speechmatics = FakeSpeechmaticsServer(api_key=api_key)
        self.soniox_tts = FakeSonioxTTSServer(api_key=api_key)
        self.speechmatics_tts = FakeSpeechmaticsTTSServer(api_key=api_key)
        self.gladia = FakeGladiaServer(api_key=api_key)
        self.sarvam = FakeSarvamServer(api_key=api_key)
        self.sarvam_api = FakeSarvamHTTPServer(api_key=api_key)
        self.rime = FakeRimeServer(api_key=api_key)
        self.rime_api = FakeRimeHTTPServer(api_key=api_key)
        self.asyncai = FakeAsyncAIServer(api_key=api_key)
        self.asyncai_api = FakeAsyncAIHTTPServer(api_key=api_key)
        self.camb = FakeCambServer(api_key=api_key)
        self.xai_stt = FakeXAISTTServer(api_key=api_key)
        self.xai = FakeXAITTSServer(api_key=api_key)
        self.xai_api = FakeXAIHTTPTTSServer(api_key=api_key)
        self.neuphonic = FakeNeuphonicServer(api_key=api_key)
        self.neuphonic_api = FakeNeuphonicHTTPServer(api_key=api_key)
        self.inworld = FakeInworldServer(api_key=api_key)
        self.inworld_api = FakeInworldHTTPServer(api_key=api_key)
        self.hume = FakeHumeServer(api_key=api_key)
        self.speechify = FakeSpeechifyServer(api_key=api_key)
        self.google_tts = FakeGoogleTTSServer(api_key=api_key)
        self.google_tts_grpc = _google_tts_grpc_fake()
        self.google_speech = _google_speech_fake()
        self.nvidia_riva = _nvidia_riva_fake(api_key)
        self.fish = FakeFishServer(api_key=api_key)
        self.minimax = FakeMiniMaxServer(api_key=api_key)
        self.mistral = FakeMistralRealtimeServer(api_key=api_key)
        self.mistral_api = FakeMistralSpeechServer(api_key=api_key)
        self.smallest = FakeSmallestServer(api_key=api_key)
        self.together = FakeTogetherServer(api_key=api_key)
        self.resemble = FakeResembleServer(api_key=api_key)
        self.azure = FakeAzureSpeechServer(api_key=api_key)
        self.aws_polly = FakeAWSPollyServer(secret_key=api_key)
        self.aws_bedrock = FakeAWSBedrockServer(secret_key=api_key)
        self.aws_transcribe = FakeAWSTranscribeServer(secret_key=api_key)
        self.mem0 = FakeMem0Server(api_key=api_key)
        self.api_key = api_key or DEFAULT_KEY
        for text in replies:
            self.openai.add_chat_reply(text)
            self.anthropic.add_reply(text)
            self.aws_bedrock.add_reply(text)
            self.gemini.add_reply(text)
            self.gemini_live.replies.append(LiveReply(text))
            self.openai_realtime.replies.append(RealtimeReply(transcript=text))
            self.ultravox.replies.append(UltravoxReply(text))
        self.openai_realtime.echo = True
        self.openai_realtime.transcripts.extend(transcripts)
        self.gemini_live.echo = True
        self.gemini_live.transcripts.extend(transcripts)
        self.ultravox.echo = True
        self.ultravox.transcripts.extend(transcripts)
        for heard in (
            self.deepgram.transcripts,
            self.deepgram_flux.transcripts,
            self.openai.transcripts,
            self.cartesia_stt.transcripts,
            self.xai_stt.transcripts,
            self.elevenlabs_stt.transcripts,
            self.elevenlabs_api.transcripts,
            self.assemblyai.transcripts,
            self.soniox.transcripts,
            self.speechmatics.transcripts,
            self.gladia.transcripts,
            self.sarvam.transcripts,
            self.mistral.transcripts,
            self.together.transcripts,
            self.azure.transcripts,
            self.aws_transcribe.transcripts,
        ):
            heard.extend(transcripts)
        if self.google_speech is not None:
            self.google_speech.transcripts.extend(transcripts)
        if self.nvidia_riva is not None:
            self.nvidia_riva.transcripts.extend(transcripts)

    @property
    def all(self) -> tuple[ServedFake, ...]:
        return (
            self.deepgram,
            self.deepgram_flux,
            self.deepgram_tts,
            self.openai,
            self.openai_realtime,
            self.anthropic,
            self.gemini,
            self.gemini_live,
            self.ultravox,
            self.cartesia,
            self.cartesia_stt,
            self.cartesia_api,
            self.elevenlabs,
            self.elevenlabs_stt,
            self.elevenlabs_api,
            self.assemblyai,
            self.soniox,
            self.speechmatics,
            self.soniox_tts,
            self.speechmatics_tts,
            self.gladia,
            self.sarvam,
            self.sarvam_api,
            self.rime,
            self.rime_api,
            self.asyncai,
            self.asyncai_api,
            self.camb,
            self.xai_stt,
            self.xai,
            self.xai_api,
            self.neuphonic,
            self.neuphonic_api,
            self.inworld,
            self.inworld_api,
            self.hume,
            self.speechify,
            self.google_tts,
            self.fish,
            self.minimax,
            self.mistral,
            self.mistral_api,
            self.smallest,
            self.together,
            self.resemble,
            self.azure,
            self.aws_polly,
            self.aws_bedrock,
            self.aws_transcribe,
            self.mem0,
        ) + tuple(
            f for f in (self.google_tts_grpc, self.google_speech, self.nvidia_riva) if f is not None
        )

    async def start(self) -> None:
        for fake in self.all:
            await fake.start()

    async def stop(self) -> None:
        for fake in self.all:
            with contextlib.suppress(Exception):
                await fake.stop()

    def environment(self) -> dict[str, str]:
        key = self.api_key
        return {
            _env.OPENAI_BASE_URL_ENV: self.openai.base_url,
            _env.OPENAI_REALTIME_URL_ENV: self.openai_realtime.base_url,
            "OPENAI_API_KEY": key,
            _env.OPENAI_COMPATIBLE_URL_ENV: self.openai.base_url,
            **dict.fromkeys(_OPENAI_COMPATIBLE_KEYS, key),
            _env.GROQ_URL_ENV: self.openai.groq_base_url,
            _env.ANTHROPIC_BASE_URL_ENV: self.anthropic.base_url,
            "ANTHROPIC_API_KEY": key,
            _env.GEMINI_URL_ENV: self.gemini.base_url,
            _env.GEMINI_LIVE_URL_ENV: self.gemini_live.base_url,
            "GOOGLE_API_KEY": key,
            _env.ULTRAVOX_URL_ENV: self.ultravox.base_url,
            "ULTRAVOX_API_KEY": key,
            _env.DEEPGRAM_URL_ENV: self.deepgram.url,
            _env.DEEPGRAM_FLUX_URL_ENV: self.deepgram_flux.url,
            _env.DEEPGRAM_TTS_URL_ENV: self.deepgram_tts.url,
            "DEEPGRAM_API_KEY": key,
            _env.CARTESIA_URL_ENV: self.cartesia.url,
            _env.CARTESIA_STT_URL_ENV: self.cartesia_stt.url,
            _env.CARTESIA_API_URL_ENV: self.cartesia_api.base_url,
            "CARTESIA_API_KEY": key,
            _env.ELEVENLABS_URL_ENV: self.elevenlabs.url,
            _env.ELEVENLABS_STT_URL_ENV: self.elevenlabs_stt.url,
            _env.ELEVENLABS_API_URL_ENV: self.elevenlabs_api.base_url,
            "ELEVENLABS_API_KEY": key,
            _env.ASSEMBLYAI_URL_ENV: self.assemblyai.url,
            "ASSEMBLYAI_API_KEY": key,
            _env.SONIOX_URL_ENV: self.soniox.url + SONIOX_PATH,
            "SONIOX_API_KEY": key,
            _env.SPEECHMATICS_URL_ENV: self.speechmatics.url + SPEECHMATICS_PATH,
            "SPEECHMATICS_API_KEY": key,
            _env.SONIOX_TTS_URL_ENV: self.soniox_tts.url,
            _env.SPEECHMATICS_TTS_URL_ENV: self.speechmatics_tts.base_url,
            _env.GLADIA_URL_ENV: self.gladia.base_url,
            "GLADIA_API_KEY": key,
            _env.SARVAM_URL_ENV: self.sarvam.url,
            _env.SARVAM_API_URL_ENV: self.sarvam_api.base_url,
            "SARVAM_API_KEY": key,
            _env.RIME_URL_ENV: self.rime.url,
            _env.RIME_API_URL_ENV: self.rime_api.base_url,
            "RIME_API_KEY": key,
            _env.ASYNCAI_URL_ENV: self.asyncai.url,
            _env.ASYNCAI_API_URL_ENV: self.asyncai_api.base_url,
            "ASYNCAI_API_KEY": key,
            _env.CAMB_URL_ENV: self.camb.base_url,
            "CAMB_API_KEY": key,
            _env.XAI_STT_URL_ENV: self.xai_stt.url,
            _env.XAI_URL_ENV: self.xai.url,
            _env.XAI_API_URL_ENV: self.xai_api.base_url,
            "XAI_API_KEY": key,
            _env.NEUPHONIC_URL_ENV: self.neuphonic.url,
            _env.NEUPHONIC_API_URL_ENV: self.neuphonic_api.base_url,
            "NEUPHONIC_API_KEY": key,
            _env.INWORLD_URL_ENV: self.inworld.url,
            _env.INWORLD_API_URL_ENV: self.inworld_api.base_url,
            "INWORLD_API_KEY": key,
            _env.HUME_URL_ENV: self.hume.base_url,
            "HUME_API_KEY": key,
            _env.SPEECHIFY_URL_ENV: self.speechify.base_url,
            "SPEECHIFY_API_KEY": key,
            _env.GOOGLE_TTS_URL_ENV: self.google_tts.base_url,
            **(
                {_env.GOOGLE_TTS_GRPC_URL_ENV: self.google_tts_grpc.url}
                if self.google_tts_grpc is not None
                else {}
            ),
            **(
                {_env.GOOGLE_SPEECH_URL_ENV: self.google_speech.base_url}
                if self.google_speech is not None
                else {}
            ),
            **(
                {_env.NVIDIA_RIVA_URL_ENV: self.nvidia_riva.base_url}
                if self.nvidia_riva is not None
                else {}
            ),
            _env.FISH_URL_ENV: self.fish.url,
            "FISH_API_KEY": key,
            _env.MINIMAX_URL_ENV: self.minimax.base_url,
            "MINIMAX_API_KEY": key,
            _env.MISTRAL_URL_ENV: self.mistral.url,
            _env.MISTRAL_API_URL_ENV: self.mistral_api.base_url,
            "MISTRAL_API_KEY": key,
            _env.SMALLEST_URL_ENV: self.smallest.url,
            "SMALLEST_API_KEY": key,
            _env.TOGETHER_URL_ENV: self.together.base_url,
            "TOGETHER_API_KEY": key,
            _env.RESEMBLE_URL_ENV: self.resemble.url,
            "RESEMBLE_API_KEY": key,
            _env.AZURE_SPEECH_URL_ENV: self.azure.base_url,
            "AZURE_SPEECH_API_KEY": key,
            _env.AWS_POLLY_URL_ENV: self.aws_polly.base_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": key,
            _env.AWS_BEDROCK_URL_ENV: self.aws_bedrock.base_url,
            _env.AWS_TRANSCRIBE_URL_ENV: self.aws_transcribe.url,
            _env.MEM0_URL_ENV: self.mem0.base_url,
            "MEM0_API_KEY": key,
        }


#: The key variables of the OpenAI-compatible LLM services that ``CALLPIPE_OPENAI_COMPATIBLE_URL``
#: (or ``CALLPIPE_GROQ_URL``) points at the OpenAI fake, where no other fake prints them.
_OPENAI_COMPATIBLE_KEYS = (
    "BASETEN_API_KEY",
    "CEREBRAS_API_KEY",
    "CRUSOE_API_KEY",
    "DEEPSEEK_API_KEY",
    "FIREWORKS_API_KEY",
    "GROQ_API_KEY",
    "INCEPTION_API_KEY",
    "NEBIUS_API_KEY",
    "NOVITA_API_KEY",
    "NVIDIA_API_KEY",
    "OPENROUTER_API_KEY",
    "PERPLEXITY_API_KEY",
    "QWEN_API_KEY",
    "SAMBANOVA_API_KEY",
)


def _google_tts_grpc_fake() -> FakeGoogleTTSGrpcServer | None:
    """Google's gRPC speech fake, when grpcio and Google's SDK (the ``google`` extra) are here."""
    try:
        from callpipe.testing.fakes.google_tts_grpc import FakeGoogleTTSGrpcServer
    except ImportError:
        return None
    return FakeGoogleTTSGrpcServer()


def _google_speech_fake() -> FakeGoogleSpeechServer | None:
    """Google's Speech-to-Text fake, when Google's Speech SDK (the ``google`` extra) is here."""
    try:
        found = importlib.util.find_spec("google.cloud.speech_v2")
    except ImportError:  # no google.cloud at all
        found = None
    return FakeGoogleSpeechServer() if found is not None else None


def _nvidia_riva_fake(api_key: str | None) -> FakeRivaServer | None:
    """NVIDIA Riva's fake, when NVIDIA's client (the ``nvidia`` extra) is here."""
    try:
        found = importlib.util.find_spec("riva.client")
    except ImportError:  # no riva at all
        found = None
    return FakeRivaServer(api_key=api_key) if found is not None else None


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()), encoding="utf-8")


async def serve(args: argparse.Namespace) -> None:
    fakes = Fakes(args.api_key, args.reply, args.transcript)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fakes.start()
    try:
        env = fakes.environment()
        lines = [f"export {name}={value}" for name, value in env.items()]
        print("\n".join(lines), flush=True)
        if args.env_file:
            await asyncio.to_thread(_write_env_file, Path(args.env_file), env)
        print(
            "callpipe fakes: serving on 127.0.0.1; export the lines above (or `eval` them) in "
            "the shell that starts your bot. Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await fakes.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
