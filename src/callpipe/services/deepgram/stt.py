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
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.frames.frames import StartFrame
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings
from callpipe.services.stt_service import StreamingSTTService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.utils.types import NOT_GIVEN

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


def _unset() -> Any:
    return NOT_GIVEN


@dataclass
class DeepgramSTTSettings(STTSettings):
    """``DeepgramSTTService.Settings``: model, language and the live options bots set most.

    Other live-endpoint options go in ``extra`` (they become query parameters as given).
    """

    interim_results: Any = field(default_factory=_unset)
    punctuate: Any = field(default_factory=_unset)
    smart_format: Any = field(default_factory=_unset)
    endpointing: Any = field(default_factory=_unset)
    profanity_filter: Any = field(default_factory=_unset)
    keyterm: Any = field(default_factory=_unset)
    utterance_end_ms: Any = field(default_factory=_unset)
    numerals: Any = field(default_factory=_unset)
    diarize: Any = field(default_factory=_unset)


class DeepgramSTTService(StreamingSTTService):
    """Deepgram streaming speech-to-text (see the module docstring).

    1.14 style: ``settings=DeepgramSTTService.Settings(model="nova-3", language="en")``. The
    options are query parameters of the socket, so an ``STTUpdateSettingsFrame`` applies when
    the socket is next opened.
    """

    Settings = DeepgramSTTSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str = DEEPGRAM_URL,
        live_options: LiveOptions | None = None,
        encoding: Literal["linear16", "mulaw"] | None = None,
        sample_rate: int | None = None,
        keepalive_secs: float = 5.0,
        settings: DeepgramSTTSettings | None = None,
        **kwargs: Any,
    ) -> None:
        options = (live_options or LiveOptions()).model_copy()
        if settings is not None:
            options = options.model_copy(update=settings.given_fields())
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

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        given = self._settings.given_fields()
        self._options = self._options.model_copy(
            update={k: given[k] for k in changed if k in given}
        )
        logger.debug("%s: live options changed; they apply when the socket is next opened", self)

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
            await self.push_transcript(
                str(best.get("transcript") or ""),
                final=bool(message.get("is_final")),
                language=language,
            )
        elif kind == "Error" or "err_code" in message:
            description = message.get("description") or message.get("err_msg") or message
            await self.report_error(f"{self}: Deepgram error: {description}", reason="provider")
