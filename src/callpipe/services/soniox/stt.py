"""SonioxSTTService: Soniox's real-time speech-to-text WebSocket (``/transcribe-websocket``).

The socket opens when the pipeline starts, authenticated with ``Authorization: Bearer <key>``
(as Soniox's SDK does; the ``api_key`` field of the start message is deprecated). The first
message is the session's configuration as JSON: ``model`` (``stt-rt-v5`` by default, as in
Pipecat 1.14), ``audio_format``, ``sample_rate``, ``num_channels``,
``enable_endpoint_detection`` and the optional settings (``language_hints``, ``context``,
diarization, language identification, the endpoint knobs, ``client_reference_id``), with
unset ones left out. The caller's audio then goes out as binary messages of 100 ms: ``mulaw``
on an 8 kHz call (the phone line's own bytes), else ``pcm_s16le`` at the pipeline rate.

Soniox answers with results holding ``tokens``: each final token (``is_final: true``) is said
once; the non-final ones are a guess that the next result replaces. Final tokens are kept
until the end of the utterance, a final ``<fin>`` (the answer to ``finalize``) or ``<end>``
(Soniox's endpoint detection) token, and then pushed together as one ``TranscriptionFrame``
(``finalized=True``, ``result`` = the tokens). Every result before that becomes an
``InterimTranscriptionFrame`` with the final tokens so far and the current guess. The language
is the one most tokens carry (``enable_language_identification``), else the service's.

Two ways to end the caller's turn, as in Pipecat 1.14:

- ``vad_force_turn_endpoint=True`` (the default): callpipe's VAD decides. Endpoint detection is
  off and, when the caller stops, the queued audio is sent, then ``{"type": "finalize"}``:
  Soniox finalizes what it heard at once and ends with ``<fin>``.
- ``vad_force_turn_endpoint=False``: Soniox's endpoint detection decides. The first token of a
  turn becomes a ``ProposedUserStartedSpeakingFrame`` and the transcript at ``<end>`` is
  followed by a ``ProposedUserStoppedSpeakingFrame``; the service recommends
  :class:`~callpipe.turns.user_turn_strategies.ExternalUserTurnStrategies` in its
  ``STTMetadataFrame``.

While no audio flows (the STT is muted) ``{"type": "keepalive"}`` is sent every few seconds;
Soniox closes a socket that hears nothing for 20 s.

At the end of the call (``EndFrame``) the queued audio is sent, then an empty message (end of
audio): Soniox returns its last tokens, then a result with ``finished: true`` and closes; the
last transcript is pushed before the ``EndFrame`` (bounded by ``end_timeout_secs``). A
``CancelFrame`` closes at once.

Settings at runtime (``STTUpdateSettingsFrame``) all live in the start message, so a change
opens a new socket with the new configuration; the audio keeps going to the old one until the
new one is open (and was not refused within ``open_check_secs``), then the old one gets the end
of audio and returns its last words. If Soniox refuses the new configuration, the old socket
stays, the settings go back and the bot gets a non-fatal ``ErrorFrame``. A ``language``
replaces ``language_hints`` (``[language]``), as in Pipecat.

Errors: Soniox sends ``error_code`` (an HTTP status) and ``error_message``, then closes. 401 and
403 (a rejected key) are fatal and name ``SONIOX_API_KEY``; others are non-fatal
``ErrorFrame``\\ s, and the transcript held so far is pushed first. After a refused request (a
4xx other than 408/429) the socket is not reopened; after a server error (e.g. 503, "Cannot
continue request") it is, with the reconnect policy of
:class:`~callpipe.services.websocket_service.ProviderWebsocket`, and the configuration is sent
again first.

Differences from Pipecat 1.14: ``audio_format`` defaults to ``mulaw`` on an 8 kHz call; a string
``context`` is sent as the structured context's ``text`` (the form Soniox's SDK takes); the
``translation`` option is not offered.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from callpipe.audio.g711 import pcm_to_ulaw
from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    STTMetadataFrame,
)
from callpipe.services._env import SONIOX_URL_ENV
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import STTSettings, unset
from callpipe.services.stt_service import (
    ProviderSocketSTTService,
    SessionSocket,
    StreamEnd,
    message_where,
    socket_address,
)
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.transcriptions.language import resolve_language
from callpipe.turns.user_turn_strategies import ExternalUserTurnStrategies
from callpipe.utils.types import NotGiven

logger = logging.getLogger(__name__)

SONIOX_URL = "wss://stt-rt.soniox.com/transcribe-websocket"
"""Soniox's real-time endpoint (the default ``url``)."""
SONIOX_TTFS_P99 = 0.35
"""Pipecat 1.14's default ``ttfs_p99_latency`` for Soniox (seconds)."""
DEFAULT_MODEL = "stt-rt-v5"
_PATH = "/transcribe-websocket"
END_TOKEN = "<end>"
FINALIZED_TOKEN = "<fin>"
_FINALIZE = json.dumps({"type": "finalize"})
_KEEPALIVE = json.dumps({"type": "keepalive"})
_END_OF_AUDIO = ""
"""An empty message: the end of the audio (Soniox finishes, then closes)."""
_AUDIO_FORMATS = ("pcm_s16le", "mulaw")
_AUTH_CODES = frozenset({401, 403})
_AUTH_HINT = "Check api_key / SONIOX_API_KEY."
_RETRY_CODES = frozenset({408, 429})
"""Client errors worth a new session (a timeout, a rate limit); 5xx ones are too."""
_LANGUAGES = (
    "af ar az be bg bn bs ca cs cy da de el en es et eu fa fi fr gl gu he hi hr hu id it ja kk "
    "kn ko lt lv mk ml mr ms nl no pa pl pt ro ru sk sl sq sr sv sw ta te th tl tr uk ur vi zh"
).split()
_LANGUAGE_MAP = {code: code for code in _LANGUAGES} | {"nb": "no", "fil": "tl", "cmn": "zh"}


