"""Callee personas for outbound-call tests: who (or what) picks up the phone.

Each persona is a timeline of speech, tones and silence, rendered to PCM at the call's rate
(offline: eSpeak NG for speech, generated sine tones), with the verdict an answering-machine
detector should reach:

- ``human``: says "Hello?" and waits.
- ``voicemail``: a five-second greeting, then a 1 kHz beep (0.5 s), then records.
- ``silent``: nobody says anything.
- ``fax``: the CNG calling tone, 1100 Hz for 0.5 s every 3.5 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from callpipe.testing.simulator.call import SimulatedCall
from callpipe.testing.simulator.sources import load_audio

GREETING = (
    "Hi, you've reached Sam. I can't take your call right now. "
    "Please leave a message after the tone."
)


@dataclass(frozen=True, slots=True)
class Speech:
    text: str


@dataclass(frozen=True, slots=True)
class Tone:
    hz: float
    secs: float
    level: float = 0.3


@dataclass(frozen=True, slots=True)
class Silence:
    secs: float


Step = Speech | Tone | Silence


def tone(hz: float, secs: float, sample_rate: int, level: float = 0.3) -> bytes:
    """A sine tone with 5 ms ramps (no clicks), PCM16."""
    n = int(sample_rate * secs)
    t = np.arange(n) / sample_rate
    wave = level * np.sin(2 * np.pi * hz * t)
    ramp = min(n // 2, sample_rate // 200)
    if ramp:
        env = np.ones(n)
        env[:ramp] = np.linspace(0, 1, ramp)
        env[-ramp:] = np.linspace(1, 0, ramp)
        wave *= env
    return (wave * 32767).astype("<i2").tobytes()


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    expected: str
    """The classification a detector should reach first."""
    steps: tuple[Step, ...]

    async def segments(self, sample_rate: int) -> list[tuple[Step, bytes]]:
        out: list[tuple[Step, bytes]] = []
        for step in self.steps:
            if isinstance(step, Speech):
                pcm = await load_audio(step.text, sample_rate)
            elif isinstance(step, Tone):
                pcm = tone(step.hz, step.secs, sample_rate, step.level)
            else:
                pcm = bytes(2 * int(sample_rate * step.secs))
            out.append((step, pcm))
        return out

    async def render(self, sample_rate: int) -> bytes:
        """The whole callee track as PCM16 mono."""
        return b"".join(pcm for _, pcm in await self.segments(sample_rate))

    async def beep_end(self, sample_rate: int) -> float | None:
        """Seconds into the track when the last tone ends (the voicemail's beep), if any."""
        t, end = 0.0, None
        for step, pcm in await self.segments(sample_rate):
            t += len(pcm) / 2 / sample_rate
            if isinstance(step, Tone):
                end = t
        return end

    async def answer(self, call: SimulatedCall) -> None:
        """Play the persona into a simulated call, in real time (returns when it is over)."""
        await call.say(await self.render(call.rate))


PERSONAS: dict[str, Persona] = {
    "human": Persona("human", "human", (Silence(0.4), Speech("Hello?"), Silence(8.0))),
    "voicemail": Persona(
        "voicemail",
        "machine_start",
        (Silence(0.3), Speech(GREETING), Silence(0.3), Tone(1000.0, 0.5), Silence(10.0)),
    ),
    "silent": Persona("silent", "unknown", (Silence(8.0),)),
    "fax": Persona(
        "fax",
        "fax",
        (Tone(1100.0, 0.5), Silence(3.0), Tone(1100.0, 0.5), Silence(3.0), Tone(1100.0, 0.5)),
    ),
}
