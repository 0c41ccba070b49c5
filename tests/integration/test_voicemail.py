"""VoicemailDetector on a real uvicorn server, called by the simulator's callee personas.

The bot wants to greet at once; the detector holds that until it knows who answered. A person
hears the greeting after their "Hello?"; a voicemail hears nothing during its greeting, then the
message after the beep, then the bot hangs up; a fax machine is hung up on; a silent line gets
the greeting once the detector gives up waiting.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")

from fastapi import WebSocket

from callpipe.extensions.voicemail import VoicemailDetector
from callpipe.frames.frames import TTSSpeakFrame
from callpipe.services.espeak import ESpeakTTSService
from callpipe.testing.simulator.personas import PERSONAS
from callpipe.testing.virtual_calls import virtual_time

from .call_bot import call_bot, phone_task, phone_transport, run_until_hangup, twilio_serializer

pytestmark = pytest.mark.integration

GREETING = "Hi Ada, this is the clinic calling about your appointment tomorrow."
MESSAGE = "Hi Ada, the clinic here. Please call us back to confirm tomorrow. Goodbye."


@dataclass
class Seen:
    results: list[tuple[str, float]] = field(default_factory=list)
    voicemail_events: int = 0
    conversation_events: int = 0


async def run_bot(websocket: WebSocket, start: dict[str, Any], seen: Seen) -> None:
    transport = phone_transport(websocket, twilio_serializer(start))
    detector = VoicemailDetector(timeout=6.0, voicemail_message=MESSAGE)
    task = phone_task(
        [
            transport.input(),
            detector.detector(),
            ESpeakTTSService(),
            detector.gate(),
            transport.output(),
        ]
    )

    @detector.event_handler("on_amd_result")
    async def on_result(_: Any, result: str, at: float) -> None:
        seen.results.append((result, at))

    @detector.event_handler("on_voicemail_detected")
    async def on_voicemail(_: Any) -> None:
        seen.voicemail_events += 1

    @detector.event_handler("on_conversation_detected")
    async def on_conversation(_: Any) -> None:
        seen.conversation_events += 1

    @transport.event_handler("on_client_connected")
    async def on_client_connected(transport: Any, client: Any) -> None:
        await task.queue_frames([TTSSpeakFrame(GREETING)])  # held by the gate until decided

    await run_until_hangup(transport, task)


async def place(persona: str, listen_secs: float) -> tuple[Seen, Any, float | None]:
    seen = Seen()
    async with call_bot(functools.partial(run_bot, seen=seen)) as call:
        callee = asyncio.create_task(PERSONAS[persona].answer(call))
        await call.wait_for_hangup(timeout=listen_secs)
        if not call.ended:
            await call.hang_up()
        callee.cancel()
        result = call.result()
    return seen, result, await PERSONAS[persona].beep_end(8000)


@virtual_time
async def test_voicemail_gets_the_message_after_the_beep_then_hang_up() -> None:
    seen, result, beep_end = await place("voicemail", listen_secs=20.0)
    assert [r for r, _ in seen.results] == ["machine_start", "machine_end_beep"]
    assert seen.voicemail_events == 1 and seen.conversation_events == 0
    assert beep_end is not None
    # Nothing during the greeting (the held greeting was dropped), the message after the beep.
    assert result.bot_speech_secs(0.0, beep_end) < 0.05
    assert result.bot_speech_secs(beep_end, result.duration) > 2.0
    assert result.hung_up_by_bot
    first_word = result.bot_regions()[0][0]
    assert beep_end - 0.02 < first_word < beep_end + 1.5


@virtual_time
async def test_human_hears_the_greeting_after_hello() -> None:
    seen, result, _ = await place("human", listen_secs=5.0)
    assert seen.results[0][0] == "human" and seen.conversation_events == 1
    hello_end = result.caller_regions()[0][1]
    first_word = result.bot_regions()[0][0]
    assert hello_end < first_word < hello_end + 2.0
    assert result.bot_speech_secs(first_word, result.duration) > 2.0
    assert not result.hung_up_by_bot


@virtual_time
async def test_fax_is_hung_up_on_without_a_word() -> None:
    seen, result, _ = await place("fax", listen_secs=6.0)
    assert [r for r, _ in seen.results] == ["fax"]
    assert result.hung_up_by_bot
    assert result.bot_speech_secs() < 0.05


@virtual_time
async def test_silent_line_is_greeted_after_the_detector_gives_up() -> None:
    seen, result, _ = await place("silent", listen_secs=7.5)
    assert seen.results[0][0] == "unknown" and seen.conversation_events == 1
    first_word = result.bot_regions()[0][0]
    assert 4.5 < first_word < 7.5
