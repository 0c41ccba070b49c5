"""The documents ``POST /`` returns: how each provider is told to open the media stream.

Each provider's document (and where it carries the stream token and the caller's numbers) lives
with the provider (``callpipe.providers.<name>``); this module only builds the stream URL and
falls back to an empty document for a name no provider answers to.

Busy documents (at capacity or draining) make the provider reject the call instead of connecting
a stream that would be refused.
"""

from __future__ import annotations

import json

from callpipe.providers import registry
from callpipe.providers.base import XML_DECL, Answer, AnswerRequest

__all__ = ["XML_DECL", "Answer", "answer_document", "busy_document", "stream_url"]


def stream_url(proxy: str, token: str | None) -> str:
    return f"wss://{proxy}/ws/{token}" if token else f"wss://{proxy}/ws"


def answer_document(
    provider: str,
    proxy: str,
    *,
    token: str | None,
    from_number: str = "",
    to_number: str = "",
    call_id: str = "",
) -> Answer:
    """The provider's instructions to connect this call to ``wss://{proxy}/ws[/token]``."""
    found = registry.get(provider)
    if found is None:
        return Answer(f"{XML_DECL}<Response></Response>", "application/xml")
    request = AnswerRequest(
        stream_url(proxy, token), from_number=from_number, to_number=to_number, call_id=call_id
    )
    return found.answer(request)


def busy_document(provider: str, reason: str) -> Answer:
    """Reject the call politely (the caller hears busy) while at capacity or draining."""
    found = registry.get(provider)
    if found is None:
        return Answer(json.dumps({"error": "busy", "reason": reason}), "application/json", 503)
    return found.busy(reason)
