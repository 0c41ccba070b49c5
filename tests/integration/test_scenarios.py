"""``callpipe test`` and the pytest plugin, against the echo demo served on 127.0.0.1: words the
caller heard are checked, a failed expectation exits non-zero with a readable report, and JUnit
XML is written."""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the demo bot needs the silero extra")
pytest.importorskip("faster_whisper", reason="scenarios need callpipe[whisper-model]")

from callpipe.demo.bot import bot
from callpipe.runner.app import RunnerConfig, create_app
from callpipe.testing.server import running_server

pytestmark = pytest.mark.integration

PASSING = """
provider: twilio
scenarios:
  - name: greets and echoes on twilio
    steps:
      - expect_say: "hello"
      - wait_for_silence: 0.6
      - say: What time is it?
      - expect_say: {pattern: "ti(me|e)", within: 10}  # tiny.en has heard the echo as "tie me"
      - latency: 3.0
      - press: "#"
      - expect_hangup: {within: 10}
  - name: greets on telnyx
    provider: telnyx
    steps:
      - expect_say: "hello"
      - hang_up: true
"""

FAILING = """
scenarios:
  - name: expects the wrong words
    steps:
      - expect_say: {pattern: "bananas", within: 2.5}
"""


@asynccontextmanager
async def echo_demo() -> AsyncIterator[str]:
    cli_args = argparse.Namespace(greeting="Hello! This is the demo.", session_timeout=0, echo=True)
    app = create_app(bot, RunnerConfig(insecure=True, cli_args=cli_args))
    async with running_server(app) as addr:
        yield f"ws://{addr}/ws"


async def run(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_callpipe_test_passes_fails_readably_and_writes_junit(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(PASSING)
    bad.write_text(FAILING)
    junit = tmp_path / "junit.xml"
    async with echo_demo() as url:
        rc, out = await run(
            "-m", "callpipe.cli", "test", str(good), "--url", url, "--junit", str(junit)
        )
        assert rc == 0, out
        assert "2 passed, 0 failed" in out
        suite = ET.parse(junit).getroot()
        assert (suite.get("tests"), suite.get("failures")) == ("2", "0")

        rc, out = await run("-m", "callpipe.cli", "test", str(bad), "--url", url)
    assert rc == 1, out
    assert "FAIL  expects the wrong words" in out
    assert "expected: /bananas/" in out and "heard:" in out and "hello" in out.lower()
    assert out.rstrip().endswith("0 passed, 1 failed")


async def test_pytest_plugin_runs_callpipe_yaml_files(tmp_path: Path) -> None:
    (tmp_path / "calls.callpipe.yaml").write_text(FAILING)
    loaded = any(ep.name == "callpipe" for ep in importlib.metadata.entry_points(group="pytest11"))
    plugin = [] if loaded else ["-p", "callpipe_pytest_plugin"]
    async with echo_demo() as url:
        rc, out = await run(
            "-m", "pytest", *plugin, str(tmp_path), "--callpipe-url", url,
            "-p", "no:cacheprovider", "-q", "--rootdir", str(tmp_path),
        )  # fmt: skip
    assert rc == 1, out
    assert "expects the wrong words" in out and "expected: /bananas/" in out
    assert "1 failed" in out


async def test_callpipe_call_words_shows_what_each_side_said() -> None:
    async with echo_demo() as url:
        rc, out = await run(
            "-m", "callpipe.cli", "call", url, "--say", "What time is it?", "--dtmf", "#@7",
            "--words",
        )  # fmt: skip
    assert rc == 0, out
    words = out[out.index("words (as the caller heard them):") :]
    caller = [line for line in words.splitlines() if " caller " in line]
    bot = [line for line in words.splitlines() if " bot " in line]
    assert any("time" in line.lower() for line in caller), words
    assert any("hello" in line.lower() for line in bot), words
    assert any(" ms)" in line for line in bot), words  # the answer's latency
