"""Genesys Cloud AudioHook (Audio Connector): JSON control messages plus binary PCMU audio.

Genesys (the *client*) opens the WebSocket and runs transactions the server answers:
``open``→``opened`` (the server picks one of the offered media), ``ping``→``pong``,
``close``→``closed``. The client also reports ``paused``/``resumed``, ``update``,
``discarded``, ``error``, ``dtmf`` and ``playback_started``/``playback_completed``. The server
may send ``pause``/``resume``, ``event`` (e.g. a ``barge_in`` entity) and ``disconnect`` (ask
Genesys to end the session; it then runs the close transaction). Every message carries
``version: "2"``, ``id`` (the session id), ``type``, ``seq`` (the sender's own counter, from 1)
and ``parameters``; client messages add ``serverseq`` (the last server seq seen) and ``position``
(``PT<seconds>S`` of audio streamed), server messages add ``clientseq`` (the last client seq).

Audio is binary frames of PCMU at 8 kHz: mono, or two channels interleaved in the order the
selected media lists them (``external`` = the caller, ``internal`` = the agent). The bot hears the
caller by default (``process_external``/``process_internal``; both: mixed). Bot audio goes back
as binary PCMU frames of the selected format's first channel (Audio Connector is bidirectional).

The serializer answers on its own: ``deserialize`` returns the reply as an
``OutputTransportMessageUrgentFrame`` that the transport sends straight back to Genesys (see
docs/transport.md, "Replies"). When the runner has already read the ``open`` (to detect the
provider), :meth:`adopt_open` takes it and :meth:`pending_replies` holds the ``opened``. When the
pipeline ends, the ``EndFrame`` becomes a ``disconnect`` and the transport waits for Genesys's
close transaction before closing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from callpipe.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    OutputAudioRawFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
)
from callpipe.log import mask
from callpipe.serializers import _audiohook, _wire
from callpipe.serializers._audiohook import (
    PROTOCOL_VERSION,
    SAMPLE_RATE,
    AudioHookChannel,
    AudioHookMediaFormat,
    parse_duration,
    select_media,
)
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import Malformed, PhoneAudio

__all__ = ["AudioHookChannel", "AudioHookMediaFormat", "GenesysAudioHookSerializer"]

logger = logging.getLogger(__name__)

NULL_UUID = "00000000-0000-0000-0000-000000000000"
"""The conversation id of the connection probe Genesys sends when an integration is set up."""


class GenesysAudioHookSerializer(TelephonySerializer):
    """Serializer for one Genesys AudioHook session (see the module docstring)."""

    PROTOCOL_VERSION = PROTOCOL_VERSION

    class InputParams(TelephonySerializer.InputParams):
        """``channel``: the media to ask for (external = caller, internal = agent, both =
        stereo); ``process_external``/``process_internal``: what the bot hears (both: mixed);
        ``start_paused``: answer ``opened`` with ``startPaused``; ``supported_languages`` are
        sent when Genesys asks for them; ``send_audio``: stream bot audio back (Audio Connector).
        """

        genesys_sample_rate: int = SAMPLE_RATE
        channel: AudioHookChannel = AudioHookChannel.EXTERNAL
        media_format: AudioHookMediaFormat = AudioHookMediaFormat.PCMU
        process_external: bool = True
        process_internal: bool = False
        supported_languages: list[str] | None = None
        selected_language: str | None = None
        start_paused: bool = False
        send_audio: bool = True

    _params: InputParams
    _binary_audio = True
    preferred_10ms_chunks = 10
    """100 ms bot-audio frames: Genesys rate-limits messages (fewer, larger frames)."""

    def __init__(self, params: InputParams | None = None, *, name: str | None = None) -> None:
        p = params if params is not None else self.InputParams()
        super().__init__(p, "ulaw", SAMPLE_RATE, name=name)
        self._session_id = str(uuid.uuid4())
        self._seq = 0
        self._client_seq = 0
        self._position = timedelta(0)
        self._samples_in = 0
        self._state = "new"  # new -> open -> closing (disconnect sent) / closed
        self._paused = False
        self._selected: dict[str, Any] | None = None
        self._columns: list[int] = [0]
        self._channels = 1
        self._mix: PhoneAudio | None = None
        self._pending: list[str] = []
        self._conversation_id: str | None = None
        self._organization_id: str | None = None
        self._participant: dict[str, Any] | None = None
        self._input_variables: dict[str, Any] | None = None
        self._custom_config: dict[str, Any] | None = None
        self._language: str | None = None
        self._output_variables: dict[str, Any] | None = None
        self._wants_languages = False
        self._probe = False

    # ------------------------------------------------------------------ state

    @property
    def session_id(self) -> str:
        return self._session_id

    @property
    def conversation_id(self) -> str | None:
        return self._conversation_id

    @property
    def organization_id(self) -> str | None:
        return self._organization_id

    @property
    def call_id(self) -> str:
        return self._conversation_id or self._session_id

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    @property
    def is_paused(self) -> bool:
        return self._paused

    @property
    def is_probe(self) -> bool:
        """Genesys's connection test (conversation id all zeros): answered, but sent no audio."""
        return self._probe

    @property
    def position(self) -> timedelta:
        """How much audio Genesys has streamed (its last ``position``, or counted frames)."""
        return max(self._position, timedelta(seconds=self._samples_in / SAMPLE_RATE))

    @property
    def media(self) -> dict[str, Any] | None:
        """The media entry accepted in ``opened``."""
        return self._selected

    @property
    def participant(self) -> dict[str, Any] | None:
        return self._participant

    @property
    def input_variables(self) -> dict[str, Any] | None:
        return self._input_variables

    @property
    def custom_config(self) -> dict[str, Any] | None:
        return self._custom_config

    @property
    def language(self) -> str | None:
        return self._language

    @property
    def output_variables(self) -> dict[str, Any] | None:
        return self._output_variables

    def set_output_variables(self, variables: dict[str, Any]) -> None:
        """Values for the Architect flow's output variables, sent with the ``disconnect``."""
        self._output_variables = dict(variables)

    # ------------------------------------------------------------------ server messages

    def _build(self, type_: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        self._seq += 1
        return {
            "version": PROTOCOL_VERSION,
            "id": self._session_id,
            "type": type_,
            "seq": self._seq,
            "clientseq": self._client_seq,
            "parameters": parameters if parameters is not None else {},
        }

    def create_opened_response(self) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "media": [self._selected] if self._selected else [],
            "startPaused": self._params.start_paused,
        }
        if self._wants_languages:
            parameters["supportedLanguages"] = list(self._params.supported_languages or [])
        return self._build("opened", parameters)

    def create_pong_response(self) -> dict[str, Any]:
        return self._build("pong")

    def create_closed_response(self) -> dict[str, Any]:
        return self._build("closed")

    def create_pause_message(self) -> dict[str, Any]:
        """Ask Genesys to pause the audio stream (it answers ``paused``)."""
        return self._build("pause")

    def create_resume_message(self) -> dict[str, Any]:
        """End a pause the server asked for (Genesys answers ``resumed``)."""
        return self._build("resume")

    create_resumed_response = create_resume_message
    """Pipecat's name for :meth:`create_resume_message`."""

    def create_event_message(self, entities: list[dict[str, Any]]) -> dict[str, Any]:
        return self._build("event", {"entities": entities})

    def create_barge_in_event(self) -> dict[str, Any]:
        """The caller interrupted: Genesys drops the bot audio it still has queued."""
        return self.create_event_message([{"type": "barge_in", "data": {}}])

    def create_disconnect_message(
        self,
        reason: str = "completed",
        info: str | None = None,
        output_variables: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Ask Genesys to end the session (``completed``, ``unauthorized`` or ``error``)."""
        parameters: dict[str, Any] = {"reason": reason}
        if info:
            parameters["info"] = info
        variables = output_variables if output_variables is not None else self._output_variables
        if variables:
            parameters["outputVariables"] = variables
        return self._build("disconnect", parameters)

    # ------------------------------------------------------------------ the runner's handshake

    def adopt_open(self, message: dict[str, Any]) -> None:
        """Take an ``open`` the runner already read; the answer waits in :meth:`pending_replies`."""
        try:
            replies = self._dispatch(message)
        except Malformed as exc:
            self._skip(exc.kind, exc.detail)
            return
        for frame in replies if isinstance(replies, list) else [replies]:
            if isinstance(frame, TransportMessageUrgentFrame):
                self._pending.append(json.dumps(frame.message))

    def pending_replies(self) -> list[str | bytes]:
        replies: list[str | bytes] = list(self._pending)
        self._pending.clear()
        return replies

    # ------------------------------------------------------------------ outbound

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, EndFrame | CancelFrame):
            if self._state != "open":
                return None
            self._state = "closing"
            return json.dumps(self.create_disconnect_message("completed"))
        if isinstance(frame, TransportMessageFrame | TransportMessageUrgentFrame):
            return self._app_message(frame)
        if self._state != "open":
            return None  # no audio or events before opened or after the end
        if isinstance(frame, OutputAudioRawFrame | InputAudioRawFrame) and (
            self._paused or self._probe or not self._params.send_audio
        ):
            return None
        return await super().serialize(frame)

    def _app_message(
        self, frame: TransportMessageFrame | TransportMessageUrgentFrame
    ) -> str | None:
        """Only AudioHook messages (``version`` and ``type``) may reach Genesys."""
        message = frame.message
        if self.should_ignore_frame(frame) or not isinstance(message, dict):
            return None
        if message.get("version") != PROTOCOL_VERSION or not isinstance(message.get("type"), str):
            return None
        return json.dumps(message)

    def _media(self, payload: bytes) -> bytes:
        return payload

    def _clear(self) -> str:
        return json.dumps(self.create_barge_in_event())

    # ------------------------------------------------------------------ inbound

    def _audio_frame(self, payload: bytes) -> InputAudioRawFrame | None:
        if self._state != "open" or self._paused:
            return None  # before opened, paused or closing: not the bot's to hear
        channels = self._channels
        if len(payload) % channels:
            raise Malformed("wrong_payload_size", f"{len(payload)} bytes for {channels} channels")
        self._samples_in += len(payload) // channels
        tracks = _audiohook.channel_columns(payload, channels, self._columns)
        if self._mix is None:
            return super()._audio_frame(tracks[0])
        pcm = self._mix.decode(_audiohook.mix_pcm([_wire.ulaw_to_pcm(t) for t in tracks]))
        return InputAudioRawFrame(audio=pcm, sample_rate=self._mix.pipeline_rate) if pcm else None

    async def setup(self, frame: StartFrame) -> None:
        await super().setup(frame)
        if self._mix is not None:
            self._mix.set_pipeline_rate(self._audio.pipeline_rate)

    def _dispatch(self, message: dict[str, Any]) -> Frame | list[Frame] | None:
        type_ = message.get("type")
        if not isinstance(type_, str) or type_ not in _HANDLERS:
            raise self._unknown(type_)
        if message.get("version") != PROTOCOL_VERSION:
            raise Malformed("bad_version", repr(message.get("version"))[:20])
        self._track_sequence(message, type_)
        parameters = message.get("parameters")
        params = parameters if isinstance(parameters, dict) else {}
        return _HANDLERS[type_](self, params)

    def _track_sequence(self, message: dict[str, Any], type_: str) -> None:
        session_id = message.get("id")
        if type_ == "open" and self._state == "new" and isinstance(session_id, str):
            self._session_id = session_id[:64]
        elif session_id != self._session_id:
            raise Malformed("wrong_session_id")
        seq = message.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise Malformed("bad_seq")
        if seq != self._client_seq + 1:
            self._skip("seq_gap", f"{self._client_seq} -> {seq}")  # counted, still answered
        self._client_seq = seq
        serverseq = message.get("serverseq")
        if isinstance(serverseq, int) and serverseq > self._seq:
            self._skip("serverseq_ahead", f"{serverseq} > {self._seq}")  # counted, still handled
        position = parse_duration(message.get("position"))
        if position is not None:
            self._position = position

    def _reply(self, message: dict[str, Any]) -> OutputTransportMessageUrgentFrame:
        return OutputTransportMessageUrgentFrame(message=message)

    def _on_open(self, params: dict[str, Any]) -> Frame | None:
        if self._state != "new":
            raise Malformed("duplicate_open")
        self._conversation_id = _text(params.get("conversationId"))
        self._probe = self._conversation_id == NULL_UUID
        self._organization_id = _text(params.get("organizationId"))
        self._participant = _object(params.get("participant"))
        self._input_variables = _object(params.get("inputVariables"))
        self._custom_config = _object(params.get("customConfig"))
        self._language = _text(params.get("language"))
        self._wants_languages = params.get("supportedLanguages") is True
        media = None
        if self._params.media_format is AudioHookMediaFormat.PCMU:
            media = select_media(params.get("media"), self._params.channel)
        if media is None:
            self._state = "closing"
            logger.warning("genesys call %s: no supported media offered", mask(self.call_id))
            info = "No supported media format offered (callpipe takes PCMU at 8000 Hz)"
            return self._reply(self.create_disconnect_message("error", info))
        self._select(media)
        self._state = "open"
        self._paused = self._params.start_paused
        return self._reply(self.create_opened_response())

    def _select(self, media: dict[str, Any]) -> None:
        self._selected = media
        channels: list[str] = media["channels"]
        self._channels = len(channels)
        heard = [
            c
            for c, wanted in (
                ("external", self._params.process_external),
                ("internal", self._params.process_internal),
            )
            if wanted and c in channels
        ] or channels[:1]
        self._columns = [channels.index(c) for c in heard]
        if len(self._columns) > 1:
            self._mix = PhoneAudio("pcm16", SAMPLE_RATE, self._params.resampler_clear_after_secs)

    def _on_ping(self, params: dict[str, Any]) -> Frame:
        return self._reply(self.create_pong_response())

    def _on_close(self, params: dict[str, Any]) -> list[Frame]:
        self._state = "closed"
        reason = _text(params.get("reason")) or "unknown"
        logger.info(
            "genesys call %s: Genesys closed the session (%s)", mask(self.call_id), reason[:20]
        )
        return [self._reply(self.create_closed_response()), StreamStoppedFrame(reason=reason)]

    def _on_paused(self, params: dict[str, Any]) -> None:
        self._paused = True

    def _on_resumed(self, params: dict[str, Any]) -> None:
        self._paused = False

    def _on_update(self, params: dict[str, Any]) -> None:
        language = _text(params.get("language"))
        if language:
            self._language = language
        participant = _object(params.get("participant"))
        if participant is not None:
            self._participant = participant

    def _on_discarded(self, params: dict[str, Any]) -> None:
        logger.debug(
            "genesys call %s: audio discarded %s", mask(self.call_id), params.get("discarded")
        )

    def _on_error(self, params: dict[str, Any]) -> None:
        code = params.get("code")
        logger.warning(
            "genesys call %s: Genesys reported error %s",
            mask(self.call_id),
            code if isinstance(code, int) else "?",
        )

    def _on_dtmf(self, params: dict[str, Any]) -> Frame:
        return InputDTMFFrame(button=_wire.keypad(params.get("digit")))

    def _on_playback_started(self, params: dict[str, Any]) -> None:
        return None

    def _on_playback_completed(self, params: dict[str, Any]) -> None:
        return None


def _text(value: Any) -> str | None:
    return value[:256] if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, dict) else None


_Handler = Callable[[GenesysAudioHookSerializer, dict[str, Any]], Frame | list[Frame] | None]
_HANDLERS: dict[str, _Handler] = {
    "open": GenesysAudioHookSerializer._on_open,
    "close": GenesysAudioHookSerializer._on_close,
    "ping": GenesysAudioHookSerializer._on_ping,
    "paused": GenesysAudioHookSerializer._on_paused,
    "resumed": GenesysAudioHookSerializer._on_resumed,
    "update": GenesysAudioHookSerializer._on_update,
    "discarded": GenesysAudioHookSerializer._on_discarded,
    "error": GenesysAudioHookSerializer._on_error,
    "dtmf": GenesysAudioHookSerializer._on_dtmf,
    "playback_started": GenesysAudioHookSerializer._on_playback_started,
    "playback_completed": GenesysAudioHookSerializer._on_playback_completed,
}
"""Each client message type's handler."""
