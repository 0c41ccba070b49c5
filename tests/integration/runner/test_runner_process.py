"""`python bot.py -t <provider> -x example.test --port N` as a real subprocess, per provider.

Each test drives the runner as the provider would: a signed answer webhook (signatures computed
with the providers' official SDKs; PyNaCl for Telnyx, whose SDK only verifies), the stream URL
taken from the returned document, then a simulated media stream that must reach ``bot()``.
"""

from __future__ import annotations

import asyncio
import base64
import re
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from callpipe.testing.server import running_server

from .harness import fake_call, run_bot_process

pytestmark = pytest.mark.integration

NO_PROVIDER_CREDS = {
    name: ""
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_API_KEY",
        "TWILIO_API_SECRET",
        "TELNYX_API_KEY",
        "TELNYX_PUBLIC_KEY",
        "PLIVO_AUTH_ID",
        "PLIVO_AUTH_TOKEN",
        "CALLPIPE_STREAM_SECRET",
    )
}
FROM, TO = "+15551112222", "+15553334444"
TOKEN_RE = re.compile(r"wss://example\.test/ws/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")

EXPECTED = {
    "twilio": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Connect>\n'
        '    <Stream url="wss://example.test/ws/{token}">\n'
        '      <Parameter name="from_number" value="+15551112222"/>\n'
        '      <Parameter name="to_number" value="+15553334444"/>\n'
        "    </Stream>\n  </Connect>\n</Response>"
    ),
    "telnyx": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n  <Connect>\n'
        '    <Stream url="wss://example.test/ws/{token}" bidirectionalMode="rtp"></Stream>\n'
        "  </Connect>\n</Response>"
    ),
    "plivo": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n'
        '  <Stream bidirectional="true" keepCallAlive="true" '
        'contentType="audio/x-mulaw;rate=8000" extraHeaders="from=15551112222,to=15553334444">'
        "wss://example.test/ws/{token}</Stream>\n</Response>"
    ),
}


def _telnyx_keys() -> tuple[Any, str]:
    from nacl.signing import SigningKey

    key = SigningKey.generate()
    return key, base64.b64encode(bytes(key.verify_key)).decode()


TELNYX_KEY, TELNYX_PUBLIC = _telnyx_keys()


def _signed_webhook(provider: str, call_id: str, *, tamper: bool = False) -> dict[str, Any]:
    """httpx request kwargs for the provider's answer webhook, signed like the provider."""
    url = "https://example.test/"
    if provider == "twilio":
        from twilio.request_validator import RequestValidator

        form = {"CallSid": call_id, "AccountSid": "AC1", "From": FROM, "To": TO}
        sig = RequestValidator("authtok").compute_signature(url, form)
        headers = {"X-Twilio-Signature": sig}
    elif provider == "plivo":
        from plivo.utils.signature_v3 import construct_post_url, get_signature_v3

        form = {"CallUUID": call_id, "From": FROM.lstrip("+"), "To": TO.lstrip("+")}
        nonce = "98765432109876543210"
        base = construct_post_url(url, dict(form)).decode()
        sig = get_signature_v3(b"plivotok", base, nonce).decode()
        headers = {"X-Plivo-Signature-V3": sig, "X-Plivo-Signature-V3-Nonce": nonce}
    elif provider == "telnyx":
        form = {"CallSid": call_id, "From": FROM, "To": TO}
        body = urllib.parse.urlencode(form).encode()
        ts = str(int(time.time()))
        sig = TELNYX_KEY.sign(ts.encode() + b"|" + body).signature
        headers = {
            "telnyx-signature-ed25519": base64.b64encode(sig).decode(),
            "telnyx-timestamp": ts,
            "content-type": "application/x-www-form-urlencoded",
        }
        if tamper:
            body = body.replace(b"15551112222", b"19990000000")
        return {"method": "POST", "content": body, "headers": headers}
    else:
        raise ValueError(provider)
    if tamper:
        form = {**form, "From": "+19990000000"}
    return {"method": "POST", "data": form, "headers": headers}


