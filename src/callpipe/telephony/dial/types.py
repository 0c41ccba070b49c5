"""What a dial asks for and what it returns, and the one vocabulary of call outcomes.

Each provider reports progress and answering-machine verdicts in its own words; the mapping to
one small vocabulary lives here (sans-I/O) so the runner's callback route, the campaign runner and
the tests share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from callpipe.audio.amd import AmdResult as AmdResult

DialStatus = Literal[
    "initiated", "ringing", "answered", "busy", "no-answer", "failed", "canceled", "completed"
]
"""Where an outbound call is: the terminal ones are busy, no-answer, failed, canceled, completed."""

TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"busy", "no-answer", "failed", "canceled", "completed"}
)


AMD_RESULTS: frozenset[str] = frozenset(
    {"human", "machine_start", "machine_end_beep", "machine_end_silence", "fax", "unknown"}
)

MachineDetection = Literal["off", "enable", "detect_end"]
"""``enable``: a verdict as soon as known; ``detect_end``: wait for the greeting's end (beep)."""


@dataclass(frozen=True, slots=True)
class DialRequest:
    """One outbound call to place.

    ``answer_url`` is where the provider fetches its call instructions once the callee answers
    (the runner's ``POST /``); Twilio also takes inline ``twiml`` instead. ``status_url`` and
    ``amd_url`` receive progress and AMD callbacks (the runner's ``/calls/status``).
    ``metadata`` never leaves this process: the runner hands it to the bot in ``runner_args``.
    """

    to: str
    from_: str
    answer_url: str | None = None
    twiml: str | None = None
    status_url: str | None = None
    amd_url: str | None = None
    machine_detection: MachineDetection = "off"
    async_amd: bool = True
    ring_timeout: int = 30
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class CallHandle:
    """A placed call: the provider's id for it, and what is known of it so far."""

    provider: str
    call_id: str
    dial_id: str
    to: str
    status: DialStatus = "initiated"
    answered_by: AmdResult | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    history: list[tuple[str, str]] = field(default_factory=list)
    """``(kind, value)`` pairs in arrival order: ``("status", "ringing")``, ``("amd", "human")``."""

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def as_dict(self) -> dict[str, Any]:
        return {
            "dial_id": self.dial_id,
            "provider": self.provider,
            "call_id": self.call_id,
            "status": self.status,
            "answered_by": self.answered_by,
        }


_STATUS_WORDS: dict[str, DialStatus] = {
    # Twilio / Telnyx TeXML CallStatus, Plivo CallStatus, Vonage status, Exotel Status.
    "queued": "initiated",
    "initiated": "initiated",
    "started": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    "answered": "answered",
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "timeout": "no-answer",
    "unanswered": "no-answer",
    "failed": "failed",
    "rejected": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "cancel": "canceled",
}


def normalize_status(value: str) -> DialStatus | None:
    """A provider's call-status word in the shared vocabulary (None: not a status we track)."""
    return _STATUS_WORDS.get(value.strip().lower())


_AMD_WORDS: dict[str, AmdResult] = {
    # Twilio and Telnyx TeXML AnsweredBy.
    "human": "human",
    "machine_start": "machine_start",
    "machine_end_beep": "machine_end_beep",
    "machine_end_silence": "machine_end_silence",
    "machine_end_other": "machine_end_silence",
    "fax": "fax",
    "unknown": "unknown",
    # Vonage event status / advanced machine detection sub_state.
    "machine": "machine_start",
    "beep_start": "machine_end_beep",
    "beep_timeout": "machine_end_silence",
}


def normalize_amd(provider: str, fields: Mapping[str, Any]) -> AmdResult | None:
    """The AMD verdict a provider callback carries, if any."""
    if provider == "plivo":
        machine = str(fields.get("Machine", "")).lower()
        if machine in ("true", "false"):
            return "machine_start" if machine == "true" else "human"
        return None
    if provider == "vonage":
        sub = str(fields.get("sub_state", "")).lower()
        if sub in _AMD_WORDS:
            return _AMD_WORDS[sub]
        status = str(fields.get("status", "")).lower()
        return _AMD_WORDS.get(status) if status in ("human", "machine") else None
    answered_by = fields.get("AnsweredBy")
    if isinstance(answered_by, str) and answered_by:
        return _AMD_WORDS.get(answered_by.strip().lower(), "unknown")
    return None


def status_of(provider: str, fields: Mapping[str, Any]) -> DialStatus | None:
    """The call status a provider callback carries, if any."""
    if provider == "vonage":
        word = fields.get("status")
        if str(word).lower() in ("human", "machine"):
            return None
    elif provider == "exotel":
        word = fields.get("Status")
    else:
        word = fields.get("CallStatus")
    return normalize_status(word) if isinstance(word, str) else None


def call_id_of(provider: str, fields: Mapping[str, Any]) -> str:
    """The provider call id in a callback or answer webhook (what ``CallHandle.call_id`` holds)."""
    if provider == "plivo":
        return str(fields.get("RequestUUID") or fields.get("CallUUID") or "")
    if provider == "vonage":
        return str(fields.get("uuid") or "")
    return str(fields.get("CallSid") or "")
