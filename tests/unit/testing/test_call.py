"""The simulator against a tiny echo bot: pacing, playout model, marks, clear, DTMF, hang-up,
recording, latency, fault injection and concurrent calls. Real time, a few seconds each."""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest
from websockets.asyncio.server import ServerConnection, serve

from callpipe.testing.simulator import (
    CallScript,
    NetworkFaults,
    SimulatedCall,
    run_calls,
    run_script,
)
from callpipe.testing.simulator.script import parse_dtmf_schedule
from callpipe.testing.virtual_calls import virtual_time

from .fake_bot import fake_bot, tone


@virtual_time
async def test_greeting_is_played_in_real_time_and_its_mark_acked_after_playout() -> None:
    async with fake_bot(greeting_secs=0.6) as bot, SimulatedCall(bot.url) as call:
        assert await call.wait_for_bot_turn(timeout=5, quiet_secs=0.3)
        result = call.result()
    # The bot sent 0.6 s of audio in one burst; the phone plays it over 0.6 s.
    [(start, end)] = result.bot_regions()
    assert start < 0.15 and end == pytest.approx(0.6, abs=0.1)
    [mark] = result.events_of("mark")
    [ack] = result.events_of("mark_ack")
    assert mark.detail == ack.detail == "m1"
    assert ack.t >= 0.58  # not before the audio it follows has played
    assert bot.calls[0].acked_marks == ["m1"]


@virtual_time
async def test_echo_turn_latency_and_recording() -> None:
    async with fake_bot(greeting_secs=0.3) as bot, SimulatedCall(bot.url) as call:
        assert await call.wait_for_bot_turn(timeout=5, quiet_secs=0.3)
        said_at = call.now()
        await call.say(tone(0.5, freq=300))
        assert await call.wait_for_bot_turn(timeout=5, quiet_secs=0.3)
        result = call.result()
    caller = result.caller_regions()
    assert len(caller) == 1
    assert caller[0][0] == pytest.approx(said_at, abs=0.1)
    assert caller[0][1] - caller[0][0] == pytest.approx(0.5, abs=0.05)
    [turn] = result.turns()
    # The fake bot answers after 15 quiet packets (0.3 s).
    assert turn.latency is not None and 0.25 <= turn.latency < 1.0
    assert len(result.bot_regions()) == 2

    wav = wave.open(io.BytesIO(result.stereo_wav()))
    assert (wav.getnchannels(), wav.getframerate(), wav.getsampwidth()) == (2, 8000, 2)
    frames = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    s, e = (int(x * 8000) for x in caller[0])
    assert np.abs(frames[s:e, 0]).max() > 5000  # caller on the left
    assert np.abs(frames[s:e, 1]).max() == 0  # the bot was quiet meanwhile
    bs, be = (int(x * 8000) for x in result.bot_regions()[1])
    assert np.abs(frames[bs:be, 1]).max() > 5000  # the echo on the right
    assert "turns (caller stops → first bot audio)" in result.timeline()


@virtual_time
async def test_barge_in_clear_drops_unplayed_audio_and_acks_pending_mark() -> None:
    async with fake_bot(greeting_secs=2.0) as bot, SimulatedCall(bot.url) as call:
        assert await call.wait_for_bot_speech(timeout=5)
        await call.pause(0.4)
        await call.say(tone(0.3, freq=300), wait=False)
        clear = await call.wait_for_event("clear", timeout=2)
        assert clear is not None
        await call.pause(0.3)
        result = call.result()
    assert clear.t < 0.9
    # The greeting stops where the clear arrived, though 2 s of it had been sent.
    first = result.bot_regions()[0]
    assert first[1] == pytest.approx(clear.t, abs=0.06)
    acks = result.events_of("mark_ack")
    assert acks and acks[0].detail == "m1" and acks[0].t == pytest.approx(clear.t, abs=0.01)
    assert bot.calls[0].acked_marks[0] == "m1"
    [turn] = result.turns()
    assert turn.interrupt_latency is not None and turn.interrupt_latency < 0.5


@virtual_time
async def test_dtmf_reaches_bot_and_pound_ends_call_by_bot() -> None:
    async with fake_bot(greeting_secs=0.2) as bot, SimulatedCall(bot.url) as call:
        await call.press("12")
        await call.pause(0.2)
        await call.press("#")
        assert await call.wait_for_hangup(timeout=3)
        result = call.result()
    digits = [m["dtmf"]["digit"] for m in bot.calls[0].received if m["event"] == "dtmf"]
    assert digits == ["1", "2", "#"]
    assert result.ended_by == "bot" and result.close_code == 1000
    assert result.dtmf_sent == "12#"
    with pytest.raises(ValueError):
        await call.press("x")


