"""CartesiaSTTService: Cartesia's realtime speech-to-text WebSocket (``/stt/websocket``).

One socket per call, opened when the pipeline starts and authenticated as Cartesia's docs and
SDK do (``Authorization: Bearer <key>`` and a ``Cartesia-Version`` header). Everything about
the stream is in the query: ``model`` (``ink-whisper`` by default, as in Pipecat 1.14),
``language`` (ISO 639-1), ``encoding`` and ``sample_rate`` of the audio sent, and one
``keyterm`` parameter per key term (honoured by the ``ink-2`` / ``ink-preview`` models only;
for other models they are left out, with a warning). Spaces in a key term are sent as ``%20``.

The caller's audio goes out as binary messages in the batches :class:`StreamingSTTService`
collects (``pcm_s16le`` at the pipeline rate; ``encoding="pcm_mulaw"`` sends G.711 μ-law, half
the bytes). Cartesia answers with ``transcript`` messages whose ``text`` is new text since the
last final one: ``is_final: false`` ones become ``InterimTranscriptionFrame``\\ s, the others
``TranscriptionFrame``\\ s carrying the message as ``result``.

When the VAD says the caller stopped, the queued audio is sent, then the ``finalize`` command:
Cartesia transcribes what it holds at once and acknowledges with ``flush_done``; the final
transcripts between the two are marked ``finalized``. At the end of the call (``EndFrame``) the
queued audio is sent, then ``close``: Cartesia returns the transcripts of what it still holds,
then ``done``, and the ``EndFrame`` waits for them (at most ``end_timeout_secs``). A
``CancelFrame`` closes the socket at once.

Cartesia closes a socket after three minutes without a message; while no audio flows (e.g.
the STT is muted) a tenth of a second of silence is sent every ``keepalive_secs``.

A settings update of the model, language or key terms opens a new socket with the new query
(the old one gets ``close`` and returns what it still holds); if Cartesia refuses it, the old
socket stays, the settings go back and the bot gets a non-fatal ``ErrorFrame``. ``error``
messages become non-fatal ``ErrorFrame``\\ s; a refused key is fatal at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.services._env import (
    CARTESIA_STT_URL_ENV,
    CARTESIA_URL_ENV,
    specific_base_url,
    websocket_origin,
)
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    StreamEnd,
    json_object,
    message_of_type,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

CARTESIA_URL = "wss://api.cartesia.ai"
CARTESIA_VERSION = "2026-03-01"
CARTESIA_TTFS_P99 = 0.81
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Cartesia STT (seconds)."""
DEFAULT_MODEL = "ink-whisper"
_PATH = "/stt/websocket"
MAX_KEYTERMS = 100
MAX_KEYTERM_CHARS = 1200
"""Cartesia's limits for one connection: 100 key terms, 1200 characters in all."""
KEYTERM_MODEL_PREFIXES = ("ink-2", "ink-preview")
"""Model families that take key terms."""

STTEncoding = Literal["pcm_s16le", "pcm_mulaw"]

_WHISPER_LANGUAGES = (
    "af am ar as az ba be bg bn bo br bs ca cs cy da de el en es et eu fa fi fo fr gl gu ha haw "
    "he hi hr ht hu hy id is it ja jw ka kk km kn ko la lb ln lo lt lv mg mi mk ml mn mr ms mt "
    "my ne nl nn no oc pa pl ps pt ro ru sa sd si sk sl sn so sq sr su sv sw ta te tg th tk tl "
    "tr tt uk ur uz vi yi yo yue zh"
).split()
"""ISO 639 codes of the languages ``ink-whisper`` transcribes (Whisper's list)."""
_LANGUAGE_MAP = {code: code for code in _WHISPER_LANGUAGES} | {
    "nb": "no",
    "fil": "tl",
    "cmn": "zh",
    "jv": "jw",
}


def language_to_cartesia_stt_language(language: str) -> str:
    """Cartesia's code for a language tag: ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def prepare_keyterms(keyterms: Any) -> list[str]:
    """The key terms to send: blanks dropped, cut to Cartesia's limits (warning if cut)."""
    if not isinstance(keyterms, list | tuple) or not keyterms:
        return []
    terms = [term.strip() for term in keyterms if isinstance(term, str) and term.strip()]
    kept: list[str] = []
    total = 0
    for term in terms:
        if len(kept) == MAX_KEYTERMS or total + len(term) > MAX_KEYTERM_CHARS:
            break
        kept.append(term)
        total += len(term)
    if len(kept) < len(terms):
        logger.warning(
            "Cartesia takes at most %d key terms of %d characters in all; %d left out",
            MAX_KEYTERMS,
            MAX_KEYTERM_CHARS,
            len(terms) - len(kept),
        )
    return kept


@dataclass
class CartesiaSTTSettings(STTSettings):
    """``CartesiaSTTService.Settings``: model, language and ``keyterm`` (a list of words or
    phrases to favour; ink-2 / ink-preview models). Each is part of the socket's query, so an
    update opens a new socket."""

    keyterm: list[str] | None | NotGiven = field(default_factory=unset)


