"""Call records kept by the runner: live calls, a ring of recent records, files on disk.

On by default in local mode (the inspector at ``/calls`` shows them); in production opt in with
``--records DIR`` / ``CALLPIPE_RECORDS_DIR`` (records written there) or ``CALLPIPE_RECORDS=1``
(memory only). Each record is written atomically when its call ends (a temporary file renamed
into place: a reader never sees half a record), off the event loop, and never delays the call's
teardown; a failure to write is logged once per call and counted.

``--recording`` / ``CALLPIPE_RECORDING=1`` also records each call's audio (stereo WAV, see
:mod:`callpipe.transports.recording`) into the same directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import tempfile
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callpipe.metrics.registry import REGISTRY
from callpipe.runner.types import RunnerArguments
from callpipe.transports.call_record import CallRecorder, recording_calls
from callpipe.transports.recording import CallRecording, LocalDirectoryStorage, RecordingStorage

logger = logging.getLogger(__name__)

RECORDS_DIR_ENV = "CALLPIPE_RECORDS_DIR"
RECORDS_ENV = "CALLPIPE_RECORDS"
RECORDING_ENV = "CALLPIPE_RECORDING"
RECORDINGS_S3_ENV = "CALLPIPE_RECORDINGS_S3"

RECORDS_WRITTEN = REGISTRY.counter(
    "callpipe_records_written_total", "Call records stored (labels: outcome=ok|failed)."
)


def _flag(value: str | None) -> bool | None:
    if value is None or not value.strip():
        return None
    return value.strip().lower() not in ("0", "false", "no", "off")


@dataclass
class RecordsConfig:
    """Whether and where records (and recordings) are kept."""

    enabled: bool = False
    directory: Path | None = None
    recording: bool = False
    ring_size: int = 100
    s3_url: str | None = None
    """``s3://bucket/prefix``: recordings go to an S3-compatible bucket (AWS_* settings)."""

    @classmethod
    def resolve(
        cls,
        *,
        local: bool,
        directory: str | None = None,
        enabled: bool | None = None,
        recording: bool | None = None,
        tracing: bool = False,
    ) -> RecordsConfig:
        """Flags win over the environment; local mode (or tracing) turns records on unless
        told not to."""
        directory = directory or os.environ.get(RECORDS_DIR_ENV) or None
        if enabled is None:
            enabled = _flag(os.environ.get(RECORDS_ENV))
        if enabled is None:
            enabled = local or directory is not None or tracing
        if recording is None:
            recording = bool(_flag(os.environ.get(RECORDING_ENV)))
        path = Path(directory) if directory else None
        s3_url = os.environ.get(RECORDINGS_S3_ENV) or None
        return cls(enabled=enabled, directory=path, recording=recording and enabled, s3_url=s3_url)


class RecordStore:
    """Per process: the recorders of live calls and a bounded ring of finished records."""

    def __init__(
        self,
        config: RecordsConfig,
        *,
        storage: RecordingStorage | None = None,
        on_record: Sequence[Callable[[dict[str, Any]], None]] = (),
    ) -> None:
        self.config = config
        self.live: dict[str, CallRecorder] = {}
        self.recent: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._on_record = tuple(on_record)
        self._writes: set[asyncio.Task[None]] = set()
        self._order: deque[str] = deque()
        if storage is None and config.recording:
            if config.s3_url:
                from callpipe.runner.s3_storage import S3Storage

                storage = S3Storage.from_url(config.s3_url)
            else:
                temp = Path(tempfile.gettempdir()) / "callpipe-recordings"
                storage = LocalDirectoryStorage(config.directory or temp)
        self.storage = storage

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def begin(
        self,
        *,
        provider: str,
        call_id: str | None = None,
        session_id: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
    ) -> tuple[str, CallRecorder]:
        """A new call: its record id and recorder (with a recording when those are on)."""
        record_id = secrets.token_hex(8)
        recording = None
        if self.storage is not None and self.config.recording:
            try:
                recording = CallRecording(self.storage, f"{record_id}.wav")
            except OSError as exc:
                logger.warning("call recording not started: %s", exc)
        recorder = CallRecorder(
            call_id=call_id,
            provider=provider,
            session_id=session_id,
            from_number=from_number,
            to_number=to_number,
            recording=recording,
        )
        self.live[record_id] = recorder
        return record_id, recorder

    def begin_call(self, provider: str, args: RunnerArguments) -> str | None:
        """Start the record of a call the runner admitted (None when records are off)."""
        if not self.enabled:
            return None
        data = args.call_data
        record_id, _ = self.begin(
            provider=provider,
            call_id=data.call_id if data is not None else None,
            session_id=args.session_id,
            from_number=data.from_number if data is not None else None,
            to_number=data.to_number if data is not None else None,
        )
        return record_id

    def serving(self, record_id: str | None) -> contextlib.AbstractContextManager[Any]:
        """Around ``bot()``: publish the call's recorder to everything the bot builds."""
        recorder = self.live.get(record_id) if record_id is not None else None
        if recorder is None:
            return contextlib.nullcontext()
        return recording_calls(recorder)

    def end(self, record_id: str | None, outcome: str) -> dict[str, Any] | None:
        """The call is over: close its record, keep it in the ring, store it in the background."""
        if record_id is None:
            return None
        recorder = self.live.pop(record_id, None)
        if recorder is None:
            return None
        try:
            record = recorder.finish(outcome)
        except Exception:  # a record must never break the runner's teardown of a call
            logger.exception("call record %s could not be finished", record_id)
            return None
        record["record_id"] = record_id
        self.recent[record_id] = record
        while len(self.recent) > self.config.ring_size:
            self.recent.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._store(record_id, record))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return record

    async def _store(self, record_id: str, record: dict[str, Any]) -> None:
        """After the call: store the recording, write the record, then tell the hooks."""
        recording = record.get("recording")
        if recording is not None and self.storage is not None:
            try:
                await asyncio.to_thread(self.storage.finish, str(recording["name"]))
            except Exception as exc:
                recording["stored"] = False
                logger.warning("recording of call record %s not stored: %s", record_id, exc)
            else:
                recording["stored"] = True
        if self.config.directory is not None:
            await self._write(record_id, record)
        for hook in self._on_record:  # webhook, trace export: each schedules its own work
            try:
                hook(record)
            except Exception:
                logger.exception("call record hook failed")

    def get(self, record_id: str) -> dict[str, Any] | None:
        recorder = self.live.get(record_id)
        if recorder is not None:
            snapshot = recorder.snapshot()
            snapshot["record_id"] = record_id
            return snapshot
        return self.recent.get(record_id)

    async def _write(self, record_id: str, record: dict[str, Any]) -> None:
        directory = self.config.directory
        assert directory is not None
        try:
            await asyncio.to_thread(write_atomically, directory / f"{record_id}.json", record)
        except Exception as exc:  # a full disk must not become a crashed call
            RECORDS_WRITTEN.inc(outcome="failed")
            logger.warning("call record %s not written: %s", record_id, exc)
        else:
            RECORDS_WRITTEN.inc(outcome="ok")

    async def flush(self) -> None:
        """Wait for records still being written (tests, shutdown)."""
        if self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)


def write_atomically(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as JSON to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh, ensure_ascii=False, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
