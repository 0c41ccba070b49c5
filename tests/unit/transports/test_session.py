"""The per-call CallSession: what the input and output halves share, each thing done once.

Most tests drive a real ``FastAPIWebsocketTransport`` over an in-memory socket speaking
Twilio's media stream (``callpipe.testing.memory_socket``), on a virtual clock, so what is
checked is what a call does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, get_origin, get_type_hints

import pytest

from callpipe.frames.frames import (
    CancelFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.runner import PipelineRunner
from callpipe.pipeline.task import PipelineParams, PipelineTask
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.telephony.base import CallControl
from callpipe.testing.memory_socket import TwilioCallerSocket
from callpipe.testing.virtual_clock import run_virtual
from callpipe.transports.call_stats import CallStats
from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketOutputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from callpipe.transports.session import CallSession


class Control(CallControl):
    def __init__(self) -> None:
        self.hang_ups = 0
        self.closed = 0

    async def hang_up(self) -> bool:
        self.hang_ups += 1
        return True

    async def transfer(self, target: str) -> None:
        pass

    async def send_dtmf(self, digits: str) -> bool:
        return False

    async def aclose(self) -> None:
        self.closed += 1


class SlowSetup(TwilioFrameSerializer):
    """Counts setups; each takes a while (another task can run in between)."""

    setups = 0
    finished = 0

    async def setup(self, frame: StartFrame) -> None:
        self.setups += 1
        await asyncio.sleep(0.05)
        await super().setup(frame)
        self.finished += 1


class Echo(FrameProcessor):
    """Plays every caller packet straight back: the bot speaks while the caller does."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(OutputAudioRawFrame(frame.audio, frame.sample_rate, 1))
        else:
            await self.push_frame(frame, direction)


def make(
    socket: TwilioCallerSocket, serializer: TwilioFrameSerializer | None = None
) -> FastAPIWebsocketTransport:
    serializer = serializer or TwilioFrameSerializer(
        "MZ0", "CA0123456789", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    params = FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, serializer=serializer
    )
    return FastAPIWebsocketTransport(socket.websocket, params)


