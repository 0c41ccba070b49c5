"""Run an attack against a runner process while a genuine call is live, and measure the harm.

Used by test_http_attacks.py (assertions) and runnable as a script to print the measurements
for a report::

    python tests/integration/runner/attack_kit.py        # against the code on PYTHONPATH

What is measured for each attack: the statuses the attack got, how long it took to be refused,
the runner's RSS growth while it ran (sampled every 10 ms), and the largest gap between audio
packets the genuine call received during it.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from callpipe.testing.simulator import CallIdentity, SimulatedCall

PROXY = "example.test"
AUTH_TOKEN = "attack-kit-auth-token"
API_KEY = "attack-kit-api-key-0123456789"
ENV = {
    "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
    "CALLPIPE_API_KEY": API_KEY,
    "REPLY_SECS": "25",
    "END_AFTER_REPLY": "0",
}
ARGS = ["-x", PROXY]  # detection mode: the request decides which provider it claims to be


def signed_webhook(call_id: str, *, url: str = f"https://{PROXY}/") -> dict[str, Any]:
    form = {"CallSid": call_id, "AccountSid": "AC1", "From": "+15551112222", "To": "+15553334444"}
    sig = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    return {"data": form, "headers": {"X-Twilio-Signature": sig}}


def token_of(doc: str) -> str | None:
    if "/ws/" not in doc:
        return None
    return doc.split("/ws/", 1)[1].split('"', 1)[0].split("<", 1)[0]


def cpu_secs(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Outcome:
    statuses: list[int | str] = field(default_factory=list)
    refuse_secs: float = 0.0
    server_cpu: float = 0.0
    rss_growth: int = 0
    max_gap: float = 0.0
    packets: int = 0
    call_alive: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self, name: str) -> str:
        kinds = sorted({str(s) for s in self.statuses})
        ms = self.refuse_secs * 1000
        return (
            f"{name:<22} statuses={','.join(kinds):<12} refused in {ms:7.1f} ms"
            f"  server cpu {self.server_cpu * 1000:6.0f} ms"
            f"  rss +{self.rss_growth / 1e6:6.1f} MB  max audio gap {self.max_gap * 1000:5.0f} ms"
            f"  packets={self.packets} alive={self.call_alive} {self.notes or ''}"
        )


async def genuine_call(base: str, ws_base: str, call_id: str) -> SimulatedCall:
    """A real call: signed webhook, its token, the stream; returns once bot audio flows."""
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        doc = (await http.post("/", **signed_webhook(call_id))).text
    token = token_of(doc)
    assert token, doc
    call = SimulatedCall(f"{ws_base}/ws/{token}", "twilio", identity=CallIdentity(call_id=call_id))
    await call.connect()
    assert await call.wait_for_bot_speech(10.0), "the genuine call got no audio"
    return call


@contextlib.contextmanager
def rss_sampler(pid: int) -> Iterator[list[int]]:
    samples = [rss_bytes(pid)]
    stop = False

    async def sample() -> None:
        while not stop:
            samples.append(rss_bytes(pid))
            await asyncio.sleep(0.01)

    task = asyncio.get_running_loop().create_task(sample())
    try:
        yield samples
    finally:
        stop = True
        task.cancel()
        samples.append(rss_bytes(pid))


def attack_in_child(
    attack: Callable[[Outcome], Awaitable[None]], outcome: Outcome, timeout: float
) -> None:
    """Run ``attack`` in a forked process; its statuses and notes are added to ``outcome``."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        mine = Outcome()
        try:
            asyncio.run(attack(mine))
            sender.send((None, mine.statuses, mine.notes))
        except BaseException as exc:  # reported to the parent, which raises it
            sender.send((repr(exc), mine.statuses, mine.notes))

    process = context.Process(target=child, name="attacker", daemon=True)
    process.start()
    sender.close()  # the child's copy is the only writer left: its death reads as EOF here
    try:
        if not receiver.poll(timeout):
            raise TimeoutError(f"the attack did not finish in {timeout:.0f} s")
        try:
            error, statuses, notes = receiver.recv()
        except EOFError:
            process.join(5)
            raise AssertionError(f"the attacker died (exit code {process.exitcode})") from None
    finally:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
    outcome.statuses.extend(statuses)
    outcome.notes.update(notes)
    if error is not None:
        raise AssertionError(f"the attack failed: {error}")


