"""A 20-number campaign through a real runner and a fake Twilio that calls back, interrupted.

The fake Twilio answers each create-call request and then POSTs signed status callbacks to the
runner: numbers ending in 3 are busy on the first try, in 7 never answer, the rest complete.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.campaign import (
    Campaign,
    CampaignSettings,
    CampaignState,
    read_numbers,
    write_results,
)
from callpipe.runner.dial_cli import main as dial_main
from callpipe.runner.security import twilio_signature
from callpipe.telephony.dial import ProviderAccount
from callpipe.testing.server import running_server
from callpipe.testing.virtual_calls import virtual_time

pytestmark = pytest.mark.integration

HOST = "bot.example.test"
KEY = "k" * 32
TOKEN = "twilio-auth-token"


class FakeTwilio:
    """Creates calls and plays their life out as signed callbacks to the runner."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.runner = ""
        self.dialed: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

        @self.app.post("/2010-04-01/Accounts/{account}/Calls.json")
        async def create(account: str, request: Request) -> JSONResponse:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            sid = f"CA{next(self._ids):04d}"
            self.dialed.append(form["To"])
            task = asyncio.create_task(self._life(sid, form))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return JSONResponse({"sid": sid, "status": "queued"}, status_code=201)

    def outcome(self, number: str) -> str:
        if number.endswith("3") and self.dialed.count(number) == 1:
            return "busy"
        if number.endswith("7"):
            return "no-answer"
        return "completed"

    async def _life(self, sid: str, form: dict[str, str]) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        steps = ["ringing"]
        final = self.outcome(form["To"])
        steps += ["in-progress", "completed"] if final == "completed" else [final]
        async with httpx.AsyncClient(base_url=f"http://{self.runner}") as http:
            for i, status in enumerate(steps):
                await asyncio.sleep(0.05)
                if i == len(steps) - 1:  # over before the runner can learn it
                    self.in_flight -= 1
                fields = {"CallSid": sid, "CallStatus": status}
                sig = twilio_signature(TOKEN, form["StatusCallback"], fields.items())
                await http.post(
                    "/calls/status",
                    content=urlencode(fields),
                    headers={
                        "X-Twilio-Signature": sig,
                        "Content-Type": "application/x-www-form-urlencoded",
                    },
                )


def runner_app(fake_url: str, max_calls: int | None = None) -> FastAPI:
    async def bot(args: Any) -> None:
        return None

    app = create_app(
        bot,
        RunnerConfig(proxy=HOST, transport="twilio", max_calls=max_calls),
        credentials=Credentials(twilio_auth_token=TOKEN, api_key=KEY),
        secret=b"s" * 32,
    )
    app.state.outbound.accounts["twilio"] = ProviderAccount.from_env(
        "twilio", {"TWILIO_ACCOUNT_SID": "AC1", "TWILIO_AUTH_TOKEN": "rest"}
    )
    app.state.outbound.base_urls["twilio"] = fake_url
    return app


def numbers_csv(path: Path) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "name"])
        for i in range(20):
            writer.writerow([f"+1555000{i:04d}", f"person {i}"])
    return path


def settings() -> CampaignSettings:
    return CampaignSettings(
        from_="+15557654321",
        provider="twilio",
        concurrency=5,
        rate=200.0,
        retries=1,
        retry_delay=0.05,
        call_timeout=10.0,
        poll=0.03,
    )