def language_to_soniox_language(language: str) -> str:
    """Soniox's code for a language tag: ``Language.EN_US`` -> ``"en"``."""
    return resolve_language(language, _LANGUAGE_MAP, use_base_code=True)


def is_end_token(token: dict[str, Any]) -> bool:
    """True for Soniox's ``<end>`` (endpoint) and ``<fin>`` (finalized) marker tokens."""
    return token.get("text") in (END_TOKEN, FINALIZED_TOKEN)


class SonioxContextGeneralItem(BaseModel):
    """One key/value fact about the conversation (``{"key": "domain", "value": "Dental"}``)."""

    key: str
    value: str


class SonioxContextTranslationTerm(BaseModel):
    """How to translate one term (``source`` -> ``target``)."""

    source: str
    target: str


class SonioxContextObject(BaseModel):
    """Soniox's structured context (each part optional; at most about 8000 tokens in all)."""

    general: list[SonioxContextGeneralItem] | None = None
    text: str | None = None
    terms: list[str] | None = None
    translation_terms: list[SonioxContextTranslationTerm] | None = None


class SonioxInputParams(BaseModel):
    """Pipecat's deprecated ``params=`` form (use ``SonioxSTTService.Settings``); read once, at
    construction, and ignored when ``settings`` is given."""

    model: str = DEFAULT_MODEL
    audio_format: str | None = None
    num_channels: int | None = 1
    language_hints: list[str] | None = None
    language_hints_strict: bool | None = None
    context: SonioxContextObject | str | None = None
    enable_speaker_diarization: bool | None = False
    enable_language_identification: bool | None = False
    client_reference_id: str | None = None


