"""ServiceSwitcher / LLMSwitcher (Pipecat 1.14): routing, manual switching, failover, settings."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from callpipe.errors import ConfigurationError
from callpipe.frames.frames import (
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMTextFrame,
    LLMUpdateSettingsFrame,
    ManuallySwitchServiceFrame,
    ServiceSwitcherRequestMetadataFrame,
    ServiceUpdateSettingsFrame,
    StartFrame,
    STTMetadataFrame,
    TextFrame,
)
from callpipe.pipeline.llm_switcher import LLMSwitcher
from callpipe.pipeline.pipeline import Pipeline
from callpipe.pipeline.service_switcher import (
    ServiceSwitcher,
    ServiceSwitcherStrategy,
    ServiceSwitcherStrategyFailover,
    ServiceSwitcherStrategyManual,
)
from callpipe.processors.aggregators.llm_context import LLMContext
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.services.openai.llm import OpenAILLMService
from callpipe.testing import run_test
from callpipe.testing.fakes.openai import FakeOpenAIServer
from callpipe.testing.pipeline import SleepFrame


class Service(FrameProcessor):
    """A stand-in service: answers ``TextFrame("x")`` with ``TextFrame("<name>:x")``.

    ``fail`` reports an error that leaves it unable to work, ``hiccup`` one it carries on
    from, ``reject`` a fatal one (what callpipe's services report for a rejected key).
    """

    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.seen: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.seen.append(frame)
        if not isinstance(frame, TextFrame):
            await self.push_frame(frame, direction)
        elif frame.text == "fail":
            await self.push_error(f"{self.name} is down", force_treat_as_permanent=True)
        elif frame.text == "hiccup":
            await self.push_error(f"{self.name} was slow")
        elif frame.text == "reject":
            await self.push_error(f"{self.name}: 401", fatal=True)
        else:
            await self.push_frame(TextFrame(f"{self.name}:{frame.text}"), direction)

    def texts(self) -> list[str]:
        return [f.text for f in self.seen if isinstance(f, TextFrame)]


def texts(frames: list[Frame]) -> list[str]:
    return [f.text for f in frames if type(f) is TextFrame]


def errors(frames: list[Frame]) -> list[ErrorFrame]:
    return [f for f in frames if isinstance(f, ErrorFrame)]


def switched_to(switcher: ServiceSwitcher[Any]) -> list[FrameProcessor]:
    seen: list[FrameProcessor] = []

    @switcher.strategy.event_handler("on_service_switched")
    async def on_switched(strategy: ServiceSwitcherStrategy, service: FrameProcessor) -> None:
        seen.append(service)

    return seen


# ---------------------------------------------------------------------------- routing


async def test_frames_go_only_to_the_active_service() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b])
    down, _ = await run_test(switcher, [TextFrame("1"), TextFrame("2")])
    assert a.texts() == ["1", "2"] and b.texts() == []
    assert texts(down) == ["a:1", "a:2"]
    # Start and end reach every service and leave the switcher once.
    for service in (a, b):
        assert any(isinstance(f, StartFrame) for f in service.seen)
        assert any(isinstance(f, EndFrame) for f in service.seen)
    assert [f for f in down if isinstance(f, EndFrame)] == [down[-1]]
    assert isinstance(switcher.strategy, ServiceSwitcherStrategyManual)
    assert switcher.strategy.active_service is a


async def test_manual_switch_moves_frames_to_the_named_service() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyManual)
    switched = switched_to(switcher)
    frames = [TextFrame("1"), ManuallySwitchServiceFrame(service=b), TextFrame("2")]
    down, _ = await run_test(switcher, frames)
    assert a.texts() == ["1"] and b.texts() == ["2"]
    assert texts(down) == ["a:1", "b:2"]
    assert switched == [b] and switcher.strategy.active_service is b
    # The switch request is used up; b was asked to announce itself, and that stays inside.
    assert any(isinstance(f, ServiceSwitcherRequestMetadataFrame) for f in b.seen)
    leaked = (ManuallySwitchServiceFrame, ServiceSwitcherRequestMetadataFrame)
    assert not [f for f in down if isinstance(f, leaked)]


class Announcing(Service):
    """Announces itself as an STT does: at start and when a switcher makes it active."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame | ServiceSwitcherRequestMetadataFrame):
            await self.push_frame(STTMetadataFrame(service_name=self.name, ttfs_p99_latency=1))


async def test_only_the_active_service_metadata_leaves_the_switcher() -> None:
    a, b = Announcing("a"), Announcing("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyManual)
    frames = [TextFrame("1"), ManuallySwitchServiceFrame(service=b), TextFrame("2")]
    down, _ = await run_test(switcher, frames)
    announced = [f.service_name for f in down if isinstance(f, STTMetadataFrame)]
    assert announced == ["a", "b"]  # b's start announcement stayed inside; its switch one left
    assert texts(down) == ["a:1", "b:2"]


async def test_switch_to_a_service_held_elsewhere_passes_on() -> None:
    a, b, elsewhere = Service("a"), Service("b"), Service("c")
    switcher = ServiceSwitcher(services=[a, b])
    down, _ = await run_test(switcher, [ManuallySwitchServiceFrame(service=elsewhere)])
    assert switcher.strategy.active_service is a
    assert [f for f in down if isinstance(f, ManuallySwitchServiceFrame)]


async def test_nested_switchers_each_take_their_own_switch() -> None:
    a, b, c, d = Service("a"), Service("b"), Service("c"), Service("d")
    first, second = ServiceSwitcher(services=[a, b]), ServiceSwitcher(services=[c, d])
    frames = [ManuallySwitchServiceFrame(service=d), TextFrame("1")]
    down, _ = await run_test(Pipeline([first, second]), frames)
    assert first.strategy.active_service is a and second.strategy.active_service is d
    assert texts(down) == ["d:a:1"]


async def test_a_frame_pushed_on_start_follows_the_start_frame() -> None:
    class Greeter(Service):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, StartFrame):
                await self.push_frame(TextFrame(f"hello from {self.name}"))

    greeter = Greeter("g")
    order: list[Frame] = []

    class Watch(FrameProcessor):
        direct = True

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            order.append(frame)
            await self.push_frame(frame, direction)

    # The greeter (first) passes the StartFrame before the second service has seen it.
    await run_test(Pipeline([ServiceSwitcher(services=[greeter, Service("b")]), Watch()]), [])
    kinds = [type(f) for f in order]
    assert kinds[:2] == [StartFrame, TextFrame]


# ---------------------------------------------------------------------------- failover


async def test_failover_switches_when_the_active_service_can_no_longer_work() -> None:
    a, b, c = Service("a"), Service("b"), Service("c")
    switcher = ServiceSwitcher(services=[a, b, c], strategy_type=ServiceSwitcherStrategyFailover)
    switched = switched_to(switcher)
    frames = [TextFrame("1"), TextFrame("fail"), SleepFrame(1.0, until=lambda: bool(switched))]
    down, up = await run_test(switcher, [*frames, TextFrame("2")])
    assert switched == [b] and switcher.strategy.active_service is b
    assert not a.is_usable and switcher.is_usable
    assert texts(down) == ["a:1", "b:2"]  # the next turn is the backup's
    assert errors(up) == []  # the switcher carried on: nothing to report


async def test_failover_skips_services_that_cannot_work_and_wraps_round() -> None:
    a, b, c = Service("a"), Service("b"), Service("c")
    switcher = ServiceSwitcher(services=[a, b, c], strategy_type=ServiceSwitcherStrategyFailover)
    switched = switched_to(switcher)
    frames: list[Frame] = [
        ManuallySwitchServiceFrame(service=b),
        TextFrame("fail"),
        SleepFrame(1.0, until=lambda: len(switched) == 2),
        TextFrame("fail"),
        SleepFrame(1.0, until=lambda: len(switched) == 3),
        ManuallySwitchServiceFrame(service=b),  # refused: b can no longer work
        TextFrame("1"),
    ]
    down, _ = await run_test(switcher, frames)
    assert switched == [b, c, a]
    assert texts(down) == ["a:1"]


async def test_a_service_brought_back_with_set_usable_can_be_switched_to_again() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyFailover)
    switched = switched_to(switcher)
    changes: list[bool] = []

    @a.event_handler("on_usable_changed")
    async def on_usable_changed(processor: FrameProcessor, usable: bool) -> None:
        changes.append(usable)

    frames: list[Frame] = [
        TextFrame("fail"),
        SleepFrame(1.0, until=lambda: bool(switched)),
        ManuallySwitchServiceFrame(service=a),  # refused: a can no longer work
        TextFrame("1"),
    ]
    down, _ = await run_test(switcher, frames)
    assert texts(down) == ["b:1"] and changes == [False]
    await a.set_usable(True)  # the application fixed what stopped it (a new key, say)
    down, _ = await run_test(switcher, [ManuallySwitchServiceFrame(service=a), TextFrame("2")])
    assert changes == [False, True]
    assert texts(down) == ["a:2"] and switched[-1] is a


