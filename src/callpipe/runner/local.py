"""Local mode: what the runner tells a person (not a provider) about where to go next.

Without ``-x`` on a loopback address the runner is in *local mode*: ``/ws`` takes any provider
dialect without stream tokens (there is nothing to verify on a laptop and nobody else can reach
the port), the softphone page ``/phone`` is served, and ``callpipe call`` works. ``callpipe demo``
and ``python bot.py`` print the same "where to go next" lines (:func:`banner`), and a browser
opening ``/`` gets advice for the mode it is in (:func:`root_advice`) instead of a bare 400.
"""

from __future__ import annotations

import ipaddress

from callpipe.providers import registry

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})

PROVIDER_FLAGS = "|".join(registry.names())
"""Every ``-t`` provider name, from the registry."""


def is_loopback(host: str) -> bool:
    """True when ``host`` (a bind address) is reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown(host: str) -> str:
    return "localhost" if host in ("0.0.0.0", "::", "127.0.0.1", "::1") else host


def banner(title: str, host: str, port: int, proxy: str | None, *, calls: bool = False) -> str:
    """The lines printed at startup: softphone, ``callpipe call``, and the way to a real number
    (and the call inspector, ``calls``, when records are kept)."""
    local = f"{_shown(host)}:{port}"
    lines = ["", title]
    if proxy:
        lines.append(f"  point your provider at:   https://{proxy}/   (answer webhook, POST)")
        lines.append(
            "  (production mode: /ws takes only streams opened through that webhook; "
            "run without -x to talk to the bot locally)"
        )
    else:
        lines += [
            f"  talk to it in a browser:  http://{local}/phone",
            f'  or call it from a shell:  callpipe call ws://{local}/ws --say "hello"',
            " " * 28 + f'callpipe call ws://{local}/ws --say "hi" --dtmf "5@6,#@9"',
            *([f"  look at its calls:        http://{local}/calls"] if calls else []),
            "  real phone number: expose this port (e.g. a tunnel) and restart with "
            "`-x <public host>`, then set your Twilio/Telnyx/Plivo/Exotel/Vonage number's "
            "voice webhook to https://<public host>/",
        ]
    lines.append("")
    return "\n".join(lines)


def root_advice(*, local: bool, host: str, port: int) -> dict[str, str]:
    """Body of the 400 a request to ``/`` gets when no provider can be recognised in it."""
    if local:
        where = f"{_shown(host)}:{port}"
        return {
            "error": "this is the telephony providers' answer webhook, not a page",
            "hint": (
                f"local mode: talk to the bot at http://{where}/phone or with "
                f'`callpipe call ws://{where}/ws --say "hello"`'
            ),
        }
    return {
        "error": "unknown provider: not a provider's answer webhook (or start with -t PROVIDER)",
        "hint": (
            f"point your provider's voice webhook here (POST), or start the runner with "
            f"-t {PROVIDER_FLAGS} to answer any request as that provider"
        ),
    }
