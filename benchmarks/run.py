"""Side-by-side telephony benchmark: callpipe vs pipecat-ai, same echo bot, same callers.

For each N and each stack: start the echo bot in its own uvicorn process, warm it up with one
short call, then run the load generator (``loadgen.py``, one process per 100 calls) for
``--duration`` seconds of audio per call while sampling the server's CPU time and RSS (process
tree, from /proc via psutil). Results go to ``benchmarks/results/<run>/`` as JSON;
``report.py`` turns them into BENCHMARKS.md and a plot.

    .venv/bin/python benchmarks/run.py                     # full sweep, both stacks
    .venv/bin/python benchmarks/run.py --quick             # smoke: N=1,10, 8 s
    .venv/bin/python benchmarks/run.py --stacks callpipe --calls 100,200 --workers 2
    .venv/bin/python benchmarks/run.py --bot cartesia --calls 1,10,25   # full pipeline

Bots (``--bot``): ``echo`` (stacks ``callpipe``: the tuned bot, ``callpipe-spec``: the analyzer
exactly as the spec writes it, ``pipecat``), and the full pipeline ``cartesia`` / ``elevenlabs``
(Deepgram STT → OpenAI LLM → that TTS; stacks ``callpipe``, ``pipecat``, and ``callpipe-1.14``:
Pipecat's bot file itself, run on callpipe after the one change a user makes, ``from pipecat.``
→ ``from callpipe.``, i.e. Pipecat 1.14's current API), whose services talk to
the provider fakes (``fakes_server.py``) in a separate process: its CPU is measured and reported,
not counted as the bot's. The full-pipeline bots also write per-call probe records (VAD stop,
LLM/TTS time to first byte) that are joined with the callers' turns for the framework's share
of the turn latency.

Each result carries ``host_speed_secs``: the CPU time of a fixed Python loop before and after
the run, because the VMs this runs on change speed within minutes. ``--pin`` puts the bot on
CPUs of its own and the callers and fakes on the others (Linux; needs more CPUs than workers).

Pipecat runs from its own venv (never a callpipe dependency): ``--pipecat-python``, else
``$CALLPIPE_BENCH_PIPECAT_PYTHON``, else /opt/pipecat-venv, else benchmarks/.pipecat-venv
(created on first use with ``pip install "pipecat-ai[websocket,silero,deepgram,cartesia,
elevenlabs,openai]==1.14.0"``; missing extras are installed into an existing one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BOTS = HERE / "bots"
PIPECAT_SPEC = "pipecat-ai[websocket,silero,deepgram,cartesia,elevenlabs,openai]==1.14.0"
TRANSPORT_MODULES = {
    "callpipe": "callpipe.transports.network.fastapi_websocket",
    "pipecat": "pipecat.transports.websocket.fastapi",
}
CALLS_PER_GENERATOR = 100


def pipecat_python(explicit: str | None) -> str:
    """The interpreter of a venv with pipecat-ai 1.14.0 (created if there is none)."""
    for candidate in (
        explicit,
        os.environ.get("CALLPIPE_BENCH_PIPECAT_PYTHON"),
        "/opt/pipecat-venv/bin/python",
        str(HERE / ".pipecat-venv/bin/python"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    venv = HERE / ".pipecat-venv"
    print(f"creating {venv} with {PIPECAT_SPEC} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, PIPECAT_SPEC, "uvicorn[standard]"], check=True)
    return str(venv / "bin/python")


def ensure_uvicorn(python: str) -> None:
    """uvicorn, and the extras the bots need (a venv made for the echo bot lacks some)."""
    probe = subprocess.run([python, "-c", "import uvicorn"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", "uvicorn[standard]"], check=True)
    modules = "fastapi, onnxruntime, deepgram, websockets, openai"
    probe = subprocess.run([python, "-c", f"import {modules}"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "-q", PIPECAT_SPEC], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def import_time(python: str, module: str, repeats: int = 5) -> float:
    """Best-of-N wall time to import ``module`` in a fresh interpreter (warm file cache)."""
    code = (
        "import time; t = time.perf_counter(); import "
        + module
        + "; print(time.perf_counter() - t)"
    )
    times = []
    for _ in range(repeats + 1):
        out = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=True, cwd=str(HERE)
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times[1:])


def host_speed() -> float:
    """CPU seconds this machine takes for a fixed pure-Python loop (median of three), taken
    between runs: the VMs these benchmarks run on change speed by up to 2x within minutes, so
    each result carries the figure next to it (lower is faster; ~0.13-0.30 s seen here)."""
    times = []
    for _ in range(3):
        start = time.process_time()
        sum(range(10**7))
        times.append(time.process_time() - start)
    return sorted(times)[1]


FULL_PIPELINE_BOTS = ("cartesia", "elevenlabs")

PINNED: dict[str, set[int]] = {}
"""``--pin``: CPUs for "bot" and for "harness" (callers and fakes); empty: the scheduler decides."""


def pinned(role: str) -> Callable[[], None] | None:
    """A ``preexec_fn`` that keeps the child (and what it forks) on ``role``'s CPUs."""
    cpus = PINNED.get(role)
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