PROVIDER_ENV = {
    "twilio": {"TWILIO_AUTH_TOKEN": "authtok"},
    "plivo": {"PLIVO_AUTH_TOKEN": "plivotok"},
    "telnyx": {"TELNYX_PUBLIC_KEY": TELNYX_PUBLIC},
}


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo"])
async def test_signed_webhook_document_and_call(tmp_path: Path, provider: str) -> None:
    env = {**NO_PROVIDER_CREDS, **PROVIDER_ENV[provider]}
    args = ["-t", provider, "-x", "example.test", "--extra-flag", "seen"]
    with run_bot_process(tmp_path, args, env) as runner:
        async with httpx.AsyncClient(base_url=runner.base, timeout=5) as http:
            bad = await http.request(url="/", **_signed_webhook(provider, "CA7", tamper=True))
            assert bad.status_code == 403
            unsigned = await http.post("/", data={"CallSid": "CA7", "CallUUID": "CA7"})
            assert unsigned.status_code == 403
            resp = await http.request(url="/", **_signed_webhook(provider, "CA7"))
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/xml")
        match = TOKEN_RE.search(resp.text)
        assert match, resp.text
        token = match.group(1)
        assert resp.text == EXPECTED[provider].format(token=token)
        import xml.etree.ElementTree as ET

        ET.fromstring(resp.text)  # well-formed

        ws_base = f"ws://127.0.0.1:{runner.port}"
        no_token = await fake_call(f"{ws_base}/ws", provider, call_id="CA7", max_secs=3)
        assert no_token.close_code == 4003
        call = await fake_call(f"{ws_base}/ws/{token}", provider, call_id="CA7", max_secs=8)
        assert call.close_code == 1000, runner.output()
        assert call.peak_of_last() > 0.7  # heard the end of the reply
        reused = await fake_call(f"{ws_base}/ws/{token}", provider, call_id="CA7", max_secs=3)
        assert reused.http_status == 403  # used: refused before the upgrade

        reports = runner.reports("bot")
        assert len(reports) == 1, runner.output()
        report = reports[0]
        assert report["transport_type"] == report["runner_transport_type"] == provider
        assert report["idempotent"] is True
        assert report["extra_flag"] == "seen"
        data = report["call_data"]
        assert data["call_id"] == "CA7" and data["stream_id"] == "MZ1"
        assert data["from"] in (FROM, FROM.lstrip("+"))


async def test_exotel_dynamic_url_and_call(tmp_path: Path) -> None:
    # Exotel signs nothing callpipe can verify: with -x it runs only with --insecure.
    args = ["-t", "exotel", "-x", "example.test", "--insecure"]
    with run_bot_process(tmp_path, args, NO_PROVIDER_CREDS) as r:
        async with httpx.AsyncClient(base_url=r.base, timeout=5) as http:
            resp = await http.get("/", params={"CallSid": "ex1", "CallFrom": FROM, "CallTo": TO})
        assert resp.status_code == 200
        doc = resp.json()
        assert doc == {
            "url": "wss://example.test/ws",
            "websocket_url": "wss://example.test/ws",
            "note": "Configure this endpoint (or the WebSocket URL) in your Exotel Voicebot applet",
        }
        call = await fake_call(f"ws://127.0.0.1:{r.port}/ws", "exotel", call_id="ex1")
        assert call.close_code == 1000, r.output()
        assert call.peak_of_last() > 0.7
        data = r.reports("bot")[0]["call_data"]
        assert r.reports("bot")[0]["transport_type"] == "exotel"
        assert data["account_sid"] == "exo_acc" and data["custom_parameters"] == {"key1": "value1"}


async def test_max_calls_and_insecure_mode(tmp_path: Path) -> None:
    args = ["-t", "twilio", "-x", "example.test", "--insecure", "--max-calls", "1"]
    env = {**NO_PROVIDER_CREDS, "REPLY_SECS": "2.0"}
    with run_bot_process(tmp_path, args, env) as runner:
        assert "--insecure" in runner.output()
        url = f"ws://127.0.0.1:{runner.port}/ws"
        first = asyncio.create_task(fake_call(url, "twilio", call_id="CA1"))
        async with httpx.AsyncClient(base_url=runner.base, timeout=5) as http:
            for _ in range(100):
                if (await http.get("/ready")).status_code == 503:
                    break
                await asyncio.sleep(0.05)
            ready = await http.get("/ready")
            assert ready.status_code == 503 and ready.json()["reason"] == "at capacity"
            busy = await http.post("/", data={"CallSid": "CA2", "From": FROM, "To": TO})
            assert "<Reject" in busy.text and 'reason="busy"' in busy.text
            second = await fake_call(url, "twilio", call_id="CA2", max_secs=3)
            assert second.http_status == 503
            assert (await first).close_code == 1000
            # The slot frees when the call's handler has finished its teardown, which can be a
            # moment after the caller sees the close frame.
            for _ in range(100):
                if (await http.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.02)
            assert (await http.get("/ready")).status_code == 200
            metrics = (await http.get("/metrics")).text
        assert 'callpipe_runner_calls_refused_total{reason="at capacity",stage="stream"} 1' in (
            metrics
        )
        assert 'callpipe_runner_calls_started_total{provider="twilio"} 1' in metrics


