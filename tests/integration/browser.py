"""Headless Chromium for the browser tests (softphone, call inspector): one launcher.

:func:`devtools_page` starts Chromium on a URL and yields the DevTools WebSocket URL of the page
whose address contains ``page_path``; each test drives the page with its own small client.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextlib.asynccontextmanager
async def devtools_page(
    url: str,
    tmp: Path,
    *,
    page_path: str,
    window: str | None = None,
    extra: Sequence[str] = (),
) -> AsyncIterator[str]:
    """Start headless Chromium on ``url`` (plus ``extra`` flags); yield the page's DevTools
    WebSocket URL. The browser is killed on exit."""
    assert CHROMIUM is not None
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        *([f"--window-size={window}"] if window else []),
        f"--user-data-dir={tmp / 'profile'}",
        "--autoplay-policy=no-user-gesture-required",
        "--remote-debugging-port=0",
        *extra,
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        devtools = ""
        async with asyncio.timeout(30):
            while not devtools:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise RuntimeError("Chromium exited before DevTools started")
                if "DevTools listening on " in line:
                    devtools = line.split("DevTools listening on ", 1)[1].strip()
        port = devtools.split(":")[2].split("/")[0]
        page_ws = ""
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
                pages = [t for t in targets if t.get("type") == "page" and page_path in t["url"]]
                if pages:
                    page_ws = pages[0]["webSocketDebuggerUrl"]
                    break
                await asyncio.sleep(0.1)
        assert page_ws, f"the page {page_path} did not open"
        yield page_ws
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