#: Pipecat's full-pipeline bot with its imports pointed at callpipe (``callpipe-1.14``).
PIPECAT_BOT_ON_CALLPIPE = "convo_pipecat_on_callpipe"


def bot_script(bot: str, stack: str, out_dir: Path) -> Path:
    if stack == "callpipe-1.14":
        if bot not in FULL_PIPELINE_BOTS:
            raise SystemExit("callpipe-1.14 runs the full-pipeline bot (--bot cartesia|elevenlabs)")
        return pipecat_bot_on_callpipe(out_dir)
    base = stack.split("-")[0]  # callpipe-spec runs the callpipe echo bot, as the spec writes it
    return BOTS / (f"convo_{base}.py" if bot in FULL_PIPELINE_BOTS else f"echo_{base}.py")


def pipecat_bot_on_callpipe(out_dir: Path) -> Path:
    """``bots/convo_pipecat.py`` with ``from pipecat.`` → ``from callpipe.`` (and the module name
    uvicorn imports it by), written to ``out_dir``: nothing else of the bot changes."""
    source = (BOTS / "convo_pipecat.py").read_text()
    old, new = "from pipecat.", "from callpipe."
    text = "".join(
        new + line[len(old) :] if line.startswith(old) else line
        for line in source.splitlines(keepends=True)
    ).replace('"convo_pipecat:app"', f'"{PIPECAT_BOT_ON_CALLPIPE}:app"')
    if "pipecat." in text.replace("convo_pipecat", ""):
        raise RuntimeError("convo_pipecat.py imports pipecat in a way this rewrite misses")
    path = out_dir / f"{PIPECAT_BOT_ON_CALLPIPE}.py"
    path.write_text(text)
    return path


