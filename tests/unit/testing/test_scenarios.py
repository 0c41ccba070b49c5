"""Scenario files: parsing, validation, the report and JUnit XML (no calls placed here)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from callpipe.errors import ConfigurationError
from callpipe.testing.scenarios import (
    Scenario,
    ScenarioResult,
    Step,
    junit_xml,
    load_scenarios,
    report,
)

GOOD = """
url: ws://127.0.0.1:9/ws
provider: telnyx
scenarios:
  - name: time
    steps:
      - expect_say: hang up
      - say: What time is it?
      - expect_say: {pattern: "time is", within: 7}
      - latency: 1.5
      - press: "42#"
      - play: hello.wav
      - expect_hangup: {within: 3}
  - name: on twilio
    provider: twilio
    steps: [{wait: 1}]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_a_scenario_file_is_parsed_into_steps(tmp_path: Path) -> None:
    first, second = load_scenarios(write(tmp_path, GOOD))
    assert (first.name, first.provider, first.url) == ("time", "telnyx", "ws://127.0.0.1:9/ws")
    kinds = [(s.kind, s.value, s.within) for s in first.steps]
    assert kinds[0] == ("expect_say", "hang up", 15.0)
    assert kinds[2] == ("expect_say", "time is", 7.0)
    assert kinds[5] == ("play", tmp_path / "hello.wav", 15.0)
    assert kinds[6] == ("expect_hangup", True, 3.0)
    assert second.provider == "twilio"
    # --url overrides the file's.
    assert {s.url for s in load_scenarios(write(tmp_path, GOOD), "ws://h/ws")} == {"ws://h/ws"}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("[{dance: 1}]", "unknown step 'dance'"),
        ('[{expect_say: "(unclosed"}]', "bad pattern"),
        ('[{press: "12a"}]', "not 0-9"),
        ("[{say: a, wait: 1}]", "one `kind: value` pair"),
    ],
)
def test_bad_steps_are_refused_with_where_they_are(
    tmp_path: Path, steps: str, message: str
) -> None:
    text = f"url: ws://x/ws\nscenarios:\n  - name: broken\n    steps: {steps}\n"
    with pytest.raises(ConfigurationError, match=message) as info:
        load_scenarios(write(tmp_path, text))
    assert "broken" in str(info.value)


def test_a_scenario_needs_a_url_and_a_known_provider(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no url"):
        load_scenarios(write(tmp_path, "scenarios: [{name: a, steps: []}]"))
    with pytest.raises(ConfigurationError, match="unknown provider"):
        load_scenarios(write(tmp_path, "url: ws://x\nscenarios: [{provider: pots, steps: []}]"))


def test_report_and_junit_show_the_failure() -> None:
    ok = ScenarioResult(Scenario("greets", [], "ws://x", source="a/demo.yaml"), duration=1.5)
    bad = ScenarioResult(
        Scenario("time", [Step("expect_say", "time is")], "ws://x", source="a/demo.yaml"),
        failures=["step 1: expect the bot to say /time is/\n  expected: /time is/\n  heard: hi"],
        timeline="call via twilio",
    )
    text = report([ok, bad])
    assert "PASS  greets" in text and "FAIL  time" in text
    assert "heard: hi" in text and text.endswith("1 passed, 1 failed")
    suite = ET.fromstring(junit_xml([ok, bad]))
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["greets", "time"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and "heard: hi" in (failure.text or "")
    assert cases[1].findtext("system-out") == "call via twilio"
