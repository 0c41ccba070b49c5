"""The fakes over TLS (``serve_tls``), as the providers serve: the services reach them through
``https://`` and ``wss://`` with certificate checks on, trusting the test's certificate the way
a deployment trusts a private CA (``SSL_CERT_FILE``)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from callpipe.frames.frames import LLMMessagesFrame, LLMTextFrame, TTSAudioRawFrame, TTSSpeakFrame
from callpipe.services.cartesia.tts import CartesiaTTSService
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes import FakeCartesiaServer, FakeOpenAIServer
from callpipe.utils import tls


@pytest.fixture
def trusting(certificate: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's TLS contexts made anew, trusting the test certificate only."""
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])
    tls.shared_ssl_context.cache_clear()
    tls.shared_websocket_ssl_context.cache_clear()
    yield
    monkeypatch.delenv("SSL_CERT_FILE")
    tls.shared_ssl_context.cache_clear()
    tls.shared_websocket_ssl_context.cache_clear()


async def test_services_reach_the_fakes_over_verified_tls(
    certificate: tuple[str, str], trusting: None
) -> None:
    openai, cartesia = FakeOpenAIServer(), FakeCartesiaServer(secs_per_word=0.01)
    for fake in (openai, cartesia):
        fake.serve_tls(*certificate)
    async with openai, cartesia:
        assert openai.base_url.startswith("https://") and cartesia.url.startswith("wss://")
        openai.add_chat_reply("Over TLS.")
        llm = OpenAILLMService(api_key="test-key", base_url=openai.base_url, model="m")
        down, _ = await run_test(llm, [LLMMessagesFrame([{"role": "user", "content": "hi"}])])
        assert "".join(f.text for f in down if isinstance(f, LLMTextFrame)) == "Over TLS."

        tts = CartesiaTTSService(api_key="test-key", voice_id="v", url=cartesia.url)
        down, _ = await run_test(tts, [TTSSpeakFrame("Hello there.")])
        assert any(isinstance(f, TTSAudioRawFrame) for f in down)
        assert cartesia.auth_used  # the handshake went through, over TLS


async def test_a_client_that_does_not_trust_the_certificate_is_refused(
    certificate: tuple[str, str],
) -> None:
    fake = FakeOpenAIServer()
    fake.serve_tls(*certificate)
    async with fake:
        untrusting = ssl.create_default_context(cafile=None, capath="/nonexistent")
        async with httpx.AsyncClient(verify=untrusting) as client:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.get(f"{fake.base_url}/models")
        trusting = ssl.create_default_context(cafile=certificate[0])
        async with httpx.AsyncClient(verify=trusting) as client:
            response = await client.get(
                f"{fake.base_url}/models", headers={"Authorization": "Bearer test-key"}
            )
        assert response.status_code == 200
