"""Issue 14, medium 5 and 7, as a user runs it: no open public server, no silent downgrade.

``python bot.py -x HOST`` without a webhook secret refuses to start; an abbreviated flag is an
error; ``callpipe demo -xHOST`` with ``TWILIO_AUTH_TOKEN`` set runs the *secure* public demo
(it used to be parsed as local mode and run wide open).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .harness import REPLY_BOT, ROOT, run_bot_process
from .test_runner_process import NO_PROVIDER_CREDS

pytestmark = pytest.mark.integration


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        **NO_PROVIDER_CREDS,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(REPLY_BOT.parent),
    )


@pytest.mark.parametrize(
    "flags",
    [
        ["-x", "example.test"],
        ["-t", "twilio", "-x", "example.test"],
        ["-t", "exotel", "-x", "example.test"],
        ["-t", "websocket", "-x", "example.test"],
    ],
)
def test_public_runner_without_a_webhook_secret_does_not_start(flags: list[str]) -> None:
    done = _run([str(REPLY_BOT), *flags, "--port", "1"])
    assert done.returncode == 2
    assert "not starting" in done.stderr and "--insecure" in done.stderr


@pytest.mark.parametrize("flags", [["--prox", "example.test"], ["--insec"]])
def test_abbreviated_flags_are_errors(flags: list[str]) -> None:
    done = _run([str(REPLY_BOT), *flags, "--port", "1"])
    assert done.returncode == 2 and "unrecognized arguments" in done.stderr
    cli = _run(["-m", "callpipe.cli", "run", str(REPLY_BOT), *flags, "--port", "1"])
    assert cli.returncode == 2 and "unrecognized arguments" in cli.stderr


def test_demo_with_attached_proxy_flag_is_the_secure_public_demo(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the demo bot needs the silero extra")
    pytest.importorskip("espeakng_loader", reason="the demo bot needs the espeak extra")
    env = {"TWILIO_AUTH_TOKEN": "demo-auth-token"}
    demo = [sys.executable, "-m", "callpipe.cli", "demo"]
    with run_bot_process(tmp_path, ["-xexample.test"], env, command=demo) as runner:
        with httpx.Client(base_url=runner.base, timeout=5) as http:
            assert http.get("/phone").status_code == 404  # the softphone is local-mode only
            assert http.post("/", data={"CallSid": "CA1"}).status_code == 403  # unsigned
            assert http.get("/openapi.json").status_code == 404
        assert "--insecure" not in runner.output()
    refused = _run(["-m", "callpipe.cli", "demo", "--prox", "example.test", "--port", "1"])
    assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr
