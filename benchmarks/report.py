"""Statistics, BENCHMARKS.md and the plot from ``run.py`` results.

.venv/bin/python benchmarks/report.py benchmarks/results/<run> [more result dirs ...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPORT = HERE / "BENCHMARKS.md"
PLOT = HERE / "benchmarks.png"
MIB = 2**20


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of one (stack, workers, N) run."""
    calls = r["calls"]
    call_secs = r.get("call_secs") or math.nan
    gaps = [g * 1000 for g in r.get("gaps", [])]
    lat = r.get("latencies", [])
    lat_ms = [x[1] * 1000 for x in lat]
    intr = [x * 1000 for x in r.get("interruptions", [])]
    packets = r.get("packets_in") or 0
    packet_ms = r["reply_secs"] / packets * 1000 if packets else math.nan
    drift = math.nan
    if len(lat) >= 6:
        ordered = sorted(lat)
        third = len(ordered) // 3
        first = statistics.median(x[1] for x in ordered[:third])
        last = statistics.median(x[1] for x in ordered[-third:])
        drift = (last - first) * 1000
    utterances = r.get("utterances", 0)
    share = [x * 1000 for x in r.get("framework_share", [])]
    fakes_cpu = r.get("fakes_cpu_secs")
    return {
        "bot": r.get("bot", "echo"),
        "framework_p50_ms": pct(share, 0.5) if share else None,
        "framework_p95_ms": pct(share, 0.95) if share else None,
        "framework_turns": len(share),
        "framework_unmatched": r.get("framework_unmatched", 0),
        "vad_stop_p50_ms": pct([x * 1000 for x in r.get("vad_stop_delay", [])], 0.5),
        "fakes_ttfb_p50_ms": pct([x * 1000 for x in r.get("fakes_ttfb", [])], 0.5),
        "fakes_cpu_per_call_sec": fakes_cpu / call_secs if fakes_cpu is not None else None,
        "stack": r["stack"],
        "workers": r["workers"],
        "calls": calls,
        "duration": round(r.get("duration", 0)),
        "cpu_per_call_sec": r["server_cpu_secs"] / call_secs,
        "server_cores": r["server_cpu_secs"] / r["server_wall_secs"],
        "rss_per_call_mib": (r["rss_peak"] - r["rss_base"]) / calls / MIB,
        "rss_base_mib": r["rss_base"] / MIB,
        "packet_ms": packet_ms,
        "gap_p50_ms": pct(gaps, 0.5),
        "gap_p99_ms": pct(gaps, 0.99),
        "gap_max_ms": max(gaps) if gaps else math.nan,
        "dropouts": r.get("dropouts", 0),
        "dropouts_per_min": r.get("dropouts", 0) / (r["reply_secs"] / 60) if r["reply_secs"] else 0,
        "latency_p50_ms": pct(lat_ms, 0.5),
        "latency_p95_ms": pct(lat_ms, 0.95),
        "latency_drift_ms": drift,
        "interrupt_p50_ms": pct(intr, 0.5),
        "interrupt_p95_ms": pct(intr, 0.95),
        "interruptions": len(intr),
        "missed_clears": r.get("missed_clears", 0),
        "utterances": utterances,
        "no_reply": utterances - r.get("answered", 0),
        "failed_calls": r.get("failed_calls", 0),
        "generator_cpu_per_call_sec": r.get("generator_cpu_secs", 0) / call_secs,
        "generators": r.get("generators", 1),
        "tick_lateness_p99_ms": r.get("tick_lateness_p99", 0) * 1000,
        "errors": len(r.get("errors", [])),
    }


