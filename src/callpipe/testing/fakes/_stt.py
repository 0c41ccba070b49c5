"""What the speech-to-text fakes share: "hearing" speech by its energy, with time counted in
the audio received (so results do not depend on how fast the machine is); for Cartesia and
ElevenLabs also the records and scripted transcripts."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, Unpack
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection

from callpipe.testing.fakes._server import LocalWebsocketServer, Refusal, ServedWebsocketFake

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class ListeningOptions(TypedDict, total=False):
    """The options of the listening fakes: ``api_key`` they accept (``"test-key"``; None:
    any), ``energy_threshold``, the RMS from which audio is speech (300), ``interim_secs`` of
    speech between interim transcripts (0.25) and ``secs_per_word`` of speech per word of one
    (0.3); an interim transcript is the first words of the next final one."""

    api_key: str | None
    energy_threshold: float
    interim_secs: float
    secs_per_word: float


class ListeningFake(ServedWebsocketFake):
    """A fake STT socket server: what it sent and heard, and the transcripts it will send.

    A subclass gives the endpoint's ``path``, how the key is presented (``auth``, see
    :class:`LocalWebsocketServer`), ``validate`` for the query and the ``unauthorized``
    refusal, and handles a connection in ``_handle``.
    """

    def __init__(
        self,
        *,
        auth: list[tuple[str, str, str]],
        path: str,
        validate: Callable[[Any], Refusal | None],
        unauthorized: Refusal,
        **options: Unpack[ListeningOptions],
    ) -> None:
        self.energy_threshold = options.get("energy_threshold", 300.0)
        self.interim_secs = options.get("interim_secs", 0.25)
        self.secs_per_word = options.get("secs_per_word", 0.3)
        self.transcripts: deque[str] = deque()
        """Scripted final transcripts, one per utterance (``"hello"`` when empty)."""
        self.sent: list[dict[str, Any]] = []
        """Every message the fake sent, in order."""
        self.queries: list[dict[str, list[str]]] = []
        """Each connection's query (every value of repeated keys)."""
        self.audio = bytearray()
        """Every audio byte received, as sent (μ-law stays μ-law)."""
        self.connections = 0
        self.error_next: str | None = None
        """Answer the next message with this error (the socket stays open)."""
        self._server = LocalWebsocketServer(
            self._handle,
            api_key=options.get("api_key", "test-key"),
            auth=auth,
            path=path,
            validate=validate,
            unauthorized=unauthorized,
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    def _connected(self, ws: ServerConnection) -> dict[str, list[str]]:
        """Count a new connection and record its query."""
        self.connections += 1
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        self.queries.append(query)
        return query

    def next_text(self) -> str:
        """The transcript the utterance being heard will get."""
        return self.transcripts[0] if self.transcripts else "hello"

    def take_text(self) -> str:
        """The utterance's final transcript (the next scripted one is used up)."""
        return self.transcripts.popleft() if self.transcripts else "hello"

    async def _send(self, ws: ServerConnection, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await ws.send(json.dumps(message))


class SessionSide(Protocol):
    """A connection's handler for :meth:`DroppingFake._feed`: False ends the connection."""

    async def audio(self, data: bytes) -> bool: ...

    async def control(self, message: str) -> bool: ...


class DroppingFake:
    """A fake whose connections can be dropped on cue, and the loop that feeds a connection's
    messages to its session."""

    _drop_next = False

    def drop_on_next_audio(self) -> None:
        """Abort the connection (no close frame) when the next audio message arrives."""
        self._drop_next = True

    async def _feed(self, ws: ServerConnection, session: SessionSide) -> None:
        """Audio to ``session.audio``, text to ``session.control``, until one returns False,
        the client closes or a drop is due."""
        async for message in ws:
            if isinstance(message, bytes):
                if self._drop_next:
                    self._drop_next = False
                    ws.transport.abort()
                    return
                if not await session.audio(message):
                    return
            elif not await session.control(message):
                return


class PartialsOptions(TypedDict, total=False):
    """The options of a :class:`PartialsFake`: the ``api_key`` it accepts (``"test-key"``;
    None: any), ``energy_threshold``, the RMS from which audio is speech (300),
    ``partial_secs`` of an utterance between partial results (0.2) and ``secs_per_word`` of
    speech per word (0.2)."""

    api_key: str | None
    energy_threshold: float
    partial_secs: float
    secs_per_word: float


class PartialsFake(DroppingFake, ServedWebsocketFake):
    """The options and records of a fake whose sessions send partial results every
    ``partial_secs`` of an utterance (Soniox, Speechmatics)."""

    def __init__(self, **options: Unpack[PartialsOptions]) -> None:
        self.api_key = options.get("api_key", "test-key")
        self.energy_threshold = options.get("energy_threshold", 300.0)
        self.partial_secs = options.get("partial_secs", 0.2)
        self.secs_per_word = options.get("secs_per_word", 0.2)
        self.transcripts: deque[str] = deque()
        """Scripted transcripts, one per utterance."""
        self.headers: list[dict[str, str]] = []
        """Each handshake's headers (names in lower case)."""
        self.sent: list[dict[str, Any]] = []
        """Every message sent, in order (all connections)."""
        self.audio = bytearray()
        """The audio received, as sent (µ-law stays µ-law)."""
        self.connections = 0

    def _connected(self, ws: ServerConnection) -> None:
        """Count a new connection and record its handshake headers."""
        assert ws.request is not None
        self.connections += 1
        self.headers.append({k.lower(): v for k, v in ws.request.headers.raw_items()})


class Hearing:
    """One connection's audio clock and the utterance being heard, for a fake that "hears" by
    energy: audio with an RMS from ``threshold`` is speech and opens an utterance (calling
    :meth:`speech_started`); time is the audio received, so results do not depend on how fast
    the machine is.
    """

    def __init__(self, *, rate: int, threshold: float, ulaw: bool = False) -> None:
        self.rate = rate
        self.threshold = threshold
        self.ulaw = ulaw
        self.t = 0.0
        """Seconds of audio received."""
        self.start: float | None = None
        """When the utterance being heard began (None: none is)."""
        self.speech = 0.0
        """Seconds of speech in that utterance."""
        self.last_voice = 0.0
        self.last_interim = 0.0
        """When the utterance's last interim result went out (at first, when it began)."""

    def samples(self, data: bytes) -> NDArray[np.float64]:
        """The received audio as samples on the 16-bit scale (16-bit PCM, or μ-law)."""
        import numpy as np

        from callpipe.audio.g711 import ulaw_to_pcm

        pcm = ulaw_to_pcm(data) if self.ulaw else data
        return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)

    async def hear(self, data: bytes) -> bool:
        """Count ``data`` in the clock; True if it is speech."""
        import numpy as np

        samples = self.samples(data)
        duration = len(samples) / self.rate
        rms = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
        self.t += duration
        if rms < self.threshold:
            return False
        if self.start is None:
            self.start = self.t - duration
            self.speech = 0.0
            self.last_interim = self.t
            await self.speech_started()
        self.speech += duration
        self.last_voice = self.t
        return True

    async def speech_started(self) -> None:
        """Hook: speech opened an utterance (``start`` is set)."""

    def quiet_for(self, secs: float | None) -> bool:
        """True when an utterance is open and its last ``secs`` (None: never) were quiet."""
        return self.start is not None and secs is not None and self.t - self.last_voice >= secs

    def interim_due(self, every: float) -> bool:
        """True, and the interim clock restarted, once ``every`` seconds passed since the
        utterance's last interim result."""
        if self.t - self.last_interim < every:
            return False
        self.last_interim = self.t
        return True

    def first_words(self, text: str, secs_per_word: float) -> str:
        """The words of ``text`` said so far: one per ``secs_per_word`` since the utterance
        began, at least one."""
        count = max(1, int((self.t - (self.start or 0.0)) / secs_per_word))
        return " ".join(text.split()[:count])


class Listener(Hearing):
    """A :class:`Hearing` for a :class:`ListeningFake`: every ``interim_secs`` of speech calls
    :meth:`interim` with the first words of the next transcript; ``silence_secs`` of quiet
    after it (None: never) calls :meth:`end_of_speech`.
    """

    def __init__(
        self, fake: ListeningFake, *, rate: int, ulaw: bool, silence_secs: float | None
    ) -> None:
        super().__init__(rate=rate, threshold=fake.energy_threshold, ulaw=ulaw)
        self.fake = fake
        self.silence_secs = silence_secs

    async def interim(self, text: str) -> None:
        raise NotImplementedError

    async def end_of_speech(self) -> None:
        raise NotImplementedError

    async def audio(self, data: bytes) -> None:
        if await self.hear(data):
            if self.interim_due(self.fake.interim_secs):
                await self.interim(self.first_words(self.fake.next_text(), self.fake.secs_per_word))
        elif self.quiet_for(self.silence_secs):
            await self.end_of_speech()
