"""The token refresh Google's HTTP and gRPC TTS services share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.auth.exceptions import RefreshError

from callpipe.services.google._auth import refresh_token


class _Creds:
    def __init__(self, *, valid: bool, expiry: datetime | None, fails: Exception | None) -> None:
        self.valid = valid
        self.expiry = expiry
        self.fails = fails
        self.refreshes = 0

    def refresh(self, request: Any) -> None:
        self.refreshes += 1
        if self.fails is not None:
            raise self.fails


class _Service:
    def __init__(self) -> None:
        self.reported: list[tuple[str, bool, str]] = []

    async def report_error(self, message: str, *, fatal: bool = False, reason: str = "") -> None:
        self.reported.append((message, fatal, reason))


def _in(minutes: float) -> datetime:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).replace(tzinfo=None)


async def test_a_token_with_time_left_is_kept_and_one_about_to_expire_renewed() -> None:
    service: Any = _Service()
    lasting = _Creds(valid=True, expiry=_in(30), fails=None)
    expiring = _Creds(valid=True, expiry=_in(1), fails=None)
    assert await refresh_token(service, lasting, "hint") == "fresh"  # type: ignore[arg-type]
    assert await refresh_token(service, expiring, "hint") == "fresh"  # type: ignore[arg-type]
    assert (lasting.refreshes, expiring.refreshes) == (0, 1)
    assert service.reported == []


async def test_a_refusal_is_fatal_and_a_network_failure_is_not() -> None:
    service: Any = _Service()
    refused = _Creds(valid=False, expiry=None, fails=RefreshError("invalid_grant"))
    offline = _Creds(valid=False, expiry=None, fails=OSError("no route"))
    assert await refresh_token(service, refused, "Check it.") == "refused"  # type: ignore[arg-type]
    assert await refresh_token(service, offline, "Check it.") == "unreachable"  # type: ignore[arg-type]
    [(said, fatal, reason), (said2, fatal2, reason2)] = service.reported
    assert fatal and reason == "auth" and said.endswith("invalid_grant. Check it.")
    assert not fatal2 and reason2 == "network" and "no route" in said2
