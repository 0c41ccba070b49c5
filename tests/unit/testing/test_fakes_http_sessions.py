"""Fakes whose sessions start over HTTP (Gladia, Ultravox) serve both their servers together,
over TLS alike once asked."""

from __future__ import annotations

import ssl

import httpx
import pytest

from callpipe.testing.fakes._server import CreatesSessionsOverHTTP
from callpipe.testing.fakes.gladia import FakeGladiaServer
from callpipe.testing.fakes.ultravox import FakeUltravoxServer


@pytest.mark.parametrize("make", [FakeGladiaServer, FakeUltravoxServer])
async def test_both_servers_serve_over_tls_and_stop_together(
    make: type[CreatesSessionsOverHTTP], certificate: tuple[str, str]
) -> None:
    fake = make()
    fake.serve_tls(*certificate)
    context = ssl.create_default_context(cafile=certificate[0])
    async with fake:
        assert fake.base_url.startswith("https://") and fake.url.startswith("wss://")
        assert fake.base_url.rsplit(":", 1)[1] != fake.url.rsplit(":", 1)[1]
        async with httpx.AsyncClient(verify=context) as client:
            answer = await client.get(fake.base_url + "/nowhere")
        assert answer.status_code == 404
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(verify=context) as client:
            await client.get(fake.base_url + "/nowhere")
