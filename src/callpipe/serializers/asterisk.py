"""Asterisk's WebSocket channel driver (``chan_websocket``): binary media plus text control.

Asterisk (20.16+/21.11+/22.6+/23) connects to the bot for ``Dial(WebSocket/<connection>/c(ulaw))``
or ARI ``externalMedia`` with ``transport=websocket``, and sends ``MEDIA_START`` first. Media is raw
codec data in BINARY frames in both directions, in the channel's format (``ulaw``, ``alaw``,
``slin``, ``slin16``, ...); Asterisk re-frames and re-times what it gets, so a message of exactly
``optimal_frame_size`` bytes (one ``ptime``) or a multiple plays cleanly.

Control messages are TEXT frames in one of two formats, chosen in ``chan_websocket.conf`` or per
call with the ``f(json)`` dial option (JSON since 20.18/22.8/23.2; plain text is the deprecated
default):

- plain text: ``MEDIA_START connection_id:... channel:... channel_id:... format:ulaw
  optimal_frame_size:160 ptime:20``; commands ``FLUSH_MEDIA``, ``MARK_MEDIA <id>``;
- JSON: ``{"event": "MEDIA_START", ...}``; commands ``{"command": "MARK_MEDIA",
  "correlation_id": "<id>"}``.

Inbound events: ``MEDIA_START``, ``DTMF_END`` (a key press), ``MEDIA_MARK_PROCESSED`` (a mark's
audio reached the head of Asterisk's queue: playback acknowledged), ``MEDIA_XOFF``/``MEDIA_XON``
(Asterisk's frame queue is nearly full/drained again), ``STATUS``, ``QUEUE_DRAINED``,
``MEDIA_BUFFERING_COMPLETED`` and ``ERROR``. This serializer parses both formats whatever it sends,
and answers in the format the call's ``MEDIA_START`` used.

Flow control: while Asterisk says ``MEDIA_XOFF``, :meth:`serialize` of audio waits for
``MEDIA_XON`` (the output transport's write timeout bounds the wait), so nothing is sent into a
full queue where Asterisk would drop it. Barge-in is ``FLUSH_MEDIA``, which empties Asterisk's
queue (its marks included; the transport forgets its pending marks on an interruption).

Hang-up: closing the WebSocket makes Asterisk hang the channel up, so without ARI credentials
there is no REST call control (``call_control`` is None). With them (``ari_url``, ``ari_user``,
``ari_password``), ``call_control`` is ``AsteriskAriCallControl``: hang-up through ARI too, and
transfer and DTMF when the caller's channel id is known.

A bot may send any other command (``ANSWER`` for a channel dialed with ``n``, ``GET_STATUS``,
``PAUSE_MEDIA``, ...) as a ``TransportMessageFrame`` whose
message is ``{"command": "GET_STATUS"}``; it goes out in the call's control format.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    Frame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
    TTSStoppedFrame,
)
from callpipe.log import mask
from callpipe.serializers import _wire
from callpipe.serializers._telephony import TelephonySerializer
from callpipe.serializers._wire import Encoding, Malformed
from callpipe.serializers.base_serializer import FrameSerializerType
from callpipe.telephony.asterisk import AsteriskAriCallControl, valid_channel_id

logger = logging.getLogger(__name__)

ControlFormat = Literal["plain-text", "json"]

MAX_CONTROL_CHARS = 4096
"""Longer text frames are not parsed (Asterisk's own events are far shorter; a ``MEDIA_START``
with many channel variables stays well under this)."""

MAX_COMMAND_BYTES = 128
"""Asterisk ignores control messages longer than this (``MAX_TEXT_MESSAGE_LEN``)."""


@dataclass(frozen=True, slots=True)
class WireFormat:
    """One Asterisk format name as callpipe carries it: codec and sample rate."""

    encoding: Encoding
    sample_rate: int


FORMATS: dict[str, WireFormat] = {
    "ulaw": WireFormat("ulaw", 8000),
    "alaw": WireFormat("alaw", 8000),
    "slin": WireFormat("pcm16", 8000),
    "slin12": WireFormat("pcm16", 12000),
    "slin16": WireFormat("pcm16", 16000),
    "slin24": WireFormat("pcm16", 24000),
    "slin32": WireFormat("pcm16", 32000),
    "slin44": WireFormat("pcm16", 44100),
    "slin48": WireFormat("pcm16", 48000),
}
"""Asterisk formats with fixed-size samples that callpipe decodes (no Opus, G.722, G.729)."""

_EVENTS = frozenset(
    {
        "MEDIA_START",
        "DTMF_END",
        "MEDIA_XOFF",
        "MEDIA_XON",
        "STATUS",
        "MEDIA_BUFFERING_COMPLETED",
        "MEDIA_MARK_PROCESSED",
        "QUEUE_DRAINED",
        "ERROR",
    }
)
_SILENCE: dict[Encoding, bytes] = {"ulaw": b"\xff", "alaw": b"\xd5", "pcm16": b"\x00"}
"""One byte of silence per encoding (PCM16's frame sizes are even, so whole samples)."""

_ID_EVENTS = frozenset({"MEDIA_BUFFERING_COMPLETED", "MEDIA_MARK_PROCESSED"})
"""Plain-text events whose one optional parameter is a bare correlation id."""


def parse_control(text: str) -> dict[str, Any] | None:
    """One control message of either format as a JSON-shaped dict (``{"event": ..., ...}``).

    Plain text ``MEDIA_START connection_id:x format:ulaw optimal_frame_size:160`` becomes
    ``{"event": "MEDIA_START", "connection_id": "x", "format": "ulaw", "optimal_frame_size":
    160}`` (digit strings as ints), ``MEDIA_MARK_PROCESSED cp1-2`` becomes ``{"event": ...,
    "correlation_id": "cp1-2"}``, and ``ERROR channel_id:x error_text:...`` keeps the error text
    whole. None for anything that is not an Asterisk event. Never raises.
    """
    if not isinstance(text, str) or not text or len(text) > MAX_CONTROL_CHARS:
        return None
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            message = json.loads(stripped)
        except (ValueError, RecursionError):
            return None
        if not isinstance(message, dict) or not isinstance(message.get("event"), str):
            return None
        return message
    event, _, rest = stripped.partition(" ")
    if event not in _EVENTS:
        return None
    out: dict[str, Any] = {"event": event}
    rest = rest.strip()
    if not rest:
        return out
    if event in _ID_EVENTS:
        out["correlation_id"] = rest
        return out
    if event == "ERROR":
        head, sep, error_text = rest.partition("error_text:")
        if sep:
            out["error_text"] = error_text
            rest = head
    for token in rest.split():
        key, sep, value = token.partition(":")
        if sep and key:
            out[key] = int(value) if value.isascii() and value.isdigit() else value
    return out


class AsteriskFrameSerializer(TelephonySerializer):
    """Serializer for one ``chan_websocket`` media WebSocket of one Asterisk channel."""

    class InputParams(TelephonySerializer.InputParams):
        """``asterisk_format`` is the channel's format (``MEDIA_START``'s ``format``: the
        ``c(...)`` dial option); ``control_format`` the control message format the call uses;
        ``ptime`` its packetization in ms (20 unless ``MEDIA_START`` says otherwise)."""

        asterisk_format: str = "ulaw"
        control_format: ControlFormat = "plain-text"
        ptime: int = 20

    _params: InputParams
    _binary_audio = True

    def __init__(
        self,
        channel_id: str | None = None,
        params: InputParams | None = None,
        *,
        ari_url: str | None = None,
        ari_user: str | None = None,
        ari_password: str | None = None,
        caller_channel_id: str | None = None,
    ) -> None:
        p = params if params is not None else self.InputParams()
        wire = FORMATS.get(p.asterisk_format)
        if wire is None:
            raise ConfigurationError(
                f"AsteriskFrameSerializer: Asterisk format {p.asterisk_format!r} is not "
                f"supported; dial with c(...) one of {', '.join(FORMATS)}"
            )
        super().__init__(p, wire.encoding, wire.sample_rate)
        self.channel_id = channel_id
        self.control_format: ControlFormat = p.control_format
        self.frame_bytes = (
            wire.sample_rate * p.ptime // 1000 * (2 if wire.encoding == "pcm16" else 1)
        )
        """Asterisk's ``optimal_frame_size``: one ``ptime`` of audio in the channel's format."""
        self._xon = asyncio.Event()
        self._xon.set()
        self._flushes = 0
        self.xoff_count = 0
        """How often Asterisk said ``MEDIA_XOFF`` on this call."""
        if ari_url:
            if not (ari_user and ari_password):
                raise ConfigurationError(
                    "AsteriskFrameSerializer: ari_url needs ari_user and ari_password "
                    "(ASTERISK_ARI_USER / ASTERISK_ARI_PASSWORD)"
                )
            if not valid_channel_id(channel_id):
                logger.warning("asterisk call %s: no usable channel id, no ARI", mask(self.call_id))
                return
            assert channel_id is not None
            self.call_control = AsteriskAriCallControl(
                base_url=ari_url,
                channel_id=channel_id,
                username=ari_user,
                password=ari_password,
                caller_channel_id=caller_channel_id,
            )
            self.auto_hang_up = True

    @property
    def type(self) -> FrameSerializerType:
        return FrameSerializerType.BINARY

    @property
    def call_id(self) -> str:
        return self.channel_id or "-"

    @property
    def preferred_10ms_chunks(self) -> int | None:  # type: ignore[override]
        """One ``ptime`` per message: exactly Asterisk's optimal frame size."""
        return max(1, self._params.ptime // 10)

    @property
    def paused(self) -> bool:
        """True between ``MEDIA_XOFF`` and ``MEDIA_XON``: audio sends wait."""
        return not self._xon.is_set()

    # ------------------------------------------------------------------ outbound

    def command(self, name: str, correlation_id: str | None = None) -> str:
        """A command in the call's control format (``MARK_MEDIA cp1-2`` or its JSON)."""
        if self.control_format == "json":
            message: dict[str, str] = {"command": name}
            if correlation_id is not None:
                message["correlation_id"] = correlation_id
            return json.dumps(message, separators=(",", ":"))
        return name if correlation_id is None else f"{name} {correlation_id}"

    def _media(self, payload: bytes) -> bytes:
        return payload

    def _clear(self) -> str:
        self._flushes += 1
        self._xon.set()  # FLUSH_MEDIA empties Asterisk's queue: room again
        return self.command("FLUSH_MEDIA")

    def serialize_mark(self, name: str) -> str:
        return self.command("MARK_MEDIA", name)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputAudioRawFrame) and not self._xon.is_set():
            flushes = self._flushes
            await self._xon.wait()  # MEDIA_XOFF: Asterisk would drop it; wait for MEDIA_XON
            if flushes != self._flushes:
                return None  # a barge-in flushed while this waited: the chunk is stale
        if isinstance(frame, TTSStoppedFrame):
            # Asterisk drops a trailing part-frame: pad the resampler's tail to a whole one.
            tail = self._audio.flush_out()
            if not tail:
                return None
            missing = -len(tail) % self.frame_bytes
            return tail + _SILENCE[self._audio.encoding] * missing
        if isinstance(frame, InterruptionFrame):
            self._audio.reset_out()
            return self._clear()
        return await super().serialize(frame)

    def _message(self, frame: TransportMessageFrame | TransportMessageUrgentFrame) -> str | None:
        """``{"command": NAME, ...}`` from the bot: an Asterisk command in the call's format."""
        if self.should_ignore_frame(frame):
            return None
        message = frame.message
        name = message.get("command") if isinstance(message, dict) else None
        if not isinstance(name, str) or not name.isascii() or not name.isupper():
            logger.warning(
                "call %s: transport message is not an Asterisk command", mask(self.call_id)
            )
            return None
        if self.control_format == "json":
            text = json.dumps(message, separators=(",", ":"))
        else:
            args = [str(v) for k, v in message.items() if k != "command"]
            text = " ".join([name, *args])
        if len(text.encode()) > MAX_COMMAND_BYTES:
            logger.warning(
                "call %s: %s command over %d bytes", mask(self.call_id), name, MAX_COMMAND_BYTES
            )
            return None
        return text

    # ------------------------------------------------------------------ inbound

    async def deserialize(self, data: str | bytes) -> Frame | list[Frame] | None:
        if not isinstance(data, str):
            return await super().deserialize(data)  # binary: the caller's audio
        try:
            message = parse_control(data)
            if message is None:
                raise Malformed("unknown_control", data[:40])
            return self._event(message)
        except Exception as exc:  # never let one message end the call
            self._refuse(exc)
        return None

    def _event(self, message: dict[str, Any]) -> Frame | None:
        event = message["event"]
        if event == "DTMF_END":
            return InputDTMFFrame(button=_wire.keypad(message.get("digit")))
        if event == "MEDIA_MARK_PROCESSED":
            mark = message.get("correlation_id")
            if not isinstance(mark, str) or not mark:
                raise Malformed("missing_correlation_id")
            return PlaybackMarkFrame(mark=mark)
        if event == "MEDIA_XOFF":
            self.xoff_count += 1
            if self._xon.is_set():
                logger.info("asterisk call %s: MEDIA_XOFF, pausing audio", mask(self.call_id))
            self._xon.clear()
        elif event == "MEDIA_XON":
            self._xon.set()
        elif event == "ERROR":
            text = str(message.get("error_text", ""))[:120]
            logger.warning("asterisk call %s: Asterisk reported: %s", mask(self.call_id), text)
        elif event not in _EVENTS:
            raise Malformed("unknown_event", str(event)[:40])
        return None  # STATUS, QUEUE_DRAINED, MEDIA_BUFFERING_COMPLETED: nothing to do