class CartesiaLiveOptions:
    """Pipecat's deprecated ``live_options=`` form (use ``settings=`` and ``encoding=`` /
    ``sample_rate=`` instead); read once, at construction."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        language: str = "en",
        encoding: str = "pcm_s16le",
        sample_rate: int = 16000,
        **kwargs: Any,
    ) -> None:
        self.model = model
        self.language = language
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.additional_params = kwargs


class CartesiaSTTService(ProviderSocketSTTService):
    """Cartesia realtime speech-to-text (see the module docstring).

    1.14 style: ``CartesiaSTTService(api_key=..., settings=CartesiaSTTService.Settings(
    model="ink-whisper", language=Language.EN))``. ``base_url`` is a host (``api.cartesia.ai``)
    or an origin with a scheme (``ws://localhost:8000``), as Pipecat takes it; ``url`` is
    callpipe's form (an origin). When neither is given: ``$CALLPIPE_CARTESIA_STT_URL``, then
    ``$CALLPIPE_CARTESIA_URL``.
    ``extra_headers`` are added to the handshake's, replacing ours of the same name.
    """

    Settings = CartesiaSTTSettings
    _settings: CartesiaSTTSettings

    end_timeout_secs = 2.0
    """At the end of the call, how long Cartesia may take to answer ``close`` with ``done``."""

    retire_timeout_secs = 3.0
    """After a settings change, how long the old socket may take to answer ``close``."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = "",
        url: str | None = None,
        encoding: STTEncoding = "pcm_s16le",
        sample_rate: int | None = None,
        live_options: CartesiaLiveOptions | None = None,
        extra_headers: Mapping[str, str] | None = None,
        cartesia_version: str = CARTESIA_VERSION,
        keepalive_secs: float = 30.0,
        settings: CartesiaSTTSettings | None = None,
        ttfs_p99_latency: float | None = CARTESIA_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        model: str = DEFAULT_MODEL
        language: str = "en"
        if live_options is not None and settings is None:
            logger.warning("CartesiaSTTService: live_options is deprecated; use settings=")
            model, language = live_options.model or model, live_options.language or language
            encoding = live_options.encoding  # type: ignore[assignment]
            if sample_rate is None:
                sample_rate = live_options.sample_rate
        if encoding not in ("pcm_s16le", "pcm_mulaw"):
            raise ConfigurationError(
                f"CartesiaSTTService: encoding={encoding!r}; the pipeline's audio is sent as "
                "pcm_s16le or pcm_mulaw"
            )
        super().__init__(
            model=model,
            language=language,
            sample_rate=sample_rate,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings.keyterm = None
        if settings is not None:
            self._settings.apply_update(settings)
            self._sync_model_and_language()
        self._api_key = resolve_api_key(type(self).__name__, api_key, "CARTESIA_API_KEY")
        if url is None and base_url:
            url = websocket_origin(base_url)
        self._url = specific_base_url(url, CARTESIA_STT_URL_ENV, CARTESIA_URL_ENV, CARTESIA_URL)
        if self._url.endswith(_PATH):
            self._url = self._url[: -len(_PATH)]
        self._encoding: STTEncoding = encoding
        self._headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Cartesia-Version": cartesia_version,
            **dict(extra_headers or {}),
        }
        self._keepalive_secs = keepalive_secs
        self._last_sent = 0.0
        self._pending_finalizes = 0

    @property
    def encoding(self) -> STTEncoding:
        return self._encoding

    # ------------------------------------------------------------------ the socket

    def socket_url(self) -> str:
        """The socket's URL for the current settings."""
        model = str(self._settings.model or DEFAULT_MODEL)
        params: list[tuple[str, Any]] = [("model", model)]
        language = self._settings.language
        if isinstance(language, str) and language:
            params.append(("language", language_to_cartesia_stt_language(language)))
        params += [("encoding", self._encoding), ("sample_rate", self.sample_rate)]
        keyterms = prepare_keyterms(self._settings.keyterm)
        if keyterms and model.startswith(KEYTERM_MODEL_PREFIXES):
            params += [("keyterm", term) for term in keyterms]
        elif keyterms:
            logger.warning("%s: model %s takes no key terms; not sending them", self, model)
        return f"{self._url}{_PATH}?{urlencode(params, quote_via=quote)}"

    def _build_socket(self) -> ProviderWebsocket:
        return ProviderWebsocket(
            owner=str(self),
            url=self.socket_url(),
            headers=self._headers,
            on_message=self._on_message,
            on_failed=self._on_socket_failed,
            keepalive_secs=self._keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint="Check api_key / CARTESIA_API_KEY.",
        )

    def _keepalive(self) -> Message | None:
        """A tenth of a second of silence, only when no audio went out for a while."""
        if time.monotonic() - self._last_sent < self._keepalive_secs:
            return None
        silence = bytes(int(self.sample_rate / 10) * 2)
        return pcm_to_ulaw(silence) if self._encoding == "pcm_mulaw" else silence

    def _stream_end(self) -> StreamEnd:
        """``close``: Cartesia returns what it still holds, then ``done``."""
        return "close", _is_done

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        payload = pcm_to_ulaw(audio) if self._encoding == "pcm_mulaw" else audio
        return await ws.send(payload)

    async def on_user_stopped_speaking(self) -> None:
        ws = self._ws
        if ws is not None and ws.connected:
            await self.flush_audio()  # the whole turn reaches Cartesia before finalize
            self._pending_finalizes += 1  # before sending: the answer may come at once
            if not await ws.send("finalize", wait_secs=0):
                self._pending_finalizes -= 1

    # ------------------------------------------------------------------ results in

    async def _on_message(self, raw: Message) -> None:
        message = json_object(raw)
        kind = message.get("type")
        if kind == "transcript":
            final = bool(message.get("is_final"))
            language = message.get("language")
            await self.push_transcript(
                str(message.get("text") or ""),
                final=final,
                language=language if isinstance(language, str) else None,
                result=message,
                finalized=final and self._pending_finalizes > 0,
            )
        elif kind == "flush_done":
            self._pending_finalizes = max(0, self._pending_finalizes - 1)
        elif kind == "error":
            detail = message.get("message") or message.get("title") or message
            await self.report_error(f"{self}: Cartesia error: {detail}", reason="provider")


_is_done = message_of_type("done")
"""Cartesia's ``done``: its answer to ``close``, after the last transcripts."""