async def test_an_error_the_service_carries_on_from_does_not_switch() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyFailover)
    switched = switched_to(switcher)
    down, up = await run_test(switcher, [TextFrame("hiccup"), TextFrame("1")])
    assert switched == [] and switcher.strategy.active_service is a
    assert texts(down) == ["a:1"]
    reported = errors(up)
    assert len(reported) == 1 and reported[0].processor is a and not reported[0].fatal


async def test_a_fatal_error_from_the_active_service_fails_over_instead_of_ending() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyFailover)
    switched = switched_to(switcher)
    frames = [TextFrame("reject"), SleepFrame(1.0, until=lambda: bool(switched)), TextFrame("1")]
    down, up = await run_test(switcher, frames)
    assert switched == [b] and not a.is_usable
    assert texts(down) == ["b:1"] and isinstance(down[-1], EndFrame)
    assert errors(up) == []


async def test_an_error_from_an_idle_service_stops_at_the_switcher() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyFailover)
    # b is idle again when it works through "reject", which was queued to it before.
    switched = switched_to(switcher)
    frames = [
        ManuallySwitchServiceFrame(service=b),
        TextFrame("reject"),
        ManuallySwitchServiceFrame(service=a),
        SleepFrame(1.0, until=lambda: not b.is_usable),
        TextFrame("1"),
    ]
    down, up = await run_test(switcher, frames)
    assert switched == [b, a] and switcher.strategy.active_service is a
    assert errors(up) == [] and texts(down) == ["a:1"]


