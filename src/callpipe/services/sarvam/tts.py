"""SarvamTTSService: Sarvam AI's Bulbul text-to-speech WebSocket (``/text-to-speech/ws``).

The protocol, as Sarvam's SDK (``sarvamai``) speaks it:

- **Handshake.** ``wss://api.sarvam.ai/text-to-speech/ws?model=<model>&send_completion_event=true``
  with the key in the ``Api-Subscription-Key`` header.
- **Client messages.** First ``{"type": "config", "data": {...}}``: ``model``,
  ``language_code`` (``hi-IN``, ...), ``speaker``, ``speech_sample_rate``,
  ``enable_preprocessing``, ``output_audio_codec``, ``output_audio_bitrate``, ``pace``,
  ``min_buffer_size``, ``max_chunk_length`` and, where the model takes them, ``pitch`` and
  ``loudness`` (bulbul:v2, bulbul:v4-flash) or ``temperature`` (bulbul:v3). Then
  ``{"type": "text", "data": {"text"}}``, ``{"type": "flush"}`` (synthesize what is buffered
  now) and ``{"type": "ping"}`` (Sarvam closes a socket idle for a minute; one goes out every
  ``ping_interval_secs``). A new config message may be sent at any time.
- **Server messages.** ``{"type": "audio", "data": {"audio": <base64>, "content_type"}}``,
  ``{"type": "event", "data": {"event_type": "final"}}`` once the audio of a flush is all sent,
  and ``{"type": "error", "data": {"message", ...}}``.

On a phone call (8 kHz output) the config asks for ``mulaw`` at 8000 Hz: half the bytes, no
resampling (G.711 decoding is exact for what the line carries); otherwise ``linear16`` at the
pipeline's output rate (8000, 16000, 22050 or 24000 Hz).

Sarvam's socket has no contexts: it speaks what it is given, in order. Each sentence is sent
with a flush, so synthesis starts at once (Sarvam would otherwise wait for ``min_buffer_size``
characters); audio belongs to the oldest sentence whose ``final`` has not come, and each
sentence's ``TTSTextFrame`` follows its audio. An interruption while audio is still being
generated reopens the socket (as Pipecat's ``InterruptibleTTSService`` does): nothing more of
the old reply arrives, and the next one starts on a fresh socket.

Settings (``TTSUpdateSettingsFrame``): a new ``model`` reopens the socket (it is in the URL); the
others go out as a new config message, which Sarvam applies from the next text.

Differences from Pipecat 1.14: the config carries ``language_code`` and an integer
``speech_sample_rate``, as Sarvam's SDK sends them (Pipecat sends the older
``target_language_code`` and a string); the output rate is the pipeline's unless ``sample_rate``
is given (Pipecat uses the model's 24 kHz and resamples); ``output_audio_codec`` can only be
``linear16`` or ``mulaw`` (the others would need decoding), and defaults to ``mulaw`` on 8 kHz.

:class:`SarvamHttpTTSService` (Pipecat 1.14's REST form) posts each sentence to
``/text-to-speech``; see its docstring.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.audio.wav import check_pcm16_mono, read_wav
from callpipe.errors import ConfigurationError, ProtocolError
from callpipe.frames.frames import StartFrame
from callpipe.services._env import SARVAM_API_URL_ENV, SARVAM_URL_ENV, defaulted_base_url
from callpipe.services._env import base_url as env_base_url
from callpipe.services._http_tts import HTTPStreamTTSService
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.sarvam.stt import SARVAM_URL
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket, ws_url
from callpipe.transcriptions.language import resolve_language
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

TTS_PATH = "/text-to-speech/ws"
SAMPLE_RATES = (8000, 16000, 22050, 24000)
OUTPUT_CODECS = ("linear16", "mulaw")
"""The ``output_audio_codec`` values callpipe plays (Sarvam also offers compressed ones)."""
_AUTH_HINT = "Check api_key / SARVAM_API_KEY."


class SarvamTTSModel(StrEnum):
    """Sarvam's Bulbul models (bulbul:v2 is deprecated: Sarvam refuses it)."""

    BULBUL_V2 = "bulbul:v2"
    BULBUL_V3_BETA = "bulbul:v3-beta"
    BULBUL_V3 = "bulbul:v3"
    BULBUL_V4_FLASH = "bulbul:v4-flash"