def pipeline_task(transport: FastAPIWebsocketTransport) -> PipelineTask:
    return PipelineTask(
        Pipeline([transport.input(), Echo(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
        idle_timeout_secs=None,
    )


async def run_call(transport: FastAPIWebsocketTransport) -> None:
    await PipelineRunner(handle_sigint=False).run(pipeline_task(transport))


def session_of(transport: FastAPIWebsocketTransport) -> CallSession:
    session = transport.input()._session
    assert session is transport.output()._session
    return session


# ---------------------------------------------------------------- shape


@pytest.mark.parametrize("half", [FastAPIWebsocketInputTransport, FastAPIWebsocketOutputTransport])
def test_a_half_is_given_only_the_session_and_its_params(half: type[Any]) -> None:
    hints = get_type_hints(half.__init__)
    params = [p for p in inspect.signature(half.__init__).parameters if p not in ("self", "kwargs")]
    assert params == ["session", "params"]
    assert get_origin(hints["session"]) is CallSession
    assert hints["params"] is FastAPIWebsocketParams


def test_the_halves_hold_no_reference_to_each_other_or_the_transport() -> None:
    transport = make(TwilioCallerSocket(0))
    inp, out = transport.input(), transport.output()
    session = session_of(transport)
    for half, other in ((inp, out), (out, inp)):
        held = list(vars(half).values())
        owners = [v.__self__ for v in held if inspect.ismethod(v)]
        for value in held + owners:
            assert value is not other and value is not transport
            assert value is not session.client  # the socket is reached through the session
        assert [v for v in held if isinstance(v, CallSession)] == [session]
    assert transport.stats is session.stats


def test_log_lines_name_the_call_as_before() -> None:
    transport = make(TwilioCallerSocket(0))
    assert str(transport) == str(session_of(transport)) == f"{transport.name}[CA01…89]"


# ---------------------------------------------------------------- once per call


def test_the_serializer_is_set_up_once_when_both_halves_start_together() -> None:
    serializer = SlowSetup("MZ0", "CA1", params=SlowSetup.InputParams(auto_hang_up=False))
    transport = make(TwilioCallerSocket(0, hang_up=False), serializer)
    session = session_of(transport)
    returned: list[str] = []

    async def setup(who: str) -> None:
        await session.setup_serializer(StartFrame(audio_out_sample_rate=8000))
        returned.append(f"{who}:{serializer.setups}/{serializer.finished}")

    async def main() -> None:
        await asyncio.gather(setup("input"), setup("output"))

    run_virtual(main())
    assert serializer.setups == 1
    # The half that did not run setup waited for it to finish (it reads what setup decided).
    assert sorted(returned) == ["input:1/1", "output:1/1"]


def test_a_whole_call_sets_up_once_and_logs_one_end_line(caplog: pytest.LogCaptureFixture) -> None:
    serializer = SlowSetup("MZ0", "CA1", params=SlowSetup.InputParams(auto_hang_up=False))
    socket = TwilioCallerSocket(40)
    transport = make(socket, serializer)
    caplog.set_level(logging.INFO)
    run_virtual(run_call(transport))
    assert serializer.setups == 1
    ends = [r for r in caplog.records if r.getMessage().startswith("call ended:")]
    assert len(ends) == 1
    assert "reason=caller hung up (remote closed)" in ends[0].getMessage()
    assert transport.stats.packets_in == 40 and transport.stats.packets_out >= 35
    assert socket.closed_with is None  # the caller closed; no close frame after a disconnect


def test_call_end_line_is_written_once() -> None:
    session = session_of(make(TwilioCallerSocket(0)))
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    calls = logging.getLogger("callpipe.calls")
    calls.addHandler(handler)
    try:
        session.log_call_end(1.0)
        session.log_call_end(2.0)
    finally:
        calls.removeHandler(handler)
    assert [r.getMessage()[:11] for r in records] == ["call ended:"]


def _bare_session(listens: bool) -> tuple[CallSession, list[str]]:
    seen: list[str] = []

    async def fire(event: str) -> None:
        seen.append(f"fire {event}")

    async def cancel(reason: str) -> None:
        seen.append(f"cancel {reason}")

    class NoSocket:
        closing = False
        remote_closed = False
        can_send = False

        async def messages(self) -> Any:
            yield b""

        async def send(self, payload: str | bytes) -> bool:
            return False

        def abandon(self) -> None:
            pass

        async def close(self, code: int = 1000) -> None:
            pass

    session = CallSession(
        "t",
        None,
        NoSocket(),
        CallStats(call_id="CA1"),
        fire=fire,
        listens=lambda event: listens,
        cancel=cancel,
    )
    return session, seen


@pytest.mark.parametrize("listens", [True, False])
async def test_remote_close_is_reported_once(listens: bool) -> None:
    session, seen = _bare_session(listens)
    # Both halves notice the far end leaving (a failed send, the receive loop ending).
    await asyncio.gather(
        session.on_remote_closed("send failed"), session.on_remote_closed("remote closed")
    )
    await session.on_remote_closed("write timeout")
    expected = "fire on_client_disconnected" if listens else "cancel send failed"
    assert seen == [expected]
    assert session.stats.end_reason == "caller hung up (send failed)"


def test_the_app_hears_of_the_hang_up_once_per_call() -> None:
    transport = make(TwilioCallerSocket(10))
    task = pipeline_task(transport)
    disconnected: list[object] = []

    @transport.event_handler("on_client_disconnected")
    async def gone(t: FastAPIWebsocketTransport, ws: object) -> None:
        disconnected.append(t)
        await session_of(transport).on_remote_closed("again")  # a second report is ignored
        await task.cancel()

    run_virtual(PipelineRunner(handle_sigint=False).run(task))
    assert disconnected == [transport]
    assert transport.stats.end_reason == "caller hung up (remote closed)"


# ---------------------------------------------------------------- across the halves


def test_marks_read_by_the_input_reach_the_outputs_playback() -> None:
    socket = TwilioCallerSocket(60)
    transport = make(socket)
    tracker = transport.output().tracker
    acknowledged: list[tuple[str, bool]] = []
    speaking: list[bool] = []
    acknowledge = tracker.acknowledge

    def spy(name: str) -> bool:
        speaking.append(session_of(transport).bot_speaking)
        acknowledged.append((name, acknowledge(name)))
        return acknowledged[-1][1]

    tracker.acknowledge = spy  # type: ignore[method-assign]
    run_virtual(run_call(transport))
    sent_marks = [m["mark"]["name"] for m in socket.messages() if m.get("event") == "mark"]
    assert len(sent_marks) >= 2, "the output sent playback marks"
    # Every acknowledgement the input read off the socket reached the output's tracker.
    assert acknowledged == [(name, True) for name in sent_marks]
    # Marks come back while the echo plays: the session saw the bot speaking then, not after.
    assert speaking[0] is True and session_of(transport).bot_speaking is False


def test_bot_speaking_is_shared_so_the_input_counts_barge_ins() -> None:
    transport = make(TwilioCallerSocket(0, hang_up=False))
    session = session_of(transport)
    out, inp = transport.output(), transport.input()

    async def main() -> None:
        assert session.bot_speaking is False
        await out._bot_started()
        assert session.bot_speaking is True
        await inp._interrupt()  # a user turn while the bot plays: a barge-in
        await out._bot_stopped()
        assert session.bot_speaking is False
        await inp._interrupt()  # a user turn in silence: not one

    run_virtual(main())
    assert transport.stats.interruptions == 1


def test_a_peer_stall_seen_by_the_input_makes_the_output_hang_up() -> None:
    serializer = TwilioFrameSerializer(
        "MZ0", "CA1", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    control = Control()
    serializer.call_control, serializer.auto_hang_up = control, True
    transport = make(TwilioCallerSocket(0), serializer)
    session = session_of(transport)

    async def main() -> None:
        session.client.remote_closed = True  # the socket is gone ...
        await transport.output().finish_call(CancelFrame())
        assert control.hang_ups == 0  # ... the caller hung up: nothing to hang up
        session.peer_stalled()  # the input saw a flood: the carrier leg may still be up
        await transport.output().finish_call(CancelFrame())

    run_virtual(main())
    assert control.hang_ups == 1 and session.hang_up_at_end


def test_the_call_control_client_is_released_when_the_call_ends() -> None:
    """The provider REST client holds a keep-alive connection per call: closed at cleanup,
    after the hang-up, not left for the garbage collector."""
    serializer = TwilioFrameSerializer(
        "MZ0", "CA1", params=TwilioFrameSerializer.InputParams(auto_hang_up=False)
    )
    control = Control()
    serializer.call_control, serializer.auto_hang_up = control, True
    transport = make(TwilioCallerSocket(25), serializer)  # 0.5 s of audio, then a hang-up

    async def main() -> None:
        call = asyncio.ensure_future(run_call(transport))
        await asyncio.sleep(0.2)
        assert control.closed == 0  # not while the call is up
        await call

    run_virtual(main())
    assert control.closed >= 1  # (idempotent: both halves may release it)
