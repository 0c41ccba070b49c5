"""WarmTransferProcessor driven frame by frame: what it asks of the TTS and the mixer."""

from __future__ import annotations

import asyncio
import logging

import pytest

from callpipe.errors import CallControlError, ConfigurationError
from callpipe.extensions.warm_transfer import WarmTransferProcessor
from callpipe.frames.frames import Frame, MixerEnableFrame, TTSSpeakFrame
from callpipe.telephony.dial.warm_transfer import WarmTransferResult
from callpipe.testing.pipeline import SleepFrame, run_test


def asks(frames: list[Frame]) -> list[object]:
    out: list[object] = []
    for f in frames:
        if isinstance(f, TTSSpeakFrame):
            out.append(f.text)
        elif isinstance(f, MixerEnableFrame):
            out.append(f.enable)
    return out


async def drive(
    proc: WarmTransferProcessor, start: object, *, twice: bool = False
) -> tuple[list[Frame], list[object]]:
    results: list[object] = []

    async def caller() -> None:
        await asyncio.sleep(0.05)
        runs = [proc.transfer(start)]  # type: ignore[arg-type]
        if twice:
            runs.append(proc.transfer(start))  # type: ignore[arg-type]
        results.extend(await asyncio.gather(*runs))

    side = asyncio.create_task(caller())
    down, _ = await run_test(proc, [SleepFrame(0.8)])
    await side
    return down, results


async def test_failed_rest_sequence_stops_the_music_and_resumes() -> None:
    proc = WarmTransferProcessor(prompt_timeout=0.1, resume_message="Back with you.")
    failed: list[object] = []

    @proc.event_handler("on_transfer_failed")
    async def on_failed(_: object, result: object) -> None:
        failed.append(result)

    async def start() -> WarmTransferResult:
        await asyncio.sleep(0.3)
        raise CallControlError("twilio POST /Calls.json: HTTP 401")

    down, results = await drive(proc, start)
    assert asks(down) == ["Please hold while I connect you.", True, False, "Back with you."]
    assert results == [None] and failed == [None]
    assert not proc.in_progress


async def test_quick_bridge_plays_no_music_and_a_second_transfer_is_refused() -> None:
    proc = WarmTransferProcessor(prompt_timeout=0.2)
    bridged: list[WarmTransferResult] = []

    @proc.event_handler("on_transfer_bridged")
    async def on_bridged(_: object, result: WarmTransferResult) -> None:
        bridged.append(result)

    async def start() -> WarmTransferResult:
        return WarmTransferResult("bridged", "CAagent", "room")

    down, results = await drive(proc, start, twice=True)
    assert asks(down) == ["Please hold while I connect you."]  # bridged before the music
    assert results[0] == WarmTransferResult("bridged", "CAagent", "room") and results[1] is None
    assert [r.outcome for r in bridged] == ["bridged"]


@pytest.mark.parametrize(
    "error",
    [
        CallControlError(
            "twilio GET /2010-04-01/Accounts/AC1/Calls/CA0123456789abcdef.json: HTTP 401 no",
            reason="HTTP 401 no",
        ),
        ConfigurationError("invalid transfer target '+1555012345678901234567': expected ..."),
    ],
)
async def test_failed_transfer_logs_one_warning_without_ids_or_numbers(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    proc = WarmTransferProcessor(prompt_timeout=0.1)

    async def start() -> WarmTransferResult:
        raise error

    with caplog.at_level(logging.DEBUG, logger="callpipe"):
        _, results = await drive(proc, start)
    assert results == [None]
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["WARNING"] and loud[0].exc_info is None
    line = loud[0].getMessage()
    assert "warm transfer failed" in line and ("HTTP 401" in line or "…4567" in line)
    assert "CA0123456789abcdef" not in caplog.text and "55501234567" not in caplog.text