class SarvamTTSSpeakerV2(StrEnum):
    """The bulbul:v2 speakers."""

    ANUSHKA = "anushka"
    ABHILASH = "abhilash"
    MANISHA = "manisha"
    VIDYA = "vidya"
    ARYA = "arya"
    KARUN = "karun"
    HITESH = "hitesh"


class SarvamTTSSpeakerV3(StrEnum):
    """The bulbul:v3 speakers (bulbul:v4-flash has its own ``<name>_<lang>_<style>`` ones)."""

    ADITYA = "aditya"
    RITU = "ritu"
    PRIYA = "priya"
    NEHA = "neha"
    RAHUL = "rahul"
    POOJA = "pooja"
    ROHAN = "rohan"
    SIMRAN = "simran"
    KAVYA = "kavya"
    AMIT = "amit"
    DEV = "dev"
    ISHITA = "ishita"
    SHREYA = "shreya"
    RATAN = "ratan"
    VARUN = "varun"
    MANAN = "manan"
    SUMIT = "sumit"
    ROOPA = "roopa"
    KABIR = "kabir"
    AAYAN = "aayan"
    SHUBH = "shubh"
    ASHUTOSH = "ashutosh"
    ADVAIT = "advait"
    AMELIA = "amelia"
    SOPHIA = "sophia"


@dataclass(frozen=True)
class TTSModelConfig:
    """What a Bulbul model takes: pitch and loudness, or temperature; its default speaker and
    pace range."""

    supports_pitch: bool
    supports_loudness: bool
    supports_temperature: bool
    default_speaker: str
    pace_range: tuple[float, float]
    preprocessing_always_enabled: bool
    speakers: tuple[str, ...]


_V3 = TTSModelConfig(
    supports_pitch=False,
    supports_loudness=False,
    supports_temperature=True,
    default_speaker="shubh",
    pace_range=(0.5, 2.0),
    preprocessing_always_enabled=True,
    speakers=tuple(SarvamTTSSpeakerV3),
)
TTS_MODEL_CONFIGS: dict[str, TTSModelConfig] = {
    "bulbul:v2": TTSModelConfig(
        supports_pitch=True,
        supports_loudness=True,
        supports_temperature=False,
        default_speaker="anushka",
        pace_range=(0.3, 3.0),
        preprocessing_always_enabled=False,
        speakers=tuple(SarvamTTSSpeakerV2),
    ),
    "bulbul:v3-beta": _V3,
    "bulbul:v3": _V3,
    "bulbul:v4-flash": TTSModelConfig(
        supports_pitch=True,
        supports_loudness=True,
        supports_temperature=False,
        default_speaker="shubh_en_narration_gentle",
        pace_range=(0.5, 2.0),
        preprocessing_always_enabled=True,
        speakers=(),
    ),
}
DEFAULT_MODEL = "bulbul:v3"


def get_speakers_for_model(model: str) -> list[str]:
    """The speakers listed for ``model`` (bulbul:v3's for a model not known here)."""
    return list(TTS_MODEL_CONFIGS.get(model, _V3).speakers)


SARVAM_TTS_LANGUAGES = "bn en gu hi kn ml mr od pa ta te".split()
_LANGUAGE_MAP = {code: f"{code}-IN" for code in SARVAM_TTS_LANGUAGES} | {
    f"{code}-IN": f"{code}-IN" for code in SARVAM_TTS_LANGUAGES
}
_LANGUAGE_MAP |= {"or": "od-IN", "or-IN": "od-IN"}


