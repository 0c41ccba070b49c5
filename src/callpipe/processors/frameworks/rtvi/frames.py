"""RTVI frames, importable for bots and services that push them.

RTVI is the message protocol of Pipecat's browser and mobile clients. A phone call has no such
client, so these frames are never produced from the call and never sent on it: they are system
frames no callpipe transport writes to the provider (an output transport passes an unknown
system frame on to the end of the pipeline, where it is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from callpipe.frames.frames import SystemFrame


@dataclass(slots=True)
class RTVIClientMessageFrame(SystemFrame):
    """A custom message from an RTVI client (never produced on a phone call)."""

    msg_id: str
    type: str
    data: Any = None


@dataclass(slots=True)
class RTVIServerMessageFrame(SystemFrame):
    """A custom message for the RTVI client; on a phone call it goes nowhere."""

    data: Any


@dataclass(slots=True)
class RTVIServerResponseFrame(SystemFrame):
    """A reply to an :class:`RTVIClientMessageFrame`; on a phone call it goes nowhere."""

    client_msg: RTVIClientMessageFrame
    data: Any = None
    error: str | None = None


@dataclass(slots=True)
class RTVISendTextFrame(SystemFrame):
    """Text typed into an RTVI client (never produced on a phone call)."""

    msg_id: str
    text: str
    user_id: str | None = None


@dataclass(slots=True)
class RTVIUICommandFrame(SystemFrame):
    """A UI command for the RTVI client; on a phone call it goes nowhere."""

    command: str = ""
    payload: Any = None


@dataclass(slots=True)
class RTVIUIJobGroupFrame(SystemFrame):
    """UI job-group progress for the RTVI client; on a phone call it goes nowhere."""

    data: Any = None


@dataclass(slots=True)
class RTVIUIEventFrame(SystemFrame):
    """A UI event from an RTVI client (never produced on a phone call)."""

    msg_id: str = ""
    event: str = ""
    payload: Any = None


@dataclass(slots=True)
class RTVIUISnapshotFrame(SystemFrame):
    """A UI snapshot from an RTVI client (never produced on a phone call)."""

    msg_id: str = ""
    tree: Any = None


@dataclass(slots=True)
class RTVIUICancelJobGroupFrame(SystemFrame):
    """A UI job-group cancel from an RTVI client (never produced on a phone call)."""

    msg_id: str = ""
    job_id: str = ""
    reason: str | None = None


@dataclass(slots=True)
class RTVIConfigureObserverFrame(SystemFrame):
    """Observer settings for the RTVI client's messages; nothing to configure here."""

    function_call_report_level: dict[str, Any] | None = None
    vad_user_speaking_enabled: bool | None = None
    bot_llm_marker_enabled: bool | None = None
