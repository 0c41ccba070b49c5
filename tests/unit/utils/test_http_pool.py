"""One HTTP connection pool per loop: the calls' clients hand each other warm connections.

Checked against a plain HTTP/1.1 server on loopback that counts its TCP connections, records
each request's headers, and can close a kept-alive connection instead of answering (what a
server whose idle timeout just ran out does to a request written at that moment).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from callpipe.frames.frames import ErrorFrame, LLMMessagesFrame, LLMTextFrame
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.utils import http_pool
from callpipe.utils.http_pool import KEEPALIVE_EXPIRY_SECS, pooled_transport


def _chat_events(text: str) -> list[bytes]:
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return [f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"]


@dataclass
class _Server:
    connections: int = 0
    requests: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    drop_next_reused: bool = False
    """Close the next request that arrives on an already used connection, unanswered."""
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = self.connections
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (line.split(":", 1) for line in lines[1:] if line)
                }
                await reader.readexactly(int(headers.get("content-length", "0")))
                if served and self.drop_next_reused:
                    self.drop_next_reused = False
                    return  # closed in the finally, unanswered
                served += 1
                self.requests.append((conn, f"{method} {path}", headers))
                if path.endswith("/chat/completions"):
                    # As OpenAI streams: chunked, the [DONE] event, then the last (empty) chunk.
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                        b"transfer-encoding: chunked\r\n\r\n"
                    )
                    for event in _chat_events("Hi."):
                        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                        await writer.drain()
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                        b"content-length: 2\r\n\r\n{}"
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[_Server]:
    state = _Server()
    srv = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield state


async def test_clients_of_different_calls_share_connections_not_headers(server: _Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    first = httpx.AsyncClient(base_url=base, headers={"x-key": "a"}, transport=pooled_transport())
    second = httpx.AsyncClient(base_url=base, headers={"x-key": "b"}, transport=pooled_transport())
    for client in (first, second, first):
        assert (await client.get("/v1/models")).status_code == 200
    await first.aclose()
    assert (await second.get("/v1/models")).status_code == 200  # the pool outlives one client
    await second.aclose()

    assert server.connections == 1
    assert [r[2]["x-key"] for r in server.requests] == ["a", "b", "a", "b"]
    assert asyncio.get_running_loop() not in http_pool._pools  # closed with its last client
    handle = pooled_transport()
    await handle.aclose()
    with pytest.raises(httpx.TransportError, match="closed"):
        await handle.handle_async_request(httpx.Request("GET", f"{base}/v1/models"))

    third = httpx.AsyncClient(base_url=base, transport=pooled_transport())
    await third.get("/v1/models")
    await third.aclose()
    assert server.connections == 2  # a new pool after the last one closed: a new connection


async def test_the_pool_keeps_connections_less_long_than_uvicorn_servers() -> None:
    # uvicorn closes an idle connection after 5 s (``timeout_keep_alive``), vLLM's server too.
    assert KEEPALIVE_EXPIRY_SECS < 5.0
    transport = pooled_transport()
    assert isinstance(transport, http_pool.PooledTransport)
    await transport.aclose()


def test_outside_a_running_loop_a_client_gets_a_transport_of_its_own() -> None:
    assert isinstance(pooled_transport(), httpx.AsyncHTTPTransport)


async def test_a_turn_whose_warm_connection_was_closed_is_retried_at_once(
    server: _Server, caplog: pytest.LogCaptureFixture
) -> None:
    base = f"http://127.0.0.1:{server.port}/v1"
    messages = [LLMMessagesFrame([{"role": "user", "content": "hello"}])]
    keep = httpx.AsyncClient(transport=pooled_transport())  # another call, holding the pool open
    try:
        one = OpenAILLMService(api_key="k1", base_url=base, model="m", warmup=False)
        down, _ = await run_test(one, messages)
        assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == "Hi."
        server.drop_next_reused = True
        two = OpenAILLMService(api_key="k2", base_url=base, model="m", warmup=False)
        with caplog.at_level(logging.INFO, logger="callpipe"):
            down, up = await run_test(two, messages)
    finally:
        await keep.aclose()

    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == "Hi."
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # The second call's requests went out on the first call's connection; the server closed
    # it, and the retry took a new one.
    assert server.connections == 2
    assert [(conn, headers["authorization"]) for conn, _, headers in server.requests] == [
        (1, "Bearer k1"),
        (2, "Bearer k2"),
    ]
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO]
    assert "retrying now" in retries[0].getMessage()  # the branch that does not wait 0.2 s


async def test_a_call_s_turns_reuse_one_connection(server: _Server) -> None:
    base = f"http://127.0.0.1:{server.port}/v1"
    llm = OpenAILLMService(api_key="k", base_url=base, model="m", warmup=False)
    frames = [LLMMessagesFrame([{"role": "user", "content": f"turn {n}"}]) for n in range(3)]
    down, up = await run_test(llm, frames)
    assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == "Hi." * 3
    assert not [f for f in up if isinstance(f, ErrorFrame)]
    # The stream is read to its end after [DONE], so the connection went back to the pool.
    assert [conn for conn, _, _ in server.requests] == [1, 1, 1]
