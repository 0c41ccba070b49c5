"""MiniMaxHttpTTSService: MiniMax's T2A v2, one ``POST /v1/t2a_v2`` per sentence, its audio
read from the server-sent events as they come.

The protocol, as MiniMax documents it (https://platform.minimax.io/docs/api-reference/speech-t2a-http,
the OpenAPI schema at .../api-reference/speech/t2a/api/openapi.json):

- ``POST https://api.minimax.io/v1/t2a_v2`` (``https://api-uw.minimax.io`` in the western US,
  ``https://api.minimaxi.chat`` for mainland China), the key as ``Authorization: Bearer``; the
  older ``?GroupId=`` query parameter is still sent when a group id is given.
- The JSON body: ``model``, ``text``, ``stream``, ``voice_setting`` (``voice_id``, ``speed``,
  ``vol``, ``pitch``, and ``emotion``, ``text_normalization``, ``latex_read`` when set),
  ``audio_setting`` (``sample_rate``, ``bitrate``, ``format``, ``channel``), ``language_boost``
  and, streaming, ``stream_options``.
- A streamed answer is ``data: {...}`` events, each with ``data.audio`` (the audio bytes as
  hexadecimal) and ``data.status`` (1: more to come; 2: done), ``trace_id`` and ``base_resp``
  (``status_code`` 0 for success). The last event (status 2) also has ``extra_info`` and, unless
  ``stream_options.exclude_aggregated_audio`` is true, the whole audio again: this service
  asks for it to be left out, and never plays a status-2 event's audio.
- A failure can come with HTTP 200: a plain JSON body (or an event) whose ``base_resp`` has a
  non-zero ``status_code``: 1004 (authentication failed) is a rejected key, fatal here; 1002
  and 1039 (rate limits) before any audio are retried once after a short pause, as the base
  retries an HTTP 429; they and the others (1042, too many invalid characters; 2013, bad
  parameters; ...) are then reported as errors and the sentence is skipped.

PCM is asked for at the pipeline's output rate when MiniMax offers it (8000, 16000, 22050,
24000, 32000, 44100 Hz: a phone call gets 8000 Hz, nothing resampled), else at the nearest
lower rate, resampled here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import MINIMAX_URL_ENV, defaulted_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven, is_given

logger = logging.getLogger(__name__)

MINIMAX_URL = "https://api.minimax.io/v1/t2a_v2"
T2A_PATH = "/v1/t2a_v2"
"""Added to a ``base_url`` given as an origin only."""
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100)
"""The ``audio_setting.sample_rate`` values MiniMax offers."""
DEFAULT_MODEL = "speech-2.8-turbo"
DEFAULT_VOICE = "Calm_Woman"
EMOTIONS = (
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgusted",
    "surprised",
    "calm",
    "neutral",
    "fluent",
    "whisper",
)
AUTH_FAILED = 1004
"""``base_resp.status_code`` of a refused key."""
RATE_LIMITS = (1002, 1039)
"""``base_resp.status_code`` of the rate limits (requests, tokens per minute)."""
RATE_LIMIT_PAUSE_SECS = 0.25
KEY_HINT = "Check api_key / MINIMAX_API_KEY."

_LANGUAGE_MAP = {
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fi": "Finnish",
    "fil": "Filipino",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "ms": "Malay",
    "nb": "Norwegian",
    "nn": "Nynorsk",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sv": "Swedish",
    "ta": "Tamil",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "yue": "Chinese,Yue",
    "zh": "Chinese",
}


def language_to_minimax_language(language: str) -> str:
    """MiniMax's ``language_boost`` name for a language tag: ``Language.PT_BR`` ->
    ``"Portuguese"``. A language MiniMax does not list goes as its base code, logged at
    WARNING. (Persian, Filipino and Tamil need a speech-2.6 or newer model.)"""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class MiniMaxTTSSettings(TTSSettings):
    """``MiniMaxHttpTTSService.Settings``: model, voice (MiniMax's ``voice_id``), language
    (sent as ``language_boost`` when that is not set), and ``speed`` (0.5 to 2), ``volume`` (sent
    as ``vol``, above 0 up to 10), ``pitch`` (-12 to 12), ``emotion`` (one of
    :data:`EMOTIONS`; None: MiniMax picks), ``text_normalization``, ``latex_read`` and
    ``language_boost`` (a MiniMax language name, or ``"auto"``), each sent when not None."""

    speed: float | None | NotGiven = field(default_factory=unset)
    volume: float | None | NotGiven = field(default_factory=unset)
    pitch: int | None | NotGiven = field(default_factory=unset)
    emotion: str | None | NotGiven = field(default_factory=unset)
    text_normalization: bool | None | NotGiven = field(default_factory=unset)
    latex_read: bool | None | NotGiven = field(default_factory=unset)
    language_boost: str | None | NotGiven = field(default_factory=unset)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> Self:
        """A delta from a plain dict; a nested ``voice_setting`` dict (MiniMax's own shape,
        ``vol`` for the volume) becomes the fields it has."""
        flat = dict(settings)
        voice = flat.pop("voice_setting", None)
        if isinstance(voice, Mapping):
            names = {"vol": "volume", "voice_id": "voice"}
            for key, value in voice.items():
                flat.setdefault(names.get(str(key), str(key)), value)
        return super().from_mapping(flat)


class _MiniMaxParams(BaseModel):
    """Pipecat's deprecated ``params=`` form (``settings=`` replaces it and wins over it)."""

    model_config = ConfigDict(extra="forbid")

    language: str | None = "en"
    speed: float | None = 1.0
    volume: float | None = 1.0
    pitch: int | None = 0
    emotion: str | None = None
    text_normalization: bool | None = None
    latex_read: bool | None = None
    exclude_aggregated_audio: bool | None = None
    """Accepted and not used: this service always asks MiniMax to leave the aggregate out."""


def _initial_settings(
    model: str | None,
    voice_id: str | None,
    params: _MiniMaxParams | None,
    settings: MiniMaxTTSSettings | None,
) -> MiniMaxTTSSettings:
    store = MiniMaxTTSSettings(
        model=model or DEFAULT_MODEL,
        voice=voice_id or DEFAULT_VOICE,
        language=None,
        speed=1.0,
        volume=1.0,
        pitch=0,
        emotion=None,
        text_normalization=None,
        latex_read=None,
        language_boost=None,
    )
    if params is not None and settings is None:
        store.speed = params.speed
        store.volume = params.volume
        store.pitch = params.pitch
        store.latex_read = params.latex_read
        store.text_normalization = params.text_normalization
        if params.language:
            store.language_boost = language_to_minimax_language(params.language)
        if params.emotion in EMOTIONS:
            store.emotion = params.emotion
        elif params.emotion is not None:
            logger.warning(
                "MiniMax: unknown emotion %r ignored (MiniMax has %s)",
                params.emotion,
                ", ".join(EMOTIONS),
            )
    if settings is not None:
        store.apply_update(settings)
    return store


def _split_endpoint(url: str) -> tuple[str, str, dict[str, str]]:
    """``(origin, path, query)`` of ``base_url``: a bare origin gets :data:`T2A_PATH`."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ConfigurationError(f"base_url={url!r}: expected e.g. {MINIMAX_URL!r}")
    path = parts.path.rstrip("/") or T2A_PATH
    return f"{parts.scheme}://{parts.netloc}", path, dict(parse_qsl(parts.query))


def _failure(message: dict[str, Any]) -> tuple[int, str] | None:
    """``(status_code, status_msg)`` of a ``base_resp`` reporting a failure (None: success or
    no ``base_resp``)."""
    base = message.get("base_resp")
    if not isinstance(base, dict):
        return None
    code = base.get("status_code")
    if not isinstance(code, int) or code == 0:
        return None
    status = base.get("status_msg")
    return code, status if isinstance(status, str) and status else "no message"


class MiniMaxHttpTTSService(HTTPStreamTTSService):
    """MiniMax T2A v2 over HTTP (see the module docstring).

    1.14 style: ``MiniMaxHttpTTSService(api_key=..., group_id=..., settings=
    MiniMaxHttpTTSService.Settings(voice="Calm_Woman"))``. ``base_url``: MiniMax's endpoint
    (the whole URL, or an origin, to which ``/v1/t2a_v2`` is added); left at the default,
    ``$CALLPIPE_MINIMAX_URL`` may replace it. ``group_id`` (else ``$MINIMAX_GROUP_ID``; MiniMax no
    longer needs it) goes as ``?GroupId=``. ``stream=False`` asks for one JSON answer per
    sentence instead of events. ``model``, ``voice_id`` and ``params`` are the older forms.
    ``aiohttp_session`` (Pipecat's, required there) is accepted and not used: requests go
    through callpipe's pooled client. Settings updates apply from the next sentence; an
    interruption closes the response in flight.
    """

    Settings = MiniMaxTTSSettings
    _settings: MiniMaxTTSSettings
    InputParams = _MiniMaxParams
    key_hint = KEY_HINT

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str = MINIMAX_URL,
        group_id: str | None = None,
        model: str | None = None,
        voice_id: str | None = None,
        aiohttp_session: Any = None,
        sample_rate: int | None = None,
        stream: bool = True,
        params: _MiniMaxParams | None = None,
        settings: MiniMaxTTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        store = _initial_settings(model, voice_id, params, settings)
        super().__init__(
            model=store.model if isinstance(store.model, str) else DEFAULT_MODEL,
            sample_rate=sample_rate,
            **kwargs,
        )
        self._api_key = resolve_api_key(type(self).__name__, api_key, "MINIMAX_API_KEY")
        self._settings.apply_update(store)
        url = defaulted_base_url(base_url, MINIMAX_URL_ENV, MINIMAX_URL)
        origin, self._path, self._query = _split_endpoint(url)
        group = group_id or os.environ.get("MINIMAX_GROUP_ID", "").strip()
        if group:
            self._query["GroupId"] = group
        self._stream = stream
        headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json"}
        self.configure_http(origin, headers, timeout_secs=timeout_secs)

    def language_to_service_language(self, language: str) -> str | None:
        return language_to_minimax_language(language)

    @property
    def wire_rate(self) -> int:
        """The ``sample_rate`` asked for: the output rate when MiniMax offers it, else the
        nearest lower one it does (resampled here)."""
        rate = self.sample_rate
        if rate in SAMPLE_RATES:
            return rate
        return max((r for r in SAMPLE_RATES if r <= rate), default=SAMPLE_RATES[0])

    @property
    def endpoint(self) -> str:
        """The URL requests go to (without the query)."""
        return f"{self.base_url}{self._path}"

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"MiniMax cannot produce {self.sample_rate} Hz audio")
        self._http()

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/v1/t2a_v2`` body for ``text`` with the current settings."""
        s = self._settings
        voice: dict[str, Any] = {
            "voice_id": s.voice,
            "speed": s.speed,
            "vol": s.volume,
            "pitch": s.pitch,
            "emotion": s.emotion,
            "text_normalization": s.text_normalization,
            "latex_read": s.latex_read,
        }
        boost = s.language_boost
        if not (isinstance(boost, str) and boost) and isinstance(s.language, str) and s.language:
            boost = language_to_minimax_language(s.language)
        body: dict[str, Any] = {
            "model": self.model_name,
            "text": text,
            "stream": self._stream,
            "voice_setting": {k: v for k, v in voice.items() if v is not None and is_given(v)},
            "audio_setting": {
                "sample_rate": self.wire_rate,
                "bitrate": 128000,
                "format": "pcm",
                "channel": 1,
            },
        }
        if isinstance(boost, str) and boost:
            body["language_boost"] = boost
        if self._stream:
            body["stream_options"] = {"exclude_aggregated_audio": True}
        return body

    def rejects_credentials(self, status: int, body: bytes) -> bool:
        if super().rejects_credentials(status, body):
            return True
        try:
            message = json.loads(body)
        except ValueError:
            return False
        failure = _failure(message) if isinstance(message, dict) else None
        return failure is not None and failure[0] == AUTH_FAILED

    async def run_tts(self, text: str, context_id: str) -> None:
        body = self.request_body(text)
        limited: list[tuple[int, str]] = []

        async def read(response: httpx.Response, context: str) -> None:
            await self._read(response, context, defer=limited)

        await self.stream_speech(context_id, self._path, body, read, params=self._query)
        if limited and self.has_context(context_id):  # a rate limit before any audio: retry
            logger.warning("%s: MiniMax rate limit (%d); retrying once", self, limited[0][0])
            await asyncio.sleep(RATE_LIMIT_PAUSE_SECS)
            await self.stream_speech(context_id, self._path, body, self._read, params=self._query)

    async def _read(
        self,
        response: httpx.Response,
        context_id: str,
        *,
        defer: list[tuple[int, str]] | None = None,
    ) -> None:
        """Play an answer's audio; a failure in it is reported, or, when it is a rate limit
        before any audio and ``defer`` is given, put there for the caller to retry."""
        ctx = self._contexts.get(context_id)
        before = ctx.audio_secs if ctx is not None else 0.0
        rest: list[str] = []  # lines outside events: a plain JSON answer (stream=False, errors)
        failure: tuple[int, str] | None = None
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                if line.strip():
                    rest.append(line)
                continue
            payload = line[5:].strip()
            if payload:
                failure = await self._take(payload, context_id, streamed=True)
                if failure is not None:
                    break
        if failure is None and rest:
            failure = await self._take("\n".join(rest), context_id, streamed=False)
        if failure is None:
            return
        got_audio = ctx is not None and ctx.audio_secs > before
        if defer is not None and failure[0] in RATE_LIMITS and not got_audio:
            defer.append(failure)
        else:
            self.sentence_failed(context_id)  # what of it did not come was never spoken
            await self._report(*failure)

    async def _take(
        self, payload: str, context_id: str, *, streamed: bool
    ) -> tuple[int, str] | None:
        """Play one answer (an event, or the whole body); its failure, if it reports one."""
        try:
            message = json.loads(payload)
        except ValueError:
            logger.warning("%s: unreadable answer from MiniMax: %.200s", self, payload)
            return None
        if not isinstance(message, dict):
            return None
        failure = _failure(message)
        if failure is not None:
            return failure
        data = message.get("data")
        if not isinstance(data, dict):
            return None
        audio = data.get("audio")
        if streamed and data.get("status") == 2:
            return None  # the end: its audio, if any, is the whole answer again
        if isinstance(audio, str) and audio:
            try:
                pcm = bytes.fromhex(audio)
            except ValueError:
                logger.warning("%s: audio from MiniMax is not hexadecimal; skipped", self)
                return None
            await self.append_audio(context_id, pcm, self.wire_rate)
        return None

    async def _report(self, code: int, status: str) -> None:
        if code == AUTH_FAILED:
            self._key_rejected = True
            await self.report_error(
                f"{self}: MiniMax refused the key ({code}: {status}). {self.key_hint}",
                fatal=True,
                reason="auth",
            )
            return
        await self.report_error(f"{self}: MiniMax error {code}: {status}", reason="provider")
