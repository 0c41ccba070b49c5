"""FastAPIWebsocketTransport: a phone call over an accepted FastAPI/Starlette WebSocket.

The application accepts the socket (and usually reads the provider's handshake, e.g. with
``parse_telephony_websocket``) and then builds this transport. ``input()`` reads provider
messages and turns them into frames through the serializer; ``output()`` sends bot audio paced
like a real audio device. Call control (hang-up) goes through the serializer's ``call_control``,
outside the hot path, bounded by ``hang_up_timeout``.

Events (handlers are called as ``handler(transport, websocket)``, each in its own task, so a slow
handler never blocks audio):

- ``on_client_connected``: the pipeline started on this connection (once).
- ``on_client_disconnected``: the remote side closed or the connection failed (once); not when
  the bot ended the call. With no handler registered, the transport cancels the pipeline itself.
- ``on_session_timeout``: ``session_timeout`` seconds after start, if the call is still up (once).

With ``allowed_origins`` set (or ``CALLPIPE_ALLOWED_ORIGINS`` / ``PIPECAT_ALLOWED_ORIGINS``), the
constructor refuses a connection from an origin not listed with ``OriginNotAllowedError`` (a
``ValueError``); the application then closes the socket (the runner does, with code 1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import Field, SkipValidation
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from callpipe.errors import CallControlError, ConfigurationError, OriginNotAllowedError
from callpipe.frames.frames import (
    CancelFrame,
    CancelTaskFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    PlaybackMarkFrame,
    StartFrame,
    StreamStoppedFrame,
    TransportMessageFrame,
    TransportMessageUrgentFrame,
)
from callpipe.log import CALL_TAG, mask, redact_numbers
from callpipe.processors.frame_processor import FrameDirection
from callpipe.transports.base_input import BaseInputTransport
from callpipe.transports.base_output import BaseOutputTransport
from callpipe.transports.base_transport import BaseTransport, TransportParams
from callpipe.transports.call_stats import CallStats, provider_name
from callpipe.transports.seams import TransportSerializer
from callpipe.transports.session import CallSession
from callpipe.utils.pydantic_docs import document_fields
from callpipe.utils.security.allowed_origins import default_allowed_origins, is_origin_allowed

if TYPE_CHECKING:
    from callpipe.telephony.base import CallControl

logger = logging.getLogger(__name__)


class FastAPIWebsocketParams(TransportParams):
    """Options of :class:`FastAPIWebsocketTransport`: the audio and VAD settings of
    :class:`~callpipe.transports.base_transport.TransportParams` plus the WebSocket's own.

    All are keyword arguments and optional; unknown names raise a validation error. A phone bot
    sets at least ``audio_in_enabled=True``, ``audio_out_enabled=True``, ``serializer=`` and
    usually ``vad_analyzer=``. Each field's description is listed below (and in ``help()``).
    """

    add_wav_header: bool = Field(
        default=False,
        description="Wrap each outgoing audio chunk in a complete WAV file (for plain "
        "WebSocket clients; the runner turns it off for telephony providers).",
    )
    serializer: SkipValidation[TransportSerializer | None] = Field(
        default=None,
        description="The provider's wire protocol, e.g. TwilioFrameSerializer(...) from "
        "callpipe.serializers. It also carries the credentials for the hang-up.",
    )
    session_timeout: float | None = Field(
        default=None,
        description="Seconds after the start at which on_session_timeout fires (once), if the "
        "call is still up. None: never.",
    )
    fixed_audio_packet_size: int | None = Field(
        default=None,
        gt=0,
        description="Re-cut outgoing binary payloads into packets of exactly this many bytes "
        "(for clients that need fixed frames). None: send them as produced.",
    )
    ws_close_timeout: float = Field(
        default=1.0, gt=0, description="Bound, in seconds, on the WebSocket close handshake."
    )
    hang_up_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Bound, in seconds, on the provider REST hang-up at the end of a call.",
    )
    max_message_size: int = Field(
        default=1_000_000,
        gt=0,
        description="Inbound messages larger than this many bytes are skipped and counted.",
    )
    # Flood guard: a carrier sends ~50 messages/s (20 ms media + marks + DTMF). A peer that keeps
    # sending far more is cut off after a generous burst, because every message costs the shared
    # event loop time in the WebSocket parser before we can even look at it.
    max_messages_per_sec: float | None = Field(
        default=1000.0,
        gt=0,
        description="Flood guard: a peer that sends faster than this (carriers send about 50 "
        "messages/s) for more than max_message_burst extra messages is cut off, so it cannot "
        "starve the other calls. None turns the guard off.",
    )
    max_message_burst: int = Field(
        default=20_000,
        gt=0,
        description="Messages above the max_messages_per_sec rate tolerated before the flood "
        "guard cuts the peer off.",
    )
    allowed_origins: list[str] = Field(
        default_factory=default_allowed_origins,
        description="Browser origins allowed to connect (e.g. ['https://app.example.com']); "
        "when set, a connection whose Origin header is missing or not listed is refused: the "
        "transport raises OriginNotAllowedError (a ValueError). Empty: any origin. Default: "
        "CALLPIPE_ALLOWED_ORIGINS (or PIPECAT_ALLOWED_ORIGINS), comma-separated. Telephony "
        "providers send no Origin, so leave it empty on a carrier's stream.",
    )


document_fields(FastAPIWebsocketParams)


class _Client:
    """The one WebSocket shared by input and output: send, receive, close (bounded, once)."""

    def __init__(self, websocket: WebSocket, close_timeout: float) -> None:
        self.websocket = websocket
        self.close_timeout = close_timeout
        self.closing = False
        self.remote_closed = False
        self.send_failure = "send failed"
        """Why the last send failed: ``remote closed`` when the peer was gone (it closed or
        dropped the connection), otherwise ``send failed``."""
        self.said_goodbye = False
        """The bot's protocol-level goodbye went out: the peer closing now is its answer."""
        self.gone = asyncio.Event()
        """Set when the receive loop has ended (the peer closed, or we stopped reading)."""
        self._closed = False
        self._close_lock = asyncio.Lock()

    @property
    def can_send(self) -> bool:
        ws = self.websocket
        return (
            not self.closing
            and not self.remote_closed
            and ws.client_state == WebSocketState.CONNECTED
            and ws.application_state == WebSocketState.CONNECTED
        )

    async def messages(self) -> AsyncIterator[str | bytes]:
        receive = self.websocket.receive
        while True:
            try:
                message = await receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = message.get("text")
            if data is None:
                return
            yield data

    async def send(self, payload: str | bytes) -> bool:
        if not self.can_send:
            return False
        try:
            if isinstance(payload, bytes):
                await self.websocket.send_bytes(payload)
            else:
                await self.websocket.send_text(payload)
        except Exception as exc:  # a peer can vanish between any two sends
            logger.debug("websocket send failed: %r", exc)
            # Starlette reports a peer that is gone (closed, or its TCP connection dropped) as
            # WebSocketDisconnect: the same end as a receive seeing the close first.
            gone = isinstance(exc, (WebSocketDisconnect, OSError))
            self.send_failure = "remote closed" if gone else "send failed"
            self.remote_closed = True
            return False
        return True

    def abandon(self) -> None:
        """Stop using the socket without a closing handshake.

        For a hostile peer: the server (uvicorn) keeps reading and parsing until the peer
        answers a close frame (up to 10 s), but closes the TCP connection at once when the
        application returns without one; meanwhile reading stays paused since we stop receiving.
        """
        self.closing = True
        self._closed = True

    async def close(self, code: int = 1000) -> None:
        async with self._close_lock:
            # Not ``closing``: the input sets that on cancel (so its receive loop does not
            # report a remote close), and the close frame must still be sent after it.
            if self._closed:
                return
            self._closed = True
            self.closing = True
            ws = self.websocket
            if ws.application_state != WebSocketState.CONNECTED or self.remote_closed:
                return
            task = asyncio.get_running_loop().create_task(ws.close(code=code))
            done, _ = await asyncio.wait({task}, timeout=self.close_timeout)
            if not done:
                logger.debug("websocket close exceeded %.1fs", self.close_timeout)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            elif task.exception() is not None:
                logger.debug("websocket close failed: %r", task.exception())