@virtual_time
async def test_caller_hang_up_sends_stop_then_closes() -> None:
    async with fake_bot() as bot:
        async with SimulatedCall(bot.url) as call:
            await call.pause(0.3)
        assert call.result().ended_by == "caller"
    events = [m["event"] for m in bot.calls[0].received]
    assert events[:2] == ["connected", "start"]
    assert events[-1] == "stop"
    assert bot.calls[0].close_code == 1000
    media = [m for m in bot.calls[0].received if m["event"] == "media"]
    # 20 ms pacing from a monotonic schedule: ~15 packets in 0.3 s, never a burst.
    assert 10 <= len(media) <= 30
    seqs = [int(m["sequenceNumber"]) for m in bot.calls[0].received[1:]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@virtual_time
async def test_jitter_keeps_order_and_delivers_everything() -> None:
    faults = NetworkFaults(jitter_ms=60, seed=1)
    async with fake_bot() as bot:
        async with SimulatedCall(bot.url, faults=faults) as call:
            await call.pause(0.6)
        log = bot.calls[0]
    chunks = [int(m["media"]["chunk"]) for m in log.received if m["event"] == "media"]
    assert chunks == list(range(1, len(chunks) + 1))
    gaps = np.diff(
        [t for t, m in zip(log.receive_times, log.received, strict=True) if m["event"] == "media"]
    )
    assert gaps.max() > 0.03  # bunched up by the jitter


@virtual_time
async def test_stall_holds_traffic_then_bursts() -> None:
    faults = NetworkFaults(stall_at=0.2, stall_secs=0.5)
    async with fake_bot() as bot:
        async with SimulatedCall(bot.url, faults=faults) as call:
            await call.pause(1.0)
        log = bot.calls[0]
    times = [
        t for t, m in zip(log.receive_times, log.received, strict=True) if m["event"] == "media"
    ]
    assert np.diff(times).max() >= 0.45
    assert len(times) >= 45  # the backlog still arrives


@virtual_time
async def test_abrupt_close_is_seen_as_network_loss() -> None:
    async with fake_bot() as bot:
        call = SimulatedCall(bot.url, faults=NetworkFaults(close_at=0.3))
        await call.connect()
        assert not await call.wait_for_hangup(timeout=2)
        result = call.result()
        await call.hang_up()
        await call.hang_up()  # idempotent
    assert result.ended_by == "network"
    assert any(e.kind == "fault" for e in result.events)
    assert bot.calls[0].close_code == 1006


@virtual_time
async def test_scripted_calls_in_parallel() -> None:
    script = CallScript(
        utterances=[tone(0.4, freq=300)],
        dtmf=parse_dtmf_schedule("#@2.5"),
        quiet_secs=0.3,
        linger_secs=0.3,
        max_duration=8,
    )
    async with fake_bot(greeting_secs=0.3) as bot:
        results = await run_calls(bot.url, script, 4)
    assert [r.ended_by for r in results] == ["bot"] * 4
    assert all(len(r.latencies()) == 1 for r in results)
    sids = {m["streamSid"] for log in bot.calls for m in log.received if m["event"] == "start"}
    assert len(sids) == 4


@virtual_time
async def test_script_barge_in_interrupts_the_greeting() -> None:
    script = CallScript(
        utterances=[tone(0.3, freq=300)],
        barge_in_after=0.3,
        quiet_secs=0.3,
        linger_secs=0.3,
        max_duration=6,
    )
    async with fake_bot(greeting_secs=2.0) as bot:
        result = await run_script(bot.url, script)
    assert result.ended_by == "caller"
    assert result.clears and result.clears[0] < 1.0


@virtual_time
async def test_connect_failure_is_reported_not_raised() -> None:
    result = await run_script("ws://127.0.0.1:9/ws", CallScript(max_duration=1))
    assert result.ended_by == "error" and result.events_of("error")


@pytest.mark.parametrize("provider", ["telnyx", "plivo", "exotel", "vonage"])
@virtual_time
async def test_every_dialect_streams_and_presses_keys(provider: str) -> None:
    """A recording server sees the dialect's handshake, paced media and DTMF."""
    seen: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            seen.append(message)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with SimulatedCall(f"ws://127.0.0.1:{port}/ws", provider) as call:
            await call.say(tone(0.1, rate=call.rate))
            await call.press("5")
            await call.pause(0.05)
    texts = [json.loads(m) for m in seen if isinstance(m, str)]
    binary = [m for m in seen if isinstance(m, bytes)]
    assert any("dtmf" in str(t.get("event")) for t in texts)
    if provider == "vonage":
        assert binary and all(len(b) == 640 for b in binary)
    else:
        assert sum(t.get("event") == "media" for t in texts) >= 5