async def under_attack(
    base: str,
    ws_base: str,
    pid: int,
    call_id: str,
    attack: Callable[[Outcome], Awaitable[None]],
) -> Outcome:
    """Run ``attack`` while a genuine call plays; measure refusal time, memory, audio gaps."""
    call = await genuine_call(base, ws_base, call_id)
    outcome = Outcome()
    try:
        await asyncio.sleep(0.3)
        baseline = rss_bytes(pid)
        cpu0 = cpu_secs(pid)
        t0 = call.now()
        started = time.monotonic()
        with rss_sampler(pid) as samples:
            # The attacker runs in a process of its own, so building and sending its requests
            # cannot delay this loop's reading of the genuine call's audio (that would be a gap
            # of the test's making, not the server's; a thread still shared the GIL with it).
            await asyncio.to_thread(attack_in_child, attack, outcome, 60.0)
            outcome.refuse_secs = time.monotonic() - started
            await asyncio.sleep(0.1)
        t1 = call.now()
        outcome.server_cpu = cpu_secs(pid) - cpu0  # includes the genuine call's own work
        outcome.rss_growth = max(samples) - baseline
        arrivals = call.playout.voiced_arrivals
        window = [t for t in arrivals if t0 <= t <= t1]
        before = [t for t in arrivals if t < t0][-1:]
        after = [t for t in arrivals if t > t1][:1]
        edges = before + window + after
        outcome.packets = len(window)
        outcome.max_gap = max(
            (b - a for a, b in zip(edges, edges[1:], strict=False)), default=t1 - t0
        )
        seen = len(arrivals)
        await asyncio.sleep(0.2)
        outcome.call_alive = not call.ended and len(call.playout.voiced_arrivals) > seen
    finally:
        await call.hang_up()
    return outcome


# ----------------------------------------------------------------------------- the attacks

FORGERIES: list[tuple[str, dict[str, Any]]] = [
    ("POST", {"data": {"CallUUID": "u1", "From": "1555", "To": "1666"}}),
    ("GET", {"params": {"CallSid": "e1", "CallFrom": "0999", "CallTo": "0888"}}),
    ("GET", {"params": {"uuid": "v1", "conversation_uuid": "c1", "from": "1"}}),
    ("POST", {"data": {"CallSid": "CA1"}, "headers": {"telnyx-signature-ed25519": "AAAA"}}),
    ("POST", {"data": {"CallUUID": "u2"}, "headers": {"x-plivo-signature-v3": "x"}}),
    ("POST", {"data": {"CallSid": "CA2"}, "headers": {"X-Twilio-Signature": "Zm9yZ2Vk"}}),
]


def provider_confusion(base: str, rounds: int = 20) -> Callable[[Outcome], Awaitable[None]]:
    async def attack(out: Outcome) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(rounds):
                for method, kwargs in FORGERIES:
                    resp = await http.request(method, "/", **kwargs)
                    out.statuses.append(resp.status_code)
                    if token_of(resp.text):
                        out.notes["tokens_minted"] = out.notes.get("tokens_minted", 0) + 1

    return attack


