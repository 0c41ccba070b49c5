"""A new user's first calls, in-process: a bot that fails its setup tells the caller why, and
``/`` gives advice that fits the mode the runner is in."""

from __future__ import annotations

import logging
import os

import httpx
import pytest

from callpipe.runner.app import Credentials, RunnerConfig, create_app
from callpipe.runner.types import RunnerArguments, WebSocketRunnerArguments
from callpipe.runner.utils import parse_telephony_websocket
from callpipe.serializers.twilio import TwilioFrameSerializer
from callpipe.testing.server import running_server
from callpipe.testing.simulator.call import SimulatedCall

pytestmark = pytest.mark.integration


async def readme_bot_without_credentials(runner_args: RunnerArguments) -> None:
    """The README bot's first lines as they were: Twilio serializer, credentials from the
    environment, automatic hang-up left on. Without the credentials its setup raises."""
    assert isinstance(runner_args, WebSocketRunnerArguments)
    _, call_data = await parse_telephony_websocket(runner_args.websocket)
    TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_data["call_id"],
        account_sid=os.getenv("FIRST_RUN_UNSET_SID"),
        auth_token=os.getenv("FIRST_RUN_UNSET_TOKEN"),
    )


async def test_bot_setup_failure_reaches_the_caller_with_one_error_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = create_app(
        readme_bot_without_credentials,
        RunnerConfig(insecure=True),
        credentials=Credentials(),
        secret=b"k" * 32,
    )
    caplog.set_level(logging.INFO)
    async with running_server(app) as host:
        async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
            assert await call.wait_for_hangup(timeout=5)
    result = call.result()
    assert result.ended_by == "bot" and result.close_code == 1011
    assert result.close_reason.startswith("bot failed: ConfigurationError")
    assert "auto_hang_up" in result.close_reason
    assert len(result.close_reason.encode()) <= 123
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "auto_hang_up" in errors[0].getMessage() and errors[0].exc_info is None


async def test_unexpected_bot_exception_keeps_its_text_out_of_the_close_reason() -> None:
    async def bot(runner_args: RunnerArguments) -> None:
        raise RuntimeError("secret-ish detail")

    app = create_app(bot, RunnerConfig(insecure=True), credentials=Credentials(), secret=b"k" * 32)
    async with running_server(app) as host:
        async with SimulatedCall(f"ws://{host}/ws", "twilio") as call:
            await call.wait_for_hangup(timeout=5)
    result = call.result()
    assert (result.close_code, result.close_reason) == (1011, "bot failed: RuntimeError")


@pytest.mark.parametrize(
    ("config", "expected", "absent"),
    [
        (RunnerConfig(insecure=True), "/phone", "-t "),
        # Secure mode refuses an unsigned request before any advice (403): see the webhook tests.
        (RunnerConfig(insecure=True, proxy="bot.example"), "vonage", "/phone"),
    ],
)
async def test_root_advice_fits_the_mode(config: RunnerConfig, expected: str, absent: str) -> None:
    async def bot(runner_args: RunnerArguments) -> None:
        return None

    app = create_app(bot, config, credentials=Credentials(), secret=b"k" * 32)
    async with running_server(app) as host, httpx.AsyncClient() as http:
        response = await http.get(f"http://{host}/")
    assert response.status_code == 400
    body = response.json()
    assert expected in body["hint"] and absent not in body["hint"]