def _fake_twilio_api() -> tuple[FastAPI, list[dict[str, Any]]]:
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/2010-04-01/Accounts/{account}/Calls/{call}.json")
    async def update(account: str, call: str, request: Request) -> JSONResponse:
        seen.append(
            {
                "call": call,
                "form": dict(urllib.parse.parse_qsl((await request.body()).decode())),
                "t": time.monotonic(),
            }
        )
        return JSONResponse({"sid": call, "status": "completed"})

    return app, seen


async def test_sigterm_drains_active_call(tmp_path: Path) -> None:
    api, hangups = _fake_twilio_api()
    async with running_server(api) as api_host:
        env = {
            **NO_PROVIDER_CREDS,
            **PROVIDER_ENV["twilio"],
            "REPLY_SECS": "2.5",
            "END_AFTER_REPLY": "0",
            "CALLPIPE_TEST_API": f"http://{api_host}",
        }
        args = ["-t", "twilio", "-x", "example.test", "--drain-timeout", "0.5"]
        with run_bot_process(tmp_path, args, env) as runner:
            async with httpx.AsyncClient(base_url=runner.base, timeout=5) as http:
                doc = (await http.request(url="/", **_signed_webhook("twilio", "CA1"))).text
                token = TOKEN_RE.search(doc).group(1)  # type: ignore[union-attr]
                url = f"ws://127.0.0.1:{runner.port}/ws/{token}"
                call = asyncio.create_task(fake_call(url, "twilio", call_id="CA1"))
                for _ in range(200):
                    if runner.reports("bot"):
                        break
                    await asyncio.sleep(0.02)
                await asyncio.sleep(0.3)
                runner.proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                ready = await http.get("/ready")
                assert ready.status_code == 503 and ready.json()["reason"] == "draining"
                busy = await http.request(url="/", **_signed_webhook("twilio", "CA2"))
                assert busy.status_code == 503 and "<Reject" in busy.text
                late = await fake_call(url.replace(token, "x.y"), "twilio", call_id="CA3")
                assert late.http_status == 503
            result = await call
            closed_at = time.monotonic()
            code = await asyncio.to_thread(runner.proc.wait, 15)
        assert code == 0, runner.output()
        assert result.close_code == 1000
        assert result.heard_secs >= 2.4  # the whole reply was played, not cut at the drain
        assert result.peak_of_last() > 0.7  # including its end
        assert [h["form"] for h in hangups] == [{"Status": "completed"}]
        assert hangups[0]["t"] <= closed_at
        events = [r["event"] for r in runner.reports()]
        assert events == ["bot", "drain_requested", "bot_done"]
        assert "draining" in runner.output()


async def test_callpipe_run_console_command(tmp_path: Path) -> None:
    args = ["-t", "plivo", "-x", "example.test"]
    env = {**NO_PROVIDER_CREDS, **PROVIDER_ENV["plivo"]}
    with run_bot_process(tmp_path, args, env, via_cli=True) as runner:
        async with httpx.AsyncClient(base_url=runner.base, timeout=5) as http:
            resp = await http.request(url="/", **_signed_webhook("plivo", "u1"))
        token = TOKEN_RE.search(resp.text).group(1)  # type: ignore[union-attr]
        call = await fake_call(f"ws://127.0.0.1:{runner.port}/ws/{token}", "plivo", call_id="u1")
        assert call.close_code == 1000, runner.output()
        report = runner.reports("bot")[0]
        assert report["transport_type"] == "plivo"
        assert report["call_data"]["from"] == "15551112222"
