"""DeepgramSTTService: Deepgram's live transcription WebSocket (``/v1/listen``).

The socket is opened when the pipeline starts; the caller's audio is streamed as binary
messages, ``mulaw`` on an 8 kHz call (8-bit G.711, half the bytes: what the phone network
carries), else ``linear16`` at the pipeline rate. The caller's μ-law was decoded by the
serializer; encoding it again gives back exactly the caller's original bytes (G.711 decoding
and re-encoding is lossless, ~0.6 μs per 20 ms packet), so Deepgram hears what the phone
network delivered without the frame having to carry a second copy.

Deepgram answers with ``Results`` messages: ``is_final`` ones become ``TranscriptionFrame``\\ s,
the others ``InterimTranscriptionFrame``\\ s.
When the VAD says the caller stopped, a ``Finalize`` message makes Deepgram return the final
transcript at once instead of after its own endpointing delay. ``KeepAlive`` is sent every
few seconds so a silent stretch does not close the socket; ``CloseStream`` ends it.

Multi-valued options (``keyterm``, ``tag``) repeat the query key, as Deepgram expects; booleans
are sent ``true``/``false``. Pipecat 1.14's connection options (``channels``, ``multichannel``,
``callback``, ``callback_method``, ``tag``, ``mip_opt_out``) and ``addons`` (any other query
parameters) are query parameters of the socket too. Each transcript
frame carries Deepgram's message as ``result`` (word timings, confidence) and ``finalized`` when
Deepgram marked the end of speech (``speech_final``) or answered a ``Finalize``. When asked for
(``vad_events=True``, ``utterance_end_ms``), ``SpeechStarted`` and ``UtteranceEnd`` messages call
the ``on_speech_started`` / ``on_utterance_end`` event handlers. Close frames (``DATA-0000``,
``NET-0001``) follow the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import DEEPGRAM_URL_ENV, websocket_origin
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings
from callpipe.services.stt_service import StreamingSTTService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transports.record_hooks import note_transcript_detail
from callpipe.utils.types import NOT_GIVEN

logger = logging.getLogger(__name__)

DEEPGRAM_URL = "wss://api.deepgram.com"
DEEPGRAM_TTFS_P99 = 0.35
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Deepgram (seconds)."""
_AUDIO_FORMAT_PARAMS = frozenset({"encoding", "sample_rate"})
"""Query parameters describing the audio this service sends: not settable through addons."""


class LiveOptions(BaseModel):
    """Query options of the live endpoint (``None`` = Deepgram's default)."""

    model_config = ConfigDict(extra="allow")

    model: str = "nova-3"
    language: str | None = "en"
    encoding: Literal["linear16", "mulaw"] | None = None
    """None: ``mulaw`` at 8 kHz (what the phone line carries), else ``linear16``."""
    interim_results: bool = True
    punctuate: bool = True
    smart_format: bool = True
    endpointing: int | bool | None = 300
    profanity_filter: bool | None = None
    keyterm: list[str] | None = None
    """Words or phrases to boost (nova-3); each is sent as its own ``keyterm`` parameter."""
    keywords: list[str] | None = None
    vad_events: bool | None = None
    """Ask for ``SpeechStarted`` messages (``on_speech_started`` event)."""
    utterance_end_ms: int | None = None
    """Ask for ``UtteranceEnd`` messages after this much silence (needs interim_results)."""
    mip_opt_out: bool | None = None
    """Opt out of Deepgram's Model Improvement Program (no audio kept for training)."""
    channels: int | None = None
    """Channels interleaved in the audio sent (None: 1; callpipe's phone audio is mono)."""
    multichannel: bool | None = None
    """Transcribe each channel on its own (None: false)."""
    callback: str | None = None
    """A URL Deepgram also posts the results to."""
    callback_method: str | None = None
    """The HTTP method of those callback requests (``POST``, ``PUT``, ...)."""
    tag: str | list[str] | None = None
    """Usage-reporting label(s); a list repeats the ``tag`` parameter."""


def _unset() -> Any:
    return NOT_GIVEN


