"""Local fakes of the speech/language providers, for testing bots without the network.

Each fake listens on 127.0.0.1 (a free port), speaks the provider's documented request and
streaming response shapes, is scripted from the test, and records what it received. One module
per provider (``callpipe.testing.fakes.<provider>``); every fake server class is also named here
(``__all__``, imported only when used: some need a provider's SDK, e.g. the gRPC ones). The
``callpipe fakes`` command serves them all and prints the environment that points callpipe's
services at them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AnthropicReply": "callpipe.testing.fakes.anthropic",
    "ChatReply": "callpipe.testing.fakes.openai",
    "FakeAWSBedrockServer": "callpipe.testing.fakes.bedrock",
    "FakeAWSPollyServer": "callpipe.testing.fakes.aws",
    "FakeAWSTranscribeServer": "callpipe.testing.fakes.aws_transcribe",
    "FakeAnthropicServer": "callpipe.testing.fakes.anthropic",
    "FakeAssemblyAIServer": "callpipe.testing.fakes.assemblyai",
    "FakeAsyncAIHTTPServer": "callpipe.testing.fakes.asyncai",
    "FakeAsyncAIServer": "callpipe.testing.fakes.asyncai",
    "FakeAzureSpeechServer": "callpipe.testing.fakes.azure",
    "FakeCambServer": "callpipe.testing.fakes.camb",
    "FakeCartesiaHTTPServer": "callpipe.testing.fakes.cartesia",
    "FakeCartesiaSTTServer": "callpipe.testing.fakes.cartesia",
    "FakeCartesiaServer": "callpipe.testing.fakes.cartesia",
    "FakeDeepgramFluxServer": "callpipe.testing.fakes.deepgram_flux",
    "FakeDeepgramServer": "callpipe.testing.fakes.deepgram",
    "FakeDeepgramTTSServer": "callpipe.testing.fakes.deepgram_tts",
    "FakeElevenLabsHTTPServer": "callpipe.testing.fakes.elevenlabs",
    "FakeElevenLabsSTTServer": "callpipe.testing.fakes.elevenlabs",
    "FakeElevenLabsServer": "callpipe.testing.fakes.elevenlabs",
    "FakeFishServer": "callpipe.testing.fakes.fish",
    "FakeGeminiLiveServer": "callpipe.testing.fakes.gemini_live",
    "FakeGeminiServer": "callpipe.testing.fakes.gemini",
    "FakeGladiaServer": "callpipe.testing.fakes.gladia",
    "FakeGoogleSpeechServer": "callpipe.testing.fakes.google_speech",
    "FakeGoogleTTSGrpcServer": "callpipe.testing.fakes.google_tts_grpc",
    "FakeGoogleTTSServer": "callpipe.testing.fakes.google_tts",
    "FakeHumeServer": "callpipe.testing.fakes.hume",
    "FakeInworldHTTPServer": "callpipe.testing.fakes.inworld",
    "FakeInworldServer": "callpipe.testing.fakes.inworld",
    "FakeMem0Server": "callpipe.testing.fakes.mem0",
    "FakeMiniMaxServer": "callpipe.testing.fakes.minimax",
    "FakeMistralRealtimeServer": "callpipe.testing.fakes.mistral",
    "FakeMistralSpeechServer": "callpipe.testing.fakes.mistral",
    "FakeNeuphonicHTTPServer": "callpipe.testing.fakes.neuphonic",
    "FakeNeuphonicServer": "callpipe.testing.fakes.neuphonic",
    "FakeOpenAIRealtimeServer": "callpipe.testing.fakes.openai_realtime",
    "FakeOpenAIServer": "callpipe.testing.fakes.openai",
    "FakeResembleServer": "callpipe.testing.fakes.resembleai",
    "FakeRimeHTTPServer": "callpipe.testing.fakes.rime",
    "FakeRimeServer": "callpipe.testing.fakes.rime",
    "FakeRivaServer": "callpipe.testing.fakes.nvidia_riva",
    "FakeSarvamHTTPServer": "callpipe.testing.fakes.sarvam",
    "FakeSarvamServer": "callpipe.testing.fakes.sarvam",
    "FakeSmallestServer": "callpipe.testing.fakes.smallest",
    "FakeSonioxServer": "callpipe.testing.fakes.soniox",
    "FakeSonioxTTSServer": "callpipe.testing.fakes.soniox",
    "FakeSpeechifyServer": "callpipe.testing.fakes.speechify",
    "FakeSpeechmaticsServer": "callpipe.testing.fakes.speechmatics",
    "FakeSpeechmaticsTTSServer": "callpipe.testing.fakes.speechmatics",
    "FakeTogetherServer": "callpipe.testing.fakes.together",
    "FakeUltravoxServer": "callpipe.testing.fakes.ultravox",
    "FakeXAIHTTPTTSServer": "callpipe.testing.fakes.xai",
    "FakeXAISTTServer": "callpipe.testing.fakes.xai",
    "FakeXAITTSServer": "callpipe.testing.fakes.xai",
    "GeminiReply": "callpipe.testing.fakes.gemini",
    "LiveReply": "callpipe.testing.fakes.gemini_live",
    "RealtimeReply": "callpipe.testing.fakes.openai_realtime",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