def big_body(base: str, size: int = 10 * 1024 * 1024, *, announced: bool = True) -> Any:
    async def attack(out: Outcome) -> None:
        payload = (b"a=&" * (size // 3 + 1))[:size]  # 10 MB of empty form parameters
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if not announced:
            headers["X-Twilio-Signature"] = "Zm9yZ2Vk"  # claims a signature: read up to the cap

            async def chunks() -> Any:
                for offset in range(0, size, 256 * 1024):
                    yield payload[offset : offset + 256 * 1024]

            content: Any = chunks()
        else:
            content = payload
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            try:
                resp = await http.post("/", content=content, headers=headers)
                out.statuses.append(resp.status_code)
            except httpx.HTTPError as exc:  # the server may close while we still send
                out.statuses.append(type(exc).__name__)

    return attack


def unsigned_flood(base: str, n: int = 200, size: int = 60_000) -> Any:
    async def attack(out: Outcome) -> None:
        body = b"CallSid=CA1&" + b"x=" * (size // 2)
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for i in range(0, n, 20):
                batch = [
                    http.post("/", content=body, headers={"content-type": "text/plain"})
                    for _ in range(min(20, n - i))
                ]
                out.statuses.extend(r.status_code for r in await asyncio.gather(*batch))

    return attack


def replay(base: str, ws_base: str, call_id: str, times: int = 20) -> Any:
    async def attack(out: Outcome) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            tokens: list[str | None] = []
            for _ in range(times):
                resp = await http.post("/", **signed_webhook(call_id))
                out.statuses.append(resp.status_code)
                tokens.append(token_of(resp.text))
        out.notes["distinct_tokens"] = len(set(tokens))
        # The genuine call redeemed the call's token: a second stream must be refused.
        from integration.runner.harness import fake_call

        token = tokens[-1]
        second = await fake_call(f"{ws_base}/ws/{token}", "twilio", call_id=call_id, max_secs=2)
        out.notes["second_stream"] = second.close_code or second.http_status

    return attack


def anonymous_start(base: str, n: int = 200) -> Any:
    async def attack(out: Outcome) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(n):
                resp = await http.post("/start")
                out.statuses.append(resp.status_code)
            for path in ("/docs", "/redoc", "/openapi.json", "/metrics", "/status"):
                resp = await http.get(path)
                out.notes[path] = resp.status_code

    return attack


def forged_host(base: str) -> Any:
    """A genuinely signed webhook for another URL, made to look as if sent there."""

    async def attack(out: Outcome) -> None:
        other = "https://attacker.example/"
        signed = signed_webhook("CA999", url=other)
        headers = {
            **signed["headers"],
            "Host": "attacker.example",
            "X-Forwarded-Host": "attacker.example",
            "X-Forwarded-Proto": "https",
        }
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(20):
                resp = await http.post("/", data=signed["data"], headers=headers)
                out.statuses.append(resp.status_code)

    return attack


def log_forging(base: str) -> Any:
    async def attack(out: Outcome) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            resp = await http.post("/", **signed_webhook("CA7\nERROR FORGED-LINE injected"))
            out.statuses.append(resp.status_code)

    return attack


async def _main() -> None:  # pragma: no cover - measurement script
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).parents[2]))  # tests/
    from integration.runner.harness import run_bot_process
    from integration.runner.test_runner_process import NO_PROVIDER_CREDS

    tmp = Path(tempfile.mkdtemp())
    with run_bot_process(tmp, ARGS, {**NO_PROVIDER_CREDS, **ENV}) as runner:
        base, ws = runner.base, f"ws://127.0.0.1:{runner.port}"
        pid = runner.proc.pid
        attacks: list[tuple[str, Any]] = [
            ("provider confusion", provider_confusion(base)),
            ("10 MB body", big_body(base)),
            ("10 MB body, chunked", big_body(base, announced=False)),
            ("unsigned 60 KB x200", unsigned_flood(base)),
            ("anonymous /start x200", anonymous_start(base)),
            ("forged Host", forged_host(base)),
            ("log forging", log_forging(base)),
        ]
        for i, (name, attack) in enumerate(attacks):
            try:
                outcome = await under_attack(base, ws, pid, f"CA{i:032d}", attack)
                print(outcome.line(name), flush=True)
            except Exception as exc:
                print(f"{name:<22} measurement failed: {type(exc).__name__}: {exc}", flush=True)
        call_id = "CA" + "7" * 32
        try:
            outcome = await under_attack(base, ws, pid, call_id, replay(base, ws, call_id))
            print(outcome.line("webhook replay x20"), flush=True)
        except Exception as exc:
            print(f"replay measurement failed: {type(exc).__name__}: {exc}", flush=True)
        forged = [ln for ln in runner.output().splitlines() if ln.startswith("ERROR FORGED")]
        print(f"forged log lines in the server log: {len(forged)}")


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_main())
