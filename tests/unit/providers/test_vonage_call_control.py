"""Vonage streams get REST call control (DTMF, transfer) only with the application's JWT keys."""

from __future__ import annotations

from typing import Any

import pytest

from callpipe.providers.vonage import VONAGE, VonageCallData
from callpipe.telephony.vonage import VonageCallControl, vonage_dtmf_digits, vonage_endpoint

from ..telephony._keys import rsa_private_pem

pytest.importorskip("jwt", reason="needs the vonage extra")


def keep_defaults(cls: type[Any], has_creds: bool, names: str) -> None:
    return None


def test_credentials_give_the_callers_leg_rest_control_without_auto_hang_up() -> None:
    call = VonageCallData(stream_id="leg-1", call_id="leg-1")
    env = {"VONAGE_APPLICATION_ID": "app-1", "VONAGE_PRIVATE_KEY": rsa_private_pem()}
    serializer = VONAGE.serializer(call, env, keep_defaults)
    assert isinstance(serializer.call_control, VonageCallControl)
    assert serializer.call_control.call_id == "leg-1"
    assert serializer.auto_hang_up is False  # the socket still ends the call, as before


def test_without_credentials_there_is_none_and_dtmf_goes_in_band() -> None:
    call = VonageCallData(stream_id="leg-1", call_id="leg-1")
    assert (
        VONAGE.serializer(call, {"VONAGE_APPLICATION_ID": "app-1"}, keep_defaults).call_control
        is None
    )


def test_digits_and_endpoints_in_vonage_terms() -> None:
    assert vonage_dtmf_digits("1w2W#") == "1p2pp#"
    assert vonage_dtmf_digits("12D") is None
    assert vonage_endpoint("+1 555 000 1111") == {"type": "phone", "number": "15550001111"}
    assert vonage_endpoint("sip:agent@pbx.example") == {
        "type": "sip",
        "uri": "sip:agent@pbx.example",
    }


@pytest.mark.parametrize(("status", "ended"), [(204, True), (404, True), (409, False)])
async def test_hang_up_treats_a_gone_call_as_already_over(status: int, ended: bool) -> None:
    import httpx

    seen: list[tuple[str, str]] = []

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path))
        return httpx.Response(status, json={})

    control = VonageCallControl(
        call_uuid="leg-1", bearer=lambda: "jwt", transport=httpx.MockTransport(reply)
    )
    try:
        assert await control.hang_up() is ended
    finally:
        await control.aclose()
    assert seen == [("PUT", "/v1/calls/leg-1")]
