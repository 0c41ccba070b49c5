"""``callpipe fakes``: the provider fakes on loopback, and the environment that reaches them."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

EXPECTED = {
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "CALLPIPE_DEEPGRAM_URL",
    "CALLPIPE_DEEPGRAM_TTS_URL",
    "DEEPGRAM_API_KEY",
    "CALLPIPE_CARTESIA_URL",
    "CARTESIA_API_KEY",
    "CALLPIPE_ELEVENLABS_URL",
    "ELEVENLABS_API_KEY",
}


async def _read_env(proc: asyncio.subprocess.Process) -> dict[str, str]:
    assert proc.stdout is not None
    env: dict[str, str] = {}
    while set(env) != EXPECTED:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        assert line, "callpipe fakes exited before printing its environment"
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = value
    return env


# Cartesia's API (and its fake) require a version on every connection.
CARTESIA_VERSION = "cartesia_version=2025-04-16"


def _streamed_text(sse: str) -> str:
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


async def test_fakes_serve_what_the_printed_environment_points_at(tmp_path: Path) -> None:
    env_file = tmp_path / "fakes.env"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callpipe.cli",
        "fakes",
        "--reply",
        "We open at nine.",
        "--env-file",
        str(env_file),
        "--api-key",
        "k-123",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        env = await _read_env(proc)
        assert all("127.0.0.1" in env[n] for n in EXPECTED if n.endswith("URL"))
        key = env["OPENAI_API_KEY"]
        assert key == "k-123"

        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient() as http:
            chat = await http.post(
                f"{env['OPENAI_BASE_URL']}/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert chat.status_code == 200
            assert _streamed_text(chat.text) == "We open at nine."  # the scripted reply
            again = await http.post(
                f"{env['OPENAI_BASE_URL']}/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            assert _streamed_text(again.text) == "You said: hi"  # then it echoes

        sockets = [
            (f"{env['CALLPIPE_DEEPGRAM_URL']}/v1/listen", "Authorization", f"Token {key}"),
            (f"{env['CALLPIPE_DEEPGRAM_TTS_URL']}/v1/speak", "Authorization", f"Token {key}"),
            (f"{env['CALLPIPE_CARTESIA_URL']}/tts/websocket?{CARTESIA_VERSION}", "X-API-Key", key),
            (
                f"{env['CALLPIPE_ELEVENLABS_URL']}/v1/text-to-speech/v/multi-stream-input?output_format=pcm_8000",
                "xi-api-key",
                key,
            ),
        ]
        for url, header, value in sockets:
            async with connect(url, additional_headers={header: value}):
                pass
            with pytest.raises(InvalidStatus):
                async with connect(url, additional_headers={header: "wrong"}):
                    pass
        written = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert written == env
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_by_default_any_key_is_accepted() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callpipe.cli",
        "fakes",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        env = await _read_env(proc)
        assert env["OPENAI_API_KEY"] == "fake-key"  # printed for services that require one
        async with httpx.AsyncClient() as http:
            models = await http.get(f"{env['OPENAI_BASE_URL']}/models")  # no key at all
        assert models.status_code == 200
        async with connect(f"{env['CALLPIPE_CARTESIA_URL']}/tts/websocket?{CARTESIA_VERSION}"):
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0
