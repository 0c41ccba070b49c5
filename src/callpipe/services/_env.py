"""Provider base URLs from the environment, so a bot can be pointed at local fakes unchanged.

``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL`` are the vendor SDKs' own variables; the
``CALLPIPE_*_URL`` ones are callpipe's (``callpipe fakes`` prints them all). A service with a
fake of its own reads its specific variable first (``CALLPIPE_DEEPGRAM_FLUX_URL``), then the
provider's general one (``CALLPIPE_DEEPGRAM_URL``). An explicit constructor argument always wins.
"""

from __future__ import annotations

import os

OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
OPENAI_COMPATIBLE_URL_ENV = "CALLPIPE_OPENAI_COMPATIBLE_URL"
"""The chat-completions base URL (``.../v1``) for every OpenAI-compatible LLM service other than
OpenAI's own (Groq, Together, NVIDIA, DeepSeek, …) whose ``base_url`` is left at its provider's
address: ``callpipe fakes`` points it at its OpenAI fake."""
GROQ_URL_ENV = "CALLPIPE_GROQ_URL"
"""Groq's OpenAI-compatible base URL (``.../openai/v1``) for its LLM, STT and TTS services."""
DEEPGRAM_URL_ENV = "CALLPIPE_DEEPGRAM_URL"
CARTESIA_URL_ENV = "CALLPIPE_CARTESIA_URL"
ELEVENLABS_URL_ENV = "CALLPIPE_ELEVENLABS_URL"
DEEPGRAM_TTS_URL_ENV = "CALLPIPE_DEEPGRAM_TTS_URL"
"""Deepgram's speech socket (``callpipe fakes`` serves listen and speak on two ports)."""
DEEPGRAM_FLUX_URL_ENV = "CALLPIPE_DEEPGRAM_FLUX_URL"
CARTESIA_STT_URL_ENV = "CALLPIPE_CARTESIA_STT_URL"
CARTESIA_API_URL_ENV = "CALLPIPE_CARTESIA_API_URL"
"""Cartesia's HTTP API origin (``/tts/bytes``), served by a fake apart from the sockets."""
ELEVENLABS_STT_URL_ENV = "CALLPIPE_ELEVENLABS_STT_URL"
"""The realtime (WebSocket) speech-to-text socket's origin."""
ELEVENLABS_API_URL_ENV = "CALLPIPE_ELEVENLABS_API_URL"
"""The HTTP API's origin: the per-utterance speech-to-text and the streamed text-to-speech."""
ASSEMBLYAI_URL_ENV = "CALLPIPE_ASSEMBLYAI_URL"
NEUPHONIC_URL_ENV = "CALLPIPE_NEUPHONIC_URL"
"""Neuphonic's TTS socket origin (``/speak/{lang_code}`` is added)."""
NEUPHONIC_API_URL_ENV = "CALLPIPE_NEUPHONIC_API_URL"
"""Neuphonic's HTTP API origin (``/sse/speak/{lang_code}``), faked apart from the socket."""
OPENAI_REALTIME_URL_ENV = "CALLPIPE_OPENAI_REALTIME_URL"
"""The Realtime socket's address, without ``?model=``."""
ANTHROPIC_BASE_URL_ENV = "ANTHROPIC_BASE_URL"
GEMINI_URL_ENV = "CALLPIPE_GEMINI_URL"
GEMINI_LIVE_URL_ENV = "CALLPIPE_GEMINI_LIVE_URL"
"""The Gemini Live API's origin (the ``/ws/...BidiGenerateContent`` path is added)."""
SONIOX_URL_ENV = "CALLPIPE_SONIOX_URL"
"""Soniox's real-time socket (an origin is enough: the path is added)."""
SONIOX_TTS_URL_ENV = "CALLPIPE_SONIOX_TTS_URL"
"""Soniox's text-to-speech socket (an origin is enough: ``/tts-websocket`` is added)."""
SMALLEST_URL_ENV = "CALLPIPE_SMALLEST_URL"
"""Smallest AI's socket origin (``/waves/v1/stt/live`` and ``/waves/v1/tts/live`` are added)."""
SPEECHMATICS_URL_ENV = "CALLPIPE_SPEECHMATICS_URL"
"""Speechmatics' real-time socket (``.../v2``)."""
SPEECHMATICS_TTS_URL_ENV = "CALLPIPE_SPEECHMATICS_TTS_URL"
"""Speechmatics' text-to-speech origin (``/generate/<voice>`` is added)."""
GLADIA_URL_ENV = "CALLPIPE_GLADIA_URL"
"""Gladia's API origin (``/v2/live`` is added; the session's socket URL comes from its answer)."""
GOOGLE_TTS_URL_ENV = "CALLPIPE_GOOGLE_TTS_URL"
"""Google Cloud Text-to-Speech's REST origin (``/v1/text:synthesize`` is added)."""
GOOGLE_SPEECH_URL_ENV = "CALLPIPE_GOOGLE_SPEECH_URL"
"""Google Cloud Speech-to-Text's gRPC address; ``http://host:port`` (a fake): no TLS, anonymous."""
GOOGLE_TTS_GRPC_URL_ENV = "CALLPIPE_GOOGLE_TTS_GRPC_URL"
"""Cloud Text-to-Speech's gRPC endpoint (``StreamingSynthesize``); ``http://host:port`` is a fake's,
reached without TLS and credentials."""
NVIDIA_RIVA_URL_ENV = "CALLPIPE_NVIDIA_RIVA_URL"
"""NVIDIA Riva's gRPC address for the NVIDIA speech services when ``server`` is left at NVIDIA's
cloud; ``http://host:port`` (a fake) is reached without TLS."""
SARVAM_URL_ENV = "CALLPIPE_SARVAM_URL"
"""Sarvam's streaming origin (``/speech-to-text/ws`` and ``/text-to-speech/ws`` are added)."""
SARVAM_API_URL_ENV = "CALLPIPE_SARVAM_API_URL"
"""Sarvam's REST origin (``/text-to-speech``), served by a fake apart from the sockets."""
RIME_URL_ENV = "CALLPIPE_RIME_URL"
"""Rime's JSON socket (an origin is enough: ``/ws3`` is added)."""
RIME_API_URL_ENV = "CALLPIPE_RIME_API_URL"
"""Rime's HTTP API origin (``/v1/rime-tts``), served by a fake apart from the socket."""
HUME_URL_ENV = "CALLPIPE_HUME_URL"
"""Hume's API origin (``/v0/tts/stream/json`` is added)."""
INWORLD_URL_ENV = "CALLPIPE_INWORLD_URL"
"""Inworld's text-to-speech socket (an origin is enough: the documented path is added)."""
INWORLD_API_URL_ENV = "CALLPIPE_INWORLD_API_URL"
"""Inworld's HTTP API origin (``/tts/v1/voice:stream``), served by a fake apart from the socket."""
FISH_URL_ENV = "CALLPIPE_FISH_URL"
"""Fish Audio's live TTS socket (an origin is enough: ``/v1/tts/live`` is added)."""
TOGETHER_URL_ENV = "CALLPIPE_TOGETHER_URL"
"""Together AI's socket base URL (``.../v1``: ``/realtime`` and ``/audio/speech/websocket`` are
added)."""
RESEMBLE_URL_ENV = "CALLPIPE_RESEMBLE_URL"
"""Resemble AI's streaming TTS socket (an origin is enough: ``/stream`` is added)."""
ULTRAVOX_URL_ENV = "CALLPIPE_ULTRAVOX_URL"
"""Ultravox's API origin (``/api/calls`` is added; the socket's URL comes in the answer)."""
MINIMAX_URL_ENV = "CALLPIPE_MINIMAX_URL"
"""MiniMax's T2A endpoint (an origin is enough: ``/v1/t2a_v2`` is added)."""
MISTRAL_URL_ENV = "CALLPIPE_MISTRAL_URL"
"""Mistral's realtime transcription socket (an origin is enough: the documented path is added)."""
MISTRAL_API_URL_ENV = "CALLPIPE_MISTRAL_API_URL"
"""Mistral's HTTP API origin (``POST /v1/audio/speech``), served apart from the socket."""
SPEECHIFY_URL_ENV = "CALLPIPE_SPEECHIFY_URL"
"""Speechify's API origin (``/v1/audio/stream/with-timestamps`` is added)."""
AWS_POLLY_URL_ENV = "CALLPIPE_AWS_POLLY_URL"
"""Amazon Polly's origin (``/v1/speech`` is added); requests to it are signed all the same."""
AWS_BEDROCK_URL_ENV = "CALLPIPE_AWS_BEDROCK_URL"
"""Amazon Bedrock Runtime's origin (``/model/{id}/converse-stream`` is added); signed as well."""
AWS_TRANSCRIBE_URL_ENV = "CALLPIPE_AWS_TRANSCRIBE_URL"
"""Amazon Transcribe's streaming socket (an origin is enough: the documented path is added);
the URL is presigned all the same."""
AZURE_SPEECH_URL_ENV = "CALLPIPE_AZURE_SPEECH_URL"
"""Azure Speech's origin in its custom-domain form (``/tts/...`` and ``/stt/...`` are added)."""
XAI_URL_ENV = "CALLPIPE_XAI_URL"
"""xAI's speech sockets' origin (``/v1/tts``, and ``/v1/stt`` without the next one, are added)."""
XAI_STT_URL_ENV = "CALLPIPE_XAI_STT_URL"
"""xAI's speech-to-text socket's origin (``/v1/stt`` is added), when not ``CALLPIPE_XAI_URL``."""
XAI_API_URL_ENV = "CALLPIPE_XAI_API_URL"
"""xAI's HTTP speech origin (``POST /v1/tts``), served by a fake apart from the sockets."""
ASYNCAI_URL_ENV = "CALLPIPE_ASYNCAI_URL"
"""Async's speech socket (an origin is enough: ``/text_to_speech/websocket/ws`` is added)."""
ASYNCAI_API_URL_ENV = "CALLPIPE_ASYNCAI_API_URL"
"""Async's HTTP origin (``POST /text_to_speech/streaming``), served by a fake apart."""
CAMB_URL_ENV = "CALLPIPE_CAMB_URL"
"""Camb.ai's API base (``.../apis``: ``/tts-stream`` is added)."""
MEM0_URL_ENV = "CALLPIPE_MEM0_URL"
"""The Mem0 Platform API's origin (``/v3/memories/...`` is added), for ``Mem0MemoryService``."""