def language_to_sarvam_language(language: str) -> str:
    """Sarvam's TTS code for a language tag: ``Language.HI`` -> ``"hi-IN"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


@dataclass
class SarvamHttpTTSSettings(TTSSettings):
    """Bulbul's voice settings (``None``: Sarvam's default, not sent).

    Parameters:
        enable_preprocessing: Normalize English words and numbers (always on from bulbul:v3).
        pace: Speed, 0.5 to 2.0 (bulbul:v2: 0.3 to 3.0).
        pitch: -0.75 to 0.75 (bulbul:v2 and bulbul:v4-flash).
        loudness: 0.3 to 3.0 (bulbul:v2 and bulbul:v4-flash).
        temperature: 0.01 to 1.0, higher is more varied (bulbul:v3).
    """

    enable_preprocessing: bool | None | NotGiven = field(default_factory=unset)
    pace: float | None | NotGiven = field(default_factory=unset)
    pitch: float | None | NotGiven = field(default_factory=unset)
    loudness: float | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)


@dataclass
class SarvamTTSSettings(SarvamHttpTTSSettings):
    """``SarvamTTSService.Settings``: the voice settings plus Sarvam's buffering.

    Parameters:
        min_buffer_size: Characters Sarvam collects before it synthesizes (a flush does not
            wait for them).
        max_chunk_length: The longest piece Sarvam synthesizes at once.
    """

    _aliases: ClassVar[dict[str, str]] = {
        "voice_id": "voice",
        "target_language_code": "language",
        "language_code": "language",
    }

    min_buffer_size: int | None | NotGiven = field(default_factory=unset)
    max_chunk_length: int | None | NotGiven = field(default_factory=unset)


def _fit_to_model(owner: object, s: SarvamHttpTTSSettings, config: TTSModelConfig) -> None:
    """Clamp the pace into the model's range; preprocessing on where the model always does it."""
    low, high = config.pace_range
    if isinstance(s.pace, int | float) and not low <= s.pace <= high:
        logger.warning("%s: pace %s outside %s..%s; clamped", owner, s.pace, low, high)
        s.pace = max(low, min(high, float(s.pace)))
    if config.preprocessing_always_enabled:
        s.enable_preprocessing = True


def _voice_fields(s: SarvamHttpTTSSettings, config: TTSModelConfig, rate: int) -> dict[str, Any]:
    """The fields a config message and a REST request share (pitch and loudness, or
    temperature, only where the model takes them)."""
    language = s.language if isinstance(s.language, str) and s.language else "en-IN"
    data: dict[str, Any] = {
        "model": s.model,
        "language_code": language_to_sarvam_language(language),
        "speaker": s.voice,
        "speech_sample_rate": rate,
        "enable_preprocessing": s.enable_preprocessing,
        "pace": s.pace,
    }
    if config.supports_pitch:
        data["pitch"] = s.pitch
    if config.supports_loudness:
        data["loudness"] = s.loudness
    if config.supports_temperature:
        data["temperature"] = s.temperature
    return data


def _model_config(owner: str, s: SarvamHttpTTSSettings) -> TTSModelConfig:
    config = TTS_MODEL_CONFIGS.get(str(s.model))
    if config is None:
        raise ConfigurationError(
            f"{owner}: model {s.model!r}; use one of {', '.join(TTS_MODEL_CONFIGS)}"
        )
    return config


_VOICE_DEFAULTS: dict[str, Any] = {
    "language": "en-IN",
    "enable_preprocessing": False,
    "pace": 1.0,
    "pitch": None,
    "loudness": None,
    "temperature": None,
}
"""The voice settings both services start from."""
_PARAMS_NOT_SETTINGS = {"output_audio_codec", "output_audio_bitrate"}


def _settle(
    owner: str,
    store: SarvamHttpTTSSettings,
    params: BaseModel | None,
    settings: SarvamHttpTTSSettings | None,
) -> TTSModelConfig:
    """Complete ``store`` (the defaults) with the deprecated ``params`` (not when ``settings``
    is given), then ``settings``; check its model and give it the model's default speaker when
    it has no voice. Returns the model's config."""
    if params is not None:
        logger.warning("%s: params is deprecated; use settings=", owner)
        if settings is None:
            given = params.model_dump(exclude_none=True, exclude=_PARAMS_NOT_SETTINGS)
            for name, value in given.items():
                setattr(store, name, value)
    if settings is not None:
        store.apply_update(settings)
    config = _model_config(owner, store)
    if not isinstance(store.voice, str) or not store.voice:
        store.voice = config.default_speaker
    return config


