"""The call inspector at ``/calls``: live calls, recent records, and one call in detail.

``GET /calls`` is a static page (no data in it, no build step); it polls the JSON routes:

- ``GET /calls/api``: live calls (with their current state) and the recent records, summarised;
- ``GET /calls/api/{record_id}``: one record (a live call's record so far);
- ``GET /calls/api/{record_id}/recording.wav``: its finished recording, when one was made.

Records hold what callers said, so the JSON routes are open only in local mode on this machine
(``--insecure`` without ``-x``); anywhere else they need ``CALLPIPE_API_KEY`` as a bearer
token (the page asks for it and sends it as a header, never in a URL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from callpipe.runner.http_guard import api_key_refusal
from callpipe.runner.records import RecordStore

_PAGE = Path(__file__).with_name("static") / "calls.html"


def summary(record_id: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "record_id": record_id,
        "call_id": record["call"]["id"],
        "provider": record["call"]["provider"],
        "state": record["state"],
        "started_at": record["started_at"],
        "duration_secs": record["duration_secs"],
        "ended_by": record["end"]["by"],
        "turns": len(record["turns"]),
    }


def add_call_inspector(
    app: FastAPI, store: RecordStore, *, open_access: bool, api_key: str | None
) -> None:
    """Add ``/calls`` and its JSON routes. ``open_access``: local mode on this machine."""

    def refusal(request: Request) -> JSONResponse | None:
        if open_access:
            return None
        return api_key_refusal(request, api_key, route="/calls")

    @app.get("/calls", include_in_schema=False)
    async def calls_page() -> HTMLResponse:
        return HTMLResponse(_PAGE.read_text(encoding="utf-8"))

    @app.get("/calls/api", response_model=None)
    async def calls_list(request: Request) -> dict[str, Any] | JSONResponse:
        denied = refusal(request)
        if denied is not None:
            return denied
        live = [
            summary(record_id, recorder.snapshot())
            for record_id, recorder in list(store.live.items())
        ]
        recent = [summary(record_id, record) for record_id, record in store.recent.items()]
        recent.reverse()
        return {
            "enabled": store.enabled,
            "recording": store.config.recording,
            "live": live,
            "recent": recent,
        }

    @app.get("/calls/api/{record_id}", response_model=None)
    async def call_record(request: Request, record_id: str) -> dict[str, Any] | JSONResponse:
        denied = refusal(request)
        if denied is not None:
            return denied
        record = store.get(record_id)
        if record is None:
            return JSONResponse({"error": "no such call"}, status_code=404)
        return record

    @app.get("/calls/api/{record_id}/recording.wav", response_model=None)
    async def call_recording(request: Request, record_id: str) -> Response:
        denied = refusal(request)
        if denied is not None:
            return denied
        record = store.recent.get(record_id)
        recording = record.get("recording") if record is not None else None
        if not recording or not recording.get("complete") or store.storage is None:
            return JSONResponse({"error": "no finished recording"}, status_code=404)
        path = store.storage.local_path(str(recording["name"]))
        if path is None or not path.is_file():
            return JSONResponse({"error": "recording not stored here"}, status_code=404)
        return FileResponse(path, media_type="audio/wav")