def base_url(explicit: str | None, env_var: str, default: str) -> str:
    """``explicit``, else the non-empty ``env_var``, else ``default`` (without a trailing /)."""
    return (explicit or os.environ.get(env_var, "").strip() or default).rstrip("/")


def defaulted_base_url(given: str | None, env_var: str, default: str) -> str:
    """For a ``base_url=`` parameter whose default is the provider's own address (as in Pipecat
    1.14): a value other than ``default`` wins; left at it (or empty), ``$env_var`` may replace
    it; else ``default``."""
    explicit = given if given and given.rstrip("/") != default.rstrip("/") else None
    return base_url(explicit, env_var, default)


def specific_base_url(explicit: str | None, specific: str, general: str, default: str) -> str:
    """``explicit``, else ``$specific``, else ``$general``, else ``default``."""
    return base_url(explicit, specific, base_url(None, general, default))


def websocket_origin(address: str) -> str:
    """A WebSocket base URL from a host with an optional scheme, port and path, as Pipecat 1.14's
    ``base_url`` of a streaming service is given: ``ws://`` or ``http://`` stay unencrypted
    (``ws://``), anything else, a bare host included, is ``wss://``."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        return f"wss://{address}".rstrip("/")
    insecure = scheme.lower() in ("ws", "http")
    return f"{'ws' if insecure else 'wss'}://{rest}".rstrip("/")
