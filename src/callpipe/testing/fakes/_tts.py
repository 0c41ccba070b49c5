"""What the text-to-speech fakes share: their speech in chunks (:func:`speech_chunks`), sent at
a pace (:func:`paced`), and for the HTTP ones one ``POST`` endpoint, the key it accepts, the
length of speech per word, what it was sent and the statuses scripted for it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any

from starlette.routing import Route

from callpipe.testing.fakes._server import LocalASGIServer, ServedHTTPFake, fake_app
from callpipe.testing.fakes.openai import tone_pcm


def speech_chunks(secs: float, rate: int, chunk_secs: float) -> list[bytes]:
    """``secs`` of the fakes' stand-in for speech (:func:`tone_pcm`) at ``rate``, as 16-bit PCM
    chunks of ``chunk_secs`` each (the last one shorter; at least one sample each)."""
    pcm = tone_pcm(secs, rate)
    step = max(2, int(chunk_secs * rate) * 2)
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


async def paced(chunks: Iterable[bytes], delay: float) -> AsyncGenerator[bytes, None]:
    """``chunks`` one by one, each followed by ``delay`` seconds (a provider's generation
    time): the body of a streamed speech answer."""
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(delay)


class SpeechHTTPFake(ServedHTTPFake):
    """A text-to-speech fake answering ``POST path`` with ``endpoint``; ``api_key`` None
    accepts any key."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Any], Awaitable[Any]],
        *,
        api_key: str | None,
        secs_per_word: float,
    ) -> None:
        self.api_key = api_key
        self.secs_per_word = secs_per_word
        self.requests: list[dict[str, Any]] = []
        """Each authorized request's JSON body."""
        self.headers: list[dict[str, str]] = []
        """Each request's headers (names in lower case)."""
        self.statuses: deque[int] = deque()
        """HTTP statuses for the next valid requests (200 = speak)."""
        self._server = LocalASGIServer(fake_app([Route(path, endpoint, methods=["POST"])]))

    def _next_status(self) -> int:
        """The scripted status of the request being answered (200 when none is left)."""
        return self.statuses.popleft() if self.statuses else 200
