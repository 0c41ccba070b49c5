"""``callpipe fakes``: the provider fakes on loopback, for running a bot with no keys.

Starts :class:`FakeDeepgramServer`, :class:`FakeDeepgramTTSServer`, :class:`FakeOpenAIServer`,
:class:`FakeCartesiaServer` and :class:`FakeElevenLabsServer` on 127.0.0.1 and prints the
environment that points the services at them (export it, or pass ``--env-file .env`` for the
runner to load). The LLM answers the scripted ``--reply`` texts in order, then echoes the
caller ("You said: …"); the speech-to-text fakes transcribe any speech as the next
``--transcript`` (default "hello"); the TTS fakes speak a tone whose length follows the text.
The fakes accept any API key unless ``--api-key`` is given (an OpenAI-compatible client with a
custom base URL may send none).

Environment printed (the services read these when no ``url=``/``base_url=`` is passed):
``OPENAI_BASE_URL`` (as the OpenAI SDK), ``CALLPIPE_DEEPGRAM_URL``,
``CALLPIPE_DEEPGRAM_TTS_URL`` (Deepgram's speech on its own port), ``CALLPIPE_CARTESIA_URL``,
``CALLPIPE_ELEVENLABS_URL``, and an API key variable for each provider.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from callpipe.testing.fakes.cartesia import FakeCartesiaServer
from callpipe.testing.fakes.deepgram import FakeDeepgramServer
from callpipe.testing.fakes.deepgram_tts import FakeDeepgramTTSServer
from callpipe.testing.fakes.elevenlabs import FakeElevenLabsServer
from callpipe.testing.fakes.openai import FakeOpenAIServer

DEFAULT_KEY = "fake-key"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="callpipe fakes",
        description=(
            "Serve local fakes of Deepgram, OpenAI, Cartesia and ElevenLabs on 127.0.0.1 and "
            "print the environment that points callpipe's services at them."
        ),
    )
    p.add_argument(
        "--reply",
        action="append",
        default=[],
        metavar="TEXT",
        help="the LLM's next answer; repeatable (then it echoes the caller)",
    )
    p.add_argument(
        "--transcript",
        action="append",
        default=[],
        metavar="TEXT",
        help='what the STT fakes hear; repeatable (default "hello")',
    )
    p.add_argument(
        "--api-key",
        default=None,
        help=f"make every fake require this key (default: accept any; {DEFAULT_KEY!r} is printed)",
    )
    p.add_argument("--env-file", metavar="PATH", help="also write the environment to PATH")
    return p


class Fakes:
    """The fakes, scripted from the command line."""

    def __init__(
        self, api_key: str | None, replies: Sequence[str], transcripts: Sequence[str]
    ) -> None:
        self.deepgram = FakeDeepgramServer(api_key=api_key)
        self.deepgram_tts = FakeDeepgramTTSServer(api_key=api_key)
        self.openai = FakeOpenAIServer(api_key=api_key)
        self.cartesia = FakeCartesiaServer(api_key=api_key)
        self.elevenlabs = FakeElevenLabsServer(api_key=api_key)
        self.api_key = api_key or DEFAULT_KEY
        for text in replies:
            self.openai.add_chat_reply(text)
        self.deepgram.transcripts.extend(transcripts)
        self.openai.transcripts.extend(transcripts)

    async def start(self) -> None:
        for fake in (self.deepgram, self.deepgram_tts, self.openai, self.cartesia, self.elevenlabs):
            await fake.start()

    async def stop(self) -> None:
        for fake in (self.deepgram, self.deepgram_tts, self.openai, self.cartesia, self.elevenlabs):
            with contextlib.suppress(Exception):
                await fake.stop()

    def environment(self) -> dict[str, str]:
        key = self.api_key
        return {
            "OPENAI_BASE_URL": self.openai.base_url,
            "OPENAI_API_KEY": key,
            "CALLPIPE_DEEPGRAM_URL": self.deepgram.url,
            "CALLPIPE_DEEPGRAM_TTS_URL": self.deepgram_tts.url,
            "DEEPGRAM_API_KEY": key,
            "CALLPIPE_CARTESIA_URL": self.cartesia.url,
            "CARTESIA_API_KEY": key,
            "CALLPIPE_ELEVENLABS_URL": self.elevenlabs.url,
            "ELEVENLABS_API_KEY": key,
        }


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    path.write_text("".join(f"{name}={value}\n" for name, value in env.items()), encoding="utf-8")


async def serve(args: argparse.Namespace) -> None:
    fakes = Fakes(args.api_key, args.reply, args.transcript)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fakes.start()
    try:
        env = fakes.environment()
        lines = [f"export {name}={value}" for name, value in env.items()]
        print("\n".join(lines), flush=True)
        if args.env_file:
            await asyncio.to_thread(_write_env_file, Path(args.env_file), env)
        print(
            "callpipe fakes: serving on 127.0.0.1; export the lines above (or `eval` them) in "
            "the shell that starts your bot. Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
        await stop.wait()
    finally:
        await fakes.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
