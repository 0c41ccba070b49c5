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
few seconds so a silent stretch does not close the socket. At the end of the call
(``EndFrame``) the queued audio is sent, then ``CloseStream``: Deepgram returns the final
results of what it still holds, then ``Metadata``, and closes; those transcripts are pushed
before the ``EndFrame``, so the caller's last words are not lost. The wait is bounded by
``end_timeout_secs``; a ``CancelFrame`` closes the socket at once.

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

Every option is a query parameter of the socket, so a settings update that changes the query
(``language``, ``model``, ``keyterm``, ...) opens a new socket with it at once, as Pipecat 1.14
does; an update that leaves the query as it was (e.g. an option an addon overrides) does not. The
switch is make-before-break: until the new socket is open, the caller's audio keeps going to the old
one, so none is held back or dropped for the switch (if the old socket is down, the audio waits in
the service's queue as it always does then); then the audio goes to the new socket, and the old one
gets ``CloseStream``, which makes Deepgram return the results of the audio it still holds, then a
``Metadata`` message, before the socket is closed. A word cut in two by the switch is transcribed in
two halves, but nothing the caller said is lost. If Deepgram refuses the new options (e.g.
``keyterm`` with a model other than Nova-3), the old socket stays, the settings go back to what it
was opened with, and the bot gets a non-fatal ``ErrorFrame``. Unlike Pipecat, the switch does not
wait for the caller to stop speaking: the old socket finalizes what it heard.

Languages are sent as BCP 47 tags, as Deepgram documents its ``language`` parameter (``en``,
``en-US``, ``es-419``, ``zh-Hans``, ``multi``, ...); a ``Language`` member (or any enum member)
is sent as its value, ``Language.EN_US`` as ``en-US``. Tags are not mapped to a list of their
own: which tags Deepgram accepts depends on the model and grows, and it refuses the others at
the handshake with its reason, which reaches the bot.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.services._env import DEEPGRAM_URL_ENV, websocket_origin
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    StreamEnd,
    json_object,
    message_of_type,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transports.record_hooks import note_transcript_detail

logger = logging.getLogger(__name__)

DEEPGRAM_URL = "wss://api.deepgram.com"
DEEPGRAM_TTFS_P99 = 0.35
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Deepgram (seconds)."""
_AUDIO_FORMAT_PARAMS = frozenset({"encoding", "sample_rate"})
"""Query parameters describing the audio this service sends: not settable through addons."""
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})


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


@dataclass
class DeepgramSTTSettings(STTSettings):
    """``DeepgramSTTService.Settings``: model, language and Pipecat 1.14's live options.

    Each field is the query parameter of the same name (a list repeats it); other
    live-endpoint options go in ``extra`` (they become query parameters as given).
    """

    interim_results: Any = field(default_factory=unset)
    punctuate: Any = field(default_factory=unset)
    smart_format: Any = field(default_factory=unset)
    endpointing: Any = field(default_factory=unset)
    profanity_filter: Any = field(default_factory=unset)
    keyterm: Any = field(default_factory=unset)
    utterance_end_ms: Any = field(default_factory=unset)
    numerals: Any = field(default_factory=unset)
    diarize: Any = field(default_factory=unset)
    detect_entities: Any = field(default_factory=unset)
    dictation: Any = field(default_factory=unset)
    keywords: Any = field(default_factory=unset)
    redact: Any = field(default_factory=unset)
    """Redaction types (``pci``, ``ssn``, ...); a list repeats the parameter."""
    replace: Any = field(default_factory=unset)
    """``find:replacement`` terms; a list repeats the parameter."""
    search: Any = field(default_factory=unset)
    version: Any = field(default_factory=unset)
    """Model version, e.g. ``"2021-03-17.0"`` (None: Deepgram's ``latest``)."""


class _Socket:
    """One ``/v1/listen`` socket and the language it was opened with."""

    ws: ProviderWebsocket

    def __init__(self, language: Any) -> None:
        language = _plain(language)
        self.language = str(language) if language is not None else None
        """The tag sent (transcripts without a language of their own are labelled with it)."""


class DeepgramSTTService(ProviderSocketSTTService):
    """Deepgram streaming speech-to-text (see the module docstring).

    1.14 style: ``settings=DeepgramSTTService.Settings(model="nova-3", language="en")``. The
    options are query parameters of the socket, so an ``STTUpdateSettingsFrame`` that changes
    the query opens a new socket at once; the caller's audio keeps going to the old socket until
    the new one is open, and the old one returns its last results before it is closed (see the
    module docstring).

    The address: ``url`` (``wss://host[:port]``; ``/v1/listen`` is appended), or Pipecat 1.14's
    ``base_url``, a host with an optional scheme (``ws://``/``http://`` unencrypted, otherwise
    ``wss://``), else ``$CALLPIPE_DEEPGRAM_URL``, else Deepgram's.

    Connection options, as in Pipecat 1.14 (each overrides the same ``live_options`` field):
    ``channels`` (1 by default; must match the pipeline's audio, mono on a phone call),
    ``multichannel``, ``callback``, ``callback_method``, ``tag``, ``mip_opt_out``; ``addons``
    adds any other query parameters (sent last, so they override options; ``encoding`` and
    ``sample_rate`` are refused there, as they must describe the audio actually sent).
    ``ttfs_p99_latency`` (default 0.35 s, Pipecat 1.14's figure for Deepgram) is announced in
    the ``STTMetadataFrame`` at start.
    """

    Settings = DeepgramSTTSettings

    retire_timeout_secs = 3.0
    """How long a replaced socket may take to return its last results after ``CloseStream``."""

    end_timeout_secs = 2.0
    """At the end of the call (``EndFrame``), how long Deepgram may take to return the final
    results of the audio sent after ``CloseStream`` before the socket is closed anyway (the
    ``EndFrame`` waits for them). Set on the instance or a subclass to change it."""

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
            model=options.model,
            sample_rate=sample_rate,
            language=options.language,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._api_key = resolve_api_key(type(self).__name__, api_key, "DEEPGRAM_API_KEY")
        if url is None and base_url:
            url = websocket_origin(base_url)  # Pipecat 1.14's name and forms for the address
        self._url = env_base_url(url, DEEPGRAM_URL_ENV, DEEPGRAM_URL)
        self._initial_options = options
        self._options = options
        self._keepalive_secs = keepalive_secs
        self._register_event_handler("on_speech_started")
        self._register_event_handler("on_utterance_end")

    @property
    def encoding(self) -> Literal["linear16", "mulaw"]:
        """The encoding streamed to Deepgram."""
        if self._options.encoding is not None:
            return self._options.encoding
        return "mulaw" if self.sample_rate == 8000 else "linear16"

    def _read_options(self) -> None:
        """The options: those given at construction, with the settings set since on top."""
        self._options = self._initial_options.model_copy(update=self._settings.given_fields())

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Take the changed options; a change of the socket's query opens a new socket now."""
        self._read_options()
        await super().apply_settings(changed)

    def _settings_reverted(self) -> None:
        self._read_options()
        super()._settings_reverted()

    def _query(self) -> dict[str, Any]:
        options = self._options
        query = options.model_dump(exclude_none=True)
        query["channels"] = options.channels or 1
        query["multichannel"] = bool(options.multichannel)
        query.update(self._addons)  # last, as Pipecat adds them: an addon overrides an option
        query["encoding"] = self.encoding
        query["sample_rate"] = self.sample_rate
        return {key: _plain(value) for key, value in query.items()}

    def socket_url(self) -> str:
        return ws_url(self._url, "/v1/listen", self._query())

    def _build_socket(self) -> ProviderWebsocket:
        socket = _Socket(self._options.language)
        socket.ws = ProviderWebsocket(
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Token {self._api_key}"},
            on_message=partial(self._on_message, socket=socket),
            on_failed=partial(self._on_socket_failed, socket=socket),
            keepalive_secs=self._keepalive_secs,
            keepalive_message=lambda: json.dumps({"type": "KeepAlive"}),
            auth_hint="Check api_key / DEEPGRAM_API_KEY.",
        )
        return socket.ws

    _final_message = _CLOSE_STREAM

    def _stream_end(self) -> StreamEnd:
        """End of call: after ``CloseStream`` Deepgram returns the final transcripts of what it
        holds, ends its answer with ``Metadata`` and closes; they are pushed before the
        ``EndFrame`` goes on (the socket is closed after ``end_timeout_secs`` if not)."""
        return _CLOSE_STREAM, _is_metadata

    async def _on_socket_failed(self, message: str, *, socket: _Socket | None = None) -> None:
        if socket is not None and socket.ws is not self._ws:
            return  # replaced already: the new socket carries the call
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

    async def _on_message(self, raw: Message, *, socket: _Socket | None = None) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == "Results":
            alternatives = (message.get("channel") or {}).get("alternatives") or []
            if not alternatives:
                return
            best = alternatives[0]
            languages = best.get("languages") or []
            # Else the language the socket was opened with (a socket being replaced after a
            # language change still returns results in its own language).
            if languages:
                language = languages[0]
            else:
                language = socket.language if socket is not None else None
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


_is_metadata = message_of_type("Metadata")
"""Deepgram's ``Metadata`` message: its last one after ``CloseStream``."""


def _plain(value: Any) -> Any:
    """A query value as Deepgram reads it: an enum member as its value (``Language.EN_US`` is
    ``en-US``, also for ``(str, Enum)`` classes whose ``str()`` is ``Class.MEMBER``)."""
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


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
