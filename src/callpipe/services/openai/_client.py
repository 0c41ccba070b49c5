"""The HTTP plumbing the OpenAI services share: API key, base URL and one pooled httpx client.

Like the OpenAI SDK, the base URL comes from ``base_url=``, else ``OPENAI_BASE_URL``, and the
``OpenAI-Organization`` / ``OpenAI-Project`` headers from ``organization=`` / ``project=``, else
``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID`` (for OpenAI's own services only: a compatible
provider's never sends an OpenAI account's ids to that provider). ``default_headers=`` (the
SDK's argument too) are sent with every request and win over any header set here, names
compared without case.

A mixin rather than a base class because the services already derive from different service
bases (LLM, TTS, segmented STT). The client's connections come from the event loop's pool
(:mod:`callpipe.utils.http_pool`), so a turn finds a connection another call left warm.
``_open_http`` is what a service's ``start`` calls: it makes the
client and, when ``warmup`` is set, sends ``GET {base_url}/models`` so the first real request
skips TCP/TLS set-up and a rejected key is reported at start, not at the first turn.

``http_client=`` (Pipecat's argument: the user's own async client, e.g. for a longer timeout or
a proxy) replaces the pool: requests are sent through it with its timeouts and transport. It
may be an ``httpx`` client or one of the ``httpx2`` family the newer OpenAI SDKs build
(``openai.DefaultAsyncHttpxClient``). The user owns it: it is never closed here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from callpipe.errors import ConfigurationError
from callpipe.services._env import OPENAI_BASE_URL_ENV
from callpipe.services._http import error_message
from callpipe.services.ai_service import ServiceAuthError, resolve_api_key
from callpipe.utils.http_pool import pooled_transport

logger = logging.getLogger(__name__)

OPENAI_BASE_URL = "https://api.openai.com/v1"


def _httpx2() -> Any:
    """The ``httpx2`` module the newer OpenAI SDKs build their clients on, if installed."""
    try:
        import httpx2
    except ImportError:
        return None
    return httpx2


def _as_httpx_error(exc: Exception, request: httpx.Request) -> Exception:
    """An ``httpx`` error for an ``httpx2`` one, so the services' retry and error handling sees
    it; other exceptions are returned as they are."""
    httpx2 = _httpx2()
    if httpx2 is None or not isinstance(exc, httpx2.HTTPError):
        return exc
    message = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, httpx2.TimeoutException):
        return httpx.TimeoutException(message, request=request)
    return httpx.TransportError(message, request=request)


class _UserClientStream(httpx.AsyncByteStream):
    def __init__(self, response: Any, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except Exception as exc:
            raise _as_httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class _UserClientTransport(httpx.AsyncBaseTransport):
    """Sends each request through a user's async client (``httpx`` or ``httpx2``, checked when
    the service is made); the response body is passed on undecoded, as a transport's is."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        own = self._client.build_request(
            request.method, str(request.url), headers=request.headers.multi_items(), content=body
        )
        try:
            response = await self._client.send(own, stream=True)
        except Exception as exc:
            raise _as_httpx_error(exc, request) from exc
        return httpx.Response(
            response.status_code,
            headers=response.headers.multi_items(),
            stream=_UserClientStream(response, request),
        )

    async def aclose(self) -> None:
        """The user's client stays open: its owner closes it."""


def _check_user_client(service: str, client: object) -> None:
    if client is None or isinstance(client, httpx.AsyncClient):
        return
    httpx2 = _httpx2()
    if httpx2 is not None and isinstance(client, httpx2.AsyncClient):
        return
    raise ConfigurationError(
        f"{service}: http_client must be an async HTTP client (httpx.AsyncClient or "
        f"openai.DefaultAsyncHttpxClient), not {type(client).__name__}"
    )


class OpenAIHTTPMixin:
    """Key, base URL and client of one OpenAI(-compatible) service."""

    _api_key: str | None
    _base_url: str
    _organization: str | None
    _project: str | None
    _default_headers: dict[str, str]
    _timeout: float
    _warmup: bool
    _client: httpx.AsyncClient | None
    _user_client: Any
    _api_key_env = "OPENAI_API_KEY"
    """The environment variable named when the key is rejected (a compatible provider's own;
    empty for a local server that needs none). Only the OpenAI services themselves read
    ``OPENAI_ORG_ID`` / ``OPENAI_PROJECT_ID``."""

    @property
    def _key_env_hint(self) -> str:
        return f" / {self._api_key_env}" if self._api_key_env else ""

    def _init_http(
        self,
        api_key: str | None,
        base_url: str | None,
        *,
        organization: str | None = None,
        project: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        timeout_secs: float = 30.0,
        warmup: bool = False,
        http_client: Any = None,
    ) -> None:
        _check_user_client(type(self).__name__, http_client)
        base_url = base_url or os.environ.get(OPENAI_BASE_URL_ENV, "").strip() or None
        if base_url is None or base_url.rstrip("/") == OPENAI_BASE_URL:
            self._api_key = resolve_api_key(type(self).__name__, api_key, "OPENAI_API_KEY")
        else:
            # Local OpenAI-compatible servers (Ollama, vLLM, llama.cpp) often need no key.
            self._api_key = api_key
        self._base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        # OPENAI_ORG_ID / OPENAI_PROJECT_ID name an OpenAI account: a compatible provider's
        # service (its own ``_api_key_env``) never sends them to that provider.
        openai_account = self._api_key_env == "OPENAI_API_KEY"
        self._organization = (
            organization or (openai_account and os.environ.get("OPENAI_ORG_ID")) or None
        )
        self._project = project or (openai_account and os.environ.get("OPENAI_PROJECT_ID")) or None
        self._default_headers = dict(default_headers or {})
        self._timeout = timeout_secs
        self._warmup = warmup
        self._client = None
        self._user_client = http_client

    def _make_client(self) -> httpx.AsyncClient:
        headers = httpx.Headers()
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if self._organization:
            headers["OpenAI-Organization"] = self._organization
        if self._project:
            headers["OpenAI-Project"] = self._project
        for name, value in self._default_headers.items():
            headers[name] = value  # replaces a header of the same name in any case
        if self._user_client is not None:
            # The user's client brings its own timeouts, proxies and connections; ours only
            # adds the base URL and headers (no proxies from the environment: that would
            # route requests around the user's client).
            return httpx.AsyncClient(
                base_url=self._base_url,
                headers=headers,
                transport=_UserClientTransport(self._user_client),
                trust_env=False,
            )
        timeout = httpx.Timeout(self._timeout, connect=5.0)
        return httpx.AsyncClient(
            base_url=self._base_url, headers=headers, timeout=timeout, transport=pooled_transport()
        )

    def _http(self) -> httpx.AsyncClient:
        """The client, made on first use when the service is driven without ``start``."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    async def _open_http(self) -> None:
        self._client = self._make_client()
        if not self._warmup:
            return
        try:
            response = await self._client.get("/models", timeout=5.0)
        except httpx.HTTPError as exc:
            logger.debug("%s: warm-up request failed: %s", self, exc)
            return
        if response.status_code in (401, 403):
            raise ServiceAuthError(
                f"{self}: {self._base_url} rejected the API key (HTTP {response.status_code}): "
                f"{error_message(response.status_code, response.content)}. "
                f"Check api_key{self._key_env_hint}."
            )

    async def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
