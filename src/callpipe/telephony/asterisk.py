"""Asterisk call control through ARI, the Asterisk REST Interface.

Requests go to an ARI base URL such as ``http://pbx:8088/ari`` with HTTP Basic auth of an
``ari.conf`` user. Two channels matter on a ``chan_websocket`` call:

- the **WebSocket channel** (``MEDIA_START``'s ``channel_id``): the bot's own leg. Hang-up
  deletes it (``DELETE /channels/{id}?reason=normal``), which works on any channel and is the
  same as closing the socket, so it also covers a PBX that stopped reading. It is never the
  caller's channel, so hanging up after a transfer cannot cut the transferred caller off.
- the **caller's channel**, known only when the dial plan or the ARI application says which it
  is (the ``CALLPIPE_CALLER_CHANNEL`` channel variable). Transfer redirects it
  (``POST /channels/{id}/redirect?endpoint=PJSIP/agent``), or with a ``dialplan:`` target
  sends it back into the dial plan (``POST /channels/{id}/continue?context=&extension=
  &priority=``); DTMF is played to it
  (``POST /channels/{id}/dtmf?dtmf=...``). Asterisk allows both only for a channel inside a
  Stasis application (an ARI application that bridged the caller with ``externalMedia``); for
  a caller in ``Dial()`` it answers 409, and DTMF then falls back to in-band tones.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote

import httpx

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.telephony.base import (
    HttpCallControl,
    RetryPolicy,
    http_reason,
    validate_dtmf_digits,
    validate_transfer_target,
)

logger = logging.getLogger(__name__)

CALLER_CHANNEL_VARIABLE = "CALLPIPE_CALLER_CHANNEL"
"""The WebSocket channel's variable naming the caller's channel id (``${CHANNEL(uniqueid)}``)."""

DEFAULT_TECH = "PJSIP"
"""Channel technology of a number or ``sip:`` URI target (ARI wants ``TECH/resource``, and the
technology must be the caller channel's own)."""

DTMF_TIMING_MS = 100
"""Tone length and gap between tones, as ARI's ``duration``/``between`` (its defaults)."""

DIALPLAN_PREFIX = "dialplan:"
"""A transfer target ``dialplan:context,extension[,priority]`` continues in the dial plan."""

_CHANNEL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_DIALPLAN_FIELD = re.compile(r"^[A-Za-z0-9_+*#.-]{1,80}$")
_ENDPOINT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/[^\s/<>\"']\S*$")


def valid_channel_id(value: str | None) -> str | None:
    """The id if it looks like an Asterisk channel id (``1761245643.12`` or a UUID), else None."""
    return value if value and _CHANNEL_ID.match(value) else None


def redirect_endpoint(target: str) -> str:
    """ARI's ``endpoint``: ``TECH/resource`` as given, else a number or SIP URI on PJSIP."""
    target = target.strip()
    if _ENDPOINT.match(target):
        return target
    return f"{DEFAULT_TECH}/{validate_transfer_target(target)}"


def dialplan_location(target: str) -> dict[str, str] | None:
    """``continue``'s query for a ``dialplan:context,extension[,priority]`` target, else None."""
    if not target.strip().lower().startswith(DIALPLAN_PREFIX):
        return None
    fields = [f.strip() for f in target.strip()[len(DIALPLAN_PREFIX) :].split(",")]
    if len(fields) == 2:
        fields.append("1")
    ok = len(fields) == 3 and all(f and _DIALPLAN_FIELD.match(f) for f in fields[:2])
    if not ok or not fields[2].isdigit():
        raise ConfigurationError(
            f"invalid dial plan target {target!r}: use dialplan:context,extension[,priority]"
        )
    return {"context": fields[0], "extension": fields[1], "priority": fields[2]}


class AsteriskAriCallControl(HttpCallControl):
    """ARI call control for one ``chan_websocket`` channel (and its caller, when known)."""

    provider = "asterisk"

    def __init__(
        self,
        *,
        base_url: str,
        channel_id: str,
        username: str,
        password: str,
        caller_channel_id: str | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not valid_channel_id(channel_id):
            raise ConfigurationError(f"asterisk: {channel_id!r} is not a channel id")
        super().__init__(
            base_url=base_url,
            call_id=channel_id,
            auth=(username, password),
            headers={"Accept": "application/json"},
            retry=retry,
            transport=transport,
        )
        self.caller_channel_id = valid_channel_id(caller_channel_id)
        self._dtmf_refused = False

    @staticmethod
    def _channel_path(channel_id: str) -> str:
        return f"/channels/{quote(channel_id, safe='')}"

    def _hang_up_request(self) -> tuple[str, str, dict[str, Any]]:
        return "DELETE", self._channel_path(self.call_id), {"params": {"reason": "normal"}}

    def _private_ids(self) -> tuple[str, ...]:
        # The caller's channel is in the transfer and DTMF paths.
        return (self.call_id, self.caller_channel_id or "")

    def _caller(self, action: str) -> str:
        if self.caller_channel_id is None:
            raise ConfigurationError(
                f"asterisk: cannot {action} without the caller's channel id; set the "
                f"{CALLER_CHANNEL_VARIABLE} channel variable (see docs/asterisk.md)"
            )
        return self.caller_channel_id

    async def transfer(self, target: str) -> None:
        """Redirect the caller's channel to ``target`` (``PJSIP/agent``, a number, a SIP URI),
        or continue it in the dial plan (``dialplan:context,extension[,priority]``)."""
        caller = self._caller("transfer")
        location = dialplan_location(target)
        if location is not None:
            path = f"{self._channel_path(caller)}/continue"
            await self.request_ok("POST", path, params=location)
            logger.info("asterisk call %s: caller continues in the dial plan", self.log_id)
            return
        endpoint = redirect_endpoint(target)
        path = f"{self._channel_path(caller)}/redirect"
        await self.request_ok("POST", path, params={"endpoint": endpoint})
        logger.info("asterisk call %s: caller redirected", self.log_id)

    async def send_dtmf(self, digits: str) -> bool:
        """Play DTMF to the caller's channel; False (in-band tones) when ARI cannot."""
        digits = validate_dtmf_digits(digits)
        if self.caller_channel_id is None or self._dtmf_refused:
            return False
        path = f"{self._channel_path(self.caller_channel_id)}/dtmf"
        params = {"dtmf": digits, "between": DTMF_TIMING_MS, "duration": DTMF_TIMING_MS}
        response = await self.request("POST", path, params=params)
        if response.status_code == 409:
            # Not in a Stasis application (a caller in Dial()): ARI cannot play to it.
            self._dtmf_refused = True
            logger.info(
                "asterisk call %s: caller channel is not in a Stasis app; DTMF in-band",
                self.log_id,
            )
            return False
        if not response.is_success:
            reason = http_reason(response)
            raise CallControlError(f"asterisk POST {self.redact(path)}: {reason}", reason=reason)
        return True