@dataclass
class SonioxSTTSettings(STTSettings):
    """``SonioxSTTService.Settings`` (``None``: Soniox's default, not sent).

    Parameters:
        language_hints: Languages to expect (``Language`` members or tags; sent as base codes).
        language_hints_strict: Keep to the hinted languages.
        context: A :class:`SonioxContextObject`, or background text.
        enable_speaker_diarization: Mark each token with its speaker.
        enable_language_identification: Mark each token with its language.
        max_endpoint_delay_ms: Longest wait (500-3000 ms) before Soniox ends an utterance.
        endpoint_sensitivity: -1.0 to 1.0; higher ends utterances sooner.
        endpoint_latency_adjustment_level: 0 to 3; higher ends utterances sooner.
        client_reference_id: Your own id for the session (usage logs).

    The three endpoint settings apply only with ``vad_force_turn_endpoint=False``.
    """

    language_hints: list[str] | None | NotGiven = field(default_factory=unset)
    language_hints_strict: bool | None | NotGiven = field(default_factory=unset)
    context: SonioxContextObject | str | None | NotGiven = field(default_factory=unset)
    enable_speaker_diarization: bool | None | NotGiven = field(default_factory=unset)
    enable_language_identification: bool | None | NotGiven = field(default_factory=unset)
    max_endpoint_delay_ms: int | None | NotGiven = field(default_factory=unset)
    endpoint_sensitivity: float | None | NotGiven = field(default_factory=unset)
    endpoint_latency_adjustment_level: int | None | NotGiven = field(default_factory=unset)
    client_reference_id: str | None | NotGiven = field(default_factory=unset)


_OPTIONAL_FIELDS = (
    "language_hints_strict",
    "enable_speaker_diarization",
    "enable_language_identification",
    "client_reference_id",
)
_ENDPOINT_FIELDS = (
    "max_endpoint_delay_ms",
    "endpoint_sensitivity",
    "endpoint_latency_adjustment_level",
)


def _defaults() -> SonioxSTTSettings:
    return SonioxSTTSettings(
        model=DEFAULT_MODEL,
        language=None,
        language_hints=None,
        language_hints_strict=None,
        context=None,
        enable_speaker_diarization=False,
        enable_language_identification=False,
        max_endpoint_delay_ms=None,
        endpoint_sensitivity=None,
        endpoint_latency_adjustment_level=None,
        client_reference_id=None,
    )


