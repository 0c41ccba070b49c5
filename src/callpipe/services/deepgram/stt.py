"""DeepgramSTTService: Deepgram's live transcription WebSocket (``/v1/listen``).

The socket is opened when the pipeline starts; the caller's audio is streamed as binary
messages, either ``linear16`` at the pipeline rate or ``mulaw`` (8-bit G.711, half the bytes:
what the phone network carries anyway). Deepgram answers with ``Results`` messages:
``is_final`` ones become ``TranscriptionFrame``\\ s, the others ``InterimTranscriptionFrame``\\ s.
When the VAD says the caller stopped, a ``Finalize`` message makes Deepgram return the final
transcript at once instead of after its own endpointing delay. ``KeepAlive`` is sent every
few seconds so a silent stretch does not close the socket; ``CloseStream`` ends it. A socket
that drops is re-opened once.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import StartFrame
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.stt_service import StreamingSTTService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transports.record_hooks import note_transcript_detail

logger = logging.getLogger(__name__)

DEEPGRAM_URL = "wss://api.deepgram.com"


class LiveOptions(BaseModel):
    """Query options of the live endpoint (``None`` = Deepgram's default)."""

    model_config = ConfigDict(extra="allow")

    model: str = "nova-3"
    language: str | None = "en"
    encoding: Literal["linear16", "mulaw"] = "linear16"
    interim_results: bool = True
    punctuate: bool = True
    smart_format: bool = True
    endpointing: int | bool | None = 300
    profanity_filter: bool | None = None
    keyterm: list[str] | None = None


class DeepgramSTTService(StreamingSTTService):
    """Deepgram streaming speech-to-text (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str = DEEPGRAM_URL,
        live_options: LiveOptions | None = None,
        encoding: Literal["linear16", "mulaw"] | None = None,
        sample_rate: int | None = None,
        keepalive_secs: float = 5.0,
        **kwargs: Any,
    ) -> None:
        options = (live_options or LiveOptions()).model_copy()
        if encoding is not None:
            options.encoding = encoding
        super().__init__(
            model=options.model, sample_rate=sample_rate, language=options.language, **kwargs
        )
        self._api_key = resolve_api_key(type(self).__name__, api_key, "DEEPGRAM_API_KEY")
        self._url = url.rstrip("/")
        self._options = options
        self._keepalive_secs = keepalive_secs
        self._ws: ProviderWebsocket | None = None

    def _query(self) -> dict[str, Any]:
        query = self._options.model_dump(exclude_none=True)
        keyterms = query.pop("keyterm", None)
        query["sample_rate"] = self.sample_rate
        query["channels"] = 1
        if keyterms:
            query["keyterm"] = " ".join(keyterms)
        return query

    async def start(self, frame: StartFrame) -> None:
        self._ws = ProviderWebsocket(
            owner=str(self),
            url=ws_url(self._url, "/v1/listen", self._query()),
            headers={"Authorization": f"Token {self._api_key}"},
            on_message=self._on_message,
            on_failed=self._on_socket_failed,
            keepalive_secs=self._keepalive_secs,
            keepalive_message=lambda: json.dumps({"type": "KeepAlive"}),
            auth_hint="Check api_key / DEEPGRAM_API_KEY.",
        )
        await self._ws.connect()

    async def disconnect(self) -> None:
        await self.stop_sending()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(final_message=json.dumps({"type": "CloseStream"}))

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        payload = pcm_to_ulaw(audio) if self._options.encoding == "mulaw" else audio
        return await ws.send(payload)

    async def on_user_stopped_speaking(self) -> None:
        if self._ws is not None and self._ws.connected:
            await self._ws.send(json.dumps({"type": "Finalize"}), wait_secs=0)

    # ------------------------------------------------------------------ results in

    async def _on_message(self, raw: Message) -> None:
        if isinstance(raw, bytes):
            return
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "Results":
            alternatives = (message.get("channel") or {}).get("alternatives") or []
            if not alternatives:
                return
            best = alternatives[0]
            languages = best.get("languages") or []
            language = languages[0] if languages else None
            if message.get("is_final") and best.get("transcript"):
                note_transcript_detail(_number(best.get("confidence")), _words(best))
            await self.push_transcript(
                str(best.get("transcript") or ""),
                final=bool(message.get("is_final")),
                language=language,
            )
        elif kind == "Error" or "err_code" in message:
            description = message.get("description") or message.get("err_msg") or message
            await self.report_error(f"{self}: Deepgram error: {description}", reason="provider")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _words(alternative: dict[str, Any]) -> list[dict[str, Any]]:
    """Deepgram's word timings (seconds into the audio sent), for the call record."""
    words = alternative.get("words")
    if not isinstance(words, list):
        return []
    out = []
    for word in words:
        if isinstance(word, dict) and isinstance(word.get("word"), str):
            out.append(
                {
                    "word": word.get("punctuated_word") or word["word"],
                    "start": _number(word.get("start")),
                    "end": _number(word.get("end")),
                    "confidence": _number(word.get("confidence")),
                }
            )
    return out
