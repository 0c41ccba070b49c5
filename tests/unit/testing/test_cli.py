"""``callpipe call``: argument parsing, and whole runs against the in-test echo bot."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

import pytest

from callpipe.testing import cli
from callpipe.testing.simulator.script import parse_dtmf_schedule
from callpipe.testing.virtual_calls import virtual_time

from .fake_bot import fake_bot, tone


def test_dtmf_schedule_parsing() -> None:
    assert parse_dtmf_schedule("1@3.0,#@9.5") == [("1", 3.0), ("#", 9.5)]
    assert parse_dtmf_schedule(" #@2 , 12@1 ") == [("12", 1.0), ("#", 2.0)]
    assert parse_dtmf_schedule("") == []
    for bad in ("1", "x@1", "@2", "1@soon"):
        with pytest.raises(ValueError):
            parse_dtmf_schedule(bad)


def test_arguments_build_the_script() -> None:
    args = cli.build_parser().parse_args(
        ["ws://h/ws", "--say", "hi", "--wav", "a.wav", "--say", "bye", "--stall", "2:0.5"]
        + ["--jitter", "30", "--close-at", "9", "--barge-in", "0.4", "--dtmf", "5@1"]
    )
    script = cli.script_from_args(args)
    assert script.utterances == ["hi", Path("a.wav"), "bye"]
    assert (script.faults.stall_at, script.faults.stall_secs) == (2.0, 0.5)
    assert (script.faults.jitter_ms, script.faults.close_at) == (30.0, 9.0)
    assert script.barge_in_after == 0.4 and script.dtmf == [("5", 1.0)]
    assert cli.main(["ws://h/ws", "--dtmf", "nonsense"]) == 2


@virtual_time
async def test_one_call_prints_timeline_and_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "say.wav"
    with wave.open(str(source), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(tone(0.5, 16000, 300))
    record = tmp_path / "call.wav"
    async with fake_bot(greeting_secs=0.3) as bot:
        argv = [bot.url, "--wav", str(source), "--dtmf", "#@2.6", "--quiet", "0.3"]
        rc = await asyncio.to_thread(cli.main, [*argv, "--record", str(record)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "ended by bot" in out and "caller speaks" in out and "turns (caller stops" in out
    with wave.open(str(record)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 8000)
        assert w.getnframes() > 2 * 8000


@virtual_time
async def test_many_calls_print_a_latency_summary(capsys: pytest.CaptureFixture[str]) -> None:
    async with fake_bot(greeting_secs=0.2) as bot:
        argv = [bot.url, "--calls", "3", "--no-greeting", "--linger", "0.3", "--quiet", "0.3"]
        rc = await asyncio.to_thread(cli.main, argv)
    out = capsys.readouterr().out
    assert rc == 0
    assert "3 calls: 3 completed, 0 failed" in out


@virtual_time
async def test_unreachable_bot_fails_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    rc = await asyncio.to_thread(cli.main, ["ws://127.0.0.1:9/ws", "--max-duration", "1"])
    assert rc == 1
    assert "connect failed" in capsys.readouterr().out