async def test_campaign_of_20_interrupted_and_resumed(tmp_path: Path) -> None:
    rows = read_numbers(numbers_csv(tmp_path / "numbers.csv"))
    assert len(rows) == 20 and rows[0][1] == {"name": "person 0"}
    fake = FakeTwilio()
    state_file = tmp_path / "state.json"
    lines: list[str] = []
    async with running_server(fake.app) as fake_addr:
        app = runner_app(f"http://{fake_addr}")
        async with running_server(app) as addr:
            fake.runner = addr
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(base_url=f"http://{addr}", headers=headers) as http:
                six_done = asyncio.Event()

                def progress(line: str) -> None:
                    lines.append(line)
                    if sum(1 for seen in lines if seen.startswith("[")) >= 6:
                        six_done.set()

                first = Campaign(http, settings(), CampaignState(state_file), progress=progress)
                task = asyncio.create_task(first.run(rows))
                await asyncio.wait_for(six_done.wait(), 20)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                saved = CampaignState(state_file).numbers
                finished = {n for n, e in saved.items() if e["result"] is not None}
                assert 6 <= len(finished) < 20
                dialed_before = Counter(fake.dialed)
                # The interrupted campaign's calls still ring out at the provider; resume once
                # they are over (a restarted process), so each campaign's concurrency is its own.
                for _ in range(100):
                    if fake.in_flight == 0:
                        break
                    await asyncio.sleep(0.05)

                second = Campaign(
                    http, settings(), CampaignState(state_file), progress=lines.append
                )
                numbers = await second.run(rows)
            await asyncio.sleep(0.3)  # let the fake's last callbacks land before shutdown
    assert fake.max_in_flight <= 5
    for number, entry in numbers.items():
        expected = "no-answer" if number.endswith("7") else "completed"
        assert entry["result"] == expected, number
        assert entry["attempts"] == (2 if number[-1] in "37" else 1), number
    # A number finished before the interrupt was not dialed again after it.
    after = Counter(fake.dialed)
    assert all(after[n] == dialed_before[n] for n in finished)
    assert sum(after.values()) == 20 + 2 + 2  # two busy, two no-answer numbers retried once
    write_results(tmp_path / "results.csv", numbers)
    table = list(csv.DictReader((tmp_path / "results.csv").read_text().splitlines()))
    assert len(table) == 20 and {r["result"] for r in table} == {"completed", "no-answer"}


@virtual_time
async def test_cli_dial_one_number(capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeTwilio()
    async with running_server(fake.app) as fake_addr:
        app = runner_app(f"http://{fake_addr}")
        async with running_server(app) as addr:
            fake.runner = addr
            argv = [
                "+15551234567",
                "--provider",
                "twilio",
                "--from",
                "+15557654321",
                "-x",
                addr,
                "--scheme",
                "http",
                "--api-key",
                KEY,
            ]
            code = await asyncio.to_thread(dial_main, argv)
            bad = await asyncio.to_thread(dial_main, [*argv[:-1], "wrong"])
            await asyncio.sleep(0.3)
    out = capsys.readouterr()
    assert code == 0 and '"provider": "twilio"' in out.out
    assert bad == 1 and "HTTP 401" in out.err
    assert fake.dialed == ["+15551234567"]


async def test_runner_capacity_bounds_the_campaign(tmp_path: Path) -> None:
    rows = read_numbers(numbers_csv(tmp_path / "numbers.csv"))[:8]
    fake = FakeTwilio()
    async with running_server(fake.app) as fake_addr:
        app = runner_app(f"http://{fake_addr}", max_calls=3)
        async with running_server(app) as addr:
            fake.runner = addr
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(base_url=f"http://{addr}", headers=headers) as http:
                campaign = Campaign(http, settings(), CampaignState(None))
                numbers = await campaign.run(rows)
            await asyncio.sleep(0.3)
    assert fake.max_in_flight <= 3  # concurrency 5, but the runner has 3 lines
    assert all(e["result"] in ("completed", "no-answer") for e in numbers.values())


@virtual_time
async def test_cli_campaign_writes_state_and_results(tmp_path: Path) -> None:
    path = tmp_path / "few.csv"
    path.write_text("number,name\n+15550000001,A\n+15550000003,B\n+15550000007,C\n")
    fake = FakeTwilio()
    async with running_server(fake.app) as fake_addr:
        app = runner_app(f"http://{fake_addr}")
        async with running_server(app) as addr:
            fake.runner = addr
            argv = [
                "--csv",
                str(path),
                "--provider",
                "twilio",
                "--from",
                "+15557654321",
                "-x",
                addr,
                "--scheme",
                "http",
                "--api-key",
                KEY,
                "--retry-delay",
                "0.05",
                "--poll",
                "0.05",
                "--rate",
                "100",
            ]
            code = await asyncio.to_thread(dial_main, argv)
            await asyncio.sleep(0.3)
    assert code == 0
    results = {
        r["number"]: r
        for r in csv.DictReader((tmp_path / "few.csv.results.csv").read_text().splitlines())
    }
    assert {n: r["result"] for n, r in results.items()} == {
        "+15550000001": "completed",
        "+15550000003": "completed",  # busy once, retried
        "+15550000007": "no-answer",
    }
    assert results["+15550000003"]["attempts"] == "2"
    assert (tmp_path / "few.csv.state.json").exists()