class Fakes:
    """The provider fakes in their own process (full-pipeline bots)."""

    def __init__(self, log: Path, tls: tuple[Path, Path] | None = None) -> None:
        self.urls_path = log.with_suffix(".urls.json")
        self.urls_path.unlink(missing_ok=True)
        self.log = log.open("w")
        cmd = [sys.executable, str(HERE / "fakes_server.py"), "--urls", str(self.urls_path)]
        if tls is not None:
            cmd += ["--tls", str(tls[0]), str(tls[1])]
        self.proc = subprocess.Popen(
            cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=str(HERE),
            preexec_fn=pinned("harness"),
        )

    def wait_ready(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fakes exited with {self.proc.returncode}")
            if self.urls_path.exists():
                return self.urls_path.read_text()
            time.sleep(0.1)
        raise RuntimeError("fakes did not start")

    def cpu(self) -> float:
        import psutil

        try:
            t = psutil.Process(self.proc.pid).cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class Server:
    """One bot process (plus uvicorn workers) and its resource usage."""

    def __init__(
        self,
        stack: str,
        python: str,
        workers: int,
        log: Path,
        bot: str = "echo",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        script = bot_script(bot, stack, log.parent)
        cmd = [python, str(script), "--port", str(self.port), "--workers", str(workers)]
        self.log = log.open("w")
        env = dict(os.environ, PYTHONUNBUFFERED="1", **(extra_env or {}))
        if stack == "callpipe-spec":
            env["BENCH_AS_SPEC"] = "1"
        if script.parent != BOTS:  # a generated bot: ``_common`` stays in bots/
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (env.get("PYTHONPATH", ""), str(BOTS)) if p
            )
        self.proc = subprocess.Popen(
            cmd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(HERE),
            preexec_fn=pinned("bot"),
        )
        self.workers = workers
        self.url = f"ws://127.0.0.1:{self.port}/ws"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if self.workers == 1 or len(self._procs()) > self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def _procs(self) -> list[Any]:
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def cpu(self) -> float:
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """User and system CPU seconds of the server's processes."""
        user = system = 0.0
        for p in self._procs():
            try:
                t = p.cpu_times()
                user += t.user
                system += t.system
            except Exception:
                pass
        return user, system

    def rss(self) -> int:
        total = 0
        for p in self._procs():
            try:
                total += p.memory_info().rss
            except Exception:
                pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                for p in reversed(self._procs()):
                    try:
                        p.kill()
                    except Exception:
                        pass
                self.proc.wait(5)
        self.log.close()


def run_generators(
    url: str,
    calls: int,
    duration: float,
    seed: int,
    out_dir: Path,
    tag: str,
    server: Server,
    fakes: Fakes | None = None,
    extra_args: list[str] | None = None,
    profile: Path | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the load generator processes; sample the server meanwhile."""
    groups = max(1, -(-calls // CALLS_PER_GENERATOR))
    procs = []
    outs = []
    first = 1
    for g in range(groups):
        n = calls // groups + (1 if g < calls % groups else 0)
        out = out_dir / f"{tag}.gen{g}.json"
        outs.append(out)
        cmd = [
            sys.executable,
            str(HERE / "loadgen.py"),
            "--url",
            url,
            "--calls",
            str(n),
            "--first-call",
            str(first),
            "--duration",
            str(duration),
            "--ramp",
            str(min(2.0, 0.5 + calls * 0.01)),
            "--seed",
            str(seed),
            "--out",
            str(out),
            *(extra_args or []),
        ]
        first += n
        procs.append(subprocess.Popen(cmd, preexec_fn=pinned("harness")))
    spy = None
    if profile is not None:  # sample the bot's process while the callers talk
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(server.proc.pid),
                "--subprocesses",
                "--rate",
                "200",
                "--format",
                "raw",
                "--duration",
                str(int(duration)),
                "--output",
                str(profile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    rss_base = server.rss()
    fakes_cpu0 = fakes.cpu() if fakes is not None else 0.0
    split0 = server.cpu_split()
    cpu0 = sum(split0)
    t0 = time.monotonic()
    rss_peak = rss_base
    samples = []
    while any(p.poll() is None for p in procs):
        time.sleep(0.25)
        rss = server.rss()
        rss_peak = max(rss_peak, rss)
        samples.append((round(time.monotonic() - t0, 2), round(server.cpu() - cpu0, 3), rss))
    wall = time.monotonic() - t0
    split1 = server.cpu_split()
    cpu1 = sum(split1)
    fakes_cpu = (fakes.cpu() - fakes_cpu0) if fakes is not None else None
    if spy is not None:
        spy.wait(30)
    docs = []
    for p, out in zip(procs, outs, strict=True):
        if p.returncode == 0 and out.exists():
            docs.append(json.loads(out.read_text()))
    server_info = {
        "server_cpu_secs": cpu1 - cpu0,
        "server_sys_secs": split1[1] - split0[1],
        "server_wall_secs": wall,
        "rss_base": rss_base,
        "rss_peak": rss_peak,
        "samples": samples,
        "generators": groups,
        "fakes_cpu_secs": fakes_cpu,
    }
    return docs, server_info


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for doc in docs:
        for key, value in doc.items():
            if key not in merged:
                merged[key] = value
            elif isinstance(value, list):
                merged[key] = merged[key] + value
            elif key in ("tick_lateness_p99", "tick_lateness_max", "run_secs", "connect_secs"):
                merged[key] = max(merged[key], value)
            elif isinstance(value, int | float):
                merged[key] = merged[key] + value
    return merged


def framework_share(turns: list[list[Any]], probe_dir: Path) -> dict[str, Any]:
    """Per answered turn: first reply packet − VAD stop − LLM TTFB − TTS TTFB (seconds).

    The callers record when they sent an utterance's last chunk and got its first reply packet,
    the bot when it saw the VAD's stop and the services' TTFB metrics; all on CLOCK_MONOTONIC.
    A turn counts when the bot saw a VAD stop between the two and both TTFBs after that stop.
    """
    probes: dict[str, dict[str, Any]] = {}
    for path in probe_dir.glob("probe-*.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            probes[record["call"]] = record
    shares, vad_delays, ttfbs = [], [], []
    unmatched = 0
    for call, end, reply_at in turns:
        record = probes.get(call)
        stops = [v for v in (record or {}).get("vad_stops", []) if end <= v <= reply_at]
        if not stops:
            unmatched += 1
            continue
        stop = stops[-1]
        found: dict[str, float] = {}
        for kind, seen, secs in (record or {}).get("ttfbs", []):
            if stop < seen <= reply_at + 1.0 and kind not in found:
                found[kind] = secs
        if "llm" not in found or "tts" not in found:
            unmatched += 1
            continue
        fakes_ttfb = found["llm"] + found["tts"]
        shares.append(reply_at - stop - fakes_ttfb)
        vad_delays.append(stop - end)
        ttfbs.append(fakes_ttfb)
    return {
        "framework_share": shares,
        "vad_stop_delay": vad_delays,
        "fakes_ttfb": ttfbs,
        "framework_unmatched": unmatched,
    }


def bench_one(
    stack: str, python: str, calls: int, args: argparse.Namespace, out_dir: Path
) -> dict[str, Any]:
    bot = args.bot
    prefix = "" if bot == "echo" else f"{bot}-"
    tls_tag = "-tls" if args.tls else ""
    tag = f"{prefix}{stack}{args.label}{tls_tag}-w{args.workers}-n{calls}-d{args.duration:.0f}"
    speed_before = host_speed()
    fakes: Fakes | None = None
    extra_env: dict[str, str] = {}
    loadgen_args: list[str] = []
    probe_dir = out_dir / f"{tag}.probe"
    if bot in FULL_PIPELINE_BOTS:
        tls = test_certificate(out_dir) if args.tls else None
        fakes = Fakes(out_dir / f"{tag}.fakes.log", tls)
        extra_env["BENCH_FAKES"] = fakes.wait_ready()
        if tls is not None:
            extra_env["SSL_CERT_FILE"] = str(tls[0])  # httpx and OpenSSL's default paths
        extra_env["BENCH_TTS"] = bot
        extra_env["BENCH_PROBE_DIR"] = str(probe_dir)
        probe_dir.mkdir(exist_ok=True)
        for stale in probe_dir.glob("probe-*.jsonl"):  # a rerun into the same directory
            stale.unlink()
        sys.path.insert(0, str(BOTS))
        from _common import REPLY_SECS

        loadgen_args = ["--reply-secs", str(REPLY_SECS)]
    server = Server(stack, python, args.workers, out_dir / f"{tag}.server.log", bot, extra_env)
    try:
        server.wait_ready()
        # Warm-up: load the model, import lazily imported modules, fill caches.
        warm = [
            sys.executable,
            str(HERE / "loadgen.py"),
            "--url",
            server.url,
            "--calls",
            str(max(1, args.workers)),
            "--duration",
            "4",
            "--first-call",
            "900000",  # call ids apart from the measured calls' (probe records)
            "--out",
            str(out_dir / f"{tag}.warmup.json"),
            *loadgen_args,
        ]
        subprocess.run(warm, check=False, capture_output=True, preexec_fn=pinned("harness"))
        time.sleep(0.5)
        docs, info = run_generators(
            server.url,
            calls,
            args.duration,
            args.seed,
            out_dir,
            tag,
            server,
            fakes,
            loadgen_args,
            out_dir / f"{tag}.pyspy.txt" if args.profile else None,
        )
    finally:
        server.stop()
        if fakes is not None:
            fakes.stop()
    result = {
        "bot": bot,
        "stack": stack + args.label,
        "workers": args.workers,
        "tls": bool(args.tls),
        "pinned": {role: sorted(cpus) for role, cpus in PINNED.items()},
        "host_speed_secs": [round(speed_before, 3), round(host_speed(), 3)],
        "calls": calls,
        "duration": args.duration,
        **info,
        **merge(docs),
    }
    if fakes is not None:
        result.update(framework_share(result.get("turns", []), probe_dir))
    (out_dir / f"{tag}.json").write_text(json.dumps(result))
    return result


def test_certificate(out_dir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (``openssl``), made once per results directory."""
    cert, key = out_dir / "fakes-cert.pem", out_dir / "fakes-key.pem"
    if not (cert.exists() and key.exists()):
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", str(key), "-out", str(cert),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def results_dir(out: Path | None) -> Path:
    """``--out`` as an absolute path (relative to the directory run.py was started in: the
    generators and bots run in ``benchmarks/``), or a new timestamped one under ``results/``."""
    return (out or HERE / "results" / time.strftime("%Y%m%d-%H%M%S")).resolve()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bot", default="echo", choices=["echo", *FULL_PIPELINE_BOTS], help="see above"
    )
    parser.add_argument("--stacks", default="callpipe,pipecat", help="callpipe-spec: echo only")
    parser.add_argument("--calls", default="1,10,25,50,100,200")
    parser.add_argument("--duration", type=float, default=25.0, help="seconds of audio per call")
    parser.add_argument("--workers", type=int, default=1, help="server processes (callpipe)")
    parser.add_argument("--pipecat-max-calls", type=int, default=200)
    parser.add_argument("--pipecat-python", default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: N=1,10 for 8 s")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument(
        "--label",
        default="",
        help="appended to the stack names in the results (e.g. '@before' for a run of an older "
        "callpipe put first on PYTHONPATH)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the bot during the load (<tag>.pyspy.txt)"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the bot's processes on CPUs 0..workers-1, the callers and fakes on the rest (as "
        "if Twilio and the providers were other machines); needs more CPUs than workers",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="full-pipeline bots: the fakes serve HTTPS/WSS as the providers do (a self-signed "
        "certificate the bots trust through SSL_CERT_FILE; needs the openssl command)",
    )
    args = parser.parse_args()
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) <= args.workers:
            parser.error(f"--pin needs more than {args.workers} CPUs; this process has {len(cpus)}")
        PINNED["bot"], PINNED["harness"] = set(cpus[: args.workers]), set(cpus[args.workers :])
    if args.quick:
        args.calls, args.duration = "1,10", 8.0
    stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    counts = [int(n) for n in args.calls.split(",")]
    out_dir = results_dir(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    pythons = {
        "callpipe": sys.executable,
        "callpipe-spec": sys.executable,
        "callpipe-1.14": sys.executable,
    }
    if "pipecat" in stacks:
        pythons["pipecat"] = pipecat_python(args.pipecat_python)
        ensure_uvicorn(pythons["pipecat"])
    meta = {
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "duration": args.duration,
        "workers": args.workers,
        "pinned": {role: sorted(cpus) for role, cpus in PINNED.items()},
        "bot": args.bot,
        "import_secs": {
            s: import_time(pythons[s], TRANSPORT_MODULES[s])
            for s in stacks
            if s in TRANSPORT_MODULES
        },
    }
    (out_dir / f"meta-{args.bot}{args.label}-w{args.workers}.json").write_text(
        json.dumps(meta, indent=1)
    )
    print(f"results in {out_dir}", flush=True)
    for calls in counts:
        for stack in stacks:
            if stack == "pipecat" and calls > args.pipecat_max_calls:
                continue
            t = time.monotonic()
            result = bench_one(stack, pythons[stack], calls, args, out_dir)
            from report import summarize

            s = summarize(result)
            extra = ""
            if s.get("framework_p95_ms") is not None:
                extra = (
                    f" vad stop p50={s['vad_stop_p50_ms']:.0f}ms"
                    f" fw p95={s['framework_p95_ms']:.0f}ms"
                    f" fakes cpu/call-s={s['fakes_cpu_per_call_sec']:.4f}"
                )
            sys_share = result.get("server_sys_secs", 0.0) / max(result["server_cpu_secs"], 1e-9)
            print(
                f"{args.bot}{'+tls' if args.tls else ''}/{stack:8s} N={calls:3d} "
                f"cpu/call-s={s['cpu_per_call_sec']:.4f} "
                f"(sys {sys_share:.0%}) "
                f"rss/call={s['rss_per_call_mib']:.2f}MiB gap p99={s['gap_p99_ms']:.0f}ms "
                f"lat p50={s['latency_p50_ms']:.0f}ms intr p95={s['interrupt_p95_ms']:.0f}ms "
                f"noreply={s['no_reply']}/{s['utterances']} drop={s['dropouts']} "
                f"failed={s['failed_calls']}{extra} ({time.monotonic() - t:.0f}s, host "
                f"{'/'.join(f'{x:.2f}' for x in result['host_speed_secs'])}s)",
                flush=True,
            )
    if not args.no_report:
        from report import write_report

        write_report([out_dir])


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
