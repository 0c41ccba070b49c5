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
from callpipe.services.ai_service import ServiceAuthError, resolve_api_key
from callpipe.services.openai.llm import OPENAI_BASE_URL
from callpipe.services.tts_service import TTSService

logger = logging.getLogger(__name__)

OPENAI_TTS_SAMPLE_RATE = 24000


class OpenAITTSService(TTSService):
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
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        if base_url is None or base_url.rstrip("/") == OPENAI_BASE_URL:
            self._api_key: str | None = resolve_api_key(
                type(self).__name__, api_key, "OPENAI_API_KEY"
            )
        else:
            self._api_key = api_key
        self._base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        self._voice = voice
        self._instructions = instructions
        self._speed = speed
        self._warmup = warmup
        self._client: httpx.AsyncClient | None = None
        self._audio_since_request = False

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return httpx.AsyncClient(
            base_url=self._base_url, headers=headers, timeout=httpx.Timeout(30.0, connect=5.0)
        )

    async def start(self, frame: StartFrame) -> None:
        self._client = self._make_client()
        if not self._warmup:
            return
        try:
            response = await self._client.get("/models", timeout=5.0)
        except httpx.HTTPError as exc:
            logger.debug("%s: warm-up request failed: %s", self, exc)
            return
        if response.status_code in (401, 403):
            raise ServiceAuthError(
                f"{self}: {self._base_url} rejected the API key (HTTP {response.status_code}). "
                "Check api_key / OPENAI_API_KEY."
            )

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def run_tts(self, text: str, context_id: str) -> None:
        if self._client is None:
            self._client = self._make_client()
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
        assert self._client is not None
        self._audio_since_request = False
        async with self._client.stream("POST", "/audio/speech", json=body) as response:
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