@pytest.mark.parametrize("command", ["fail", "reject"])
async def test_with_nothing_left_the_switcher_reports_the_failure_as_its_own(
    command: str,
) -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b], strategy_type=ServiceSwitcherStrategyFailover)
    frames = [TextFrame(command), SleepFrame(1.0, until=lambda: not a.is_usable)]
    _, up = await run_test(switcher, [*frames, TextFrame(command)])
    assert not switcher.is_usable
    reported = errors(up)
    assert len(reported) == 1 and reported[0].processor is switcher
    assert "b can no longer work" in reported[0].error
    # A fatal error still ends the call once no service is left to carry it.
    assert reported[0].fatal == (command == "reject")


async def test_the_manual_strategy_leaves_a_failed_service_active() -> None:
    a, b = Service("a"), Service("b")
    switcher = ServiceSwitcher(services=[a, b])
    _, up = await run_test(switcher, [TextFrame("reject")])
    assert switcher.strategy.active_service is a and switcher.is_usable
    # Re-reported, not fatal: b can still be switched to by the application.
    reported = errors(up)
    assert len(reported) == 1 and reported[0].processor is switcher and not reported[0].fatal


# ---------------------------------------------------------------------------- settings


async def test_settings_updates_reach_the_services_pipecat_sends_them_to() -> None:
    a, b, c = Service("a"), Service("b"), Service("c")
    plain = ServiceUpdateSettingsFrame(settings={"x": 1})
    addressed = ServiceUpdateSettingsFrame(settings={"x": 2}, service=c)
    everyone = ServiceUpdateSettingsFrame(settings={"x": 3}, reach_inactive_services=True)
    down, _ = await run_test(ServiceSwitcher(services=[a, b, c]), [plain, addressed, everyone])

    def got(service: Service) -> list[int]:
        frames = [f for f in service.seen if isinstance(f, ServiceUpdateSettingsFrame)]
        return [f.settings["x"] for f in frames]

    assert got(a) == [1, 2, 3]  # the active service sees every update (and ignores c's)
    assert got(b) == [3]
    assert got(c) == [2, 3]
    # The copies handed to idle services stay inside: each update leaves once.
    assert [f.id for f in down if isinstance(f, ServiceUpdateSettingsFrame)] == [
        plain.id,
        addressed.id,
        everyone.id,
    ]


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