class _StreamStopped(Exception):
    pass


class _Flood(Exception):
    pass


_YIELD_EVERY = 16
"""Messages handled back to back before the receive loop yields to other calls' tasks (a burst
that arrived in one socket read would otherwise run without a break)."""


class FastAPIWebsocketInputTransport(BaseInputTransport):
    """Reads provider messages, deserializes them, and feeds audio/VAD/DTMF into the pipeline."""

    def __init__(
        self,
        session: CallSession[_Client],
        params: FastAPIWebsocketParams,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self._session = session
        self._ws_params = params
        self._receive_task: asyncio.Task[None] | None = None
        self._session_task: asyncio.Task[None] | None = None

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self._session.setup_serializer(frame)
        serializer = self._ws_params.serializer
        if serializer is not None:
            for reply in serializer.pending_replies():  # a handshake the runner already read
                await self._send_reply(reply)
        self._session.stats.begin(self.clock.now())
        if self._ws_params.session_timeout:
            self._session_task = self.create_task(self._session_timer(), "session-timeout")
        await self._session.fire("on_client_connected")
        if self._receive_task is None:
            self._receive_task = self.create_task(self._receive_loop(), "receive")

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        self._session.client.closing = True
        await self.cancel_task(self._session_task)
        await self.cancel_task(self._receive_task)

    async def cleanup(self) -> None:
        self._session.client.closing = True
        await super().cleanup()
        await self._session.client.close()

    async def _session_timer(self) -> None:
        timeout = self._ws_params.session_timeout
        assert timeout
        await self.clock.sleep(timeout)
        if self._session.client.can_send:
            logger.info("%s: session timeout after %.0fs", self._session, timeout)
            await self._session.fire("on_session_timeout")

    async def _receive_loop(self) -> None:
        serializer = self._ws_params.serializer
        limit = self._ws_params.max_message_size
        stats = self._session.stats
        rate = self._ws_params.max_messages_per_sec
        burst = float(self._ws_params.max_message_burst)
        tokens, last = burst, self.clock.now()
        reason = "remote closed"
        try:
            async for message in self._session.client.messages():
                stats.messages_in += 1
                if stats.messages_in % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                    if rate is not None:
                        now = self.clock.now()
                        tokens = min(burst, tokens + (now - last) * rate) - _YIELD_EVERY
                        last = now
                        if tokens < 0:
                            raise _Flood
                if serializer is None:
                    continue
                if len(message) > limit:
                    stats.note_malformed("message_too_large", f"{len(message)} > {limit}")
                    continue
                try:
                    result = await serializer.deserialize(message)
                except Exception as exc:
                    stats.note_malformed("serializer_error", type(exc).__name__)
                    continue
                if result is None:
                    continue
                if isinstance(result, list):
                    for frame in result:
                        await self._dispatch(frame)
                else:
                    await self._dispatch(result)
        except _StreamStopped:
            reason = "provider stopped the stream"
        except _Flood:
            await self._end_flood()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: receive loop failed", self._session)
            reason = "receive error"
        finally:
            self._session.client.gone.set()
        if not self._session.client.closing:
            self._session.client.remote_closed = True
            if not self._session.client.said_goodbye:
                await self._session.on_remote_closed(reason)

    async def _end_flood(self) -> None:
        """Too many messages for too long: not a carrier; drop the connection, end this call."""
        logger.error(
            "%s: more than %d messages in a burst (over %.0f/s): ending the call",
            self._session,
            self._ws_params.max_message_burst,
            self._ws_params.max_messages_per_sec or 0,
        )
        stats = self._session.stats
        stats.end_reason = stats.end_reason or "error (message flood)"
        self._session.peer_stalled()  # the carrier leg may be up: hang it up
        self._session.client.abandon()
        await self._session.on_remote_closed("message flood")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, ErrorFrame) and (frame.fatal or frame.unhandled):
            stats = self._session.stats
            stats.end_reason = stats.end_reason or "error"
        await super().process_frame(frame, direction)

    async def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, InputAudioRawFrame):
            self._session.stats.packets_in += 1
            await self.push_audio_frame(frame)
        elif isinstance(frame, PlaybackMarkFrame):
            self._session.mark_played(frame.mark)
        elif isinstance(frame, StreamStoppedFrame):
            raise _StreamStopped
        elif isinstance(frame, TransportMessageUrgentFrame):
            await self._reply(frame)  # the serializer answers the peer itself (ping -> pong)
        else:
            await self.push_frame(frame)

    async def _reply(self, frame: TransportMessageUrgentFrame) -> None:
        serializer = self._ws_params.serializer
        payload = await serializer.serialize(frame) if serializer is not None else None
        if payload is not None:
            await self._send_reply(payload)

    async def _send_reply(self, payload: str | bytes) -> None:
        """Straight onto the socket, not through the pipeline; bounded like any non-audio send."""
        try:
            async with asyncio.timeout(self._params.audio_out_write_timeout):
                await self._session.client.send(payload)
        except TimeoutError:
            logger.warning("%s: the peer did not take a protocol reply in time", self._session)

    async def _interrupt(self) -> None:
        if self._session.bot_speaking:
            self._session.stats.interruptions += 1  # a real barge-in, not just a user turn
        await super()._interrupt()


