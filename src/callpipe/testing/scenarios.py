"""Conversation scenarios in YAML: ``callpipe test scenarios.yaml`` (and the pytest plugin).

A scenario is a simulated phone call with expectations about what the caller *hears*: the bot's
played-out audio is transcribed locally (Whisper, ``callpipe[whisper-model]``), so a scenario
checks words, not just "the bot made a sound". File format::

    url: ws://localhost:7860/ws        # default for every scenario (--url overrides)
    provider: twilio                   # default dialect: twilio, telnyx, plivo, exotel, vonage
    scenarios:
      - name: tells the time
        provider: telnyx               # per-scenario override
        steps:
          - expect_say: hang up        # regex, searched case-insensitively (15 s by default)
          - say: What time is it?      # spoken by the local TTS, in real time
          - expect_say: {pattern: "time is", within: 10}
          - latency: 1.5               # budget for the answer to the last `say`, in seconds
          - press: "42#"               # DTMF keys
          - play: question.wav         # a WAV file, relative to this YAML file
          - wait: 1.0                  # stay silent
          - wait_for_silence: 0.8      # until the bot has been quiet this long
          - expect_hangup: {within: 10}
          - hang_up: true              # the caller hangs up

Scenarios run in parallel (``--parallel N``); ``--junit FILE`` writes JUnit XML for CI. The
command exits 1 when any scenario fails and prints each failure with what was expected and what
the caller actually heard.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from callpipe.errors import CallpipeError, ConfigurationError
from callpipe.testing.simulator.call import SimulatedCall
from callpipe.testing.simulator.dialects import DIALECTS

DEFAULT_WITHIN = 15.0
STEP_KINDS = (
    "say", "play", "press", "wait", "wait_for_silence", "expect_say", "expect_hangup",
    "latency", "hang_up",
)  # fmt: skip


class ScenarioFailed(CallpipeError, AssertionError):
    """A scenario's expectation did not hold (the message is the readable report)."""


@dataclass(slots=True)
class Step:
    kind: str
    value: Any
    within: float = DEFAULT_WITHIN

    def describe(self) -> str:
        if self.kind == "expect_say":
            return f"expect the bot to say /{self.value}/ within {self.within:g} s"
        if self.kind == "expect_hangup":
            return f"expect the bot to hang up within {self.within:g} s"
        if self.kind == "latency":
            return f"answer within a latency budget of {float(self.value):g} s"
        return f"{self.kind} {self.value!r}"


@dataclass(slots=True)
class Scenario:
    name: str
    steps: list[Step]
    url: str
    provider: str = "twilio"
    source: str = ""


@dataclass(slots=True)
class ScenarioResult:
    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    duration: float = 0.0
    timeline: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


# ---------------------------------------------------------------------------------- loading


def _step(raw: Any, where: str) -> Step:
    if not isinstance(raw, dict) or len(raw) != 1:
        raise ConfigurationError(f"{where}: a step is one `kind: value` pair, got {raw!r}")
    [(kind, value)] = raw.items()
    if kind not in STEP_KINDS:
        raise ConfigurationError(f"{where}: unknown step {kind!r} (one of {', '.join(STEP_KINDS)})")
    within = DEFAULT_WITHIN
    if kind in ("expect_say", "expect_hangup") and isinstance(value, dict):
        within = float(value.get("within", DEFAULT_WITHIN))
        value = value.get("pattern", True)
    if kind == "expect_say":
        try:
            re.compile(str(value))
        except re.error as exc:
            raise ConfigurationError(f"{where}: bad pattern {value!r}: {exc}") from exc
    if kind == "press" and any(k not in "0123456789*#" for k in str(value)):
        raise ConfigurationError(f"{where}: {value!r} has a key that is not 0-9, * or #")
    return Step(kind, value, within)


