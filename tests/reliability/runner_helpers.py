"""The reliability bot served by the real runner app (``callpipe.runner.app.create_app``)."""

from __future__ import annotations

from typing import Any

from callpipe.runner.app import Credentials, RunnerConfig, create_app

from .helpers import ACCOUNT_SID, BotServer, CallRecord

SECRET = b"reliability-stream-secret-0123456789"


class RunnerBot:
    """``bot(runner_args)`` running the same bot as ``BotServer``; records every call."""

    def __init__(self, server: BotServer | None = None) -> None:
        self.server = server or BotServer()
        self.calls: list[CallRecord] = self.server.calls

    async def __call__(self, args: Any) -> None:
        cd = args.call_data
        record = CallRecord(
            call_data={
                "start": {
                    "streamSid": cd.stream_id,
                    "callSid": cd.call_id,
                    "accountSid": ACCOUNT_SID,
                }
            }
        )
        self.calls.append(record)
        try:
            await self.server._run_call(args.websocket, record)
        except BaseException as exc:
            record.error = exc
            raise
        finally:
            record.done.set()


def runner_app(
    bot: RunnerBot,
    *,
    credentials: Credentials | None = None,
    **config: Any,
) -> Any:
    config.setdefault("transport", "twilio")
    return create_app(
        bot,
        RunnerConfig(**config),
        credentials=credentials or Credentials(),
        secret=SECRET,
    )