class _Stream(SessionSocket):
    """One Soniox session: its final tokens held until the end of the utterance."""

    def __init__(self, config: str, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.finals: list[dict[str, Any]] = []


class SonioxSTTService(ProviderSocketSTTService):
    """Soniox real-time speech-to-text (see the module docstring).

    1.14 style: ``SonioxSTTService(api_key=..., settings=SonioxSTTService.Settings(
    language_hints=[Language.EN]))``. ``url`` is the full socket URL; when not given,
    ``$CALLPIPE_SONIOX_URL`` (an origin is enough), else Soniox's endpoint.
    """

    Settings = SonioxSTTSettings
    _settings: SonioxSTTSettings
    _ws: _Stream | None

    end_timeout_secs = 2.0
    """At the end of the call, how long Soniox may take to finish after the end of audio."""

    open_check_secs = 0.5
    """After a settings change, how long a new socket is watched for a refusal before it takes
    over the audio (the old one transcribes meanwhile)."""

    keepalive_secs = 5.0
    """Idle time after which a keep-alive goes out (Soniox allows 20 s without a message)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        url: str | None = None,
        sample_rate: int | None = None,
        model: str | None = None,
        audio_format: str | None = None,
        num_channels: int = 1,
        params: SonioxInputParams | None = None,
        vad_force_turn_endpoint: bool = True,
        should_interrupt: bool = True,
        settings: SonioxSTTSettings | None = None,
        ttfs_p99_latency: float | None = SONIOX_TTFS_P99,
        **kwargs: Any,
    ) -> None:
        store = _defaults()
        if model is not None:
            store.model = model
        if params is not None and settings is None:
            logger.warning("SonioxSTTService: params is deprecated; use settings=")
            store.model = params.model
            if params.audio_format is not None and audio_format is None:
                audio_format = params.audio_format
            if params.num_channels is not None:
                num_channels = params.num_channels
            store.language_hints = params.language_hints
            store.language_hints_strict = params.language_hints_strict
            store.context = params.context
            store.enable_speaker_diarization = params.enable_speaker_diarization
            store.enable_language_identification = params.enable_language_identification
            store.client_reference_id = params.client_reference_id
        if settings is not None:
            store.apply_update(settings)
            _language_to_hints(store, settings)
        if audio_format is not None and audio_format not in _AUDIO_FORMATS:
            raise ConfigurationError(
                f"SonioxSTTService: audio_format={audio_format!r}; the pipeline's audio is sent "
                f"as one of {_AUDIO_FORMATS}"
            )
        if num_channels != 1:
            raise ConfigurationError("SonioxSTTService: the audio is mono (num_channels=1)")
        super().__init__(
            model=store.model if isinstance(store.model, str) else DEFAULT_MODEL,
            sample_rate=sample_rate,
            language=store.language if isinstance(store.language, str) else None,
            ttfs_p99_latency=ttfs_p99_latency,
            **kwargs,
        )
        self._settings = store
        self._api_key = resolve_api_key(type(self).__name__, api_key, "SONIOX_API_KEY")
        self._url = socket_address(url, SONIOX_URL_ENV, SONIOX_URL, _PATH)
        self._audio_format = audio_format
        self._vad_force_turn_endpoint = vad_force_turn_endpoint
        self._should_interrupt = should_interrupt
        self._last_sent = 0.0

    # ------------------------------------------------------------------ description

    @property
    def audio_format(self) -> str:
        """The audio format streamed to Soniox."""
        if self._audio_format is not None:
            return self._audio_format
        return "mulaw" if self.sample_rate == 8000 else "pcm_s16le"

    @property
    def vad_force_turn_endpoint(self) -> bool:
        return self._vad_force_turn_endpoint

    def service_metadata_frame(self) -> STTMetadataFrame:
        """With Soniox's endpoint detection deciding the turns, the external strategies are
        recommended."""
        frame = super().service_metadata_frame()
        if not self._vad_force_turn_endpoint:
            frame.user_turn_strategies = ExternalUserTurnStrategies(
                enable_interruptions=self._should_interrupt
            )
        return frame

    def config_message(self) -> dict[str, Any]:
        """The start message for the current settings (unset options left out)."""
        s = self._settings
        values = s.given_fields()
        config: dict[str, Any] = {
            "model": values.get("model") or DEFAULT_MODEL,
            "audio_format": self.audio_format,
            "num_channels": 1,
            "sample_rate": self.sample_rate,
            "enable_endpoint_detection": not self._vad_force_turn_endpoint,
        }
        if isinstance(s.language_hints, list):
            codes = [language_to_soniox_language(str(x)) for x in s.language_hints]
            config["language_hints"] = list(dict.fromkeys(codes))
        if isinstance(s.context, SonioxContextObject):
            config["context"] = s.context.model_dump(exclude_none=True)
        elif isinstance(s.context, str) and s.context:
            config["context"] = {"text": s.context}
        names: tuple[str, ...] = _OPTIONAL_FIELDS
        if not self._vad_force_turn_endpoint:
            names += _ENDPOINT_FIELDS
        for name in names:
            if values.get(name) is not None:
                config[name] = values[name]
        return config

    def socket_url(self) -> str:
        """The socket's URL (the same for every setting: they go in the start message)."""
        return self._url

    # ------------------------------------------------------------------ the socket

    def _first_message(self) -> str:
        return json.dumps(self.config_message())

    def _build_socket(self) -> _Stream:
        return _Stream(
            self._first_message(),
            replacing=self._ws is not None,
            owner=str(self),
            url=self.socket_url(),
            headers={"Authorization": f"Bearer {self._api_key}"},
            on_message=self._on_message,
            on_reconnected=self._on_reconnected,
            on_failed=self._on_failed,
            keepalive_secs=self.keepalive_secs,
            keepalive_message=self._keepalive,
            auth_hint=_AUTH_HINT,
        )

    async def _session_accepted(self, ws: ProviderWebsocket) -> None:
        """Soniox does not acknowledge a configuration (it answers with an error or not at
        all): a new socket is watched for ``open_check_secs``."""
        assert isinstance(ws, _Stream)
        await ws.wait_answer(self.open_check_secs, required=False)

    def _stream_end(self) -> StreamEnd:
        """The end of audio: Soniox sends its last tokens, then ``finished``."""
        return _END_OF_AUDIO, _is_finished

    def _keepalive(self) -> Message | None:
        if time.monotonic() - self._last_sent < self.keepalive_secs:
            return None
        return _KEEPALIVE

    async def _on_reconnected(self, stream: _Stream) -> None:
        """A new Soniox session on the same socket object: configure it first."""
        stream.error_reported = False
        await stream.send(stream.first_message, wait_secs=0)  # before anything that may yield
        await self._push_finals(stream)

    async def _on_failed(self, stream: _Stream, message: str) -> None:
        await self._push_finals(stream)
        await self._session_failed(stream, message)

    # ------------------------------------------------------------------ audio out

    async def send_audio(self, audio: bytes) -> bool:
        ws = self._ws
        if ws is None:
            return False
        self._last_sent = time.monotonic()  # once per batch, not per packet
        payload = pcm_to_ulaw(audio) if self.audio_format == "mulaw" else audio
        # No wait for a reconnect: the configuration must reach a new session first, so
        # the batch stays queued until then.
        return await ws.send(payload, wait_secs=0)

    async def on_user_stopped_speaking(self) -> None:
        """VAD stop: send what is queued, then ``finalize`` (the default turn mode)."""
        if self._vad_force_turn_endpoint:
            await self._flush_then_send(_FINALIZE)

    # ------------------------------------------------------------------ results in

    def _language_of(self, tokens: list[dict[str, Any]]) -> str | None:
        counts = Counter(str(t["language"]) for t in tokens if isinstance(t.get("language"), str))
        if counts:
            return counts.most_common(1)[0][0]
        return self._language

    async def _push_finals(self, stream: _Stream) -> None:
        tokens, stream.finals = stream.finals, []
        if tokens:
            text = "".join(str(t.get("text", "")) for t in tokens)
            await self.push_transcript(
                text, final=True, language=self._language_of(tokens), result=tokens, finalized=True
            )
        await self._propose_turn_end()  # only open when Soniox decides the turns

    async def _on_message(self, stream: _Stream, raw: Message) -> None:
        message = json.loads(raw)
        if not isinstance(message, dict):
            return
        guess: list[dict[str, Any]] = []
        for token in message.get("tokens") or ():
            if not isinstance(token, dict):
                continue
            if is_end_token(token):
                if token.get("is_final"):
                    await self._push_finals(stream)
                continue
            if not self._vad_force_turn_endpoint:
                await self._propose_turn_start()
            if token.get("is_final"):
                stream.finals.append(token)
            else:
                guess.append(token)
        if stream.finals or guess:
            heard = stream.finals + guess
            text = "".join(str(t.get("text", "")) for t in heard)
            await self.push_transcript(
                text, final=False, language=self._language_of(heard), result=heard
            )
        code = message.get("error_code")
        if code is not None or message.get("error_message"):
            await self._push_finals(stream)
            await self._on_error(stream, code, str(message.get("error_message") or ""))
        elif message.get("finished"):
            await self._push_finals(stream)

    async def _on_error(self, stream: _Stream, code: Any, text: str) -> None:
        said = f"[{code}] {text}"
        if stream.refused_while_replacing(said):
            return
        # A refused request (a 4xx but a timeout or rate limit) would be refused again: Soniox's
        # close after it is not a drop to reconnect from.
        refused = isinstance(code, int) and 400 <= code < 500 and code not in _RETRY_CODES
        auth = _AUTH_HINT if code in _AUTH_CODES else None
        await self._session_error(stream, said, final=refused, auth_hint=auth)

    # ------------------------------------------------------------------ settings at runtime

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        """Every setting lives in the start message: a ``language`` becomes the hints, then
        a socket opens with the new message."""
        s = self._settings
        if "language" in changed and "language_hints" not in changed:
            if isinstance(s.language, str):
                changed["language_hints"] = s.language_hints
                s.language_hints = [s.language]
        await super().apply_settings(changed)


def _language_to_hints(store: SonioxSTTSettings, delta: SonioxSTTSettings) -> None:
    """A ``language`` in ``delta`` (without ``language_hints``) becomes the hints."""
    if isinstance(delta.language, str) and isinstance(delta.language_hints, NotGiven):
        store.language_hints = [delta.language]


_is_finished = message_where(
    lambda message: bool(message.get("finished") or message.get("error_code") is not None),
    '"finished"',
    '"error_code"',
)
"""Soniox's last result (``finished: true``) or an error, after which it closes."""
