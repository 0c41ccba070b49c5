"""Every registered provider is complete and recognised as itself, whatever its neighbours."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from callpipe.providers import registry
from callpipe.providers.base import AnswerRequest, Provider
from callpipe.runner.types import TELEPHONY_PROVIDERS
from callpipe.testing.simulator.dialects import DIALECTS

PROVIDERS = registry.PROVIDERS


def test_names_are_unique_and_shared_by_runner_and_simulator() -> None:
    names = [p.name for p in PROVIDERS]
    assert len(set(names)) == len(names)
    assert TELEPHONY_PROVIDERS == tuple(names)
    assert set(DIALECTS) == set(names)


def _decode(message: str) -> Mapping[str, Any]:
    """JSON, or a provider's own text syntax (Asterisk's plain-text MEDIA_START), as the runner."""
    try:
        decoded: Mapping[str, Any] = json.loads(message)
    except ValueError:
        parsed = registry.parse_text(message)
        assert parsed is not None, message
        return parsed
    return decoded


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_its_simulated_handshake_is_detected_as_itself(provider: Provider) -> None:
    dialect = provider.dialect()
    assert dialect.name == provider.name
    found = [registry.detect_stream(_decode(m)) for m in dialect.handshake()]
    detected = [d for d in found if d is not None]
    assert len(detected) == 1, "exactly one handshake message starts the stream"
    assert detected[0][0] is provider
    assert detected[0][1].call_id == dialect.identity.call_id


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_it_answers_and_refuses(provider: Provider) -> None:
    answer = provider.answer(AnswerRequest("wss://bot.example/ws/tok", "+1555", "+1666", "c1"))
    assert "wss://bot.example/ws/tok" in answer.body and answer.status_code == 200
    assert provider.busy("at capacity").body
    assert provider.setup_hint


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_signing_providers_are_verifiable(provider: Provider) -> None:
    secrets = {name: "secret-value" for name in provider.webhook_secret_env}
    if provider.webhook_secret_env and "TELNYX_PUBLIC_KEY" not in secrets:
        assert provider.webhook_verifier(secrets) is not None
        assert provider.signature_headers
    assert provider.webhook_verifier({}) is None
