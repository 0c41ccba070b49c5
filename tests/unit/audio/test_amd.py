"""The local answering-machine detector on the simulator's callee personas and on edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from callpipe.audio.amd import AnsweringMachineDetector, tone_analysis
from callpipe.audio.g711 import table_pcm_to_ulaw, table_ulaw_to_pcm
from callpipe.testing.simulator.personas import (
    PERSONAS,
    Persona,
    Silence,
    Speech,
    Step,
    Tone,
    tone,
)

pytest.importorskip("espeakng_loader", reason="needs the espeak extra")


def run(pcm: bytes, rate: int, chunk: int) -> list[tuple[str, float]]:
    detector = AnsweringMachineDetector(rate)
    for i in range(0, len(pcm), chunk):
        detector.feed(pcm[i : i + chunk])
    return [(v.result, v.at) for v in detector.verdicts]


@pytest.mark.parametrize("rate", [8000, 16000])
@pytest.mark.parametrize("name", sorted(PERSONAS))
async def test_each_persona_is_classified(name: str, rate: int) -> None:
    persona = PERSONAS[name]
    verdicts = run(await persona.render(rate), rate, rate // 50 * 2)
    assert verdicts, "no verdict"
    assert verdicts[0][0] == persona.expected
    if name == "voicemail":
        beep_end = await persona.beep_end(rate)
        assert beep_end is not None
        assert verdicts[1][0] == "machine_end_beep"
        # Said once the beep is over (within one 20 ms frame: its 5 ms fade-out is not tonal).
        assert beep_end - 0.02 <= verdicts[1][1] <= beep_end + 0.1
        assert verdicts[0][1] < 3.0  # machine known well before the greeting ends
    if name == "human":
        assert verdicts[0][1] < 2.0


async def test_verdicts_do_not_depend_on_packet_size() -> None:
    pcm = await PERSONAS["voicemail"].render(8000)
    assert run(pcm, 8000, 320) == run(pcm, 8000, 4410) == run(pcm, 8000, len(pcm))


async def test_greeting_without_beep_ends_in_silence() -> None:
    from callpipe.testing.simulator.personas import GREETING

    persona = Persona("vm", "machine_start", (Silence(0.2), Speech(GREETING), Silence(5.0)))
    verdicts = run(await persona.render(8000), 8000, 320)
    assert [r for r, _ in verdicts] == ["machine_start", "machine_end_silence"]


async def test_beep_through_mulaw_and_noise_at_other_pitches() -> None:
    from callpipe.testing.simulator.personas import GREETING

    for hz in (440.0, 1400.0):
        steps = (Silence(0.2), Speech(GREETING), Silence(0.4), Tone(hz, 0.4), Silence(3.0))
        pcm = await Persona("vm", "machine_start", steps).render(8000)
        samples = np.frombuffer(pcm, "<i2").astype(np.float64)
        samples += np.random.default_rng(1).normal(0, 100, samples.size)  # about -50 dBFS
        noisy = table_ulaw_to_pcm(table_pcm_to_ulaw(samples.astype("<i2").tobytes()))
        assert [r for r, _ in run(noisy, 8000, 320)] == ["machine_start", "machine_end_beep"]


async def test_speech_alone_never_looks_like_a_tone() -> None:
    from callpipe.testing.simulator.sources import speak

    pcm = np.frombuffer(speak(PERSONAS["voicemail"].steps[1].text, 8000), "<i2")  # type: ignore[union-attr]
    frames = pcm[: pcm.size // 160 * 160].reshape(-1, 160).astype(np.float64) / 32768
    loud = np.sqrt((frames**2).mean(axis=1)) > 0.01
    purity, _ = tone_analysis(frames[loud], 8000)
    assert purity.max() < 0.85  # the detector's tone threshold


def test_pure_tones_are_pure_at_their_frequency() -> None:
    for hz in (440.0, 1000.0, 1100.0, 1400.0):
        pcm = np.frombuffer(tone(hz, 0.2, 8000), "<i2").astype(np.float64) / 32768
        frames = pcm[400 : 400 + 160 * 5].reshape(5, 160)
        purity, freq = tone_analysis(frames, 8000)
        assert purity.min() > 0.9 and np.all(np.abs(freq - hz) <= 25)


def test_fax_tone_is_not_a_beep_and_silence_is_unknown() -> None:
    fax = tone(1100.0, 0.5, 8000) + bytes(8000 * 2)
    assert run(fax, 8000, 320) == [("fax", 0.3)]
    assert run(bytes(8000 * 2 * 6), 8000, 320)[0][0] == "unknown"


def test_garbage_input_never_raises() -> None:
    detector = AnsweringMachineDetector(8000)
    assert detector.feed(b"") == []
    assert detector.feed(b"\x01") == []  # odd byte count
    detector.feed(bytes([255, 127]) * 8000)  # full-scale square-ish noise


# ----------------------------------------------------------------- long answers vs greetings


async def _say(text: str, after: tuple[Step, ...] = (Silence(4.0),)) -> bytes:
    steps = (Silence(0.4), Speech(text), *after)
    return await Persona("x", "x", steps).render(8000)


async def test_a_long_one_sentence_answer_is_a_person_who_waits() -> None:
    pcm = await _say("Good afternoon, Morgan and Partners, Alex speaking.")
    verdicts = run(pcm, 8000, 320)
    assert [r for r, _ in verdicts] == ["human"]
    # Decided about a second after the answer ended (it ends ~3.5 s in), not before.
    assert 3.9 < verdicts[0][1] < 5.5


async def test_several_sentences_are_a_greeting_even_without_a_beep() -> None:
    pcm = await _say("You have reached Alex. Please leave a message.")
    assert [r for r, _ in run(pcm, 8000, 320)] == ["machine_start", "machine_end_silence"]


async def test_a_beep_after_a_short_greeting_makes_it_a_machine() -> None:
    # A one-phrase greeting a person could have said: the beep is what gives it away.
    pcm = await _say("Leave a message for Sam.", (Silence(0.3), Tone(800.0, 0.4), Silence(3.0)))
    verdicts = run(pcm, 8000, 320)
    assert [r for r, _ in verdicts] == ["machine_start", "machine_end_beep"]


async def test_unbroken_speech_past_the_limit_is_a_machine_while_it_talks() -> None:
    from callpipe.audio.amd import AmdSettings

    pcm = await _say("Hello, this is Bob Smith speaking, how can I help you today?")
    quick = AnsweringMachineDetector(8000, AmdSettings(machine_min_greeting=2.0))
    for i in range(0, len(pcm), 320):
        quick.feed(pcm[i : i + 320])
    first = quick.verdicts[0]
    assert first.result == "machine_start" and first.at < 2.6  # before the sentence ended
