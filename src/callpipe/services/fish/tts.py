"""FishAudioTTSService: Fish Audio's live text-to-speech WebSocket (``/v1/tts/live``).

The protocol, as Fish Audio documents it (https://docs.fish.audio/api-reference/endpoint/
websocket/tts-live) and its SDK (``fish-audio-sdk``) speaks it: every message is a MessagePack
map, both ways.

- **Handshake.** ``wss://api.fish.audio/v1/tts/live`` with ``Authorization: Bearer <key>`` and
  the model in a ``model`` header (``s1``, ``s2-pro``, ``s2.1-pro``, ...).
- **Client events.** First ``{"event": "start", "request": {...}}``: the same fields as the
  HTTP TTS request (``text`` empty, ``format``, ``sample_rate``, ``reference_id`` (the voice),
  ``latency``, ``normalize``, ``prosody {speed, volume}``, ``temperature``, ``top_p``,
  ``chunk_length``, ...). Then ``{"event": "text", "text"}`` chunks, ``{"event": "flush"}``
  (synthesize what is buffered now) and ``{"event": "stop"}`` (speak the rest, then end).
- **Server events.** ``{"event": "audio", "audio": <bytes>}``; ``{"event": "finish", "reason":
  "stop" | "error"}``, after which Fish closes the socket; ``{"event": "log", "message"}``.

Fish has no contexts and no event marking the end of a flush's audio: the only end it reports
is the ``finish`` after a ``stop``. So each reply gets a session of its own (a socket and its
``start``), ended with ``stop``: its ``finish`` closes the reply exactly, and an interruption
closes its socket, so nothing more of it arrives. A session is opened ahead (while the
previous reply plays) so a reply does not wait for a handshake. Each sentence is sent with a
flush (synthesis starts at once); with ``TextAggregationMode.TOKEN`` text goes as it streams
and ``stop`` ends it. A reply's text follows all of its audio (Fish gives no word timing).

On a phone call (8 kHz output) the request asks for 16-bit PCM at 8000 Hz: no resampling.
Fish serves PCM at 8000, 16000, 24000, 32000 and 44100 Hz; another output rate gets 24000 Hz,
resampled.

Settings (``TTSUpdateSettingsFrame``) apply from the next reply: its session starts with them
(the one opened ahead is replaced).

Differences from Pipecat 1.14: ``output_format`` must be ``"pcm"`` (callpipe plays PCM; Pipecat
passes mp3/opus bytes on as if they were PCM); one session per reply instead of one socket
whose replies end after a silence; ``url`` (or ``$CALLPIPE_FISH_URL``) points it elsewhere.
Needs ``pip install "callpipe[fish]"`` (``ormsgpack``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel

from callpipe.errors import ConfigurationError, ServiceAuthError
from callpipe.frames.frames import StartFrame
from callpipe.processors.base_object import cancel_and_wait
from callpipe.services._env import FISH_URL_ENV
from callpipe.services._env import base_url as env_base_url
from callpipe.services.ai_service import resolve_api_key
from callpipe.services.settings import TTSSettings, unset
from callpipe.services.tts_service import TTSService
from callpipe.services.websocket_service import Message, ProviderWebsocket
from callpipe.utils.types import NotGiven, is_given

try:
    import ormsgpack
except ModuleNotFoundError as exc:  # pragma: no cover - the extra is installed in tests
    raise ImportError('FishAudioTTSService needs ormsgpack: pip install "callpipe[fish]"') from exc

logger = logging.getLogger(__name__)

FISH_URL = "wss://api.fish.audio/v1/tts/live"
LIVE_PATH = "/v1/tts/live"
"""Added to a ``url`` given without a path (e.g. ``CALLPIPE_FISH_URL`` of ``callpipe fakes``)."""
DEFAULT_MODEL = "s2.1-pro"
PCM_RATES = (8000, 16000, 24000, 32000, 44100)
"""The rates Fish serves 16-bit mono PCM at."""
FALLBACK_RATE = 24000
_AUTH_HINT = "Check api_key / FISH_API_KEY."

FishAudioOutputFormat = Literal["opus", "mp3", "pcm", "wav"]

_FLUSH = ormsgpack.packb({"event": "flush"})
_STOP = ormsgpack.packb({"event": "stop"})
_OPTIONAL_FIELDS = (
    "temperature",
    "top_p",
    "chunk_length",
    "min_chunk_length",
    "condition_on_previous_chunks",
)
"""Request fields sent only when set (Fish's own defaults apply otherwise)."""


@dataclass
class FishAudioTTSSettings(TTSSettings):
    """``FishAudioTTSService.Settings``: voice (Fish's ``reference_id``), model (the ``model``
    header) and the request's options (None: not sent, Fish's default).

    Parameters:
        latency: ``"normal"`` or ``"balanced"`` (faster).
        normalize: Normalize the text (numbers, ...) before speaking it.
        temperature: Randomness, 0 to 1.
        top_p: Nucleus sampling, 0 to 1.
        prosody_speed: Speed factor, 0.5 to 2.
        prosody_volume: Volume change in dB, -20 to 20.
        prosody_normalize_loudness: Even out the loudness (S2 models and drama-3).
        chunk_length: Characters Fish synthesizes at a time, 100 to 300.
        min_chunk_length: Characters Fish waits for before it splits a chunk, 0 to 100.
        condition_on_previous_chunks: Condition each chunk on the audio before it.
    """

    latency: str | None | NotGiven = field(default_factory=unset)
    normalize: bool | None | NotGiven = field(default_factory=unset)
    temperature: float | None | NotGiven = field(default_factory=unset)
    top_p: float | None | NotGiven = field(default_factory=unset)
    prosody_speed: float | None | NotGiven = field(default_factory=unset)
    prosody_volume: int | None | NotGiven = field(default_factory=unset)
    prosody_normalize_loudness: bool | None | NotGiven = field(default_factory=unset)
    chunk_length: int | None | NotGiven = field(default_factory=unset)
    min_chunk_length: int | None | NotGiven = field(default_factory=unset)
    condition_on_previous_chunks: bool | None | NotGiven = field(default_factory=unset)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> Self:
        """A delta from a plain dict; a nested ``prosody`` dict (the older form) becomes the
        ``prosody_*`` fields it has."""
        flat = dict(settings)
        prosody = flat.pop("prosody", None)
        if isinstance(prosody, Mapping):
            for key in ("speed", "volume", "normalize_loudness"):
                if key in prosody:
                    flat.setdefault(f"prosody_{key}", prosody[key])
        return super().from_mapping(flat)


@dataclass(eq=False)
class _Session:
    """One Fish session: a socket, its ``start`` sent, for one reply (None: opened ahead)."""

    ws: ProviderWebsocket
    version: int
    """The settings version it started with."""
    context_id: str | None = None
    stopping: bool = False
    closed: bool = False


def _is_finish(raw: Message) -> bool:
    if not isinstance(raw, bytes):
        return False
    try:
        message = ormsgpack.unpackb(raw)
    except ormsgpack.MsgpackDecodeError:
        return False
    return isinstance(message, dict) and message.get("event") == "finish"


class FishAudioTTSService(TTSService):
    """Fish Audio over its live WebSocket (see the module docstring).

    1.14 style: ``FishAudioTTSService(api_key=..., settings=FishAudioTTSService.Settings(
    voice="<reference id>", model="s2.1-pro"))``. ``reference_id``, ``model_id`` and ``params``
    are the older forms (``settings`` wins; ``params`` is ignored when ``settings`` is given, as
    in Pipecat). ``url``: the socket's address (Fish's; ``/v1/tts/live`` is added to an origin).
    """

    emits_word_timestamps = True
    """No timing is ever given: a reply's text follows all of its audio."""
    Settings = FishAudioTTSSettings
    _settings: FishAudioTTSSettings

    class InputParams(BaseModel):
        """Pipecat's deprecated ``params=`` form (use ``settings=``)."""

        language: str | None = "en"
        latency: str | None = "normal"
        normalize: bool | None = True
        prosody_speed: float | None = 1.0
        prosody_volume: int | None = 0

    def __init__(
        self,
        *,
        api_key: str | None = None,
        reference_id: str | None = None,
        model_id: str | None = None,
        output_format: FishAudioOutputFormat = "pcm",
        sample_rate: int | None = None,
        params: InputParams | None = None,
        settings: FishAudioTTSSettings | None = None,
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        name = type(self).__name__
        if output_format != "pcm":
            raise ConfigurationError(
                f"{name}: output_format {output_format!r}; callpipe plays 'pcm' only"
            )
        store = FishAudioTTSSettings(
            model=model_id or DEFAULT_MODEL,
            voice=reference_id,
            language=None,
            latency="balanced",
            normalize=True,
            temperature=None,
            top_p=None,
            prosody_speed=1.0,
            prosody_volume=0,
            prosody_normalize_loudness=None,
            chunk_length=None,
            min_chunk_length=None,
            condition_on_previous_chunks=None,
        )
        if params is not None:
            logger.warning("%s: params is deprecated; use settings=", name)
            if settings is None:
                for key in ("latency", "normalize", "prosody_speed", "prosody_volume"):
                    value = getattr(params, key)
                    if value is not None:
                        setattr(store, key, value)
        if settings is not None:
            store.apply_update(settings)
        super().__init__(model=str(store.model or DEFAULT_MODEL), sample_rate=sample_rate, **kwargs)
        self._settings = store
        self._api_key = resolve_api_key(name, api_key, "FISH_API_KEY")
        address = env_base_url(url, FISH_URL_ENV, FISH_URL)
        self._url = address if urlsplit(address).path not in ("", "/") else address + LIVE_PATH
        self._version = 0
        """Bumped by each settings change: a session opened before it is not used."""
        self._spare: _Session | None = None
        self._warm_task: asyncio.Task[None] | None = None
        self._sessions: dict[str, _Session] = {}
        """Reply context id -> its session."""
        self._session_tasks: set[asyncio.Task[None]] = set()
        """Sessions being ended or closed in the background."""
        self._live: set[_Session] = set()
        """Every session opened and not yet closed (closed at the latest at disconnect)."""

    # ------------------------------------------------------------------ description

    @property
    def fish_sample_rate(self) -> int:
        """The ``sample_rate`` asked for: the output rate where Fish serves it, else 24000."""
        return self.sample_rate if self.sample_rate in PCM_RATES else FALLBACK_RATE

    def start_request(self) -> dict[str, Any]:
        """The ``request`` of the ``start`` event for the current settings."""
        s = self._settings
        prosody = {
            "speed": s.prosody_speed,
            "volume": s.prosody_volume,
            "normalize_loudness": s.prosody_normalize_loudness,
        }
        request: dict[str, Any] = {
            "text": "",
            "format": "pcm",
            "sample_rate": self.fish_sample_rate,
            "reference_id": s.voice,
            "latency": s.latency,
            "normalize": s.normalize,
            "prosody": {k: v for k, v in prosody.items() if v is not None and is_given(v)} or None,
        }
        for name in _OPTIONAL_FIELDS:
            request[name] = getattr(s, name)
        return {k: v for k, v in request.items() if v is not None and is_given(v)}

    def headers(self) -> dict[str, str]:
        """The handshake headers: the key, and the model."""
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if isinstance(self._settings.model, str) and self._settings.model:
            headers["model"] = self._settings.model
        return headers

    # ------------------------------------------------------------------ sessions

    async def start(self, frame: StartFrame) -> None:
        if self.sample_rate <= 0:
            raise ConfigurationError(f"Fish Audio cannot produce {self.sample_rate} Hz audio")
        self._spare = await self._open_session()

    async def _open_session(self) -> _Session:
        """A connected socket with its ``start`` sent (raises as ``ProviderWebsocket.connect``)."""
        session: _Session

        async def on_message(raw: Message) -> None:
            await self._on_message(session, raw)

        async def reconnected() -> None:
            await self._on_reconnected(session)

        async def failed(message: str) -> None:
            await self._on_failed(session, message)

        ws = ProviderWebsocket(
            owner=str(self),
            listener=self,
            url=self._url,
            headers=self.headers(),
            on_message=on_message,
            on_reconnected=reconnected,
            on_failed=failed,
            auth_hint=_AUTH_HINT,
        )
        session = _Session(ws=ws, version=self._version)
        self._live.add(session)
        try:
            await ws.connect()
        except BaseException:
            self._live.discard(session)
            raise
        start = {"event": "start", "request": self.start_request()}
        if not await ws.send(ormsgpack.packb(start), wait_secs=0):
            await ws.close()
            self._live.discard(session)
            raise ConnectionError(f"{self}: the socket closed before the start event")
        return session

    def _warm(self) -> None:
        """Open the next reply's session in the background (if none is ready or opening)."""
        if self._spare is not None or (self._warm_task is not None and not self._warm_task.done()):
            return
        self._warm_task = self.create_task(self._open_spare(), "fish-warm")

    async def _open_spare(self) -> None:
        try:
            session = await self._open_session()
        except Exception as exc:
            # The next reply opens its own session, and reports what fails then.
            logger.debug("%s: opening a session ahead failed: %s", self, exc)
            return
        if self._spare is not None or session.version != self._version:
            self._discard(session)
        else:
            self._spare = session

    async def _take_session(self, context_id: str) -> _Session:
        """The session opened ahead (waiting for it if it is opening), else a new one."""
        task = self._warm_task
        if task is not None and not task.done():
            await asyncio.shield(task)  # an interruption cancels this reply, not the opening
        session, self._spare = self._spare, None
        if session is None or session.version != self._version or not session.ws.connected:
            if session is not None:
                self._discard(session)
            session = await self._open_session()
        session.context_id = context_id
        self._sessions[context_id] = session
        self._warm()
        return session

    def _discard(self, session: _Session) -> None:
        """Close ``session`` in the background (never from its own receive task)."""
        if session.closed:
            return
        session.closed = True
        self._background(self._close(session))

    async def _close(self, session: _Session) -> None:
        await session.ws.close()
        self._live.discard(session)

    def _background(self, work: Any) -> None:
        task: asyncio.Task[None] = self.create_task(work, "fish-session")
        self._session_tasks.add(task)
        task.add_done_callback(self._session_tasks.discard)

    async def disconnect(self) -> None:
        await cancel_and_wait(self._warm_task)
        self._warm_task = None
        self._spare = None
        self._sessions.clear()
        for task in list(self._session_tasks):
            await cancel_and_wait(task)
        sessions, self._live = self._live, set()
        for session in sessions:
            session.closed = True
            await session.ws.close()

    async def apply_settings(self, changed: dict[str, Any]) -> None:
        self._version += 1
        spare, self._spare = self._spare, None
        if spare is not None:
            self._discard(spare)
        if self._started:
            self._warm()

    # ------------------------------------------------------------------ requests

    async def run_tts(self, text: str, context_id: str) -> None:
        session = self._sessions.get(context_id)
        if session is None:
            try:
                session = await self._take_session(context_id)
            except ServiceAuthError as exc:
                await self.report_error(str(exc), fatal=True, reason="auth")
                self.context_failed(context_id)
                await self.finish_context(context_id)
                return
            except Exception as exc:
                await self.report_error(
                    f"{self}: could not open a Fish Audio session ({exc}); dropping speech",
                    reason="disconnected",
                )
                self.context_failed(context_id)
                await self.finish_context(context_id)
                return
        piece = text.strip() + " " if self._aggregate_sentences else text
        sent = await session.ws.send(ormsgpack.packb({"event": "text", "text": piece}))
        if sent and self._aggregate_sentences:
            sent = await session.ws.send(_FLUSH)  # a whole sentence: speak it now
        if not sent:
            await self.report_not_connected()
            self.context_failed(context_id)
            await self.finish_context(context_id)

    async def flush_context(self, context_id: str) -> None:
        session = self._sessions.get(context_id)
        if session is None or session.stopping:
            if session is None:
                await self.finish_context(context_id)
            return
        session.stopping = True
        self._background(self._stop(context_id, session))

    async def _stop(self, context_id: str, session: _Session) -> None:
        """Send ``stop`` and close once Fish's ``finish`` came (which closes the reply)."""
        session.closed = True
        answered = await session.ws.finish(_STOP, until=_is_finish, timeout=self._context_timeout)
        self._live.discard(session)
        if not answered and self.has_context(context_id):
            logger.warning("%s: no finish from Fish Audio; closing the reply", self)
            self.context_failed(context_id)
        await self.finish_context(context_id)

    async def cancel_context(self, context_id: str) -> None:
        session = self._sessions.pop(context_id, None)
        if session is not None:
            # Fish cannot cancel: closing the socket ends the synthesis and its audio (also
            # when its stop was sent: the rest of the reply is not waited for).
            session.closed = True
            self._background(self._close(session))

    async def finish_context(self, context_id: str | None) -> None:
        session = self._sessions.pop(context_id, None) if context_id is not None else None
        if session is not None and not session.stopping:
            self._discard(session)  # ended early (an error, a timeout): the socket goes too
        await super().finish_context(context_id)

    # ------------------------------------------------------------------ responses

    async def _on_message(self, session: _Session, raw: Message) -> None:
        if not isinstance(raw, bytes):
            return
        message = ormsgpack.unpackb(raw)
        if not isinstance(message, dict):
            return
        event = message.get("event")
        context_id = session.context_id
        if event == "audio":
            audio = message.get("audio")
            if context_id is not None and isinstance(audio, bytes) and audio:
                await self.append_audio(context_id, audio, self.fish_sample_rate)
        elif event == "finish":
            if session is self._spare:
                self._spare = None
            if message.get("reason") == "error":
                await self.report_error(
                    f"{self}: Fish Audio ended the session with an error", reason="provider"
                )
                self.context_failed(context_id)
            if context_id is not None:
                await self.finish_context(context_id)
            elif not session.stopping:
                self._discard(session)
        elif event == "log":
            logger.debug("%s: Fish Audio: %s", self, message.get("message"))

    async def _on_reconnected(self, session: _Session) -> None:
        if session.context_id is None:
            # The session opened ahead was dropped and reopened: start it again.
            start = {"event": "start", "request": self.start_request()}
            await session.ws.send(ormsgpack.packb(start), wait_secs=0)
            return
        # A new socket knows nothing of the reply's text: end the reply, don't wait.
        self.context_failed(session.context_id)
        await self.finish_context(session.context_id)

    async def _on_failed(self, session: _Session, message: str) -> None:
        if session is self._spare:
            self._spare = None
            logger.info("%s (the next reply opens a new session)", message)
            return
        if session.context_id is not None and self.has_context(session.context_id):
            await self.report_error(message, reason="disconnected")
            self.context_failed(session.context_id)
            await self.finish_context(session.context_id)
