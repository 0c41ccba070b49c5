"""ResembleAITTSService: Resemble AI's streaming text-to-speech WebSocket (``/stream``).

The protocol, as Resemble documents it
(https://docs.resemble.ai/voice-generation/text-to-speech/streaming-websocket):

- **Handshake.** ``wss://websocket.cluster.resemble.ai/stream`` with
  ``Authorization: Bearer <key>``; one socket serves many requests.
- **Requests.** One JSON message per piece of text: ``voice_uuid``, ``data`` (text or SSML, at
  most 3000 characters), ``request_id`` (an integer echoed on every answer),
  ``binary_response: false`` (JSON frames, which carry the timestamps), ``output_format:
  "wav"``, ``sample_rate``, ``precision`` and ``no_audio_header: true`` (raw samples).
- **Answers.** ``{"type": "audio", "audio_content": <base64>, "audio_timestamps":
  {"graph_chars", "graph_times", "phon_chars", "phon_times"}, "sample_rate", "request_id"}``
  frames, then ``{"type": "audio_end", "request_id"}``. Problems come as ``{"type": "error",
  "error_name", "message", "status_code", "request_id"}``.

Each sentence of a reply is one request, sent as soon as it is complete. Resemble may generate
a reply's requests at once: the audio of a request is held until the requests before it in the
reply ended, so the reply plays in order. The characters' timing (seconds from the start of
each request's audio) becomes word timing, so each ``TTSTextFrame`` follows its word's audio.

On a phone call (8 kHz) the audio is asked for as ``MULAW`` at 8000 Hz, what the line carries;
otherwise ``PCM_16`` at the pipeline's rate when Resemble offers it (8000, 16000, 22050, 32000,
44100), else at 22050 Hz, resampled.

An interruption forgets the dropped replies' requests: their audio still arriving is dropped by
``request_id`` (Resemble has no cancel message). The voice goes in each request, so a new one
(``TTSUpdateSettingsFrame``) applies from the next sentence on, without a reconnect.

Errors: an ``error`` answer is a non-fatal ``ErrorFrame`` and ends that request (its text is
left out of the context); 401/403 (there, or at the handshake) is fatal and names
``RESEMBLE_API_KEY``. A dropped socket follows the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`; the replies it was speaking
close with what they had.

Differences from Pipecat 1.14: ``precision``, ``output_format`` and ``sample_rate`` default to
the line's format (Pipecat: ``PCM_16`` WAV at 22050 Hz); ``PCM_24``/``PCM_32`` and ``mp3`` are
refused (the service decodes 16-bit PCM and µ-law); no jitter buffer is kept (the output
transport paces the audio).
"""

from __future__ import annotations

import base64
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import RESEMBLE_URL_ENV, base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket

logger = logging.getLogger(__name__)

RESEMBLE_URL = "wss://websocket.cluster.resemble.ai/stream"
"""Resemble's streaming socket (Pipecat 1.14's default ``url``)."""
STREAM_PATH = "/stream"
SAMPLE_RATES = (8000, 16000, 22050, 32000, 44100)
"""The ``sample_rate`` values Resemble documents."""
PRECISIONS = ("PCM_16", "MULAW")
"""The ``precision`` values this service decodes (Resemble also offers PCM_24 and PCM_32)."""
FALLBACK_RATE = 22050
_AUTH_STATUSES = frozenset({401, 403})
_AUTH_HINT = "Check api_key / RESEMBLE_API_KEY."


@dataclass
class ResembleAITTSSettings(TTSSettings):
    """``ResembleAITTSService.Settings``: ``voice`` is the voice's UUID."""


@dataclass
class _Request:
    """One request (a sentence) of a reply."""

    request_id: int
    held: list[bytes] = field(default_factory=list)
    """Its audio (PCM at the request's rate) while an earlier request of the reply plays."""
    audio_bytes: int = 0
    chars: list[tuple[str, float, float]] = field(default_factory=list)
    ended: bool = False
    header_checked: bool = False


@dataclass
class _Reply:
    context_id: str
    requests: deque[_Request] = field(default_factory=deque)
    """Its requests not yet ended or not yet released, oldest first."""
    flushed: bool = False
    offset_secs: float = 0.0
    """Seconds of the reply's audio before its oldest request."""


