"""Scale-out on loopback: several workers on one port, and two instances behind nginx.

The fleet story: any instance can validate any other's stream tokens (shared
CALLPIPE_STREAM_SECRET), so a webhook answered by one instance and a stream landing on another
both work; SIGTERM on one instance lets its call finish, turns its readiness false, and new calls
land on the other (nginx retries the 503 the draining instance answers).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from .harness import fake_call, free_port, run_bot_process
from .test_runner_process import NO_PROVIDER_CREDS, PROVIDER_ENV, TOKEN_RE, _signed_webhook

pytestmark = pytest.mark.integration

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)

NGINX_CONF = """
daemon off;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream bots {{
        server 127.0.0.1:{a} max_fails=1 fail_timeout=30s;
        server 127.0.0.1:{b} max_fails=1 fail_timeout=30s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://bots;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 3600s;
            proxy_next_upstream error timeout http_503 non_idempotent;
        }}
    }}
}}
"""


def start_nginx(ngx_dir: Path, port: int, a: int, b: int) -> subprocess.Popen[bytes]:
    """nginx in the foreground with a private prefix, balancing over the two instances."""
    ngx_dir.mkdir()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = NGINX_CONF.format(dir=ngx_dir, a=a, b=b, port=port, user=user)
    (ngx_dir / "nginx.conf").write_text(conf)
    return subprocess.Popen(
        [str(NGINX), "-p", str(ngx_dir), "-c", str(ngx_dir / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_nginx(nginx: subprocess.Popen[bytes]) -> None:
    nginx.send_signal(signal.SIGQUIT)
    try:
        nginx.wait(timeout=5)
    except subprocess.TimeoutExpired:
        nginx.kill()
        nginx.wait()


async def _call_via(base: str, ws_base: str, call_id: str, **kw: object):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(timeout=5) as http:
        resp = await http.request(url=f"{base}/", **_signed_webhook("twilio", call_id))
    assert resp.status_code == 200, resp.text
    token = TOKEN_RE.search(resp.text).group(1)  # type: ignore[union-attr]
    return await fake_call(f"{ws_base}/ws/{token}", "twilio", call_id=call_id, **kw)  # type: ignore[arg-type]


def _listeners(port: int) -> int:
    """Sockets in LISTEN state on 127.0.0.1:``port`` (Linux: one per SO_REUSEPORT worker)."""
    local = f"0100007F:{port:04X}"
    rows = [row.split() for row in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for row in rows if row[1] == local and row[3] == "0A")  # 0A: LISTEN


async def test_workers_share_tokens_and_drain(tmp_path: Path) -> None:
    args = ["-t", "twilio", "-x", "example.test", "--workers", "2"]
    env = {**NO_PROVIDER_CREDS, **PROVIDER_ENV["twilio"], "REPLY_SECS": "0.3"}
    with run_bot_process(tmp_path, args, env) as runner:
        ws_base = f"ws://127.0.0.1:{runner.port}"
        # /health answers once one worker listens; the calls must find both listening.
        deadline = asyncio.get_running_loop().time() + 30
        while _listeners(runner.port) < 2:
            assert asyncio.get_running_loop().time() < deadline, runner.output()
            await asyncio.sleep(0.05)
        calls = 12
        results = await asyncio.gather(
            *(_call_via(runner.base, ws_base, f"CA{i:02}") for i in range(calls))
        )
        assert [r.close_code for r in results] == [1000] * calls, runner.output()
        reports = runner.reports("bot")
        ids = sorted(r["call_data"]["call_id"] for r in reports)
        assert ids == [f"CA{i:02}" for i in range(calls)]
        # Each worker listens on its own SO_REUSEPORT socket, so a burst of calls lands on both
        # (all 12 on one worker: about once in 2000 runs). A shared socket gave whichever
        # worker woke first the whole burst.
        assert len({r["pid"] for r in reports}) == 2, runner.output()
        assert "a listener each, SO_REUSEPORT" in runner.output()
        runner.proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(runner.proc.wait, 20)
    assert code == 0, runner.output()
    assert "workers exited: [0, 0]" in runner.output()


@pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")
async def test_two_instances_behind_nginx(tmp_path: Path) -> None:
    secret = {"CALLPIPE_STREAM_SECRET": "fleet-shared-secret-0123456789"}
    env = {**NO_PROVIDER_CREDS, **PROVIDER_ENV["twilio"], **secret, "REPLY_SECS": "2.5"}
    args = ["-t", "twilio", "-x", "example.test", "--drain-timeout", "10"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        run_bot_process(tmp_path / "a", args, env) as a,
        run_bot_process(tmp_path / "b", args, {**env, "REPLY_SECS": "0.3"}) as b,
    ):
        port = free_port()
        nginx = start_nginx(tmp_path / "nginx", port, a.port, b.port)
        try:
            base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
            async with httpx.AsyncClient(timeout=5) as http:
                for _ in range(100):
                    try:
                        if (await http.get(f"{base}/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.05)
            # Calls until one lands on A (round robin: webhook and stream may hit different
            # instances, which the shared secret makes work).
            long_call: asyncio.Task | None = None  # type: ignore[type-arg]
            for i in range(6):
                task = asyncio.create_task(_call_via(base, ws_base, f"CA-warm{i}"))
                for _ in range(100):
                    if a.reports("bot") or task.done():
                        break
                    await asyncio.sleep(0.02)
                if a.reports("bot"):
                    long_call = task
                    break
                assert (await task).close_code == 1000
            assert long_call is not None, "no call reached instance A"
            started_on_b = len(b.reports("bot"))

            a.proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            async with httpx.AsyncClient(timeout=5) as http:
                ready = await http.get(f"{a.base}/ready")
            assert ready.status_code == 503 and ready.json()["reason"] == "draining"

            new_calls = await asyncio.gather(
                *(_call_via(base, ws_base, f"CA-new{i}") for i in range(4))
            )
            assert [c.close_code for c in new_calls] == [1000] * 4
            assert len(b.reports("bot")) == started_on_b + 4
            assert len(a.reports("bot")) == 1

            first = await long_call
            assert first.close_code == 1000
            assert first.heard_secs >= 2.4 and first.peak_of_last() > 0.7  # it finished
            code = await asyncio.to_thread(a.proc.wait, 15)
            assert code == 0, a.output()
            assert b.proc.poll() is None
        finally:
            stop_nginx(nginx)
