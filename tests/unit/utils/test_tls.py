"""One TLS context per process: the HTTP and WebSocket clients made per call share it, so no
call builds one (≈ 20 ms of CPU on the event loop each, which every other call waits out)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from callpipe.errors import CallControlError
from callpipe.providers import registry  # noqa: F401  (registers the dialers by name)
from callpipe.runner.record_webhook import RecordWebhook
from callpipe.services import websocket_service
from callpipe.services.websocket_service import ProviderWebsocket
from callpipe.telephony.base import HttpCallControl
from callpipe.telephony.dial import ProviderAccount, dial
from callpipe.utils import tls
from callpipe.utils.tls import shared_ssl_context, shared_websocket_ssl_context


def test_each_context_is_made_once_and_checks_certificates() -> None:
    for make in (shared_ssl_context, shared_websocket_ssl_context):
        context = make()
        assert make() is context
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert shared_ssl_context() is not shared_websocket_ssl_context()


class _Control(HttpCallControl):
    provider = "test"

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "POST", "/end", {}

    async def transfer(self, target: str) -> None:
        pass

    async def send_dtmf(self, digits: str) -> bool:
        return False


async def test_per_call_http_clients_build_no_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    shared_ssl_context()  # the process's one, made before the calls
    built: list[object] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", counting)
    for _ in range(3):  # three calls hang up
        control = _Control(base_url="https://api.example.test", call_id="CA1")
        client = control._get_client()
        assert isinstance(client, httpx.AsyncClient)
        await control.aclose()
    webhook = RecordWebhook("https://127.0.0.1:1/hook", attempts=1, timeout_secs=0.5)
    await webhook._deliver({"record_id": "r1"})  # nothing listens there; only the TLS setup counts
    account = ProviderAccount.from_env(
        "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "tok"}
    )
    for _ in range(2):  # two outbound dials, over a real (TLS) httpx transport
        with pytest.raises(CallControlError, match="cannot connect"):
            await dial(
                "+15551234567",
                "+15557654321",
                provider="twilio",
                answer_url="https://bot.example/",
                account=account,
                base_url="https://127.0.0.1:1",
            )
    assert built == []


async def test_wss_provider_sockets_share_one_tls_context(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    async def fake_connect(url: str, **kwargs: Any) -> Any:
        seen.append(kwargs.get("ssl"))
        raise OSError("not connecting in this test")

    monkeypatch.setattr(websocket_service, "connect", fake_connect)

    async def ignore(_: Any) -> None:
        pass

    for url in ("wss://api.example.test/v1/listen", "ws://127.0.0.1:1/v1/listen"):
        socket = ProviderWebsocket(owner="test", url=url, on_message=ignore)
        with pytest.raises(OSError):
            await socket._open()
    assert seen == [tls.shared_websocket_ssl_context(), None]
