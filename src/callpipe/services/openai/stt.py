"""OpenAISTTService: ``POST /audio/transcriptions`` for each VAD-bounded utterance.

When the caller stops speaking the utterance (with a short pre-roll) is sent as a WAV file in a
multipart form (``file``, ``model``, optional ``language`` and ``prompt``); the JSON answer's
``text`` becomes one ``TranscriptionFrame``. Works with OpenAI-compatible servers
(e.g. Groq, a local whisper server) through ``base_url``.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from callpipe.frames.frames import StartFrame
from callpipe.services._http import error_message, is_retryable
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.openai.llm import OPENAI_BASE_URL
from callpipe.services.stt_service import SegmentedSTTService

logger = logging.getLogger(__name__)


class OpenAISTTService(SegmentedSTTService):
    """Segmented OpenAI transcription (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str = "gpt-4o-transcribe",
        base_url: str | None = None,
        language: str | None = "en",
        prompt: str | None = None,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, language=language, **kwargs)
        if base_url is None or base_url.rstrip("/") == OPENAI_BASE_URL:
            self._api_key: str | None = resolve_api_key(
                type(self).__name__, api_key, "OPENAI_API_KEY"
            )
        else:
            self._api_key = api_key
        self._base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        self._prompt = prompt
        self._temperature = temperature
        self._client: httpx.AsyncClient | None = None

    def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        return httpx.AsyncClient(
            base_url=self._base_url, headers=headers, timeout=httpx.Timeout(30.0, connect=5.0)
        )

    async def start(self, frame: StartFrame) -> None:
        self._client = self._make_client()

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def run_stt(self, wav: bytes) -> str | None:
        if self._client is None:
            self._client = self._make_client()
        data: dict[str, str] = {"model": self.model_name or "", "response_format": "json"}
        if self._language:
            data["language"] = self._language
        if self._prompt:
            data["prompt"] = self._prompt
        if self._temperature is not None:
            data["temperature"] = str(self._temperature)
        for attempt in range(2):
            try:
                response = await self._client.post(
                    "/audio/transcriptions",
                    data=data,
                    files={"file": ("utterance.wav", wav, "audio/wav")},
                )
            except httpx.HTTPError as exc:
                if attempt == 0:
                    continue
                await self.report_error(
                    f"{self}: transcription request failed: {type(exc).__name__}: {exc}",
                    reason="network",
                )
                return None
            if response.status_code == 200:
                text = response.json().get("text")
                return str(text).strip() if text else None
            if is_retryable(response.status_code) and attempt == 0:
                continue
            fatal = response.status_code in (401, 403)
            await self.report_error(
                f"{self}: HTTP {response.status_code} from {self._base_url}: "
                f"{error_message(response.status_code, response.content)}"
                + (" Check api_key / OPENAI_API_KEY." if fatal else ""),
                fatal=fatal,
                reason="auth" if fatal else "http",
            )
            return None
        return None