def load(dirs: list[Path]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    rows: dict[tuple[str, int, int], dict[str, Any]] = {}
    meta: dict[str, Any] = {}
    for d in dirs:
        for path in sorted(d.glob("meta-*w*.json")):
            m = json.loads(path.read_text())
            meta.setdefault("runs", []).append(m)
        for path in sorted(d.glob("*-w*-n*.json")):
            if path.name.count(".") != 1:  # <tag>.json only (not .gen0/.warmup/.fakes.urls)
                continue
            s = summarize(json.loads(path.read_text()))
            rows[(s["bot"], s["stack"], s["workers"], s["calls"], s["duration"])] = s
    ordered = sorted(
        rows.values(), key=lambda s: (s["duration"], s["workers"], s["calls"], s["stack"])
    )
    return ordered, meta


def _f(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| stack | workers | N | s | CPU s / call-s | RSS MiB / call | packet ms "
        "| gap p50 / p99 / max ms | dropouts (/min) | latency p50 / p95 ms | latency drift ms "
        "| interrupt p50 / p95 ms "
        "| missed clears | no reply / utterances | failed calls | generator CPU s / call-s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for s in rows:
        lines.append(
            f"| {s['stack']} | {s['workers']} | {s['calls']} | {s['duration']} "
            f"| {_f(s['cpu_per_call_sec'], 4)} "
            f"| {_f(s['rss_per_call_mib'], 2)} | {_f(s['packet_ms'])} "
            f"| {_f(s['gap_p50_ms'])} / {_f(s['gap_p99_ms'])} / {_f(s['gap_max_ms'])} "
            f"| {s['dropouts']} ({_f(s['dropouts_per_min'], 1)}) "
            f"| {_f(s['latency_p50_ms'])} / {_f(s['latency_p95_ms'])} "
            f"| {_f(s['latency_drift_ms'])} "
            f"| {_f(s['interrupt_p50_ms'])} / {_f(s['interrupt_p95_ms'])} "
            f"| {s['missed_clears']} / {s['interruptions'] + s['missed_clears']} "
            f"| {s['no_reply']} / {s['utterances']} | {s['failed_calls']} "
            f"| {_f(s['generator_cpu_per_call_sec'], 4)} |"
        )
    return head + "\n".join(lines) + "\n"


def ratios(rows: list[dict[str, Any]], bot: str = "echo") -> str:
    by = {(s["stack"], s["workers"], s["calls"], s["duration"]): s for s in rows if s["bot"] == bot}
    out = [
        "| N | CPU / call-s (pipecat ÷ callpipe) | RSS / call (pipecat ÷ callpipe) "
        "| latency p50 (pipecat − callpipe) ms | interrupt p95 (pipecat − callpipe) ms |",
        "|---|---|---|---|---|",
    ]
    for (stack, workers, n, secs), cp in sorted(by.items(), key=lambda kv: kv[0][2]):
        pc = by.get(("pipecat", 1, n, secs))
        if stack != "callpipe" or workers != 1 or pc is None:
            continue
        out.append(
            f"| {n} | {_f(pc['cpu_per_call_sec'] / cp['cpu_per_call_sec'], 1)}× "
            f"| {_f(pc['rss_per_call_mib'] / cp['rss_per_call_mib'], 1)}× "
            f"| {_f(pc['latency_p50_ms'] - cp['latency_p50_ms'])} "
            f"| {_f(pc['interrupt_p95_ms'] - cp['interrupt_p95_ms'])} |"
        )
    return "\n".join(out) + "\n"


def pipeline_table(rows: list[dict[str, Any]]) -> str:
    """The full-pipeline columns: turn latency split into VAD stop, fakes' TTFB, framework."""
    head = (
        "| stack | workers | N | s | CPU s / call-s | fakes CPU s / call-s | RSS MiB / call "
        "| gap p99 ms (packet) | dropouts (/min) | turn latency p50 / p95 ms "
        "| VAD stop p50 ms | fakes TTFB p50 ms | framework share p50 / p95 ms "
        "| interrupt p50 / p95 ms | no reply / utterances | failed calls |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for s in rows:
        lines.append(
            f"| {s['stack']} | {s['workers']} | {s['calls']} | {s['duration']} "
            f"| {_f(s['cpu_per_call_sec'], 4)} | {_f(s['fakes_cpu_per_call_sec'], 4)} "
            f"| {_f(s['rss_per_call_mib'], 2)} "
            f"| {_f(s['gap_p99_ms'])} ({_f(s['packet_ms'])}) "
            f"| {s['dropouts']} ({_f(s['dropouts_per_min'], 1)}) "
            f"| {_f(s['latency_p50_ms'])} / {_f(s['latency_p95_ms'])} "
            f"| {_f(s['vad_stop_p50_ms'])} | {_f(s['fakes_ttfb_p50_ms'])} "
            f"| {_f(s['framework_p50_ms'])} / {_f(s['framework_p95_ms'])} "
            f"| {_f(s['interrupt_p50_ms'])} / {_f(s['interrupt_p95_ms'])} "
            f"| {s['no_reply']} / {s['utterances']} | {s['failed_calls']} |"
        )
    return head + "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    series: dict[str, list[dict[str, Any]]] = {}
    durations = {s["duration"] for s in rows}
    main = min(durations, key=lambda d: -sum(1 for s in rows if s["duration"] == d))
    for s in rows:
        # Readable: the echo and the Cartesia bot of the current build (not labelled runs).
        if s["bot"] == "elevenlabs" or "@" in s["stack"]:
            continue
        if s["duration"] == main:
            label = f"{s['stack']}" if s["workers"] == 1 else f"{s['stack']} ×{s['workers']}"
            series.setdefault(f"{s['bot']}: {label}", []).append(s)
    for i, (label, points) in enumerate(series.items()):
        color = f"C{i}"
        points.sort(key=lambda s: s["calls"])
        n = [p["calls"] for p in points]
        ax1.plot(n, [p["cpu_per_call_sec"] for p in points], marker="o", color=color, label=label)
        ax2.plot(
            n,
            [p["latency_p50_ms"] for p in points],
            marker="o",
            color=color,
            label=f"{label} reply p50",
        )
        ax2.plot(
            n,
            [p["interrupt_p95_ms"] for p in points],
            marker="x",
            linestyle="--",
            color=color,
            label=f"{label} interrupt p95",
        )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("concurrent calls (N)")
    ax1.set_ylabel("server CPU seconds per call-second")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=8)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("concurrent calls (N)")
    ax2.set_ylabel("ms")
    ax2.set_title("response latency p50, interruption delay p95", fontsize=9)
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PIPELINE_TITLES = {
    "cartesia": "Deepgram STT → OpenAI LLM → Cartesia TTS",
    "elevenlabs": "Deepgram STT → OpenAI LLM → ElevenLabs TTS",
}


def write_report(dirs: list[Path], notes: str = "") -> None:
    rows, meta = load(dirs)
    runs = meta.get("runs", [])
    first = runs[0] if runs else {}
    imports: dict[str, float] = {}
    for m in runs:
        imports.update(m.get("import_secs", {}))
    m = first.get("machine", {})
    echo = [s for s in rows if s["bot"] == "echo"]
    text = [
        "# Benchmarks: callpipe vs pipecat-ai (Twilio bots: echo, and STT → LLM → TTS)",
        "",
        "Generated by `benchmarks/report.py` from the runs listed below. Do not edit the tables "
        "by hand; notes at the end are kept in `benchmarks/NOTES.md`.",
        "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memory_gib', '?')} GiB, {m.get('os', '?')}, Python {m.get('python', '?')}.",
        "",
        "Commands:",
        "",
        *[f"    {r['command']}   # {r['started']}, {r['duration']:.0f} s per call" for r in runs],
        "",
        "Transport import time (best of 5, fresh interpreter): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in imports.items())
        + (
            f" (pipecat ÷ callpipe: {imports['pipecat'] / imports['callpipe']:.1f}×)"
            if "pipecat" in imports and "callpipe" in imports
            else ""
        )
        + ".",
        "",
    ]
    for bot, title in PIPELINE_TITLES.items():
        found = [s for s in rows if s["bot"] == bot]
        if not found:
            continue
        text += [
            f"## Full pipeline: {title}",
            "",
            pipeline_table(found),
            "Ratios (one process each):",
            "",
            ratios(found, bot),
        ]
    if echo:
        text += [
            "## Echo bot (Silero VAD, barge-in)",
            "",
            "`callpipe-spec`: the analyzer exactly as the spec writes it "
            "(`SileroVADAnalyzer(params=...)` per call, no flag, no preloading in the bot); "
            "`callpipe`: the tuned form (`shared=True` spelled out, model loaded at import).",
            "",
            table(echo),
            "Ratios (one process each):",
            "",
            ratios(echo),
        ]
    text += [
        "![CPU and latency against N](benchmarks.png)",
        "",
        "## How it is measured",
        "",
        "- Server: the bot in its own uvicorn process (`benchmarks/bots/`), CPU = user+system "
        "time of its process tree during the load, per second of connected call; RSS per call = "
        "(peak RSS during the load − RSS after a warm-up call) ÷ N.",
        "- Callers: `benchmarks/loadgen.py`, one process per 100 calls, real eSpeak NG speech as "
        "20 ms µ-law media messages in real time; ~30 % of long utterances are followed by a "
        "barge-in 0.9 s + stop_secs after they end (echo bot); the full-pipeline bots reply "
        "with 4.5 s, so every utterance that starts while a reply plays barges in.",
        "- gap: time between consecutive media packets of one reply as received; packet ms: "
        "audio per packet (callpipe sends 20 ms, Pipecat 40 ms by default); dropouts: underruns "
        "of a 60 ms playout buffer started at the first packet of a reply.",
        "- latency: last speech chunk sent → first reply packet received (includes the VAD's "
        "stop_secs = 0.4 s); interrupt: first chunk of a barge-in sent → `clear` received "
        "(includes start_secs = 0.2 s); drift: median latency of the last third of utterances "
        "minus the first third.",
        "- Full pipeline: Deepgram STT → OpenAI-compatible LLM → Cartesia (or ElevenLabs) TTS, "
        "the services pointed at `callpipe.testing.fakes` running in a separate process "
        "(`benchmarks/fakes_server.py`; its CPU is the 'fakes CPU' column, not counted as the "
        "bot's). Every user turn gets the same three-sentence, 18-word reply (4.5 s of speech). "
        "Framework share of a turn = first reply packet at the caller − the moment the bot saw "
        "the VAD's stop − the LLM's and the TTS's time to first byte as the services' own TTFB "
        "metrics report them (all on CLOCK_MONOTONIC, shared by the processes); 'VAD stop' = "
        "last speech chunk sent → the bot seeing the VAD's stop.",
        "- Both stacks: VADParams(confidence=0.7, start_secs=0.2, stop_secs=0.4, min_volume=0.6), "
        "8 kHz pipeline in and out. callpipe: its defaults on top of those (start_dip_secs = "
        "0.04, i.e. one 32 ms dip tolerated in a start run; quiet windows not scored while "
        "QUIET; shared batched Silero engine, the default). Pipecat echo: VADProcessor + "
        "SileroVADAnalyzer per call, interruption via broadcast_interruption(). Pipecat full "
        "pipeline: VAD in the user aggregator (LLMUserAggregatorParams), turn end at VAD stop + "
        "final transcript (SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0), not the "
        "default smart-turn model). Both Pipecat bots: RTVI and turn tracking off, loguru at "
        "WARNING.",
        "",
    ]
    notes_path = HERE / "NOTES.md"
    if notes_path.exists():
        text += ["## Notes", "", notes_path.read_text().strip(), ""]
    if notes:
        text += [notes, ""]
    REPORT.write_text("\n".join(text))
    if rows:
        plot(rows, PLOT)
    print(f"wrote {REPORT} and {PLOT}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Rewrite BENCHMARKS.md and benchmarks.png from run.py result directories."
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="RESULTS_DIR", help="run.py --out")
    args = parser.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.is_dir()]
    if missing:
        parser.error(f"not a results directory: {', '.join(missing)}")
    write_report(list(args.dirs))


if __name__ == "__main__":
    main()
