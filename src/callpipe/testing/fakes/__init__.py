"""Local fakes of the speech/language providers, for testing bots without the network.

Each fake listens on 127.0.0.1 (a free port), speaks the provider's documented request and
streaming response shapes, is scripted from the test, and records what it received:

- :class:`~callpipe.testing.fakes.openai.FakeOpenAIServer` (chat, Responses, speech, transcriptions)
- :class:`~callpipe.testing.fakes.deepgram.FakeDeepgramServer` (live transcription WebSocket)
- :class:`~callpipe.testing.fakes.deepgram_flux.FakeDeepgramFluxServer` (Flux turn-taking STT)
- :class:`~callpipe.testing.fakes.deepgram_tts.FakeDeepgramTTSServer` (Aura streaming TTS)
- :class:`~callpipe.testing.fakes.cartesia.FakeCartesiaServer` (TTS WebSocket with contexts)
- :class:`~callpipe.testing.fakes.cartesia.FakeCartesiaHTTPServer` (TTS over HTTP, ``/tts/bytes``)
- :class:`~callpipe.testing.fakes.elevenlabs.FakeElevenLabsServer` (multi-context TTS WebSocket)
- :class:`~callpipe.testing.fakes.gemini.FakeGeminiServer` (Gemini REST, streamed generateContent)
- :class:`~callpipe.testing.fakes.google_tts.FakeGoogleTTSServer` (Cloud Text-to-Speech REST)
- :class:`~callpipe.testing.fakes.anthropic.FakeAnthropicServer` (Claude Messages API, streamed)
- :class:`~callpipe.testing.fakes.openai_realtime.FakeOpenAIRealtimeServer` (Realtime WebSocket)
- :class:`~callpipe.testing.fakes.gemini_live.FakeGeminiLiveServer` (Live API WebSocket)
- :class:`~callpipe.testing.fakes.assemblyai.FakeAssemblyAIServer` (Universal-Streaming STT)
- :class:`~callpipe.testing.fakes.soniox.FakeSonioxServer` (Soniox real-time STT)
- :class:`~callpipe.testing.fakes.speechmatics.FakeSpeechmaticsServer` (Speechmatics real-time STT)
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AnthropicReply": "callpipe.testing.fakes.anthropic",
    "FakeAnthropicServer": "callpipe.testing.fakes.anthropic",
    "ChatReply": "callpipe.testing.fakes.openai",
    "FakeOpenAIServer": "callpipe.testing.fakes.openai",
    "FakeDeepgramServer": "callpipe.testing.fakes.deepgram",
    "FakeDeepgramFluxServer": "callpipe.testing.fakes.deepgram_flux",
    "FakeDeepgramTTSServer": "callpipe.testing.fakes.deepgram_tts",
    "FakeCartesiaServer": "callpipe.testing.fakes.cartesia",
    "FakeCartesiaHTTPServer": "callpipe.testing.fakes.cartesia",
    "FakeElevenLabsServer": "callpipe.testing.fakes.elevenlabs",
    "FakeGeminiServer": "callpipe.testing.fakes.gemini",
    "FakeAssemblyAIServer": "callpipe.testing.fakes.assemblyai",
    "FakeSonioxServer": "callpipe.testing.fakes.soniox",
    "FakeSpeechmaticsServer": "callpipe.testing.fakes.speechmatics",
    "GeminiReply": "callpipe.testing.fakes.gemini",
    "FakeGoogleTTSServer": "callpipe.testing.fakes.google_tts",
    "FakeGeminiLiveServer": "callpipe.testing.fakes.gemini_live",
    "LiveReply": "callpipe.testing.fakes.gemini_live",
    "FakeOpenAIRealtimeServer": "callpipe.testing.fakes.openai_realtime",
    "RealtimeReply": "callpipe.testing.fakes.openai_realtime",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