@dataclass
class DeepgramSTTSettings(STTSettings):
    """``DeepgramSTTService.Settings``: model, language and Pipecat 1.14's live options.

    Each field is the query parameter of the same name (a list repeats it); other
    live-endpoint options go in ``extra`` (they become query parameters as given).
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
    detect_entities: Any = field(default_factory=_unset)
    dictation: Any = field(default_factory=_unset)
    keywords: Any = field(default_factory=_unset)
    redact: Any = field(default_factory=_unset)
    """Redaction types (``pci``, ``ssn``, ...); a list repeats the parameter."""
    replace: Any = field(default_factory=_unset)
    """``find:replacement`` terms; a list repeats the parameter."""
    search: Any = field(default_factory=_unset)
    version: Any = field(default_factory=_unset)
    """Model version, e.g. ``"2021-03-17.0"`` (None: Deepgram's ``latest``)."""


class DeepgramSTTService(StreamingSTTService):
    """Deepgram streaming speech-to-text (see the module docstring).

    1.14 style: ``settings=DeepgramSTTService.Settings(model="nova-3", language="en")``. The
    options are query parameters of the socket, so an ``STTUpdateSettingsFrame`` applies when
    the socket is next opened.

    The address: ``url`` (``wss://host[:port]``; ``/v1/listen`` is appended), or Pipecat 1.14's
    ``base_url``, a host with an optional scheme (``ws://``/``http://`` unencrypted, otherwise
    ``wss://``), else ``$CALLPIPE_DEEPGRAM_URL``, else Deepgram's.

    Connection options, as in Pipecat 1.14 (each overrides the same ``live_options`` field):
    ``channels`` (1 by default; must match the pipeline's audio, mono on a phone call),
    ``multichannel``, ``callback``, ``callback_method``, ``tag``, ``mip_opt_out``; ``addons``
    adds any other query parameters (sent last, so they override options; ``encoding`` and
    ``sample_rate`` are refused there, as they must describe the audio actually sent).
    ``ttfs_p99_latency`` is accepted and kept but not used (see ``__init__``).
    """

    Settings = DeepgramSTTSettings

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str | None = None,
        base_url: str | None = None,
        live_options: LiveOptions | None = None,
        encoding: Literal["linear16", "mulaw"] | None = None,
        channels: int | None = None,
        multichannel: bool | None = None,
        sample_rate: int | None = None,
        callback: str | None = None,
        callback_method: str | None = None,
        tag: str | list[str] | None = None,
        mip_opt_out: bool | None = None,
        addons: Mapping[str, Any] | None = None,
        keepalive_secs: float = 5.0,
        settings: DeepgramSTTSettings | None = None,
        ttfs_p99_latency: float | None = DEEPGRAM_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        options = (live_options or LiveOptions()).model_copy()
        if settings is not None:
            options = options.model_copy(update=settings.given_fields())
        if encoding is not None:
            options.encoding = encoding
        # Pipecat 1.14's connection options: given here, they win over live_options'.
        given = {
            "channels": channels,
            "multichannel": multichannel,
            "callback": callback,
            "callback_method": callback_method,
            "tag": tag,
            "mip_opt_out": mip_opt_out,
        }
        options = options.model_copy(update={k: v for k, v in given.items() if v is not None})
        if options.channels is not None and options.channels < 1:
            raise ConfigurationError(f"channels must be at least 1, got {options.channels}")
        self._addons = dict(addons or {})
        fixed = sorted(_AUDIO_FORMAT_PARAMS & self._addons.keys())
        if fixed:
            raise ConfigurationError(
                f"addons cannot set {', '.join(fixed)}: the service streams the audio in the "
                "format it sends; use the encoding= / sample_rate= arguments"
            )
        super().__init__(
            model=options.model, sample_rate=sample_rate, language=options.language, **kwargs
        )
        self._api_key = resolve_api_key(type(self).__name__, api_key, "DEEPGRAM_API_KEY")
        if url is None and base_url:
            url = websocket_origin(base_url)  # Pipecat 1.14's name and forms for the address
        self._url = env_base_url(url, DEEPGRAM_URL_ENV, DEEPGRAM_URL)
        self._options = options
        self._keepalive_secs = keepalive_secs
        # Pipecat's user aggregator waits this long for a late final transcript (announced in an
        # STTMetadataFrame). callpipe's aggregator waits a fixed window set by the turn
        # strategy instead, so the value is only kept (``ttfs_p99_latency``), not acted on.
        self._ttfs_p99_latency = ttfs_p99_latency
        self._ws: ProviderWebsocket | None = None
        self._register_event_handler("on_speech_started")
        self._register_event_handler("on_utterance_end")

    @property
    def encoding(self) -> Literal["linear16", "mulaw"]:
        """The encoding streamed to Deepgram."""
        if self._options.encoding is not None:
            return self._options.encoding
        return "mulaw" if self.sample_rate == 8000 else "linear16"

    @property
    def ttfs_p99_latency(self) -> float | None:
        """P99 seconds from the end of speech to the final transcript, as given (not used)."""
        return self._ttfs_p99_latency

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        given = self._settings.given_fields()
        self._options = self._options.model_copy(
            update={k: given[k] for k in changed if k in given}
        )
        logger.debug("%s: live options changed; they apply when the socket is next opened", self)

    def _query(self) -> dict[str, Any]:
        query = self._options.model_dump(exclude_none=True)
        query["channels"] = self._options.channels or 1
        query["multichannel"] = bool(self._options.multichannel)
        query.update(self._addons)  # last, as Pipecat adds them: an addon overrides an option
        query["encoding"] = self.encoding
        query["sample_rate"] = self.sample_rate
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
        await self.flush_audio()
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
        payload = pcm_to_ulaw(audio) if self.encoding == "mulaw" else audio
        return await ws.send(payload)

    async def on_user_stopped_speaking(self) -> None:
        if self._ws is not None and self._ws.connected:
            await self.flush_audio()  # the whole turn reaches Deepgram before Finalize
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
                result=message,
                finalized=bool(message.get("speech_final") or message.get("from_finalize")),
            )
        elif kind == "SpeechStarted":
            await self._call_event_handler("on_speech_started", message)
        elif kind == "UtteranceEnd":
            await self._call_event_handler("on_utterance_end", message)
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
