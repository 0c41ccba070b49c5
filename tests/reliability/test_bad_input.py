"""Bad input on a live call: every kind is skipped with one log line and the call keeps working.

A real uvicorn server runs the bot; a client speaking Twilio's protocol sends each kind of bad
message in the middle of a call, then proves audio still flows both ways.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest

from callpipe.testing.virtual_calls import virtual_time

from .helpers import BotServer, Caller, assert_call_alive, capture_logs, serve

pytestmark = pytest.mark.integration

SID = "MZ" + "0" * 31 + "1"

# (what is sent, the malformed kind the serializer must count)
BAD_MESSAGES: list[tuple[str | bytes, str]] = [
    ("not json at all", "invalid_json"),
    ('{"event": "media", "media": {"payload": "AAAA"}', "invalid_json"),  # truncated
    ("[" * 100_000, "invalid_json"),  # nesting deep enough to hit the recursion limit
    ("[1, 2, 3]", "not_an_object"),
    ("42", "not_an_object"),
    ('"media"', "not_an_object"),
    ("null", "not_an_object"),
    ("{}", "missing_event"),
    ('{"event": 7}', "missing_event"),
    ('{"event": "unheard-of", "streamSid": "MZ1"}', "unknown_event"),
    ('{"event": "media"}', "missing_media"),
    ('{"event": "media", "media": "AAAA"}', "missing_media"),
    ('{"event": "media", "media": {}}', "missing_payload"),
    ('{"event": "media", "media": {"payload": 1234}}', "missing_payload"),
    ('{"event": "media", "media": {"payload": ""}}', "missing_payload"),
    ('{"event": "media", "media": {"payload": "not base64!"}}', "bad_base64"),
    ('{"event": "media", "media": {"payload": "AAA"}}', "bad_base64"),  # bad padding
    (
        json.dumps(
            {"event": "media", "media": {"payload": base64.b64encode(bytes(100_000)).decode()}}
        ),
        "payload_too_large",
    ),
    ('{"event": "dtmf"}', "missing_dtmf"),
    ('{"event": "dtmf", "dtmf": {"digit": "X"}}', "bad_dtmf_digit"),
    ('{"event": "dtmf", "dtmf": {"digit": "12"}}', "bad_dtmf_digit"),
    ('{"event": "dtmf", "dtmf": {"digit": null}}', "bad_dtmf_digit"),
    ('{"event": "dtmf", "dtmf": {"digit": 1e999}}', "bad_dtmf_digit"),
    ('{"event": "dtmf", "dtmf": {"digit": true}}', "bad_dtmf_digit"),
    ('{"event": "mark", "mark": {}}', "missing_mark_name"),
    ('{"event": "mark"}', "missing_mark"),
    (b"\x00\x01\x02 binary where text is expected", "invalid_json"),
    (b"\xff\xfe\xfd", "invalid_json"),
    (  # a repeated start announcing audio this stream's decoder would garble
        json.dumps(
            {
                "event": "start",
                "start": {
                    "streamSid": SID,
                    "mediaFormat": {"encoding": "audio/x-alaw", "sampleRate": 16000},
                },
            }
        ),
        "unsupported_media_format",
    ),
]


async def test_each_kind_of_bad_message_is_skipped_once_logged_and_the_call_survives() -> None:
    server = BotServer()
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await caller.send_silence(0.1)
            for data, _ in BAD_MESSAGES:
                await caller.send_raw(data)
            for data, _ in BAD_MESSAGES:  # twice: the second round is counted, not logged
                await caller.send_raw(data)
            await caller.press("5")
            await asyncio.sleep(0.2)
            (record,) = server.calls
            await assert_call_alive(caller, record)
        await server.wait_calls(1)
    counts = record.serializer.malformed_counts
    expected: dict[str, int] = {}
    for _, kind in BAD_MESSAGES:
        expected[kind] = expected.get(kind, 0) + 2
    assert counts == expected
    assert record.digits == ["5"]  # good messages between bad ones still work
    warnings = [r for r in logs.records if r.levelno >= logging.WARNING]
    for kind in expected:
        lines = [r.getMessage() for r in warnings if f"({kind})" in r.getMessage()]
        assert len(lines) == 1, (kind, lines)
        assert "twilio" in lines[0].lower()
        assert "CA00" in lines[0]  # the call's id (or its masked form)
    assert not [r for r in logs.records if r.levelno >= logging.ERROR]
    (end,) = logs.call_ends()
    assert end.malformed == sum(expected.values())  # type: ignore[attr-defined]


@virtual_time
async def test_odd_length_and_short_audio_is_accepted_not_dropped() -> None:
    server = BotServer()
    async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
        for size in (1, 33, 161, 159):
            payload = base64.b64encode(bytes([0xFF]) * size).decode()
            await caller.send({"event": "media", "media": {"payload": payload}})
        await asyncio.sleep(0.1)
        (record,) = server.calls
        assert len(record.audio_in) == 4
        assert record.malformed_total() == 0
        await assert_call_alive(caller, record)


@virtual_time
async def test_a_10mb_message_is_skipped_and_counted() -> None:
    server = BotServer()
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await caller.send_silence(0.1)
            big = json.dumps({"event": "media", "media": {"payload": "A" * 10_000_000}})
            await caller.send_raw(big)
            await caller.send_raw(big.encode())
            (record,) = server.calls
            await assert_call_alive(caller, record)
        await server.wait_calls(1)
    assert record.stats.malformed == 2
    lines = [m for m in logs.lines(logging.WARNING) if "message_too_large" in m]
    assert len(lines) == 1, lines  # one line per kind, not per size
    assert "twilio" in lines[0].lower()


@virtual_time
async def test_a_message_over_the_servers_hard_limit_ends_only_that_call() -> None:
    server = BotServer()
    async with serve(server.app, ws_max_size=2_000_000) as addr:
        async with Caller(f"ws://{addr}/ws", 1) as victim, Caller(f"ws://{addr}/ws", 2) as other:
            await asyncio.sleep(0.1)
            await victim.send_raw("x" * 3_000_000)
            await asyncio.wait_for(victim.closed.wait(), 5)
            assert victim.close_code == 1009  # message too big: uvicorn closes that socket
            await server.calls[0].done.wait()
            await assert_call_alive(other, server.calls[1])
    assert "caller hung up" in (server.calls[0].stats.end_reason or "")


@virtual_time
async def test_a_flood_of_10000_tiny_messages_costs_one_log_line_per_kind() -> None:
    server = BotServer()
    with capture_logs() as logs:
        async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
            await caller.send_silence(0.1)
            for i in range(10_000):
                await caller.send_raw("{" if i % 2 else "1")
            await caller.press("3")
            (record,) = server.calls
            for _ in range(200):
                if record.digits:
                    break
                await asyncio.sleep(0.05)
            assert record.digits == ["3"]
            await assert_call_alive(caller, record)
        await server.wait_calls(1)
    counts = record.serializer.malformed_counts
    assert counts == {"invalid_json": 5000, "not_an_object": 5000}
    flood_lines = [m for m in logs.lines(logging.WARNING) if "malformed" in m or "bad message" in m]
    assert len(flood_lines) == 2, flood_lines


@pytest.mark.parametrize(
    "media_format",
    [{"encoding": "audio/x-mulaw", "sampleRate": 8000}, {"encoding": "audio/x-mulaw"}, {}],
)
@virtual_time
async def test_a_repeated_start_with_the_expected_format_is_ignored_quietly(
    media_format: dict[str, object],
) -> None:
    server = BotServer()
    async with serve(server.app) as addr, Caller(f"ws://{addr}/ws") as caller:
        msg = caller.start_message()
        msg["start"]["mediaFormat"] = media_format
        await caller.send(msg)
        await asyncio.sleep(0.05)
        (record,) = server.calls
        assert record.malformed_total() == 0
        await assert_call_alive(caller, record)
