"""OpenAITTSService: ``POST /audio/speech`` with ``response_format=pcm``, streamed.

The endpoint returns raw 24 kHz 16-bit mono PCM as the body streams; it is resampled once
(steady, low-latency) to the pipeline's output rate. One request per sentence; each sentence's
``TTSTextFrame`` follows its audio (the API gives no word timing). An interruption cancels the
worker, which closes the HTTP stream.

Voice, model, ``instructions`` and ``speed`` come from ``settings=OpenAITTSService.Settings(...)``
(Pipecat 1.14), else the older arguments or ``params=OpenAITTSService.InputParams(...)``; a
``TTSUpdateSettingsFrame`` changes them from the next sentence (each sentence is a request).
``/audio/speech`` has no language field (the model speaks the language of the text): a
``language`` setting is kept in ``settings`` but never sent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.frames.frames import StartFrame
from callpipe.services._http import error_message, is_retryable, retry_after_secs
from callpipe.services.openai._client import OpenAIHTTPMixin
from callpipe.services.settings import TTSSettings, store_from, unset
from callpipe.services.tts_service import TTSService
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

OPENAI_TTS_SAMPLE_RATE = 24000


@dataclass
class OpenAITTSSettings(TTSSettings):
    """``OpenAITTSService.Settings``: voice and model, plus ``instructions`` (how to speak,
    for the gpt-4o TTS models) and ``speed`` (0.25 to 4.0)."""

    instructions: str | None | NotGiven = field(default_factory=unset)
    speed: float | None | NotGiven = field(default_factory=unset)


class OpenAITTSService(OpenAIHTTPMixin, TTSService):
    """OpenAI text-to-speech over HTTP streaming (see the module docstring).

    ``http_client``: the user's own async HTTP client (kept open; see
    :mod:`callpipe.services.openai._client`).
    """

    Settings = OpenAITTSSettings
    _settings: OpenAITTSSettings

    class InputParams(BaseModel):
        """The older (pre-``Settings``) way to give ``instructions`` and ``speed``."""

        model_config = ConfigDict(extra="forbid")

        instructions: str | None = None
        speed: float | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice: str | None = None,
        model: str | None = None,
        base_url: str | None = None,
        http_client: Any = None,
        instructions: str | None = None,
        speed: float | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: OpenAITTSSettings | None = None,
        warmup: bool = True,
        organization: str | None = None,
        project: str | None = None,
        **kwargs: Any,
    ) -> None:
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model or "gpt-4o-mini-tts", sample_rate=sample_rate, **kwargs)
        self._init_http(
            api_key,
            base_url,
            organization=organization,
            project=project,
            warmup=warmup,
            http_client=http_client,
        )
        # As in Pipecat: the arguments, then params where it sets a field, then settings.
        if params is not None:
            instructions = params.instructions if params.instructions is not None else instructions
            speed = params.speed if params.speed is not None else speed
        defaults = OpenAITTSSettings(
            model=self.model_name,
            voice=voice or "alloy",
            language=None,
            instructions=instructions,
            speed=speed,
        )
        self._settings = store_from(defaults, settings)
        self._audio_since_request = False

    async def start(self, frame: StartFrame) -> None:
        await self._open_http()

    def _speech_body(self, text: str) -> dict[str, Any]:
        """The JSON body of the speech request for one sentence."""
        settings = self._settings
        body: dict[str, Any] = {
            "model": self.model_name,
            "input": text,
            "voice": settings.voice if isinstance(settings.voice, str) else "alloy",
            "response_format": "pcm",
        }
        if is_given(settings.instructions) and settings.instructions:
            body["instructions"] = settings.instructions
        if is_given(settings.speed) and settings.speed is not None:
            body["speed"] = settings.speed
        return body

    async def run_tts(self, text: str, context_id: str) -> None:
        self._http()
        body = self._speech_body(text)
        for attempt in range(2):
            try:
                if await self._stream_speech(body, context_id, retry=attempt == 0):
                    return
            except httpx.HTTPError as exc:
                if attempt == 0 and not self._audio_since_request:
                    continue
                self.sentence_failed(context_id)
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
                self.sentence_failed(context_id)
                await self.report_error(
                    f"{self}: HTTP {status} from {self._base_url}: {message}",
                    fatal=fatal,
                    reason="auth" if fatal else "http",
                )
                return True
            await self._read_speech(response, context_id)
        self.sentence_audio_done(context_id)
        return True

    async def _read_speech(self, response: httpx.Response, context_id: str) -> None:
        """Pass the body's audio on as it streams (raw 24 kHz PCM here)."""
        async for chunk in response.aiter_bytes():
            self._audio_since_request = True
            await self.append_audio(context_id, chunk, OPENAI_TTS_SAMPLE_RATE)
