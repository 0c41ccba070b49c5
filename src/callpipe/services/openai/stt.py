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
from callpipe.services.openai._client import OpenAIHTTPMixin
from callpipe.services.stt_service import SegmentedSTTService

logger = logging.getLogger(__name__)


class OpenAISTTService(OpenAIHTTPMixin, SegmentedSTTService):
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
        organization: str | None = None,
        project: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, language=language, **kwargs)
        self._init_http(api_key, base_url, organization=organization, project=project)
        self._prompt = prompt
        self._temperature = temperature

    async def start(self, frame: StartFrame) -> None:
        await self._open_http()

    async def run_stt(self, wav: bytes) -> str | None:
        client = self._http()
        data: dict[str, str] = {"model": self.model_name or "", "response_format": "json"}
        if self._language:
            data["language"] = self._language
        if self._prompt:
            data["prompt"] = self._prompt
        if self._temperature is not None:
            data["temperature"] = str(self._temperature)
        for attempt in range(2):
            try:
                response = await client.post(
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
