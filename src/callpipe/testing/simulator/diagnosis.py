"""Why a simulated call failed, in words a person can act on (``callpipe call`` prints it)."""

from __future__ import annotations

from callpipe.testing.simulator.result import CallResult

_ADVICE = {
    4003: (
        "the runner refused the stream: missing or invalid stream token. It runs in production "
        "mode (-x HOST), where /ws only takes streams opened through the provider's answer "
        "webhook. To call it locally, restart the bot without -x (local mode), or add --insecure."
    ),
    1002: "the runner saw no telephony handshake it understands (check --provider)",
    1011: "the bot failed the call (its server log has the error)",
    1013: "the runner is busy or draining (at --max-calls, or shutting down); try again",
}


def explain_failure(result: CallResult) -> str | None:
    """One or two lines saying why ``result`` failed, or None if it completed normally."""
    if not result.failed:
        return None
    if result.ended_by == "error":
        detail = next((e.detail for e in result.events if e.kind == "error"), "")
        return (
            f"call failed: {detail or 'could not connect'}\n"
            "  is the bot running there? (`callpipe demo`, or `python bot.py` without -x)"
        )
    if result.ended_by == "network":
        return "call failed: the connection dropped without a WebSocket close"
    if result.ended_by == "open":
        return "call failed: it never ended"
    code = result.close_code
    reason = f" ({result.close_reason})" if result.close_reason else ""
    advice = _ADVICE.get(code or 0, "the bot closed the stream abnormally")
    return f"call failed: bot closed the stream with code {code}{reason}\n  {advice}"
