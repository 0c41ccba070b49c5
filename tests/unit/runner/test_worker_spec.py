"""Workers get a typed, picklable spec; the server module does not import the CLI module."""

from __future__ import annotations

import ast
import pickle
import sys
from pathlib import Path

import callpipe.runner.server as server
from callpipe.runner.app import RunnerConfig
from callpipe.runner.run import build_app_from_spec, configure_logging
from callpipe.runner.server import WorkerSpec


def test_spec_survives_pickling_and_rebuilds_cli_args(tmp_path: Path) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text("async def bot(runner_args):\n    return None\n")
    spec = WorkerSpec(
        host="127.0.0.1",
        port=7860,
        build_app=build_app_from_spec,
        setup_logging=configure_logging,
        config=RunnerConfig(transport="twilio", insecure=True),
        bot_path=str(bot),
        cli_args={"transport": "twilio", "greeting": "hi"},
    )
    copy = pickle.loads(pickle.dumps(spec))
    assert copy.build_app is build_app_from_spec and copy.config.transport == "twilio"
    previous = sys.modules.pop("callpipe_user_bot", None)
    try:
        app = copy.build_app(copy)
    finally:  # the runner caches the loaded bot file; leave other tests' state alone
        sys.modules.pop("callpipe_user_bot", None)
        if previous is not None:
            sys.modules["callpipe_user_bot"] = previous
    state = app.state.runner
    assert state.config.cli_args is not None and state.config.cli_args.greeting == "hi"


def test_server_does_not_import_the_cli_module() -> None:
    tree = ast.parse(Path(server.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "callpipe.runner.run" not in imported
