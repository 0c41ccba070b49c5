"""IVRProcessor fed LLM text directly: tags split across chunks, speech, and bad output."""

from __future__ import annotations

import logging

import pytest

from callpipe.extensions.ivr import IVRNavigator, IVRProcessor, IVRStatus
from callpipe.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMMessagesUpdateFrame,
    LLMTextFrame,
    OutputDTMFUrgentFrame,
)
from callpipe.pipeline.pipeline import Pipeline
from callpipe.processors.frame_processor import FrameDirection, FrameProcessor
from callpipe.testing.pipeline import SleepFrame, run_test


def reply(*chunks: str) -> list[Frame]:
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


class Run:
    def __init__(self) -> None:
        self.processor = IVRProcessor(classifier_prompt="classify", ivr_prompt="navigate")
        self.statuses: list[IVRStatus] = []
        self.down: list[Frame] = []
        self.up: list[Frame] = []

        @self.processor.event_handler("on_ivr_status_changed")
        async def on_status(_: IVRProcessor, status: IVRStatus) -> None:
            self.statuses.append(status)

    async def feed(self, *frames: Frame) -> None:
        self.down, self.up = await run_test(self.processor, list(frames))

    def pressed(self) -> list[str]:
        return [f.to_string() for f in self.down if isinstance(f, OutputDTMFUrgentFrame)]

    def spoken(self) -> str:
        return "".join(f.text for f in self.down if isinstance(f, LLMTextFrame))

    def prompts(self) -> list[str]:
        return [f.messages[0]["content"] for f in self.up if isinstance(f, LLMMessagesUpdateFrame)]

    def noted(self) -> list[str]:
        return [f.messages[0]["content"] for f in self.up if isinstance(f, LLMMessagesAppendFrame)]


async def test_tags_split_across_chunks_act_and_speech_around_them_is_spoken() -> None:
    run = Run()
    await run.feed(
        *reply("<mo", "de>iv", "r</mode>"),
        *reply("Billing, ", "please.<dt", "mf>", "3</d", "tmf> Thanks", "."),
        *reply("<DTMF> 1 2 </DTMF><ivr>stuck</ivr>"),
    )
    assert run.prompts() == ["classify", "navigate"]
    assert run.pressed() == ["3", "12"]
    assert run.spoken() == "Billing, please. Thanks."
    assert run.statuses == [IVRStatus.DETECTED, IVRStatus.STUCK]
    assert run.noted() == ["<dtmf>3</dtmf>", "<dtmf>12</dtmf><ivr>stuck</ivr>"]


async def test_a_less_than_sign_that_opens_no_tag_is_spoken() -> None:
    run = Run()
    await run.feed(*reply("<ivr>detected</ivr>"), *reply("Fewer than <", "3 items."), *reply("<"))
    assert run.statuses == [IVRStatus.DETECTED] and run.noted() == []
    assert run.spoken() == "Fewer than <3 items.<"


@pytest.mark.parametrize(
    "garbled",
    [
        "<dtmf>two</dtmf>",
        "<dtmf></dtmf>",
        "<dtmf>9",  # never closed
        "<ivr>lost</ivr>",
        "<mode>robot</mode>",
        "<dtmf>1</ivr>",
    ],
)
async def test_bad_tags_are_logged_and_do_nothing(
    garbled: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run()
    with caplog.at_level(logging.WARNING, logger="callpipe.extensions.ivr"):
        await run.feed(*reply("<mode>ivr</mode>"), *reply(garbled), *reply("<dtmf>5</dtmf>"))
    assert run.pressed() == ["5"]  # and the processor still works after it
    assert run.statuses == [IVRStatus.DETECTED]
    assert run.spoken() == "" and run.noted() == ["<dtmf>5</dtmf>"]
    assert [r.levelname for r in caplog.records] == ["WARNING"]


async def test_an_interruption_forgets_a_half_written_tag() -> None:
    run = Run()
    await run.feed(
        *reply("<mode>ivr</mode>"),
        LLMFullResponseStartFrame(),
        LLMTextFrame("<dtmf>"),
        SleepFrame(0.05),  # the interruption would overtake the queued text
        InterruptionFrame(),
        *reply("7</dtmf> Yes."),
    )
    assert run.pressed() == [] and run.spoken() == "7</dtmf> Yes."


class Seen(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.seen.append(frame)
        await self.push_frame(frame, direction)


class PassThroughLLM(Seen):
    """Stands for an LLM service: it declares that the caller's audio only passes it."""

    passes_input_audio = True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)


async def test_the_callers_audio_steps_over_the_navigator() -> None:
    llm = PassThroughLLM()
    navigator = IVRNavigator(llm=llm, ivr_prompt="Reach billing.")
    after = Seen()
    audio = InputAudioRawFrame(bytes(320), 8000, 1)
    await run_test(Pipeline([navigator, after]), [audio])
    assert navigator._skip_input_audio  # not one call into the navigator per audio frame
    assert audio in after.seen and audio not in llm.seen
