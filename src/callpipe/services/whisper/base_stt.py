"""Pipecat's ``services.whisper.base_stt`` path: the base of the Whisper-API services (OpenAI's
``/audio/transcriptions`` and the providers that copy it, e.g. Groq).

``BaseWhisperSTTService`` is :class:`~callpipe.services.openai.stt.OpenAISTTService`, which
callpipe's Groq service subclasses too: a custom service for another Whisper-API
provider subclasses it and passes its own ``base_url``, key and model.
"""

from __future__ import annotations

from callpipe.services.openai.stt import OpenAISTTService, OpenAISTTSettings

BaseWhisperSTTService = OpenAISTTService
BaseWhisperSTTSettings = OpenAISTTSettings

__all__ = ["BaseWhisperSTTService", "BaseWhisperSTTSettings"]
