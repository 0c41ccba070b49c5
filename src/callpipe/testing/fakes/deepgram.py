"""FakeDeepgramServer: Deepgram's live transcription WebSocket (``/v1/listen``) on 127.0.0.1.

Query options as documented (``encoding=linear16|mulaw``, ``sample_rate``, ``channels``,
``interim_results``, ``endpointing`` in ms, …); the key in ``Authorization: Token <key>``.
The client streams binary audio and may send ``{"type": "KeepAlive"}``, ``{"type":
"Finalize"}`` and ``{"type": "CloseStream"}``. The server sends ``Results`` messages::

    {"type": "Results", "channel_index": [0, 1], "duration", "start", "is_final",
     "speech_final", "from_finalize", "channel": {"alternatives": [{"transcript", "confidence",
     "words": []}]}, "metadata": {"request_id", "model_info": {}}}

and a ``Metadata`` message on ``CloseStream``.

The fake "hears" speech by energy: loud audio opens an utterance, interim results follow every
``interim_secs`` of speech (the first words of the next scripted transcript), and
``endpointing`` ms of quiet — or a ``Finalize`` — yields the final result with the whole
scripted transcript (``transcripts``; ``"hello"`` when empty). Time is counted in received
audio, not wall-clock time, so results are deterministic.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from callpipe.audio.g711 import ulaw_to_pcm
from callpipe.testing.fakes._server import LocalWebsocketServer, ServedWebsocketFake


class FakeDeepgramServer(ServedWebsocketFake):
    """See the module docstring."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        energy_threshold: float = 300.0,
        interim_secs: float = 0.25,
        secs_per_word: float = 0.3,
    ) -> None:
        self.energy_threshold = energy_threshold
        self.interim_secs = interim_secs
        self.secs_per_word = secs_per_word
        self.transcripts: deque[str] = deque()
        self.results: list[dict[str, Any]] = []
        self.queries: list[dict[str, str]] = []
        self.audio_bytes = 0
        self.keepalives = 0
        self.finalizes = 0
        self.close_streams = 0
        self.connections = 0
        self.drop_after_results: int | None = None
        self._server = LocalWebsocketServer(
            self._handle, api_key=api_key, key_header="Authorization", bearer=True
        )
        self.fail_handshakes: list[int] = self._server.fail_handshakes
        """Statuses for the next handshakes (``fake.fail_handshakes.append(429)``)."""

    @property
    def max_connections(self) -> int | None:
        """Refuse handshakes (HTTP 503) once this many were accepted (simulates an outage)."""
        return self._server.max_connections

    @max_connections.setter
    def max_connections(self, value: int | None) -> None:
        self._server.max_connections = value

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        assert ws.request is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query).items()}
        self.queries.append(query)
        session = _Session(self, ws, query)
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, bytes):
                    self.audio_bytes += len(message)
                    await session.audio(message)
                    continue
                kind = json.loads(message).get("type")
                if kind == "KeepAlive":
                    self.keepalives += 1
                elif kind == "Finalize":
                    self.finalizes += 1
                    await session.finalize(from_finalize=True)
                elif kind == "CloseStream":
                    self.close_streams += 1
                    await session.finalize(from_finalize=True)
                    await ws.send(
                        json.dumps(
                            {
                                "type": "Metadata",
                                "request_id": session.request_id,
                                "duration": session.t,
                            }
                        )
                    )
                    await ws.close()
                    return


class _Session:
    """Per-connection state: audio clock, utterance boundaries, result sending."""

    def __init__(self, fake: FakeDeepgramServer, ws: ServerConnection, query: dict[str, str]):
        self.fake = fake
        self.ws = ws
        self.encoding = query.get("encoding", "linear16")
        self.rate = int(query.get("sample_rate", "16000"))
        self.interim = query.get("interim_results", "false") == "true"
        endpointing = query.get("endpointing", "10")
        self.endpointing = 0.01 if endpointing in ("true", "false") else int(endpointing) / 1000
        self.request_id = uuid.uuid4().hex
        self.t = 0.0
        self.start: float | None = None
        self.last_voice = 0.0
        self.last_interim = 0.0
        self.sent = 0

    def _next_text(self) -> str:
        return self.fake.transcripts[0] if self.fake.transcripts else "hello"

    async def audio(self, data: bytes) -> None:
        pcm = ulaw_to_pcm(data) if self.encoding == "mulaw" else data[: len(data) // 2 * 2]
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        duration = len(samples) / self.rate
        rms = float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0
        self.t += duration
        if rms >= self.fake.energy_threshold:
            if self.start is None:
                self.start = self.t - duration
                self.last_interim = self.t
            self.last_voice = self.t
            if self.interim and self.t - self.last_interim >= self.fake.interim_secs:
                self.last_interim = self.t
                words = self._next_text().split()
                count = max(1, int((self.t - self.start) / self.fake.secs_per_word))
                await self._send(" ".join(words[:count]), final=False, from_finalize=False)
        elif self.start is not None and self.t - self.last_voice >= self.endpointing:
            await self.finalize(from_finalize=False)

    async def finalize(self, *, from_finalize: bool) -> None:
        if self.start is None:
            return
        text = self.fake.transcripts.popleft() if self.fake.transcripts else "hello"
        await self._send(text, final=True, from_finalize=from_finalize)
        self.start = None

    async def _send(self, text: str, *, final: bool, from_finalize: bool) -> None:
        fake = self.fake
        if fake.drop_after_results is not None and self.sent >= fake.drop_after_results:
            fake.drop_after_results = None
            self.ws.transport.abort()
            return
        start = self.start or 0.0
        result = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.t - start, 3),
            "start": round(start, 3),
            "is_final": final,
            "speech_final": final and not from_finalize,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.98, "words": []}]},
            "metadata": {"request_id": self.request_id, "model_info": {"name": "fake"}},
        }
        fake.results.append(result)
        self.sent += 1
        await self.ws.send(json.dumps(result))