class FastAPIWebsocketOutputTransport(BaseOutputTransport):
    """Serializes paced audio chunks, clears, marks and messages onto the WebSocket."""

    def __init__(
        self,
        session: CallSession[_Client],
        params: FastAPIWebsocketParams,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self._session = session
        self._ws_params = params
        self._packet_buffer = bytearray()
        self._hung_up = False
        session.on_mark(self.on_mark)

    @property
    def _serializer(self) -> TransportSerializer | None:
        return self._session.serializer

    @property
    def _call_control(self) -> CallControl | None:
        return self._serializer.call_control if self._serializer is not None else None

    @property
    def wire_sample_rate(self) -> int | None:
        return self._serializer.wire_sample_rate if self._serializer is not None else None

    @property
    def preferred_10ms_chunks(self) -> int | None:
        chunks = self._serializer.preferred_10ms_chunks if self._serializer is not None else None
        return chunks if chunks is not None and chunks > 0 else None

    @property
    def supports_marks(self) -> bool:
        return self._serializer is not None and self._serializer.supports_marks

    @property
    def coalesces_packets(self) -> bool:
        # One WAV file per packet, or exact packet sizes: the far end wants each packet alone.
        ws = self._ws_params
        serializer = self._serializer
        return (
            not ws.add_wav_header
            and ws.fixed_audio_packet_size is None
            and (serializer is None or serializer.coalesce_packets)
        )

    async def start(self, frame: StartFrame) -> None:
        await self._session.setup_serializer(frame)
        await super().start(frame)

    async def _bot_started(self) -> None:
        self._session.bot_speaking = True  # for the input: a user turn now is a barge-in
        await super()._bot_started()

    async def _bot_stopped(self) -> None:
        self._session.bot_speaking = False
        await super()._bot_stopped()

    async def write_audio_chunk(self, chunk: bytes) -> bool:
        serializer = self._serializer
        if serializer is None or not self._session.client.can_send:
            return False
        if self._ws_params.add_wav_header:
            from callpipe.audio.wav import pcm_to_wav

            chunk = pcm_to_wav(chunk, self.sample_rate, self._params.audio_out_channels)
        frame = OutputAudioRawFrame(chunk, self.sample_rate, self._params.audio_out_channels)
        payload = await serializer.serialize(frame)
        if payload is None:
            return True
        sent = await self._send(payload)
        if sent:
            self._session.stats.packets_out += 1
        elif self._session.client.remote_closed and not self._session.client.closing:
            await self._session.on_remote_closed(self._session.client.send_failure)
        return sent

    async def _send(self, payload: str | bytes) -> bool:
        size = self._ws_params.fixed_audio_packet_size
        if size is None or not isinstance(payload, bytes):
            return await self._session.client.send(payload)
        buffer = self._packet_buffer
        buffer += payload
        ok = True
        while len(buffer) >= size and ok:
            ok = await self._session.client.send(bytes(buffer[:size]))
            del buffer[:size]
        return ok

    async def _serialize_and_send(self, frame: Frame) -> None:
        serializer = self._serializer
        if serializer is None or not self._session.client.can_send:
            return
        payload = await serializer.serialize(frame)
        if payload is not None:
            await self._send_bounded(payload)

    async def _send_bounded(self, payload: str | bytes) -> bool:
        """Send a non-audio message (clear, mark, app message) under the audio write timeout.

        A peer that stops reading blocks every send, not only audio ones: unbounded, a mark or
        a clear (sent from the receive path on barge-in) would hold the call open forever.
        """
        try:
            async with asyncio.timeout(self._params.audio_out_write_timeout):
                return await self._session.client.send(payload)
        except TimeoutError:
            await self.on_write_timeout()
            return False

    async def send_message(
        self, frame: TransportMessageFrame | TransportMessageUrgentFrame
    ) -> None:
        await self._serialize_and_send(frame)

    async def send_clear(self) -> None:
        self._packet_buffer.clear()
        await self._serialize_and_send(InterruptionFrame())

    async def send_mark(self, name: str) -> bool:
        serializer = self._serializer
        payload = serializer.serialize_mark(name) if serializer is not None else None
        if payload is None:
            return False
        return await self._send_bounded(payload)

    async def write_dtmf(self, digits: str) -> bool:
        control = self._call_control
        if control is None:
            return False
        try:
            return bool(
                await asyncio.wait_for(control.send_dtmf(digits), self._ws_params.hang_up_timeout)
            )
        except _EXPECTED as exc:  # the provider's answer, or a bad request: expected
            logger.warning("%s: DTMF through the provider API failed: %s", self._session, _why(exc))
            return False
        except Exception:
            logger.exception("%s: DTMF through the provider API failed", self._session)
            return False

    async def transfer_call(self, target: str) -> None:
        control = self._call_control
        if control is None:
            logger.error("%s: cannot transfer: no call control configured", self._session)
            return
        try:
            await asyncio.wait_for(control.transfer(target), self._ws_params.hang_up_timeout)
        except _EXPECTED as exc:  # the provider's answer, or a bad target: expected
            logger.warning("%s: call transfer failed: %s", self._session, _why(exc))
        except Exception:
            logger.exception("%s: call transfer failed", self._session)

    async def on_write_timeout(self) -> None:
        if self._session.client.remote_closed:
            return
        logger.error("%s: the peer stopped reading; ending the call", self._session)
        self._session.client.remote_closed = True
        self._session.peer_stalled()  # the carrier's call may still be up: hang it up
        stats = self._session.stats
        stats.end_reason = stats.end_reason or "timeout (peer stopped reading)"
        await self._session.on_remote_closed("write timeout")

    async def finish_call(self, frame: EndFrame | CancelFrame) -> None:
        """Hang up (once, bounded; skipped if the caller already hung up) and close 1000."""
        stats = self._session.stats
        stats.end_reason = stats.end_reason or _end_reason(frame)
        session = self._session
        if (
            not session.client.remote_closed
            or session.hang_up_at_end
            or isinstance(frame, EndFrame)
        ):
            await self._hang_up()
        await self._say_goodbye(frame)
        await self._session.client.close()

    async def _say_goodbye(self, frame: EndFrame | CancelFrame) -> None:
        """A protocol that ends with a message (Genesys's ``disconnect``) gets it, and the peer's
        own close is awaited, bounded, before the socket closes. Other serializers return None."""
        serializer = self._serializer
        if serializer is None or not self._session.client.can_send:
            return
        payload = await serializer.serialize(frame)
        if payload is None:
            return
        self._session.client.said_goodbye = True
        if await self._send_bounded(payload):
            p = self._ws_params
            wait = p.hang_up_timeout if isinstance(frame, EndFrame) else p.ws_close_timeout
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._session.client.gone.wait(), wait)

    async def _hang_up(self) -> None:
        serializer = self._serializer
        if self._hung_up or serializer is None or not serializer.auto_hang_up:
            return
        control = serializer.call_control
        if control is None:
            return
        self._hung_up = True
        try:
            await asyncio.wait_for(control.hang_up(), self._ws_params.hang_up_timeout)
        except TimeoutError:  # the provider did not answer: expected, as a refusal is
            logger.warning(
                "%s: hang-up timed out after %.1fs",
                self._session,
                self._ws_params.hang_up_timeout,
            )
        except Exception:
            logger.exception("%s: hang-up failed", self._session)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self._session.client.close()
        control = self._call_control
        if control is not None:
            # The provider REST client (hang-up, DTMF, transfer) holds a keep-alive connection
            # per call; released here, not whenever the garbage collector gets to it.
            try:
                await control.aclose()
            except Exception:
                logger.debug(
                    "%s: closing the call-control client failed", self._session, exc_info=True
                )
        self._session.log_call_end(self.clock.now())


