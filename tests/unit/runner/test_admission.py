"""Pre-upgrade checks of /ws: Origin in local mode, token shape, one upgrade per token, pools."""

from __future__ import annotations

import pytest

from callpipe.runner.admission import (
    TokenClaims,
    bearer_token,
    origin_allowed,
    plausible_token,
)
from callpipe.runner.calls import CallRegistry


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (None, "127.0.0.1:7860", True),  # a provider or `callpipe call`: no Origin
        ("http://localhost:7860", "localhost:7860", True),  # the softphone page
        ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
        ("http://[::1]:7860", "[::1]:7860", True),
        ("http://192.168.1.5:7860", "192.168.1.5:7860", True),  # softphone from the LAN
        ("https://bot.example.com", "bot.example.com", True),  # the -x host, trusted
        ("http://evil.example", "localhost:7860", False),
        ("null", "localhost:7860", False),
        ("http://localhost:7861", "localhost:7860", False),  # another local app
        ("http://evil.example:7860", "evil.example:7860", False),  # DNS rebinding
        ("ftp://localhost:7860", "localhost:7860", False),
        ("http://localhost:99999", "localhost:7860", False),  # unparsable port
        ("http://localhost:7860", None, False),
    ],
)
def test_origin_is_same_origin_on_a_host_rebinding_cannot_use(
    origin: str | None, host: str | None, allowed: bool
) -> None:
    assert origin_allowed(origin, host, ("localhost", "bot.example.com")) is allowed


def test_token_shape_is_checked_before_any_crypto() -> None:
    assert plausible_token("eyJqdGkiOiJ4In0.c2lnbmF0dXJl")
    assert not plausible_token("")
    assert not plausible_token("été.x")
    assert not plausible_token("a b")
    assert not plausible_token("A" * 5000)
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None


def test_a_token_admits_one_upgrade_until_it_expires() -> None:
    claims = TokenClaims()
    assert claims.claim("a", exp=100.0, now=10.0)
    assert not claims.claim("a", exp=100.0, now=11.0)
    assert claims.claim("b", exp=20.0, now=12.0)
    assert claims.claim("c", exp=200.0, now=150.0)  # prunes the expired ones
    assert len(claims) == 1
    full = TokenClaims(limit=2)
    assert full.claim("x", exp=100.0, now=0.0) and full.claim("y", exp=100.0, now=0.0)
    assert not full.claim("z", exp=100.0, now=0.0)  # bounded memory: refuse, never grow


def test_pending_pools_keep_room_for_valid_tokens() -> None:
    calls = CallRegistry(max_calls=2, max_pending_per_address=2)
    assert calls.max_pending == 16
    refused = [calls.begin_handshake(f"10.0.0.{i // 3}") for i in range(40)]
    assert refused.count(None) == 16
    assert "too many handshakes from one address" in refused
    assert calls.begin_handshake("10.9.9.9") == "busy handshaking"
    # The pool for valid tokens is separate and still open.
    assert [calls.begin_handshake(authenticated=True) for _ in range(64)] == [None] * 64
    assert calls.begin_handshake(authenticated=True) == "busy handshaking"
    calls.end_handshake("10.0.0.0")
    calls.end_handshake("10.0.0.1")
    assert calls.begin_handshake("10.0.0.0") is None
    assert calls.begin_handshake("10.0.0.0") == "too many handshakes from one address"
