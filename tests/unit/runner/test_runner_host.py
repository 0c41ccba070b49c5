"""Pipecat's ``runner_host()`` / ``runner_port()``: a bot builds its own URLs from them."""

from __future__ import annotations

import pytest

from callpipe.runner import run


def test_host_and_port_are_the_ones_the_runner_serves_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: list[tuple[str, int]] = []
    monkeypatch.setattr(run, "_serving", ("localhost", 7860))
    monkeypatch.setattr(run, "find_bot", lambda path=None: (None, None))
    monkeypatch.setattr(run, "create_app", lambda *a, **k: None)
    monkeypatch.setattr(run, "_log_instructions", lambda *a: None)
    monkeypatch.setattr(
        "callpipe.runner.server.serve",
        lambda app, host, port, *a, **k: served.append((run.runner_host(), run.runner_port())),
    )
    assert (run.runner_host(), run.runner_port()) == ("localhost", 7860)
    run.main(argv=["--host", "127.0.0.1", "--port", "9123"])
    assert served == [("127.0.0.1", 9123)]
    assert run.runner_downloads_folder() is None