def load_scenarios(path: str | Path, url: str | None = None) -> list[Scenario]:
    """Parse a scenario file; ``url`` overrides the file's."""
    file = Path(path)
    data = yaml.safe_load(file.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise ConfigurationError(f"{file}: expected a mapping with a `scenarios:` list")
    base_url = url or data.get("url")
    provider = str(data.get("provider", "twilio"))
    scenarios = []
    for n, raw in enumerate(data["scenarios"], 1):
        name = str(raw.get("name") or f"scenario {n}")
        where = f"{file}: {name}"
        scenario_url = url or raw.get("url") or base_url
        if not scenario_url:
            raise ConfigurationError(f"{where}: no url (set `url:` or pass --url)")
        dialect = str(raw.get("provider", provider))
        if dialect not in DIALECTS:
            raise ConfigurationError(f"{where}: unknown provider {dialect!r}")
        steps = [_step(s, f"{where}, step {i}") for i, s in enumerate(raw.get("steps") or [], 1)]
        for step in steps:
            if step.kind == "play":
                step.value = file.parent / str(step.value)
        scenarios.append(Scenario(name, steps, str(scenario_url), dialect, str(file)))
    return scenarios


# ---------------------------------------------------------------------------------- running


async def run_scenario(scenario: Scenario) -> ScenarioResult:
    """Place the call and check every step; the first failed expectation ends the scenario."""
    result = ScenarioResult(scenario)
    started = time.monotonic()
    said_at: float | None = None
    try:
        async with SimulatedCall(scenario.url, scenario.provider) as call:
            for i, step in enumerate(scenario.steps, 1):
                failure = await _run_step(call, step, said_at)
                if step.kind in ("say", "play"):
                    said_at = call.now()
                if failure:
                    result.failures.append(f"step {i}: {step.describe()}\n{failure}")
                    break
                rest = [s.kind for s in scenario.steps[i:]]
                if call.ended and rest and rest[0] not in ("expect_hangup", "hang_up"):
                    result.failures.append(f"step {i + 1}: the call ended before {rest[0]}")
                    break
        result.timeline = call.result().timeline()
    except Exception as exc:  # a refused or failed connection is this scenario's failure
        result.failures.append(f"could not call {scenario.url}: {type(exc).__name__}: {exc}")
    result.duration = time.monotonic() - started
    return result


async def _run_step(call: SimulatedCall, step: Step, said_at: float | None) -> str | None:
    """None when the step passed, else what went wrong (for the report)."""
    kind, value = step.kind, step.value
    if kind == "say":
        await call.say(str(value))
    elif kind == "play":
        await call.say(Path(value))
    elif kind == "press":
        await call.press(str(value))
    elif kind == "wait":
        await call.pause(float(value))
    elif kind == "wait_for_silence":
        await call.wait_for_bot_silence(float(value), timeout=DEFAULT_WITHIN)
    elif kind == "hang_up":
        await call.hang_up()
    elif kind == "expect_say":
        if await call.wait_for_bot_to_say(str(value), step.within) is None:
            heard = " | ".join(call.bot_heard) or "(nothing)"
            return f"  expected: /{value}/\n  heard:    {heard}"
    elif kind == "expect_hangup":
        if not await call.wait_for_hangup(step.within):
            return "  the call was still up" if not call.ended else "  the caller's side ended it"
    elif kind == "latency":
        return _check_latency(call, float(value), said_at)
    return None


def _check_latency(call: SimulatedCall, budget: float, said_at: float | None) -> str | None:
    if said_at is None:
        return "  no `say` or `play` step before it"
    turns = [t for t in call.result().turns() if t.caller_end <= said_at + 0.5]
    if not turns or turns[-1].latency is None:
        return "  the bot did not answer the last utterance"
    latency = turns[-1].latency
    if latency > budget:
        return f"  expected: ≤ {budget * 1000:.0f} ms\n  measured: {latency * 1000:.0f} ms"
    return None


async def run_all(scenarios: Sequence[Scenario], parallel: int = 4) -> list[ScenarioResult]:
    """Run scenarios, at most ``parallel`` calls at once, in file order in the result."""
    gate = asyncio.Semaphore(max(1, parallel))

    async def one(scenario: Scenario) -> ScenarioResult:
        async with gate:
            return await run_scenario(scenario)

    return list(await asyncio.gather(*(one(s) for s in scenarios)))


# ---------------------------------------------------------------------------------- reporting


def junit_xml(results: Sequence[ScenarioResult]) -> bytes:
    """JUnit XML: one testsuite, a testcase per scenario, failures with the report text."""
    suite = ET.Element(
        "testsuite",
        name="callpipe scenarios",
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
        time=f"{sum(r.duration for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=Path(r.scenario.source).stem or "scenarios",
            name=r.scenario.name,
            time=f"{r.duration:.3f}",
        )
        if not r.passed:
            failure = ET.SubElement(case, "failure", message=r.failures[0].splitlines()[0])
            failure.text = "\n".join(r.failures)
        if r.timeline:
            ET.SubElement(case, "system-out").text = r.timeline
    return bytes(ET.tostring(suite, encoding="utf-8", xml_declaration=True))


def report(results: Sequence[ScenarioResult]) -> str:
    lines = []
    for r in results:
        mark = "PASS" if r.passed else "FAIL"
        lines.append(f"{mark}  {r.scenario.name}  ({r.scenario.provider}, {r.duration:.1f} s)")
        for failure in r.failures:
            lines += ["      " + line for line in failure.splitlines()]
    failed = sum(not r.passed for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``callpipe test FILE [FILE ...] [--url URL] [--parallel N] [--junit OUT.xml]``."""
    parser = argparse.ArgumentParser(
        prog="callpipe test",
        description="Run YAML conversation scenarios against a running bot.",
        allow_abbrev=False,
    )
    parser.add_argument("files", nargs="+", help="scenario YAML files")
    parser.add_argument("--url", help="the bot's WebSocket URL (overrides the files')")
    parser.add_argument("--parallel", type=int, default=4, help="calls at once (default 4)")
    parser.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    args = parser.parse_args(argv)
    try:
        scenarios = [s for f in args.files for s in load_scenarios(f, args.url)]
    except (OSError, ConfigurationError, yaml.YAMLError) as exc:
        print(f"callpipe test: {exc}", file=sys.stderr)
        return 2
    results = asyncio.run(run_all(scenarios, args.parallel))
    print(report(results))
    if args.junit:
        Path(args.junit).write_bytes(junit_xml(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
