"""OpenAITTSService: ``POST /audio/speech`` with ``response_format=pcm``, streamed.

The endpoint returns raw 24 kHz 16-bit mono PCM as the body streams; it is resampled once
(steady, low-latency) to the pipeline's output rate. One request per sentence; each sentence's
``TTSTextFrame`` follows its audio (the API gives no word timing). An interruption cancels the
worker, which closes the HTTP stream.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

from callpipe.frames.frames import StartFrame
from callpipe.services._http import error_message, is_retryable, retry_after_secs
from callpipe.services.openai._client import OpenAIHTTPMixin
from callpipe.services.tts_service import TTSService

logger = logging.getLogger(__name__)

OPENAI_TTS_SAMPLE_RATE = 24000


class OpenAITTSService(OpenAIHTTPMixin, TTSService):
    """OpenAI text-to-speech over HTTP streaming (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice: str = "alloy",
        model: str = "gpt-4o-mini-tts",
        base_url: str | None = None,
        instructions: str | None = None,
        speed: float | None = None,
        sample_rate: int | None = None,
        warmup: bool = True,
        organization: str | None = None,
        project: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        self._init_http(
            api_key, base_url, organization=organization, project=project, warmup=warmup
        )
        self._voice = voice
        self._instructions = instructions
        self._speed = speed
        self._audio_since_request = False

    async def start(self, frame: StartFrame) -> None:
        await self._open_http()

    async def run_tts(self, text: str, context_id: str) -> None:
        self._http()
        body: dict[str, Any] = {
            "model": self.model_name,
            "input": text,
            "voice": self._voice,
            "response_format": "pcm",
        }
        if self._instructions:
            body["instructions"] = self._instructions
        if self._speed is not None:
            body["speed"] = self._speed
        for attempt in range(2):
            try:
                if await self._stream_speech(body, context_id, retry=attempt == 0):
                    return
            except httpx.HTTPError as exc:
                if attempt == 0 and not self._audio_since_request:
                    continue
                await self.report_error(
                    f"{self}: speech request failed: {type(exc).__name__}: {exc}",
                    reason="network",
                )
                return

    async def _stream_speech(self, body: dict[str, Any], context_id: str, *, retry: bool) -> bool:
        """One request; False if it should be retried (429/5xx before any audio)."""
        self._audio_since_request = False
        async with self._http().stream("POST", "/audio/speech", json=body) as response:
            if response.status_code != 200:
                status = response.status_code
                message = error_message(status, await response.aread())
                if retry and is_retryable(status):
                    logger.warning("%s: HTTP %d (%s); retrying once", self, status, message)
                    await asyncio.sleep(retry_after_secs(response, 0.25, 1.0))
                    return False
                fatal = status in (401, 403)
                await self.report_error(
                    f"{self}: HTTP {status} from {self._base_url}: {message}",
                    fatal=fatal,
                    reason="auth" if fatal else "http",
                )
                return True
            async for chunk in response.aiter_bytes():
                self._audio_since_request = True
                await self.append_audio(context_id, chunk, OPENAI_TTS_SAMPLE_RATE)
        return True