@pytest.fixture
async def backup_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer() as fake:
        yield fake


def make_llm(base_url: str, **kwargs: Any) -> OpenAILLMService:
    return OpenAILLMService(api_key="test-key", base_url=base_url, model="fake-model", **kwargs)


async def test_llm_settings_updates_apply_to_the_right_llms(server: FakeOpenAIServer) -> None:
    a, b, c = (make_llm(server.base_url) for _ in range(3))
    switcher = LLMSwitcher(llms=[a, b, c])
    Settings = OpenAILLMService.Settings
    frames = [
        LLMUpdateSettingsFrame(delta=Settings(temperature=0.1)),
        LLMUpdateSettingsFrame(delta=Settings(max_tokens=7), service=b),
        LLMUpdateSettingsFrame(delta=Settings(top_p=0.5), reach_inactive_services=True),
    ]
    await run_test(switcher, frames)
    assert [llm.settings.temperature for llm in (a, b, c)][0] == 0.1
    assert [llm.settings.temperature == 0.1 for llm in (b, c)] == [False, False]
    assert [llm.settings.max_tokens == 7 for llm in (a, b, c)] == [False, True, False]
    assert [llm.settings.top_p for llm in (a, b, c)] == [0.5, 0.5, 0.5]


# ---------------------------------------------------------------------------- real LLMs


def turn(text: str) -> LLMContextFrame:
    return LLMContextFrame(context=LLMContext([{"role": "user", "content": text}]))


def answers(frames: list[Frame]) -> list[str]:
    """The text of each completion, one entry per LLMFullResponseEndFrame."""
    result, current = [], ""
    for frame in frames:
        if isinstance(frame, LLMTextFrame):
            current += frame.text
        elif isinstance(frame, LLMFullResponseEndFrame):
            result.append(current)
            current = ""
    return result


async def test_llm_failover_mid_conversation(
    server: FakeOpenAIServer, backup_server: FakeOpenAIServer
) -> None:
    primary, backup = make_llm(server.base_url), make_llm(backup_server.base_url)
    server.add_chat_reply("Primary here.")
    server.add_chat_reply(status=401, error_message="Incorrect API key provided.")
    backup_server.add_chat_reply("Backup here.")
    switcher = LLMSwitcher(llms=[primary, backup], strategy_type=ServiceSwitcherStrategyFailover)
    switched = switched_to(switcher)
    frames = [
        turn("one"),
        SleepFrame(5.0, until=lambda: server.completed_streams == 1),
        turn("two"),  # the primary's key is rejected: the backup takes over
        SleepFrame(5.0, until=lambda: bool(switched)),
        turn("three"),
        SleepFrame(5.0, until=lambda: len(backup_server.chat_requests) == 1),
    ]
    down, up = await run_test(switcher, frames)
    assert switched == [backup] and switcher.active_llm is backup
    assert answers(down) == ["Primary here.", "", "Backup here."]
    assert len(server.chat_requests) == 2
    assert backup_server.chat_requests[0]["messages"][-1]["content"] == "three"
    assert errors(up) == []  # no fatal error: the call went on
    assert isinstance(down[-1], EndFrame)


def unreachable_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on once it is closed
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


