"""UserIdleController: "the caller has said nothing for N seconds since the bot finished".

The timer starts at ``BotStoppedSpeakingFrame``. callpipe's output transport sends that frame
when the provider confirmed (playback marks) that the caller heard the end of the bot's audio,
so the idle time is counted from the end of *playback*, not from when the audio was sent: a
reply sent in one burst but played for eight seconds does not trigger an idle prompt while it
is still playing. The timer is held off during a user turn and while function calls run, and
cancelled by any speech.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callpipe.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    UserIdleTimeoutUpdateFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from callpipe.processors.base_object import create_logged_task


class UserIdleController:
    """Calls ``on_idle()`` once per silence longer than ``timeout`` (0 disables)."""

    def __init__(self, timeout: float, on_idle: Callable[[], Awaitable[None]]) -> None:
        self.timeout = timeout
        self._on_idle = on_idle
        self._bot_speaking = False
        self._user_turn = False
        self._calls: set[str] = set()  # tool_call_ids announced and not ended
        self._waiting = False
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def waiting_for_user(self) -> bool:
        return self._waiting

    def process_frame(self, frame: Frame) -> None:
        if isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            if not self._user_turn and not self._calls:
                self._waiting = True
                self._arm()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._waiting = False
            self.cancel()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_turn = True
            self._waiting = False
            self.cancel()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_turn = False
        elif isinstance(frame, FunctionCallsStartedFrame):
            self._calls.update(call.tool_call_id for call in frame.function_calls)
            self._waiting = False
            self.cancel()
        elif isinstance(frame, FunctionCallCancelFrame) or (
            isinstance(frame, FunctionCallResultFrame)
            and (frame.properties is None or frame.properties.is_final)
        ):
            self._calls.discard(frame.tool_call_id)  # a progress report leaves it running
        elif isinstance(frame, UserIdleTimeoutUpdateFrame):
            self.timeout = frame.timeout
            if self.timeout <= 0:
                self.cancel()
            elif self._waiting:
                self._arm()

    def wait_for_user(self) -> None:
        """Re-arm after a user turn that brought no reply (nothing to answer)."""
        if self._bot_speaking or self._user_turn or self._calls:
            return
        self._waiting = True
        self._arm()

    def _arm(self) -> None:
        self.cancel()
        if self.timeout > 0:
            self._handle = asyncio.get_running_loop().call_later(self.timeout, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._task = create_logged_task(self._on_idle(), "user-idle")

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        self.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