class FastAPIWebsocketTransport(BaseTransport):
    """A telephony (or any) WebSocket call served by FastAPI; see the module docstring."""

    def __init__(
        self,
        websocket: WebSocket,
        params: FastAPIWebsocketParams,
        input_name: str | None = None,
        output_name: str | None = None,
    ) -> None:
        if params.allowed_origins:
            origin = websocket.headers.get("origin")
            if not is_origin_allowed(origin, params.allowed_origins):
                raise OriginNotAllowedError(
                    f"WebSocket refused: origin {origin!r} is not in allowed_origins"
                )
        super().__init__(input_name=input_name, output_name=output_name)
        self._websocket = websocket
        self._params = params
        stats = CallStats(
            call_id=_call_id(params.serializer), provider=provider_name(params.serializer)
        )
        self._session = CallSession(
            self.name,
            params.serializer,
            _Client(websocket, params.ws_close_timeout),
            stats,
            fire=self._fire,
            listens=self.has_event_handlers,
            cancel=self._cancel_pipeline,
        )
        self.stats = stats
        # Log lines of this call's tasks (processors, the task) can now name the call.
        CALL_TAG.set(mask(stats.call_id) or "")
        self._input = FastAPIWebsocketInputTransport(self._session, params, name=input_name)
        self._output = FastAPIWebsocketOutputTransport(self._session, params, name=output_name)
        for event in ("on_client_connected", "on_client_disconnected", "on_session_timeout"):
            self._register_event_handler(event, background=True)

    def __str__(self) -> str:
        return str(self._session)

    @property
    def websocket(self) -> WebSocket:
        return self._websocket

    @property
    def params(self) -> FastAPIWebsocketParams:
        return self._params

    def input(self) -> FastAPIWebsocketInputTransport:
        return self._input

    def output(self) -> FastAPIWebsocketOutputTransport:
        return self._output

    def get_client_id(self, client: Any) -> str:
        """The call's id from the provider's handshake (``""`` when the serializer has none):
        one WebSocket is one call, whatever ``client`` the events passed."""
        return self.stats.call_id or ""

    async def _fire(self, event: str) -> None:
        await self._call_event_handler(event, self._websocket)

    async def _cancel_pipeline(self, reason: str) -> None:
        """The far end left and the app does not listen: end the pipeline from its source."""
        await self._input.push_frame(CancelTaskFrame(reason=reason), FrameDirection.UPSTREAM)


_EXPECTED = (CallControlError, ConfigurationError, TimeoutError)
"""Call-control failures that are events, not bugs: one WARNING line, no traceback."""


def _why(exc: CallControlError | ConfigurationError | TimeoutError) -> str:
    """A call-control failure in one line, without the request path (it names the call) and
    with phone numbers masked (a refused transfer target is quoted in the message)."""
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    why = exc.reason if isinstance(exc, CallControlError) else str(exc)
    return redact_numbers(" ".join(why.split()))


def _end_reason(frame: EndFrame | CancelFrame) -> str:
    """The call-end reason when the pipeline, not the network, ended the call."""
    if isinstance(frame, EndFrame):
        return "bot ended"
    if frame.reason == "idle":
        return "timeout (idle)"
    return "cancelled"


def _call_id(serializer: TransportSerializer | None) -> str | None:
    return (serializer.call_id or None) if serializer is not None else None