class SwitchOnAnyError(ServiceSwitcherStrategyFailover):
    """Pipecat leaves the choice of errors to strategies: this one switches on any."""

    async def handle_error(self, error: ErrorFrame) -> FrameProcessor | None:
        others = [s for s in self.usable_services if s is not self.active_service]
        return await self._set_active_if_available(others[0]) if others else None


@pytest.mark.parametrize("strategy", [ServiceSwitcherStrategyFailover, SwitchOnAnyError])
async def test_llm_outage_switches_only_if_the_strategy_says_so(
    backup_server: FakeOpenAIServer, strategy: type[ServiceSwitcherStrategyFailover]
) -> None:
    """A provider that stops answering is a transient failure: Pipecat 1.14's failover
    strategy leaves the service active (the error goes upstream); a subclass may switch."""
    primary = make_llm(unreachable_url(), warmup=False)
    backup = make_llm(backup_server.base_url)
    switcher = LLMSwitcher(llms=[primary, backup], strategy_type=strategy)
    switched = switched_to(switcher)
    done = [0]  # completions finished (ended, answered or not)

    @switcher.event_handler("on_after_push_frame")
    async def count(_: FrameProcessor, frame: Frame) -> None:
        done[0] += isinstance(frame, LLMFullResponseEndFrame)

    frames = [
        turn("two"),
        SleepFrame(5.0, until=lambda: done[0] == 1),
        turn("three"),
        SleepFrame(5.0, until=lambda: done[0] == 2),
    ]
    down, up = await run_test(switcher, frames)
    if strategy is SwitchOnAnyError:
        assert switched == [backup] and errors(up) == []
        assert answers(down) == ["", "You said: three"]
    else:
        assert switched == [] and switcher.active_llm is primary and primary.is_usable
        assert len(errors(up)) == 2 and all(e.processor is primary for e in errors(up))
        assert backup_server.chat_requests == []


# ---------------------------------------------------------------------------- LLMSwitcher


def test_llm_switcher_registers_functions_on_every_llm() -> None:
    a, b = make_llm("http://127.0.0.1:9/v1"), make_llm("http://127.0.0.1:9/v1")
    switcher = LLMSwitcher(llms=[a, b])

    async def handler(params: Any) -> None: ...

    switcher.register_function("get_weather", handler, timeout_secs=3.0)
    assert a.has_function("get_weather") and b.has_function("get_weather")
    assert switcher.llms == [a, b] and switcher.active_llm is a


def test_llm_switcher_refuses_what_is_not_an_llm() -> None:
    with pytest.raises(ConfigurationError):
        LLMSwitcher(llms=[Service("tts")])
    with pytest.raises(ConfigurationError):
        ServiceSwitcher(services=[])


async def test_caller_audio_steps_over_an_llm_switcher_but_reaches_other_services(
    server: FakeOpenAIServer,
) -> None:
    audio = InputAudioRawFrame(audio=b"\0\0" * 160, sample_rate=8000, num_channels=1)
    llms = LLMSwitcher(llms=[make_llm(server.base_url), make_llm(server.base_url)])
    a = Service("a")
    down, _ = await run_test(Pipeline([llms, ServiceSwitcher(services=[a, Service("b")])]), [audio])
    assert llms._skip_input_audio  # both LLMs only pass it on
    assert audio in a.seen and audio in down


async def test_llm_switcher_run_inference_goes_to_the_active_llm(
    server: FakeOpenAIServer, backup_server: FakeOpenAIServer
) -> None:
    server.add_chat_reply("From the primary.")
    backup_server.add_chat_reply("From the backup.")
    switcher = LLMSwitcher(
        llms=[make_llm(server.base_url), make_llm(backup_server.base_url)],
        strategy_type=ServiceSwitcherStrategyManual,
    )
    backup = switcher.llms[1]
    await run_test(switcher, [ManuallySwitchServiceFrame(service=backup)])
    context = LLMContext([{"role": "user", "content": "Summarize the call."}])
    assert await switcher.run_inference(context, max_tokens=20) == "From the backup."