class ResembleAITTSService(TTSService):
    """Resemble AI text-to-speech over WebSocket (see the module docstring).

    1.14 style: ``ResembleAITTSService(api_key=..., settings=ResembleAITTSService.Settings(
    voice="<voice uuid>"))``. ``url``: the socket's address; left at Resemble's,
    ``$CALLPIPE_RESEMBLE_URL`` (an origin is enough) may replace it.
    """

    emits_word_timestamps = True
    Settings = ResembleAITTSSettings
    _settings: ResembleAITTSSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        voice_id: str | None = None,
        url: str = RESEMBLE_URL,
        precision: str | None = None,
        output_format: str | None = None,
        sample_rate: int | None = None,
        settings: ResembleAITTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if precision is not None and precision not in PRECISIONS:
            raise ConfigurationError(
                f"{name}: precision={precision!r}; the service decodes {', '.join(PRECISIONS)}"
            )
        if output_format not in (None, "wav"):
            raise ConfigurationError(f"{name}: output_format={output_format!r}; only wav streams")
        store = ResembleAITTSSettings(model=None, voice=voice_id, language=None)
        if voice_id is not None:
            logger.warning("%s: voice_id is deprecated; use settings=Settings(voice=...)", name)
        if settings is not None:
            store.apply_update(settings)
        if not isinstance(store.voice, str) or not store.voice:
            raise ConfigurationError(f"{name}: no voice; pass settings=Settings(voice=<uuid>)")
        super().__init__(sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._api_key = resolve_api_key(name, api_key, "RESEMBLE_API_KEY")
        if url == RESEMBLE_URL:
            env = base_url(None, RESEMBLE_URL_ENV, "")
            if env:
                url = env if env.endswith(STREAM_PATH) else env + STREAM_PATH
        self._url = url
        self._precision = precision
        self._ws: ProviderWebsocket | None = None
        self._next_id = 0
        self._replies: dict[str, _Reply] = {}
        self._owners: dict[int, _Reply] = {}
        """Each live request's reply, by ``request_id``."""

    def can_generate_metrics(self) -> bool:
        return True

    @property
    def wire_precision(self) -> str:
        """The ``precision`` asked for."""
        if self._precision is not None:
            return self._precision
        return "MULAW" if self.sample_rate == 8000 else "PCM_16"

    @property
    def wire_rate(self) -> int:
        """The ``sample_rate`` asked for."""
        return self.sample_rate if self.sample_rate in SAMPLE_RATES else FALLBACK_RATE

    def request_message(self, text: str, request_id: int) -> str:
        """The JSON request for one piece of text."""
        return json.dumps(
            {
                "voice_uuid": self._settings.voice,
                "data": text,
                "binary_response": False,
                "request_id": request_id,
                "output_format": "wav",
                "sample_rate": self.wire_rate,
                "precision": self.wire_precision,
                "no_audio_header": True,
            }
        )

    # ------------------------------------------------------------------ the socket

    async def start(self, frame: StartFrame) -> None:
        self._ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self._url,
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=self._drop_replies_in_flight,
            on_failed=self._on_socket_failed,
            auth_hint=_AUTH_HINT,
        )
        await self._ws.connect()

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        self._replies.clear()
        self._owners.clear()
        if ws is not None:
            await ws.close()

    async def _drop_replies_in_flight(self) -> None:
        # A new socket answers none of the old one's requests.
        replies = list(self._replies.values())
        self._replies.clear()
        self._owners.clear()
        for reply in replies:
            self.context_failed(reply.context_id)
            await self.finish_context(reply.context_id)

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_replies_in_flight()

    # ------------------------------------------------------------------ requests

    async def run_tts(self, text: str, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if reply is None:
            reply = self._replies[context_id] = _Reply(context_id)
        request_id, self._next_id = self._next_id, self._next_id + 1
        if self._ws is None or not await self._ws.send(self.request_message(text, request_id)):
            await self.report_not_connected()
            self.sentence_failed(context_id)
            return
        request = _Request(request_id)
        reply.requests.append(request)
        self._owners[request_id] = reply

    async def flush_context(self, context_id: str) -> None:
        reply = self._replies.get(context_id)
        if reply is None:
            await self.finish_context(context_id)
            return
        reply.flushed = True
        await self._advance(reply)

    async def cancel_context(self, context_id: str) -> None:
        reply = self._replies.pop(context_id, None)
        if reply is not None:
            for request in reply.requests:
                self._owners.pop(request.request_id, None)

    # ------------------------------------------------------------------ answers

    def _decode(self, request: _Request, data: bytes) -> bytes:
        if not request.header_checked:
            request.header_checked = True
            if data.startswith(b"RIFF"):
                # A WAV header after all: the samples start after the data chunk's size.
                at = data.find(b"data", 12)
                data = data[at + 8 :] if at >= 0 else b""
        return ulaw_to_pcm(data) if self.wire_precision == "MULAW" else data

    async def _release(self, reply: _Reply, pcm: bytes) -> None:
        await self.append_audio(reply.context_id, pcm, self.wire_rate)

    async def _advance(self, reply: _Reply) -> None:
        """Release the ended requests at the head of the reply (their held audio, then their
        words), and end the reply once it was flushed and all of them ended."""
        while reply.requests and reply.requests[0].ended:
            request = reply.requests.popleft()
            self._owners.pop(request.request_id, None)
            words = _words(request.chars, reply.offset_secs)
            if words:
                await self.add_word_timestamps(reply.context_id, words)
            reply.offset_secs += request.audio_bytes / (2 * self.wire_rate)
            if reply.requests:
                head = reply.requests[0]
                for pcm in head.held:
                    await self._release(reply, pcm)
                head.held.clear()
        if reply.flushed and not reply.requests:
            self._replies.pop(reply.context_id, None)
            await self.finish_context(reply.context_id)

    async def _on_message(self, raw: Message) -> None:
        if isinstance(raw, bytes):
            return
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        request_id = message.get("request_id")
        reply = self._owners.get(request_id) if isinstance(request_id, int) else None
        request = None
        if reply is not None:
            request = next((r for r in reply.requests if r.request_id == request_id), None)
        if kind == "error":
            await self._on_error(message, reply, request)
            return
        if reply is None or request is None:
            return  # an interrupted reply's request
        if kind == "audio":
            content = message.get("audio_content")
            if isinstance(content, str) and content:
                pcm = self._decode(request, base64.b64decode(content))
                request.audio_bytes += len(pcm)
                if request is reply.requests[0]:
                    await self._release(reply, pcm)
                else:
                    request.held.append(pcm)
            request.chars.extend(_chars(message.get("audio_timestamps")))
        elif kind == "audio_end":
            request.ended = True
            await self._advance(reply)
        else:
            logger.debug("%s: unexpected Resemble message: %s", self, kind)

    async def _on_error(
        self, message: dict[str, Any], reply: _Reply | None, request: _Request | None
    ) -> None:
        status = message.get("status_code")
        said = f"{message.get('error_name', 'Error')} ({status}): {message.get('message', '')}"
        if status in _AUTH_STATUSES:
            await self.report_error(
                f"{self}: Resemble rejected the credentials: {said}. {_AUTH_HINT}",
                fatal=True,
                reason="auth",
            )
        else:
            await self.report_error(f"{self}: Resemble's error {said}", reason="provider")
        if reply is not None and request is not None:
            self.context_failed(reply.context_id)
            request.ended = True
            await self._advance(reply)


def _chars(timestamps: Any) -> list[tuple[str, float, float]]:
    """``(character, start, end)`` of an audio frame's ``graph_chars``/``graph_times``."""
    if not isinstance(timestamps, dict):
        return []
    chars = timestamps.get("graph_chars") or []
    times = timestamps.get("graph_times") or []
    out: list[tuple[str, float, float]] = []
    for char, span in zip(chars, times, strict=False):
        if isinstance(char, str) and isinstance(span, list) and len(span) >= 2:
            out.append((char, float(span[0]), float(span[1])))
    return out


def _words(chars: list[tuple[str, float, float]], offset: float) -> list[tuple[str, float, float]]:
    """The words the characters spell, with their times shifted by ``offset`` seconds."""
    words: list[tuple[str, float, float]] = []
    word, start, end = "", 0.0, 0.0
    for char, char_start, char_end in chars:
        if char.isspace():
            if word:
                words.append((word, offset + start, offset + end))
            word = ""
            continue
        if not word:
            start = char_start
        word += char
        end = char_end
    if word:
        words.append((word, offset + start, offset + end))
    return words