def _follow_model(
    owner: TTSService,
    s: SarvamHttpTTSSettings,
    config: TTSModelConfig,
    changed: dict[str, Any],
) -> TTSModelConfig:
    """The model's config after a settings update, the pace fitted to it. An unknown model is
    undone; a new one brings its default speaker unless the voice changed too."""
    if "model" in changed:
        new = TTS_MODEL_CONFIGS.get(str(s.model))
        if new is None:
            logger.warning("%s: unknown model %r; ignored", owner, s.model)
            s.model = changed.pop("model")
            owner.set_model_name(str(s.model))
        else:
            config = new
            if "voice" not in changed:
                s.voice = config.default_speaker
    _fit_to_model(owner, s, config)
    return config


@dataclass
class _Flush:
    """One sentence sent with a flush, waiting for its ``final`` event."""

    context_id: str
    text: str
    cancelled: bool = False
    """Its reply was interrupted: its audio, still coming, is dropped."""


class SarvamTTSService(TTSService):
    """Sarvam Bulbul over WebSocket (see the module docstring).

    1.14 style: ``SarvamTTSService(api_key=..., settings=SarvamTTSService.Settings(
    voice="shubh", language=Language.HI))``. ``url``: the socket's address (Pipecat's
    ``wss://api.sarvam.ai/text-to-speech/ws``) or just its origin; when not given,
    ``$CALLPIPE_SARVAM_URL``, else Sarvam's.
    """

    emits_word_timestamps = True
    """Each sentence's text is released after its audio (as a timestamp of the whole)."""
    Settings = SarvamTTSSettings
    _settings: SarvamTTSSettings

    ping_interval_secs = 20.0
    """Idle time between pings (Sarvam closes a socket after a minute without a message)."""

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``); ignored when ``settings``
        is given, except the audio format."""

        pitch: float | None = None
        pace: float | None = None
        loudness: float | None = None
        enable_preprocessing: bool | None = None
        min_buffer_size: int | None = None
        max_chunk_length: int | None = None
        output_audio_codec: str | None = None
        """``linear16`` or ``mulaw`` (None: ``mulaw`` on 8 kHz, else ``linear16``)."""
        output_audio_bitrate: str | None = None
        language: str | None = None
        temperature: float | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        voice_id: str | None = None,
        url: str | None = None,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: SarvamTTSSettings | None = None,
        **kwargs: Any,
    ) -> None:
        store = SarvamTTSSettings(
            model=DEFAULT_MODEL if model is None else model,
            voice=voice_id,
            min_buffer_size=50,
            max_chunk_length=150,
            **_VOICE_DEFAULTS,
        )
        codec: str | None = None
        bitrate = "128k"
        if params is not None:
            codec = params.output_audio_codec
            bitrate = params.output_audio_bitrate or bitrate
        name = type(self).__name__
        config = _settle(name, store, params, settings)
        if codec is not None and codec not in OUTPUT_CODECS:
            raise ConfigurationError(
                f"{name}: output_audio_codec {codec!r}; callpipe plays {OUTPUT_CODECS}"
            )
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._config = config
        self._fit_to_model()
        self._api_key = resolve_api_key(name, api_key, "SARVAM_API_KEY")
        address = env_base_url(url, SARVAM_URL_ENV, SARVAM_URL)
        self._url = address[: -len(TTS_PATH)] if address.endswith(TTS_PATH) else address
        self._codec = codec
        self._bitrate = bitrate
        self._ws: ProviderWebsocket | None = None
        self._flushes: deque[_Flush] = deque()
        """Sentences sent, oldest first, whose ``final`` has not come."""
        self._closed: set[str] = set()
        """Replies with no more text coming (finished at their last sentence's ``final``)."""
        self._reopen_lock = asyncio.Lock()
        self._idle = asyncio.Event()
        """Set while no sentence sent waits for its ``final``."""
        self._idle.set()
        self._new_model = False
        """A model change waits for the socket to have no sentence in progress."""

    def _fit_to_model(self) -> None:
        _fit_to_model(self, self._settings, self._config)

    # ------------------------------------------------------------------ description

    @property
    def output_audio_codec(self) -> str:
        """The ``output_audio_codec`` asked for."""
        if self._codec is not None:
            return self._codec
        return "mulaw" if self.sample_rate == 8000 else "linear16"

    def socket_url(self) -> str:
        return ws_url(
            self._url, TTS_PATH, {"model": self._settings.model, "send_completion_event": "true"}
        )

    def config_message(self) -> dict[str, Any]:
        """The config message for the current settings."""
        s = self._settings
        data = _voice_fields(s, self._config, self.sample_rate)
        data["output_audio_codec"] = self.output_audio_codec
        data["output_audio_bitrate"] = self._bitrate
        data["min_buffer_size"] = s.min_buffer_size
        data["max_chunk_length"] = s.max_chunk_length
        return {"type": "config", "data": {k: v for k, v in data.items() if v is not None}}

    # ------------------------------------------------------------------ connection

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(
                f"{self}: Sarvam produces {SAMPLE_RATES} Hz audio, not {self.sample_rate}"
            )
        await self._open()

    async def _open(self) -> None:
        self._ws = ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self.socket_url(),
            headers={"Api-Subscription-Key": self._api_key},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_socket_failed,
            keepalive_secs=self.ping_interval_secs,
            keepalive_message=lambda: json.dumps({"type": "ping"}),
            auth_hint=_AUTH_HINT,
        )
        await ws.connect()
        await ws.send(json.dumps(self.config_message()), wait_secs=0)

    async def _reopen(self) -> None:
        """A new socket in place of the live one (its audio in flight is not wanted)."""
        async with self._reopen_lock:
            ws, self._ws = self._ws, None
            if ws is not None:
                await ws.close()
            try:
                await self._open()
            except Exception as exc:
                await self.report_error(f"{self}: reopening the socket failed: {exc}")

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _on_reconnected(self) -> None:
        # A new socket knows nothing of the text sent on the old one: configure it, and end
        # the replies that were waiting for audio rather than wait forever.
        if self._ws is not None:
            await self._ws.send(json.dumps(self.config_message()), wait_secs=0)
        await self._drop_pending()

    async def _on_socket_failed(self, message: str) -> None:
        await self.report_error(message, reason="disconnected")
        await self._drop_pending()

    async def _drop_pending(self) -> None:
        pending = list(dict.fromkeys(f.context_id for f in self._flushes))
        self._flushes.clear()
        self._sync_idle()
        for context_id in pending:
            self.context_failed(context_id)
            await self.finish_context(context_id)

    async def finish_context(self, context_id: str | None) -> None:
        self._closed.discard(context_id or "")
        if any(f.context_id == context_id for f in self._flushes):
            # Ended early (e.g. timed out): its sentences no longer claim audio.
            self._flushes = deque(f for f in self._flushes if f.context_id != context_id)
            self._sync_idle()
        await super().finish_context(context_id)

    # ------------------------------------------------------------------ settings

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        self._config = _follow_model(self, self._settings, self._config, changed)
        if self._ws is None or not changed:
            return
        if "model" in changed:
            # The model is in the URL: a new socket, once nothing is being generated (at once
            # when idle, else before the next sentence after the current ones).
            self._new_model = True
            if not self._flushes:
                await self._switch_model()
        else:
            await self._ws.send(json.dumps(self.config_message()), wait_secs=0)

    async def _switch_model(self) -> None:
        if self._new_model:
            self._new_model = False
            await self._reopen()

    def _sync_idle(self) -> None:
        if self._flushes:
            self._idle.clear()
        else:
            self._idle.set()

    async def _wait_idle(self) -> None:
        """Until every sentence sent has its ``final`` (bounded by the context timeout)."""
        try:
            async with asyncio.timeout(self._context_timeout):
                await self._idle.wait()
        except TimeoutError:
            logger.warning("%s: Sarvam still generating; switching the model anyway", self)

    # ------------------------------------------------------------------ text out

    async def _send(self, message: dict[str, Any]) -> bool:
        ws = self._ws
        return ws is not None and await ws.send(json.dumps(message))

    async def run_tts(self, text: str, context_id: str) -> None:
        if self._new_model:
            await self._wait_idle()
            await self._switch_model()
        async with self._reopen_lock:  # not onto a socket being replaced
            pass
        sentence = text.strip() + " " if self._aggregate_sentences else text
        self._flushes.append(_Flush(context_id, text.strip()))
        self._sync_idle()
        sent = await self._send({"type": "text", "data": {"text": sentence}})
        if not sent or not await self._send({"type": "flush"}):
            await self.report_not_connected()
            self.context_failed(context_id)
            await self.finish_context(context_id)

    async def flush_context(self, context_id: str) -> None:
        if any(f.context_id == context_id for f in self._flushes):
            self._closed.add(context_id)
        else:
            await self.finish_context(context_id)

    async def cancel_context(self, context_id: str) -> None:
        """Sarvam cannot cancel: once all the speech it still generates is unwanted, the
        socket is reopened (while an uninterruptible reply is generating, the cancelled one's
        audio is dropped as it arrives instead)."""
        self._closed.discard(context_id)
        for pending in self._flushes:
            if pending.context_id == context_id:
                pending.cancelled = True
        if not self._flushes or not all(f.cancelled for f in self._flushes):
            return
        self._flushes.clear()
        self._sync_idle()
        await self._reopen()

    # ------------------------------------------------------------------ responses

    def _decode(self, data: str) -> bytes:
        audio = base64.b64decode(data)
        if audio[:4] == b"RIFF":
            # A chunk sent as a WAV file: its chunks walked to the samples (the header is not
            # always 44 bytes: a LIST, or mu-law's longer fmt and its fact chunk).
            try:
                _, audio = read_wav(audio)
            except ProtocolError as exc:
                logger.warning("%s: dropped an audio chunk Sarvam sent (%s)", self, exc)
                return b""
        return ulaw_to_pcm(audio) if self.output_audio_codec == "mulaw" else audio

    async def _on_message(self, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        head = self._flushes[0] if self._flushes else None
        if kind == "audio":
            audio = data.get("audio")
            pcm = self._decode(audio) if head is not None and isinstance(audio, str) else b""
            if head is not None and pcm:
                await self.append_audio(head.context_id, pcm)
        elif kind == "event" and data.get("event_type") == "final":
            if head is None:
                return
            self._flushes.popleft()
            self._sync_idle()
            ctx = self._contexts.get(head.context_id)
            if ctx is not None and head.text:
                await self.add_word_timestamps(head.context_id, [(head.text, 0.0, ctx.audio_secs)])
            if head.context_id in self._closed and not any(
                f.context_id == head.context_id for f in self._flushes
            ):
                await self.finish_context(head.context_id)
        elif kind == "error":
            said = data.get("message") or data.get("error") or json.dumps(data)
            await self.report_error(f"{self}: Sarvam error: {said}", reason="provider")
            if head is not None:
                self.context_failed(head.context_id)
                await self.finish_context(head.context_id)


# ---------------------------------------------------------------------- REST (/text-to-speech)

SARVAM_API_URL = "https://api.sarvam.ai"


def wav_pcm(audio: bytes) -> tuple[int, bytes]:
    """``(sample rate, samples)`` of a 16-bit mono PCM WAV file (its chunks walked to ``data``).

    Raises ProtocolError for anything else."""
    fmt, pcm = read_wav(audio)
    check_pcm16_mono(fmt)
    return fmt.sample_rate, pcm


class SarvamHttpTTSService(HTTPStreamTTSService):
    """Sarvam Bulbul over REST: one ``POST /text-to-speech`` per sentence.

    The body is the socket's voice fields (``text``, ``language_code``, ``speaker``, ``model``,
    ``speech_sample_rate``, ``enable_preprocessing``, ``pace``, and the model's ``pitch`` /
    ``loudness`` or ``temperature``), the key in ``Api-Subscription-Key``. Sarvam answers
    ``{"request_id", "audios": [<base64 WAV>]}``: the WAV's chunks are walked to its samples, at
    the pipeline's rate (8 kHz on a phone call), so nothing is resampled. Each sentence's text
    follows its audio; its first audio waits for the whole sentence. Settings updates apply from
    the next sentence (a new model gets its default speaker unless the voice changed too).

    ``base_url``: the API's origin; left at Sarvam's, ``$CALLPIPE_SARVAM_API_URL`` replaces it.
    ``aiohttp_session`` (Pipecat's) is accepted and not used: requests go through callpipe's
    pooled client. Differences from Pipecat 1.14: the language goes as ``language_code`` (the
    field Sarvam's SDK sends; Pipecat sends the older ``target_language_code``), and the output
    rate is the pipeline's unless ``sample_rate`` is given (Pipecat uses the model's 24 kHz).
    """

    Settings = SarvamHttpTTSSettings
    _settings: SarvamHttpTTSSettings
    key_hint = _AUTH_HINT

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``); ignored with ``settings``."""

        language: str | None = None
        pitch: float | None = None
        pace: float | None = None
        loudness: float | None = None
        enable_preprocessing: bool | None = None
        temperature: float | None = None

    def __init__(
        self,
        *,
        api_key: str | None = None,
        aiohttp_session: Any = None,
        voice_id: str | None = None,
        model: str | None = None,
        base_url: str = SARVAM_API_URL,
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: SarvamHttpTTSSettings | None = None,
        timeout_secs: float = 30.0,
        **kwargs: Any,
    ) -> None:
        del aiohttp_session  # Pipecat's transport; callpipe's pooled client sends instead
        store = SarvamHttpTTSSettings(
            model=model or DEFAULT_MODEL, voice=voice_id, **_VOICE_DEFAULTS
        )
        name = type(self).__name__
        config = _settle(name, store, params, settings)
        super().__init__(model=str(store.model), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._config = config
        _fit_to_model(self, store, config)
        key = resolve_api_key(name, api_key, "SARVAM_API_KEY")
        self.configure_http(
            defaulted_base_url(base_url, SARVAM_API_URL_ENV, SARVAM_API_URL),
            {"Api-Subscription-Key": key},
            timeout_secs=timeout_secs,
        )

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate not in SAMPLE_RATES:
            raise ConfigurationError(
                f"{self}: Sarvam produces {SAMPLE_RATES} Hz audio, not {self.sample_rate}"
            )
        self._http()

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        self._config = _follow_model(self, self._settings, self._config, changed)

    def request_body(self, text: str) -> dict[str, Any]:
        """The ``/text-to-speech`` body for ``text`` with the current settings."""
        fields = _voice_fields(self._settings, self._config, self.sample_rate)
        return {"text": text} | {k: v for k, v in fields.items() if v is not None}

    async def run_tts(self, text: str, context_id: str) -> None:
        await self.stream_speech(context_id, "/text-to-speech", self.request_body(text), self._read)

    async def _read(self, response: httpx.Response, context_id: str) -> None:
        try:
            answer = json.loads(await response.aread())
            audios = answer.get("audios") if isinstance(answer, dict) else None
            if not isinstance(audios, list) or not audios:
                raise ProtocolError("it has no audio")
            wavs = [wav_pcm(base64.b64decode(audio, validate=True)) for audio in audios]
        except (ValueError, TypeError, ProtocolError) as exc:
            self.sentence_failed(context_id)  # nothing of the sentence is heard
            await self.report_error(
                f"{self}: unreadable answer from Sarvam: {exc}", reason="provider"
            )
            return
        for rate, pcm in wavs:
            await self.append_audio(context_id, pcm, rate)
