"""SimulatedCall: be the telephony provider on a bot's media WebSocket, in real time.

It connects like Twilio (or Telnyx, Plivo, Exotel, Vonage) would, sends the handshake, then one
media packet every 20 ms from a monotonic schedule (``t0 + n × 20 ms``, silence when the caller
is not talking — real providers never stop streaming), plays whatever the caller should say,
presses keys, and models the caller's phone: bot audio plays at the rate it was produced, a
``clear`` drops the unplayed rest, and a mark is acknowledged only once the audio queued before
it has played. Both sides are recorded on one time base.

Typical use in a test::

    async with SimulatedCall("ws://127.0.0.1:8765/ws", provider="twilio") as call:
        assert await call.wait_for_bot_turn(timeout=10)      # greeting
        await call.say(pcm)                                  # speak, in real time
        assert await call.wait_for_bot_speech(timeout=5)     # the answer starts
        await call.press("#")
        assert await call.wait_for_hangup(timeout=10)
    result = call.result()
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from callpipe.errors import CallEnded as CallEnded  # re-exported: its old home
from callpipe.errors import ConfigurationError
from callpipe.testing.simulator.dialects import CallIdentity, Dialect, ServerEvent, make_dialect
from callpipe.testing.simulator.recording import BotPlayout, Track, speech_regions
from callpipe.testing.simulator.result import CallEvent, CallResult
from callpipe.testing.simulator.sources import AudioSource, load_audio
from callpipe.testing.simulator.words import (
    REGION_GAP_SECS,
    HeardText,
    Recognizer,
    compile_pattern,
    default_recognizer,
)

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class NetworkFaults:
    """Network trouble to inject on the call.

    - ``jitter_ms``: each caller packet is delayed by a random 0..jitter_ms (order is kept, as
      on TCP), so the bot receives bursts and gaps.
    - ``stall_at``/``stall_secs``: nothing moves in either direction for ``stall_secs`` from
      ``stall_at``; the backlog then arrives in a burst.
    - ``close_at``: the TCP connection is cut at that time without a WebSocket close frame.
    """

    jitter_ms: float = 0.0
    stall_at: float | None = None
    stall_secs: float = 0.0
    close_at: float | None = None
    seed: int | None = None

    def stall_end(self, t: float) -> float | None:
        """End of the stall if ``t`` falls inside it."""
        if self.stall_at is None or self.stall_secs <= 0:
            return None
        end = self.stall_at + self.stall_secs
        return end if self.stall_at <= t < end else None


class SimulatedCall:
    """One simulated phone call to a bot's WebSocket (see module docstring)."""

    def __init__(
        self,
        url: str,
        provider: str = "twilio",
        *,
        identity: CallIdentity | None = None,
        dialect: Dialect | None = None,
        headers: dict[str, str] | None = None,
        faults: NetworkFaults | None = None,
        packet_ms: int = 20,
        keep_messages: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.dialect = dialect or make_dialect(provider, identity)
        self.provider = self.dialect.name
        self.rate = self.dialect.sample_rate
        self._headers = dict(headers or {})
        self.faults = faults or NetworkFaults()
        self._rng = random.Random(self.faults.seed)
        self._packet_secs = packet_ms / 1000.0
        self._packet_samples = self.rate * packet_ms // 1000
        self._keep = keep_messages
        self._connect_timeout = connect_timeout

        self.caller = Track(self.rate * 30)
        self.playout = BotPlayout(self.rate)
        self.events: list[CallEvent] = []
        self.sent: list[str | bytes] = []
        self.received: list[str | bytes] = []

        self._ws: ClientConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._speech: deque[tuple[bytes, asyncio.Future[None]]] = deque()
        self._speech_offset = 0
        self._outbox: asyncio.Queue[tuple[float, str | bytes]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._changed = asyncio.Event()
        self._ended = asyncio.Event()
        self._ended_by = ""
        self._close_code: int | None = None
        self._close_reason = ""
        self._held: list[tuple[str | bytes, float]] = []
        self._release: asyncio.TimerHandle | None = None
        self._end_time: float | None = None
        self._heard: HeardText | None = None
        self._said_after = -1.0
        self.bot_heard: list[str] = []
        """What the last ``wait_for_bot_to_say`` heard since the previous match (diagnostics)."""

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SimulatedCall:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.hang_up()

    async def connect(self) -> None:
        """Open the WebSocket, send the handshake and start streaming."""
        self._loop = asyncio.get_running_loop()
        self._ws = await connect(
            self.url,
            additional_headers=self._headers or None,
            subprotocols=[Subprotocol(p) for p in self.dialect.subprotocols] or None,
            compression=None,
            open_timeout=self._connect_timeout,
            ping_interval=None,
            max_size=2**22,
        )
        self._t0 = self._loop.time()
        self._event("connected", self.url)
        for message in self.dialect.handshake():
            await self._ws.send(message)
            self._log_sent(message)
        self._tasks = [
            self._loop.create_task(self._pump(), name="sim-pump"),
            self._loop.create_task(self._receive(), name="sim-receive"),
            self._loop.create_task(self._write(), name="sim-write"),
        ]
        if self.faults.close_at is not None:
            self._tasks.append(self._loop.create_task(self._cut_at(self.faults.close_at)))

    async def hang_up(self) -> None:
        """The caller hangs up: provider stop message, then a normal close. Idempotent."""
        if self._ws is None or self._ended.is_set():
            await self._shutdown()
            return
        stop = self.dialect.stop()
        self._event("hangup", "caller hung up")
        self._finish("caller")
        if stop is not None:
            try:
                await self._ws.send(stop)
                self._log_sent(stop)
            except ConnectionClosed:
                pass
        await self._shutdown()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 2.0)
            except (TimeoutError, Exception):
                self._ws.transport.abort()
        for _, fut in self._speech:
            if not fut.done():
                fut.set_exception(CallEnded())
                fut.exception()  # mark retrieved: nobody may be waiting
        self._speech.clear()

    # ------------------------------------------------------------------ caller actions

    def now(self) -> float:
        """Seconds since the WebSocket opened."""
        assert self._loop is not None, "call not connected"
        return self._loop.time() - self._t0

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def say(self, audio: AudioSource, *, wait: bool = True) -> None:
        """Speak: queue audio (PCM16 bytes at the call's rate, a WAV path, or text for the
        local TTS) behind anything already being said. With ``wait``, return once it has
        all been sent (in real time)."""
        if self.ended:
            raise CallEnded()
        pcm = await load_audio(audio, self.rate)
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._speech.append((pcm, fut))
        if wait:
            await fut

    async def press(self, digits: str, gap: float = 0.25) -> None:
        """Press keys (``0-9``, ``*``, ``#``), ``gap`` seconds apart."""
        for i, digit in enumerate(digits):
            if digit not in "0123456789*#":
                raise ConfigurationError(f"not a keypad key: {digit!r}")
            if i:
                await asyncio.sleep(gap)
            if self.ended:
                raise CallEnded()
            self._send(self.dialect.dtmf(digit))
            self._event("dtmf", digit)

    async def pause(self, seconds: float) -> None:
        """Stay silent (the media stream keeps flowing)."""
        await asyncio.sleep(seconds)

    @property
    def caller_speaking(self) -> bool:
        return bool(self._speech)

    # ------------------------------------------------------------------ waiting

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds (re-checked on every packet); False on timeout or
        when the call ends first."""
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        while not predicate():
            if self.ended:
                return predicate()
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    async def wait_for_bot_speech(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Until bot speech is audible (or new bot speech arrives)."""
        seen = len(self.playout.voiced_arrivals)
        return await self.wait_for(
            lambda: (
                len(self.playout.voiced_arrivals) > seen or self.playout.playing_voice(self.now())
            ),
            timeout,
        )

    async def wait_for_bot_silence(self, quiet_secs: float = 0.8, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Until the bot has been silent (as played) for ``quiet_secs``."""
        start = self.now()

        def quiet() -> bool:
            now = self.now()
            last = self.playout.last_voiced_end / self.rate
            return now - max(start, last) >= quiet_secs and not self.playout.playing_voice(now)

        return await self.wait_for(quiet, timeout)

    async def wait_for_bot_turn(self, timeout: float = 15.0, quiet_secs: float = 0.8) -> bool:  # noqa: ASYNC109
        """Until the bot speaks and then finishes (silent for ``quiet_secs``)."""
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        if not await self.wait_for_bot_speech(timeout):
            return False
        return await self.wait_for_bot_silence(quiet_secs, max(0.0, deadline - self._loop.time()))

    async def wait_for_event(self, kind: str, timeout: float = 10.0) -> CallEvent | None:  # noqa: ASYNC109
        """Until a new event of ``kind`` (e.g. ``clear``, ``mark``) is recorded."""
        seen = len(self.events)
        found: list[CallEvent] = []

        def check() -> bool:
            found[:] = [e for e in self.events[seen:] if e.kind == kind]
            return bool(found)

        await self.wait_for(check, timeout)
        return found[0] if found else None

    async def wait_for_hangup(self, timeout: float = 10.0) -> bool:  # noqa: ASYNC109
        """Until the bot ends the call (closes the socket)."""
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except TimeoutError:
            return False
        return self._ended_by == "bot"

    async def wait_for_bot_to_say(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 10.0,  # noqa: ASYNC109
        *,
        since: float | None = None,
        recognizer: Recognizer | None = None,
    ) -> str | None:
        """Until the caller has *heard* the bot say something matching ``pattern`` (a regular
        expression, searched case-insensitively in the transcribed words).

        Only bot speech after the previous match counts, so expectations can follow each
        other; ``since`` (seconds on :meth:`now`'s clock, e.g. taken before ``say()``) also
        skips speech that started earlier. Returns the matching words, or None on timeout or
        when the call ends without them. Transcription is local Whisper
        (``callpipe[whisper-model]``) in a thread.
        """
        assert self._loop is not None, "call not connected"
        search = compile_pattern(pattern)
        if recognizer is None and self._heard is None:
            recognizer = await asyncio.to_thread(default_recognizer)
        if recognizer is not None:
            self._heard = HeardText(recognizer)
        assert self._heard is not None
        heard = self._heard
        deadline = self._loop.time() + timeout
        while True:
            ended = self.ended
            now = self._end_time if ended and self._end_time is not None else self.now()
            samples = self.playout.track.samples(int(now * self.rate))
            if since is not None:
                samples[: int(since * self.rate)] = 0  # speech before `since` is not heard
            regions = [
                r
                for r in speech_regions(samples, self.rate, merge_gap_secs=REGION_GAP_SECS)
                if r[0] > self._said_after
            ]
            lines = await asyncio.to_thread(heard.text_of, samples, self.rate, regions, now, ended)
            self.bot_heard = [text for _, _, text in lines if text]
            for i in range(len(lines)):
                said = " ".join(text for _, _, text in lines[: i + 1] if text)
                if search(said):
                    self._said_after = lines[i][0]
                    return said
            if ended or self._loop.time() >= deadline:
                return None
            await asyncio.sleep(0.2)

    # ------------------------------------------------------------------ result

    def result(self) -> CallResult:
        """Everything recorded so far (final once the call has ended)."""
        end = self._end_time if self._end_time is not None else self.now()
        length = max(len(self.caller), int(end * self.rate))
        return CallResult(
            provider=self.provider,
            sample_rate=self.rate,
            caller=self.caller.samples(length),
            bot=self.playout.track.samples(max(length, len(self.playout.track))),
            events=list(self.events),
            voiced_arrivals=list(self.playout.voiced_arrivals),
            voiced_wire_times=list(self.playout.voiced_wire_times),
            stall=self._stall_window(),
            duration=end,
            ended_by=self._ended_by or "open",
            close_code=self._close_code,
            close_reason=self._close_reason,
            messages_sent=list(self.sent),
            messages_received=list(self.received),
        )

    # ------------------------------------------------------------------ internals

    def _event(self, kind: str, detail: str = "") -> None:
        t = self.now() if self._loop is not None else 0.0
        self.events.append(CallEvent(t, kind, detail))
        self._changed.set()

    def _finish(self, by: str, code: int | None = None) -> None:
        if self._ended.is_set():
            return
        self._ended_by = by
        self._close_code = code
        self._end_time = self.now()
        self._ended.set()
        self._changed.set()
        # Nothing more will be sent: whoever waits on an utterance learns the call is over
        # (a bot closing the stream mid-utterance must not leave the script waiting forever).
        for _, fut in self._speech:
            if not fut.done():
                fut.set_exception(CallEnded())
                fut.exception()  # mark retrieved: nobody may be waiting
        self._speech.clear()
        self._speech_offset = 0

    def _log_sent(self, message: str | bytes) -> None:
        if self._keep:
            self.sent.append(message)

    def _send(self, message: str | bytes) -> None:
        self._outbox.put_nowait((self.now(), message))

    def _next_speech(self, nbytes: int) -> bytes:
        out = bytearray()
        while len(out) < nbytes and self._speech:
            pcm, fut = self._speech[0]
            take = pcm[self._speech_offset : self._speech_offset + nbytes - len(out)]
            out += take
            self._speech_offset += len(take)
            if self._speech_offset >= len(pcm):
                self._speech.popleft()
                self._speech_offset = 0
                if not fut.done():
                    fut.set_result(None)
        if len(out) < nbytes:
            out += bytes(nbytes - len(out))
        return bytes(out)

    async def _pump(self) -> None:
        """The provider's media clock: one packet per period from a monotonic schedule."""
        assert self._loop is not None
        nbytes = self._packet_samples * 2
        n = 0
        while not self._ended.is_set():
            deadline = self._t0 + n * self._packet_secs
            delay = deadline - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pcm = self._next_speech(nbytes)
            self.caller.write(n * self._packet_samples, pcm)
            if self.dialect.media_flowing:
                self._send(self.dialect.media(pcm, int(n * self._packet_secs * 1000)))
            now = self.now()
            for mark in self.playout.due_marks(now):
                self._ack_mark(mark.name, mark.ack)
            self._changed.set()
            n += 1

    def _ack_mark(self, name: str, ack: object) -> None:
        message = self.dialect.mark_ack(ServerEvent("mark", name=name, ack=ack))
        self._event("mark_ack", name)
        if message is not None:
            self._send(message)

    async def _write(self) -> None:
        """The network toward the bot: applies jitter and stalls, keeps order."""
        assert self._loop is not None and self._ws is not None
        jitter = self.faults.jitter_ms / 1000.0
        last_release = 0.0
        try:
            while True:
                t, message = await self._outbox.get()
                release = t + (self._rng.uniform(0.0, jitter) if jitter else 0.0)
                release = max(release, last_release)
                stall_end = self.faults.stall_end(release)
                if stall_end is not None:
                    release = stall_end
                last_release = release
                delay = release - self.now()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._ws.send(message)
                self._log_sent(message)
        except ConnectionClosed:
            pass

    def _stall_window(self) -> tuple[float, float] | None:
        faults = self.faults
        if faults.stall_at is None or faults.stall_secs <= 0:
            return None
        return (faults.stall_at, faults.stall_at + faults.stall_secs)

    def _deliver(self, message: str | bytes, wire: float) -> None:
        if self._keep:
            self.received.append(message)
        self._handle(self.dialect.parse(message), wire)

    def _flush_held(self) -> None:
        """The stall is over: everything the bot sent during it arrives at once."""
        if self._release is not None:
            self._release.cancel()
            self._release = None
        held, self._held = self._held, []
        for message, wire in held:
            self._deliver(message, wire)

    async def _receive(self) -> None:
        assert self._ws is not None and self._loop is not None
        ws = self._ws
        try:
            async for message in ws:
                wire = self.now()
                stall_end = self.faults.stall_end(wire)
                if stall_end is not None:
                    # Held back, but stamped with when it really left the bot.
                    self._held.append((message, wire))
                    if self._release is None:
                        self._release = self._loop.call_at(self._t0 + stall_end, self._flush_held)
                    continue
                self._flush_held()
                self._deliver(message, wire)
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug here must not hang a test: end the call visibly
            logger.exception("simulator receive loop failed")
            self._event("error", f"{type(exc).__name__}: {exc}")
            self._finish("error")
            return
        window = self._stall_window()
        if self._held and window is not None and not self._ended.is_set():
            await asyncio.sleep(max(0.0, window[1] - self.now()))  # the close is stalled too
            self._flush_held()
        if not self._ended.is_set():
            code = ws.close_code
            if code is None or code == 1006:
                self._event("hangup", f"connection lost (code {code})")
                self._finish("network", code)
            else:
                self._close_reason = ws.close_reason or ""
                reason = f": {self._close_reason}" if self._close_reason else ""
                self._event("hangup", f"bot closed the stream (code {code}{reason})")
                self._finish("bot", code)

    def _handle(self, event: ServerEvent, wire: float | None = None) -> None:
        now = self.now()
        if event.kind == "audio":
            if event.pcm:
                self.playout.add_audio(event.pcm, now, wire)
        elif event.kind == "clear":
            dropped, pending = self.playout.clear(now)
            self._event("clear", f"dropped {dropped:.2f}s unplayed")
            ack = self.dialect.clear_ack()
            if ack is not None:
                self._send(ack)
            if self.dialect.acks_marks_on_clear:
                for mark in pending:
                    self._ack_mark(mark.name, mark.ack)
        elif event.kind == "mark":
            self._event("mark", event.name)
            self.playout.add_mark(event.name, event.ack)
        elif event.kind == "invalid":
            self._event("invalid", str(event.raw)[:120])
        else:
            self._event("message", str(event.raw)[:120])
        if event.reply is not None:
            self._send(event.reply)
        if event.close and self._ws is not None and self._loop is not None:
            self._tasks.append(self._loop.create_task(self._ws.close(), name="sim-close"))
        self._changed.set()

    async def _cut_at(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))
        if self._ws is not None and not self._ended.is_set():
            self._event("fault", "abrupt close (TCP cut, no close frame)")
            self._finish("network")
            self._ws.transport.abort()
