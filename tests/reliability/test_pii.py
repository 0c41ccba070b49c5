"""Logs never contain credentials, stream tokens or full phone numbers (INFO and above).

One call goes the whole way a real Twilio call does: a signed answer webhook carrying the
caller's numbers, the TwiML's one-time stream URL, a media stream whose ``start`` echoes the
numbers, bad input, a DTMF, a goodbye and a hang-up through the REST API with the auth token;
plus a forged-token attempt. Every log record of callpipe, uvicorn and httpx is captured, and
no secret may appear in a message, a traceback or a structured ``extra`` field.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from callpipe.runner.app import Credentials
from callpipe.runner.security import twilio_signature

from .helpers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BotConfig,
    BotServer,
    Caller,
    LogCapture,
    RestLog,
    call_sid,
    fake_twilio_rest,
    serve,
)
from .runner_helpers import RunnerBot, runner_app

pytestmark = pytest.mark.integration

CALLER = "+14155550123"
CALLEE = "+442071838750"
WEBHOOK_TOKEN = "webhook-auth-token-do-not-log"


_LOGGERS = ("", "uvicorn", "uvicorn.access", "httpx")


def _attach(handler: LogCapture) -> None:
    """(Re)attach: uvicorn's logging config replaces its loggers' handlers when it starts."""
    for name in _LOGGERS:
        lg = logging.getLogger(name)
        if handler not in lg.handlers:
            lg.addHandler(handler)


@contextmanager
def capture_everything() -> Iterator[LogCapture]:
    """INFO+ from every logger, including the ones that do not propagate to the root."""
    handler = LogCapture(logging.INFO)
    httpx_logger = logging.getLogger("httpx")
    httpx_level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)
    _attach(handler)
    try:
        yield handler
    finally:
        for name in _LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        httpx_logger.setLevel(httpx_level)


def _texts(record: logging.LogRecord) -> list[str]:
    out = [record.getMessage()]
    if record.exc_info:
        out.append(logging.Formatter().formatException(record.exc_info))
    out += [str(v) for k, v in vars(record).items() if k not in ("msg", "args", "exc_info")]
    return out


async def test_no_secret_or_phone_number_reaches_the_logs() -> None:
    rest = RestLog()
    with capture_everything() as logs:
        async with serve(fake_twilio_rest(rest), log_level="info") as rest_addr:
            server = BotServer(BotConfig(rest_url=f"http://{rest_addr}"))
            bot = RunnerBot(server)
            app = runner_app(
                bot, credentials=Credentials(twilio_auth_token=WEBHOOK_TOKEN), proxy="bot.test"
            )
            async with serve(app, log_level="info") as addr:
                _attach(logs)
                form = {
                    "CallSid": call_sid(1),
                    "AccountSid": ACCOUNT_SID,
                    "From": CALLER,
                    "To": CALLEE,
                    "CallStatus": "ringing",
                }
                signature = twilio_signature(WEBHOOK_TOKEN, "https://bot.test/", form.items())
                async with httpx.AsyncClient(base_url=f"http://{addr}") as http:
                    bad = await http.post("/", data=form, headers={"X-Twilio-Signature": "x"})
                    assert bad.status_code == 403
                    answer = await http.post(
                        "/", data=form, headers={"X-Twilio-Signature": signature}
                    )
                assert answer.status_code == 200, answer.text
                twiml = answer.text
                url = unescape(re.search(r'<Stream url="([^"]+)"', twiml)[1])  # type: ignore[index]
                params = dict(re.findall(r'<Parameter name="([^"]+)" value="([^"]+)"', twiml))
                token = url.rsplit("/", 1)[1]
                assert CALLER in params.values()
                forged = Caller(f"ws://{addr}/ws/{token[:-3]}abc", 1, custom_parameters=params)
                with pytest.raises(InvalidStatus) as refused:  # before the upgrade
                    await forged.connect()
                assert refused.value.response.status_code == 403
                async with Caller(f"ws://{addr}/ws/{token}", 1, custom_parameters=params) as call:
                    await call.send_silence(0.1)
                    await call.send_raw('{"event": "dtmf", "dtmf": {"digit": "' + CALLER + '"}}')
                    await call.send_raw("not json " + CALLER)
                    await call.press("0")  # goodbye and hang-up through the REST API
                    await asyncio.wait_for(call.closed.wait(), 5)
                await server.wait_calls(1)
        assert len(rest.requests) == 1
    basic = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    secrets = {
        "twilio auth token": AUTH_TOKEN,
        "webhook auth token": WEBHOOK_TOKEN,
        "basic auth": basic,
        "stream token": token,
        "stream token signature": token.split(".")[1],
        "caller number": CALLER.lstrip("+"),
        "callee number": CALLEE.lstrip("+"),
        "caller number (national)": CALLER[-10:],
    }
    assert len(logs.records) > 5  # the capture works: the call was logged
    leaks = [
        (name, record.name, text[:160])
        for record in logs.records
        for text in _texts(record)
        for name, secret in secrets.items()
        if secret in text
    ]
    assert leaks == [], "\n".join(map(str, leaks))
