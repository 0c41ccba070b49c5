"""Exotel: HTTP Basic credentials (``EXOTEL_WEBHOOK_AUTH``) on the applet URL and callbacks.

Exotel signs nothing; it documents Basic auth written into the Voicebot applet's URL. With the
variable set, the runner answers Exotel's endpoint request without ``--insecure`` only when the
credentials match, and the dialer writes them into the ``StatusCallback`` URL.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.testclient import TestClient

from callpipe.providers import registry
from callpipe.providers.exotel.signature import basic_credentials
from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.dials import DialBook
from callpipe.telephony.dial.types import CallHandle, DialRequest, ProviderAccount

AUTH = "exotel-bot:s3cret/with:colon"
HOST = "bot.example"


def basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


async def _bot(args: Any) -> None:
    return None


def client() -> TestClient:
    credentials = Credentials(extra={"EXOTEL_WEBHOOK_AUTH": AUTH})
    app = create_app(_bot, RunnerConfig(proxy=HOST), credentials=credentials, secret=b"k" * 32)
    return TestClient(app)


def test_basic_credentials_parsing_never_raises() -> None:
    assert basic_credentials(basic(AUTH)["Authorization"]) == AUTH
    for header in (
        None,
        "",
        "Basic",
        "Basic !!!",
        "Bearer abc",
        "Basic " + "A" * 4000,
        "Basic /w==",
    ):
        assert basic_credentials(header) is None


def test_the_applet_endpoint_needs_the_credentials() -> None:
    c = client()
    params = {"CallSid": "e1", "CallFrom": "09999", "CallTo": "08888"}
    answered = c.get("/", params=params, headers=basic(AUTH))
    assert answered.status_code == 200, answered.text
    assert answered.json()["url"].startswith(f"wss://{HOST}/ws/")  # a one-time token
    assert c.get("/", params=params).status_code == 403
    assert c.get("/", params=params, headers=basic("exotel-bot:wrong")).status_code == 403


def test_status_callbacks_with_credentials_update_the_dial() -> None:
    c = client()
    book: DialBook = c.app.state.runner.dials  # type: ignore[attr-defined]
    handle = CallHandle("exotel", "ex1", "d-ex1", "+91999")
    asyncio.run(book.add(handle))
    form = {"CallSid": "ex1", "Status": "completed"}
    assert c.post("/calls/status", data=form).status_code == 403
    assert c.post("/calls/status", data=form, headers=basic(AUTH)).status_code == 204
    assert handle.status == "completed"


def test_dialer_writes_the_credentials_into_the_status_url() -> None:
    dialer = registry.require("exotel").dialer
    assert dialer is not None
    account = ProviderAccount.from_env(
        "exotel",
        {
            "EXOTEL_API_KEY": "k",
            "EXOTEL_API_TOKEN": "t",
            "EXOTEL_ACCOUNT_SID": "sid",
            "EXOTEL_WEBHOOK_AUTH": AUTH,
        },
    )
    req = DialRequest(
        to="+91999",
        from_="0800",
        answer_url="http://my.exotel.com/sid/exoml/start_voice/1",
        status_url=f"https://{HOST}/calls/status",
    )
    call = dialer.create_call(account, req)
    form = parse_qs(call.kwargs["content"].decode())
    url = urlsplit(form["StatusCallback"][0])
    assert (url.hostname, url.path) == (HOST, "/calls/status")
    # Percent-encoded in the URL, the same pair once decoded.
    assert f"{unquote(url.username or '')}:{unquote(url.password or '')}" == AUTH
