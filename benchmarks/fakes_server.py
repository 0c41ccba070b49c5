"""The provider fakes for the full-pipeline benchmark, in their own process.

Deepgram (live STT), OpenAI (chat), Cartesia and ElevenLabs (TTS) from
``callpipe.testing.fakes`` on 127.0.0.1, scripted with one multi-sentence reply per user turn
(``bots/_common.py``: long enough that callers barge in). Their CPU is not the bot's: ``run.py``
measures this process separately and reports it. Writes the URLs as JSON to ``--urls`` once
listening; runs until SIGINT/SIGTERM. ``--tls CERT KEY``: serve HTTPS and WSS, as the
providers do (the bots then trust CERT through ``SSL_CERT_FILE``).

    python benchmarks/fakes_server.py --urls /tmp/fakes.json [--tls cert.pem key.pem]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "bots"))

from _common import (
    CARTESIA_SECS_PER_WORD,
    ELEVENLABS_SECS_PER_CHAR,
    LLM_CHUNK_DELAY,
    REPLY,
)

from callpipe.testing.fakes import (
    FakeCartesiaServer,
    FakeDeepgramServer,
    FakeElevenLabsServer,
    FakeOpenAIServer,
)

#: Scripted replies kept queued (each chat request takes one).
_REPLIES_QUEUED = 200


async def keep_scripted(openai: FakeOpenAIServer, stop: asyncio.Event) -> None:
    """Top the reply script up, and drop the request logs the fakes keep (memory)."""
    while not stop.is_set():
        while len(openai.chat_replies) < _REPLIES_QUEUED:
            openai.add_chat_reply(REPLY, chunk_delay=LLM_CHUNK_DELAY)
        openai.chat_requests.clear()
        await asyncio.sleep(0.05)


async def main(urls_path: Path, tls: tuple[str, str] | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fakes = (
        FakeDeepgramServer(),
        FakeOpenAIServer(),
        FakeCartesiaServer(secs_per_word=CARTESIA_SECS_PER_WORD),
        FakeElevenLabsServer(secs_per_char=ELEVENLABS_SECS_PER_CHAR),
    )
    deepgram, openai, cartesia, elevenlabs = fakes
    for fake in fakes:
        if tls is not None:
            fake.serve_tls(*tls)
    async with deepgram, openai, cartesia, elevenlabs:
        refill = loop.create_task(keep_scripted(openai, stop))
        urls = {
            "deepgram": deepgram.url,
            "openai": openai.base_url,
            "cartesia": cartesia.url,
            "elevenlabs": elevenlabs.url,
        }
        tmp = urls_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(urls))
        tmp.replace(urls_path)
        while not stop.is_set():
            await asyncio.sleep(1.0)
            # The fakes log every message; keep memory flat over long runs.
            deepgram.results.clear()
            cartesia.messages.clear()
            elevenlabs.messages.clear()
        refill.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None)
    args = parser.parse_args()
    tls = (args.tls[0], args.tls[1]) if args.tls else None
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(args.urls, tls))
    else:
        uvloop.run(main(args.urls, tls))
