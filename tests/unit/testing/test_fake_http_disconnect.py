"""A client that vanishes mid-request is normal traffic for the HTTP fakes: no traceback."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import httpx
import pytest

from callpipe.testing.fakes import FakeGeminiServer, FakeOpenAIServer

PATHS = {  # (a request with a body, a request without one)
    FakeOpenAIServer: ("/v1/chat/completions", "/v1/models"),
    FakeGeminiServer: ("/v1beta/models/gemini-2.0-flash:streamGenerateContent", "/v1beta/models"),
}


@pytest.mark.parametrize("fake_type", [FakeOpenAIServer, FakeGeminiServer])
async def test_a_client_gone_before_its_body_arrived_is_not_an_error(
    fake_type: type[FakeOpenAIServer] | type[FakeGeminiServer],
) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    async with fake_type() as fake:
        # uvicorn configures its loggers not to propagate: listen where it logs app errors.
        logging.getLogger("uvicorn.error").addHandler(handler)
        address = urlsplit(fake.base_url)
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(
            f"POST {PATHS[fake_type][0]} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Authorization: Bearer test-key\r\nx-goog-api-key: test-key\r\n"
            'Content-Length: 1000\r\n\r\n{"model":'.encode()
        )
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()  # hung up with 990 bytes of the body still to come
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as client:  # and it still serves the next request
            answer = await client.get(
                f"http://127.0.0.1:{address.port}{PATHS[fake_type][1]}",
                headers={"Authorization": "Bearer test-key", "x-goog-api-key": "test-key"},
            )
        assert answer.status_code == 200
        del reader
        logging.getLogger("uvicorn.error").removeHandler(handler)
    errors = [r for r in records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
