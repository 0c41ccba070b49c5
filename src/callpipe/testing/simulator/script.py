"""Scripted calls: a caller that waits its turn (or barges in), presses keys on a schedule and
hangs up at the end; and many such calls at once for load."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from callpipe.errors import ConfigurationError
from callpipe.testing.simulator.call import CallEnded, NetworkFaults, SimulatedCall
from callpipe.testing.simulator.dialects import CallIdentity
from callpipe.testing.simulator.result import CallEvent, CallResult
from callpipe.testing.simulator.sources import AudioSource

logger = logging.getLogger(__name__)


@dataclass
class CallScript:
    """What the simulated caller does.

    The caller listens to the greeting, then says each utterance in turn after the bot has
    finished answering the previous one (silent for ``quiet_secs``). With ``barge_in_after``
    it instead starts talking that many seconds after the bot starts speaking, interrupting it.
    ``dtmf`` keys are pressed at fixed times (seconds from call start) regardless of turns.
    After the script the caller waits until the bot is quiet for ``linger_secs`` (or hangs
    up itself), then hangs up.
    """

    utterances: Sequence[AudioSource] = ()
    dtmf: Sequence[tuple[str, float]] = ()
    wait_for_greeting: bool = True
    barge_in_after: float | None = None
    quiet_secs: float = 0.8
    turn_timeout: float = 15.0
    linger_secs: float = 2.0
    max_duration: float = 120.0
    faults: NetworkFaults = field(default_factory=NetworkFaults)


def parse_dtmf_schedule(text: str) -> list[tuple[str, float]]:
    """``"1@3.0,#@9.5"`` → ``[("1", 3.0), ("#", 9.5)]``; keys may be several digits."""
    schedule: list[tuple[str, float]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        keys, sep, at = item.partition("@")
        if not sep or not keys:
            raise ConfigurationError(f"DTMF item {item!r} is not KEYS@SECONDS")
        if any(k not in "0123456789*#" for k in keys):
            raise ConfigurationError(f"DTMF item {item!r} has a key that is not 0-9, * or #")
        schedule.append((keys, float(at)))
    return sorted(schedule, key=lambda entry: entry[1])


async def _press_on_schedule(call: SimulatedCall, schedule: Sequence[tuple[str, float]]) -> None:
    for keys, at in schedule:
        await asyncio.sleep(max(0.0, at - call.now()))
        await call.press(keys)


async def _converse(call: SimulatedCall, script: CallScript) -> None:
    for i, utterance in enumerate(script.utterances):
        if script.barge_in_after is not None:
            await call.wait_for_bot_speech(script.turn_timeout)
            await asyncio.sleep(script.barge_in_after)
        elif i > 0 or script.wait_for_greeting:
            await call.wait_for_bot_turn(script.turn_timeout, script.quiet_secs)
        if call.ended:
            return
        await call.say(utterance)
    if script.utterances:
        await call.wait_for_bot_turn(script.turn_timeout, script.quiet_secs)
    elif script.wait_for_greeting:
        await call.wait_for_bot_turn(script.turn_timeout, script.quiet_secs)


async def drive(call: SimulatedCall, script: CallScript) -> None:
    """Play ``script`` on a connected call, then hang up unless the bot already did."""
    presser = asyncio.ensure_future(_press_on_schedule(call, script.dtmf))
    try:
        async with asyncio.timeout(script.max_duration):
            await _converse(call, script)
            await presser
            await call.wait_for_bot_silence(script.linger_secs, script.turn_timeout)
    except TimeoutError:
        call.events.append(CallEvent(call.now(), "fault", "script hit max_duration"))
    except CallEnded:
        pass
    finally:
        presser.cancel()
        with contextlib.suppress(asyncio.CancelledError, CallEnded):
            await presser
        await call.hang_up()


async def run_script(
    url: str,
    script: CallScript,
    provider: str = "twilio",
    *,
    identity: CallIdentity | None = None,
    headers: dict[str, str] | None = None,
    keep_messages: bool = False,
) -> CallResult:
    """Place one scripted call and return what happened."""
    call = SimulatedCall(
        url,
        provider,
        identity=identity,
        headers=headers,
        faults=script.faults,
        keep_messages=keep_messages,
    )
    try:
        await call.connect()
    except Exception as exc:
        logger.warning("could not connect to %s: %s", url, exc)
        return _failed(call, exc)
    await drive(call, script)
    return call.result()


def _failed(call: SimulatedCall, exc: Exception) -> CallResult:
    import numpy as np

    return CallResult(
        provider=call.provider,
        sample_rate=call.rate,
        caller=np.zeros(0, dtype=np.int16),
        bot=np.zeros(0, dtype=np.int16),
        events=[CallEvent(0.0, "error", f"connect failed: {type(exc).__name__}: {exc}")],
        voiced_arrivals=[],
        duration=0.0,
        ended_by="error",
    )


async def run_calls(
    url: str,
    script: CallScript,
    count: int,
    provider: str = "twilio",
    *,
    stagger_secs: float = 0.02,
    headers: dict[str, str] | None = None,
) -> list[CallResult]:
    """Place ``count`` scripted calls at once (started ``stagger_secs`` apart)."""

    async def one(index: int) -> CallResult:
        await asyncio.sleep(index * stagger_secs)
        return await run_script(url, script, provider, headers=headers)

    return list(await asyncio.gather(*(one(i) for i in range(count))))
