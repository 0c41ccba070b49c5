"""What the REST call-control clients log: the masked call id only, and a refused or failed
hang-up as one WARNING with the provider's reason, never an ERROR or a traceback.

Every provider client answers through an in-memory ``httpx.MockTransport``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from callpipe.errors import CallControlError
from callpipe.telephony.asterisk import AsteriskAriCallControl
from callpipe.telephony.base import HttpCallControl, RetryPolicy
from callpipe.telephony.jambonz import JambonzCallControl
from callpipe.telephony.plivo import PlivoCallControl
from callpipe.telephony.signalwire import SignalWireCallControl
from callpipe.telephony.telnyx import TelnyxCallControl
from callpipe.telephony.twilio import TwilioCallControl
from callpipe.telephony.vonage import VonageCallControl

CALL_ID = "CA0123456789abcdef0123456789abcdef"
MASKED = "CA01…ef"
CHANNEL = "1761245643.12"  # Asterisk ids: the bot's channel and the caller's
CALLER = "1761245643.11"
FAST = RetryPolicy(timeout=2.0, retries=1, backoff=0.0)

Reply = Callable[[httpx.Request], httpx.Response]


def _clients(reply: Reply) -> dict[str, HttpCallControl]:
    mock = httpx.MockTransport(reply)
    common = {"retry": FAST, "transport": mock}
    return {
        "twilio": TwilioCallControl(
            account_sid="AC1", call_sid=CALL_ID, auth_token="tok", base_url="http://t", **common
        ),
        "signalwire": SignalWireCallControl(
            project_id="p1", call_sid=CALL_ID, api_token="tok", base_url="http://s", **common
        ),
        "telnyx": TelnyxCallControl(
            call_control_id=CALL_ID, api_key="key", base_url="http://x", **common
        ),
        "plivo": PlivoCallControl(
            auth_id="MA1", auth_token="tok", call_uuid=CALL_ID, base_url="http://p", **common
        ),
        "vonage": VonageCallControl(
            call_uuid=CALL_ID, bearer=lambda: "jwt", base_url="http://v", **common
        ),
        "jambonz": JambonzCallControl(
            account_sid="a1", call_sid=CALL_ID, api_key="key", base_url="http://j", **common
        ),
    }


PROVIDERS = ["twilio", "signalwire", "telnyx", "plivo", "vonage", "jambonz"]


def _callpipe_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """callpipe's own lines (httpx logs the request URL itself, at its own logger)."""
    return [r for r in caplog.records if r.name.startswith("callpipe")]


def _assert_no_raw_ids(records: list[logging.LogRecord], *raw: str) -> None:
    for record in records:
        line = record.getMessage()
        assert not any(value in line for value in raw), line
        assert record.exc_info is None, line


def _assert_one_warning(caplog: pytest.LogCaptureFixture, *expected: str) -> None:
    records = _callpipe_records(caplog)
    loud = [r for r in records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["WARNING"], [r.getMessage() for r in loud]
    line = loud[0].getMessage()
    assert MASKED in line and "\n" not in line
    assert all(text in line for text in expected), line
    _assert_no_raw_ids(records, CALL_ID)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_refused_hang_up_is_one_masked_warning(
    provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    cc = _clients(lambda request: httpx.Response(403, json={"message": "forbidden"}))[provider]
    with caplog.at_level(logging.DEBUG):
        assert await cc.hang_up() is False
    await cc.aclose()
    _assert_one_warning(caplog, provider, "HTTP 403", "forbidden")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hang_up_failing_after_retries_is_one_masked_warning(
    provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    cc = _clients(lambda request: httpx.Response(503, text="down"))[provider]
    with caplog.at_level(logging.DEBUG):
        assert await cc.hang_up() is False
    await cc.aclose()
    # The per-attempt DEBUG lines name the request path: masked as well.
    assert any(r.levelno == logging.DEBUG for r in _callpipe_records(caplog))
    _assert_one_warning(caplog, provider, "2 attempts", "HTTP 503 down")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_hang_up_logs_the_masked_id(provider: str, caplog: pytest.LogCaptureFixture) -> None:
    cc = _clients(lambda request: httpx.Response(200, json={}))[provider]
    with caplog.at_level(logging.DEBUG):
        assert await cc.hang_up() is True
    await cc.aclose()
    records = _callpipe_records(caplog)
    assert any(MASKED in r.getMessage() and r.levelno == logging.INFO for r in records)
    _assert_no_raw_ids(records, CALL_ID)


@pytest.mark.parametrize("provider", ["twilio", "telnyx", "plivo", "vonage"])
async def test_refused_transfer_error_names_the_masked_call(provider: str) -> None:
    cc = _clients(lambda request: httpx.Response(400, json={"message": "bad"}))[provider]
    with pytest.raises(CallControlError) as info:
        await cc.transfer("https://example.com/x" if provider == "plivo" else "+15551234567")
    await cc.aclose()
    assert CALL_ID not in str(info.value) and "HTTP 400" in str(info.value)
    assert info.value.reason.startswith("HTTP 400")


def _asterisk(reply: Reply) -> AsteriskAriCallControl:
    return AsteriskAriCallControl(
        base_url="http://pbx:8088/ari",
        channel_id=CHANNEL,
        username="u",
        password="p",
        caller_channel_id=CALLER,
        retry=FAST,
        transport=httpx.MockTransport(reply),
    )


async def test_asterisk_lines_and_errors_mask_both_channels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ok = _asterisk(lambda request: httpx.Response(204))
    with caplog.at_level(logging.DEBUG):
        await ok.transfer("PJSIP/agent")
        await ok.transfer("dialplan:sales,100")
        assert await ok.hang_up() is True
    await ok.aclose()
    refused = _asterisk(lambda request: httpx.Response(409, json={"message": "not in Stasis"}))
    with caplog.at_level(logging.DEBUG):
        assert await refused.send_dtmf("1") is False  # 409: in-band tones instead
        with pytest.raises(CallControlError) as info:
            await refused.transfer("PJSIP/agent")
        assert await refused.hang_up() is False
    await refused.aclose()
    records = _callpipe_records(caplog)
    lines = [r.getMessage() for r in records]
    assert sum("1761…12" in line for line in lines) >= 5, lines  # the bot channel, masked
    _assert_no_raw_ids(records, CHANNEL, CALLER)
    assert CALLER not in str(info.value) and "1761…11" in str(info.value)
    assert [r.levelname for r in records if r.levelno >= logging.WARNING] == ["WARNING"]
