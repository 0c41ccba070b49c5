"""What NVIDIA's Riva speech services share: the SDK's protobuf modules, the gRPC channel, the
call metadata NVIDIA's cloud (NVCF) asks for, and how a gRPC status is handled."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from callpipe.errors import MissingDependencyError
from callpipe.services._env import NVIDIA_RIVA_URL_ENV
from callpipe.transcriptions.language import resolve_language

NVCF_SERVER = "grpc.nvcf.nvidia.com:443"
"""NVIDIA's hosted endpoint: every model behind it, told apart by its ``function-id``."""
API_KEY_ENV = "NVIDIA_API_KEY"

REFUSED = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
"""Statuses that mean the key (or its access to the function) was refused: fatal."""
RETRIED = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL", "UNKNOWN"})
"""Statuses worth another call (a server or network problem)."""

AUTH_HINT = "Check api_key (NVIDIA_API_KEY) and the function-id in model_function_map."

_LANGUAGES = {
    "ar": "ar-AR",
    "de": "de-DE",
    "en": "en-US",
    "es": "es-ES",
    "fr": "fr-FR",
    "hi": "hi-IN",
    "it": "it-IT",
    "ja": "ja-JP",
    "ko": "ko-KR",
    "pt": "pt-BR",
    "ru": "ru-RU",
    "zh": "zh-CN",
}
"""Riva's code for a base language (a regional tag, e.g. ``en-GB``, is Riva's own)."""


def riva_language(language: Any) -> str:
    """Riva's ``language_code`` for a ``Language`` member or a tag (``en`` -> ``en-US``)."""
    value = str(language)
    if "-" in value:
        return value
    return resolve_language(value, _LANGUAGES, use_base_code=False)


def protos() -> tuple[Any, Any, Any]:
    """The SDK's ``riva_asr_pb2``, ``riva_tts_pb2`` and ``riva_audio_pb2`` modules."""
    try:
        import riva.client.proto.riva_asr_pb2 as asr
        import riva.client.proto.riva_audio_pb2 as audio
        import riva.client.proto.riva_tts_pb2 as tts
    except ImportError as exc:
        raise MissingDependencyError("nvidia-riva-client (NVIDIA speech)", "nvidia") from exc
    return asr, tts, audio


def call_metadata(api_key: str | None, function_id: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata sent with every call: NVCF's ``function-id`` and the bearer key."""
    metadata: list[tuple[str, str]] = []
    if function_id:
        metadata.append(("function-id", function_id))
    if api_key:
        metadata.append(("authorization", f"Bearer {api_key}"))
    return tuple(metadata)


def api_key_for(api_key: str | None, server: str) -> str | None:
    """``api_key``, else ``$NVIDIA_API_KEY`` for NVIDIA's hosted endpoint (a local server
    takes none)."""
    if api_key:
        return api_key
    return os.environ.get(API_KEY_ENV) or None if server == NVCF_SERVER else None


def function_of(model_function_map: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The ``function_id`` and ``model_name`` of a Pipecat-style ``model_function_map``."""
    return model_function_map.get("function_id"), model_function_map.get("model_name")


def resolve_server(server: str, use_ssl: bool) -> tuple[str, bool]:
    """The ``host:port`` and TLS to use: ``server`` as given, except that NVIDIA's cloud is
    replaced by ``$CALLPIPE_NVIDIA_RIVA_URL`` when set (``http://`` means no TLS)."""
    address = os.environ.get(NVIDIA_RIVA_URL_ENV, "").strip() if server == NVCF_SERVER else ""
    if not address:
        return server, use_ssl
    scheme, sep, rest = address.partition("://")
    if not sep:
        return address.rstrip("/"), use_ssl
    return rest.rstrip("/"), scheme == "https"


def open_channel(server: str, use_ssl: bool) -> Any:
    """A ``grpc.aio`` channel to ``server`` (TLS with the system's roots when ``use_ssl``)."""
    try:
        import grpc
    except ImportError as exc:
        raise MissingDependencyError("grpcio (NVIDIA speech)", "nvidia") from exc
    if use_ssl:
        return grpc.aio.secure_channel(server, grpc.ssl_channel_credentials())
    return grpc.aio.insecure_channel(server)


def status_of(exc: BaseException) -> tuple[str, str] | None:
    """``(status name, details)`` of a gRPC error; None for anything else."""
    import grpc

    if not isinstance(exc, grpc.aio.AioRpcError):
        return None
    return exc.code().name, exc.details() or ""
