"""CartesiaTTSService: Cartesia's TTS WebSocket with contexts, continuations and word timestamps.

One socket, opened when the pipeline starts. Each bot reply is one Cartesia context: every
sentence is sent as an input with ``continue: true`` (prosody carries across sentences), the
end of the reply sends an empty ``continue: false`` input, and the server's ``done`` closes the
context. Audio is requested as raw ``pcm_s16le`` at the pipeline's output rate (8 kHz for
phone calls), so nothing is resampled. Word timestamps put each ``TTSTextFrame`` right after
the audio of its word. An interruption sends ``{"context_id", "cancel": true}``; audio still in
flight for that context is dropped by id.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from callpipe.frames.frames import StartFrame
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, copy_given, require_voice
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.utils.types import NOT_GIVEN

logger = logging.getLogger(__name__)

CARTESIA_URL = "wss://api.cartesia.ai"
CARTESIA_VERSION = "2025-04-16"
SUPPORTED_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


def _unset() -> Any:
    return NOT_GIVEN


@dataclass
class CartesiaTTSSettings(TTSSettings):
    """``CartesiaTTSService.Settings``: voice, model, language, plus Cartesia's extras."""

    generation_config: Any = field(default_factory=_unset)
    pronunciation_dict_id: Any = field(default_factory=_unset)


class CartesiaTTSService(TTSService):
    """Cartesia Sonic over WebSocket (see the module docstring).

    1.14 style: ``CartesiaTTSService(api_key=..., settings=CartesiaTTSService.Settings(
    voice="...", model="sonic-2"))``; voice, model and language updates
    (``TTSUpdateSettingsFrame``) apply from the next sentence, as each one is a request.
    """

    emits_word_timestamps = True
    Settings = CartesiaTTSSettings

    class InputParams(BaseModel):
        model_config = ConfigDict(extra="forbid")

        language: str | None = "en"
        speed: str | float | None = None
        emotion: list[str] | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        model: str | None = None,
        url: str = CARTESIA_URL,
        cartesia_version: str = CARTESIA_VERSION,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: CartesiaTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        if settings is not None and isinstance(settings.model, str) and model is None:
            model = settings.model
        super().__init__(model=model or "sonic-2", sample_rate=sample_rate, **kwargs)
        self._api_key = resolve_api_key(type(self).__name__, api_key, "CARTESIA_API_KEY")
        self._voice_id = require_voice(type(self).__name__, voice_id, settings)
        self._url = url.rstrip("/")
        self._version = cartesia_version
        self._params = params or CartesiaTTSService.InputParams()
        self._ws: ProviderWebsocket | None = None
        if settings is not None:
            copy_given(settings, self._params, ("language",))
        self._settings.apply_update(
            CartesiaTTSSettings(voice=self._voice_id, language=self._params.language)
        )

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        voice = self._settings.voice
        if isinstance(voice, str) and voice:
            self._voice_id = voice
        language = self._settings.language
        self._params.language = language if isinstance(language, str) else None

    # ------------------------------------------------------------------ connection

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"Cartesia cannot produce {self.sample_rate} Hz audio")
        self._ws = ProviderWebsocket(
            owner=str(self),
            url=f"{self._url}/tts/websocket",
            headers={"X-API-Key": self._api_key, "Cartesia-Version": self._version},
            on_message=self._on_message,
            on_reconnected=self._drop_open_contexts,
            on_failed=self._on_socket_failed,
            auth_hint="Check api_key / CARTESIA_API_KEY.",
        )
        await self._ws.connect()

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _drop_open_contexts(self) -> None:
        # A new socket knows nothing of the old contexts: close them rather than wait forever.
        for context_id in list(self._contexts):
            await self.finish_context(context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_open_contexts()

    # ------------------------------------------------------------------ requests

    def _request(self, context_id: str, transcript: str, *, more: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model_id": self.model_name,
            "transcript": transcript,
            "voice": {"mode": "id", "id": self._voice_id},
            "context_id": context_id,
            "output_format": {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": self.sample_rate,
            },
            "add_timestamps": True,
            "continue": more,
        }
        if self._params.language:
            request["language"] = self._params.language
        controls: dict[str, Any] = {}
        if self._params.speed is not None:
            controls["speed"] = self._params.speed
        if self._params.emotion:
            controls["emotion"] = self._params.emotion
        if controls:
            request["voice"]["__experimental_controls"] = controls
        return request

    async def _send(self, context_id: str, payload: dict[str, Any]) -> None:
        if self._ws is None or not await self._ws.send(json.dumps(payload)):
            await self.report_error(
                f"{self}: not connected; dropping speech", reason="disconnected"
            )
            await self.finish_context(context_id)

    async def run_tts(self, text: str, context_id: str) -> None:
        # Inputs of a context are concatenated verbatim: keep a space between sentences.
        await self._send(context_id, self._request(context_id, text.strip() + " ", more=True))

    async def flush_context(self, context_id: str) -> None:
        if not self.has_context(context_id):
            return
        await self._send(context_id, self._request(context_id, "", more=False))

    async def cancel_context(self, context_id: str) -> None:
        if self._ws is not None and self._ws.connected:
            await self._ws.send(json.dumps({"context_id": context_id, "cancel": True}), wait_secs=0)

    # ------------------------------------------------------------------ responses

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        context_id = message.get("context_id")
        kind = message.get("type")
        if kind == "chunk":
            data = message.get("data")
            if data:
                await self.append_audio(context_id, base64.b64decode(data))
        elif kind == "timestamps":
            timing = message.get("word_timestamps") or {}
            words = list(
                zip(
                    timing.get("words", []),
                    timing.get("start", []),
                    timing.get("end", []),
                    strict=False,
                )
            )
            await self.add_word_timestamps(
                context_id, [(w, float(s), float(e)) for w, s, e in words]
            )
        elif kind == "done":
            await self.finish_context(context_id)
        elif kind == "error":
            error = message.get("error") or message.get("message") or message.get("title")
            if self.has_context(context_id) or context_id is None:
                await self.report_error(f"{self}: Cartesia error: {error}", reason="provider")
                await self.finish_context(context_id)
