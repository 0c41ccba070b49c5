"""MistralTTSService: Mistral's Voxtral text-to-speech, one streamed ``POST /v1/audio/speech``
per sentence.

The protocol, as the ``mistralai`` SDK (``audio.speech.complete_async(stream=True)``, its
``SpeechRequest`` and ``SpeechStreamEvents`` models) and Mistral's reference give it:

- the key in ``Authorization: Bearer <key>``, ``Accept: text/event-stream``; a JSON body of
  ``input``, ``model`` (``voxtral-mini-tts-2603`` by default, as in Pipecat 1.14),
  ``voice_id`` (when set), ``response_format: "pcm"`` and ``stream: true``;
- a 200 answer is a stream of server-sent events: ``speech.audio.delta`` events whose
  ``audio_data`` is base64 of 32-bit float little-endian PCM, mono at 24 kHz, then one
  ``speech.audio.done`` carrying ``usage``. Errors before the stream are HTTP statuses (422 for
  a body Mistral refuses, 401 for a refused key: fatal, naming ``MISTRAL_API_KEY``).

Each chunk is turned into 16-bit PCM (clipped to its range) and resampled from 24 kHz to the
call's rate as it arrives. Mistral gives no word timing: each sentence's ``TTSTextFrame``
follows its audio. Settings updates apply from the next sentence; an interruption closes the
response in flight. Mistral's speech takes no language: ``Settings.language`` is kept and not
sent (as in Pipecat).

Pipecat's constructor (``api_key``, ``sample_rate``, ``settings``) is kept; ``base_url`` (the
API's origin, else ``$CALLPIPE_MISTRAL_API_URL``, else Mistral's) and ``timeout_secs`` are
callpipe's.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from callpipe.frames.frames import StartFrame
from callpipe.services._env import MISTRAL_API_URL_ENV, base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings

logger = logging.getLogger(__name__)

MISTRAL_API_URL = "https://api.mistral.ai"
SPEECH_PATH = "/v1/audio/speech"
DEFAULT_MODEL = "voxtral-mini-tts-2603"
MISTRAL_SAMPLE_RATE = 24000
"""The rate of Mistral's PCM."""
KEY_HINT = "Check api_key / MISTRAL_API_KEY."


@dataclass
class MistralTTSSettings(TTSSettings):
    """``MistralTTSService.Settings``: model, voice (a Mistral voice id; None: not sent) and
    language (kept, not sent)."""


def float32_to_pcm16(data: bytes) -> bytes:
    """32-bit float little-endian samples (-1.0 to 1.0) as 16-bit PCM, clipped."""
    samples = np.frombuffer(data, dtype="<f4")
    pcm: bytes = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return pcm


class MistralTTSService(HTTPStreamTTSService):
    """Mistral's Voxtral speech (see the module docstring).

    1.14 style: ``MistralTTSService(api_key=..., settings=MistralTTSService.Settings(
    voice="<voice id>"))``.
    """

    Settings = MistralTTSSettings
    _settings: MistralTTSSettings
    key_hint = KEY_HINT
    MISTRAL_SAMPLE_RATE = MISTRAL_SAMPLE_RATE

    def __init__(
        self,
        *,
        api_key: str | None = None,
        sample_rate: int | None = None,
        settings: MistralTTSSettings | None = None,
        base_url: str | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        model = DEFAULT_MODEL
        if settings is not None and isinstance(settings.model, str) and settings.model:
            model = settings.model
        super().__init__(model=model, sample_rate=sample_rate, **kwargs)
        key = resolve_api_key(type(self).__name__, api_key, "MISTRAL_API_KEY")
        self._settings.apply_update(MistralTTSSettings(model=model, voice=None, language=None))
        if settings is not None:
            self._settings.apply_update(settings)
        self.configure_http(
            _api_url(base_url),
            {"Authorization": f"Bearer {key}", "Accept": "text/event-stream"},
            timeout_secs=timeout_secs,
        )

    async def start(self, frame: StartFrame) -> None:
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/v1/audio/speech`` body for ``text`` with the current settings."""
        s = self._settings
        body: dict[str, Any] = {
            "input": text,
            "model": s.model if isinstance(s.model, str) and s.model else DEFAULT_MODEL,
        }
        if isinstance(s.voice, str) and s.voice:
            body["voice_id"] = s.voice
        body["response_format"] = "pcm"
        body["stream"] = True
        return body

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, SPEECH_PATH, self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        held = b""  # a sample split between two chunks (Mistral sends whole ones)
        async for event in sse_events(response):
            kind = event.get("type")
            if kind == "speech.audio.delta":
                audio = event.get("audio_data")
                if not isinstance(audio, str):
                    continue
                data = held + base64.b64decode(audio)
                whole = len(data) - len(data) % 4
                held = data[whole:]
                pcm = float32_to_pcm16(data[:whole])
                await self.append_audio(context_id, pcm, MISTRAL_SAMPLE_RATE)
            elif kind == "speech.audio.done":
                logger.debug("%s: usage %s", self, event.get("usage"))
            else:
                logger.debug("%s: skipping a %r event", self, kind)


def _api_url(given: str | None) -> str:
    return base_url(given, MISTRAL_API_URL_ENV, MISTRAL_API_URL)


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON object of each server-sent event's data, with ``type`` set from the event's
    name when the data lacks it; other data is skipped (logged)."""
    name = ""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            continue
        if data:
            event = _decode(name, data)
            if event is not None:
                yield event
        name, data = "", []
    if data:
        event = _decode(name, data)
        if event is not None:
            yield event


def _decode(name: str, data: list[str]) -> dict[str, Any] | None:
    try:
        payload = json.loads("\n".join(data))
    except ValueError:
        logger.warning("Mistral: skipping an event that is not JSON: %.80s", data[0])
        return None
    if not isinstance(payload, dict):
        return None
    if name and "type" not in payload:
        payload["type"] = name
    return payload
