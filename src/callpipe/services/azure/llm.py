"""AzureLLMService: Azure OpenAI chat completions.

Two URL forms, picked by ``endpoint``:

- An endpoint ending in ``/openai/v1`` (Azure's v1 API): plain OpenAI requests,
  ``POST {endpoint}/chat/completions`` with ``Authorization: Bearer <key>`` and the
  deployment name as ``model``.
- A resource endpoint (``https://<resource>.openai.azure.com``), the dated API:
  ``POST {endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`` with
  the key in an ``api-key`` header. The deployment is the model setting, so a model change in
  a settings update switches deployment. ``api_version`` defaults to ``2025-04-01-preview``,
  the last dated version Azure issued (the argument is deprecated in Pipecat 1.14 in favour of
  the v1 form).

The key comes from ``api_key=`` or ``AZURE_OPENAI_API_KEY``. Instead of a key,
``token_provider`` (a callable returning a Microsoft Entra token, or an awaitable of one, as
``azure.identity``'s ``get_bearer_token_provider`` makes) is called for every request and sent
as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from callpipe.errors import ConfigurationError
from callpipe.services.openai.llm import OpenAILLMService, OpenAILLMSettings
from callpipe.services.settings import store_from

AZURE_DEFAULT_MODEL = "gpt-4.1"
AZURE_DATED_API_VERSION = "2025-04-01-preview"
AZURE_V1_PATH = "/openai/v1"

AzureTokenProvider = Callable[[], str | Awaitable[str]]


@dataclass
class AzureLLMSettings(OpenAILLMSettings):
    """``AzureLLMService.Settings``: the OpenAI settings; ``model`` is the deployment name."""


class _EntraAuth(httpx.Auth):
    """Asks the token provider for a token on every request (it caches and refreshes)."""

    def __init__(self, provider: AzureTokenProvider) -> None:
        self._provider = provider

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._provider()
        if inspect.isawaitable(token):
            token = await token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class AzureLLMService(OpenAILLMService):
    """Azure OpenAI chat completions (see the module docstring).

    The deployment (model) is ``settings.model``, else ``model=`` (the older form), else
    ``gpt-4.1``.
    """

    Settings = AzureLLMSettings
    _settings: AzureLLMSettings
    _api_key_env = "AZURE_OPENAI_API_KEY"

    def __init__(
        self,
        *,
        endpoint: str,
        api_key: str | None = None,
        token_provider: AzureTokenProvider | None = None,
        model: str | None = None,
        api_version: str | None = None,
        settings: AzureLLMSettings | None = None,
        default_headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        if token_provider is None:
            api_key = api_key or os.environ.get("AZURE_OPENAI_API_KEY") or None
            if api_key is None:
                raise ConfigurationError(
                    "AzureLLMService: pass api_key=... (or set AZURE_OPENAI_API_KEY) "
                    "or token_provider=..."
                )
        endpoint = endpoint.rstrip("/")
        self._use_v1_api = endpoint.endswith(AZURE_V1_PATH)
        self._api_version = api_version or AZURE_DATED_API_VERSION
        self._token_provider = token_provider
        headers: dict[str, str] = {}
        bearer_key: str | None = None
        if token_provider is None and self._use_v1_api:
            bearer_key = api_key
        elif token_provider is None and api_key is not None:
            headers["api-key"] = api_key
        headers.update(default_headers or {})
        defaults = AzureLLMSettings(model=model or AZURE_DEFAULT_MODEL)
        super().__init__(
            api_key=bearer_key,
            base_url=endpoint if self._use_v1_api else f"{endpoint}/openai",
            settings=store_from(defaults, settings),
            default_headers=headers,
            **kwargs,
        )

    def completions_path(self) -> str:
        if self._use_v1_api:
            return "/chat/completions"
        return f"/deployments/{self.model_name}/chat/completions"

    def _make_client(self) -> httpx.AsyncClient:
        client = super()._make_client()
        if not self._use_v1_api:
            client.params = client.params.set("api-version", self._api_version)
        if self._token_provider is not None:
            client.auth = _EntraAuth(self._token_provider)
        return client
