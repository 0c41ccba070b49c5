"""AWS credentials for callpipe's AWS services, and the SigV4 signing of their HTTP requests.

Keys come from the constructor, else from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``; the region from the constructor, else ``AWS_REGION``, else ``us-east-1``
(as in Pipecat). With no keys given either way, botocore's default chain supplies them
(credential files, SSO, instance and container roles), and renews the temporary ones it hands
out. The signing itself is botocore's (:class:`botocore.auth.SigV4Auth`): callpipe only hands it
each request's method, URL, ``Content-Type`` and body, and copies the headers it adds. A
WebSocket's URL is presigned the same way (:meth:`SigV4Signer.presign`, botocore's
:class:`~botocore.auth.SigV4QueryAuth`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from callpipe.errors import ConfigurationError, MissingDependencyError

DEFAULT_REGION = "us-east-1"
_SIGNATURE_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token")


@dataclass
class AWSCredentials:
    """Keys and region as resolved from the arguments and the environment (keys None: the
    default chain supplies them)."""

    access_key: str | None
    secret_key: str | None
    session_token: str | None
    region: str

    def to_boto_kwargs(self) -> dict[str, str | None]:
        """The keyword arguments a boto3/botocore client takes for these credentials."""
        return {
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "aws_session_token": self.session_token,
            "region_name": self.region,
        }


def resolve_credentials(
    *,
    aws_access_key_id: str | None = None,
    aws_secret_access_key: str | None = None,
    aws_session_token: str | None = None,
    region: str | None = None,
) -> AWSCredentials:
    """The arguments, else the standard ``AWS_*`` environment variables (see the module
    docstring)."""
    return AWSCredentials(
        access_key=aws_access_key_id or os.getenv("AWS_ACCESS_KEY_ID"),
        secret_key=aws_secret_access_key or os.getenv("AWS_SECRET_ACCESS_KEY"),
        session_token=aws_session_token or os.getenv("AWS_SESSION_TOKEN"),
        region=region or os.getenv("AWS_REGION") or DEFAULT_REGION,
    )


def _botocore() -> Any:
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.exceptions
        import botocore.session
    except ImportError as exc:
        raise MissingDependencyError("botocore (AWS request signing)", "aws") from exc
    return botocore


class SigV4Signer(httpx.Auth):
    """Signs each request of an ``httpx.AsyncClient`` for one AWS service and region."""

    requires_request_body = True

    def __init__(self, service: str, credentials: AWSCredentials) -> None:
        self._botocore = _botocore()
        self.service = service
        self.region = credentials.region
        self._from_chain = not (credentials.access_key and credentials.secret_key)
        self._credentials: Any = None
        if not self._from_chain:
            self._credentials = self._botocore.credentials.Credentials(
                credentials.access_key, credentials.secret_key, credentials.session_token
            )

    async def ensure_credentials(self) -> None:
        """Find the default chain's credentials (in a thread: it may read files or ask the
        instance metadata service); a ``ConfigurationError`` when there are none."""
        if self._credentials is not None:
            return
        session = self._botocore.session.get_session()
        try:
            found = await asyncio.to_thread(session.get_credentials)
        except self._botocore.exceptions.BotoCoreError as exc:
            raise ConfigurationError(f"no AWS credentials: {exc}") from exc
        if found is None:
            raise ConfigurationError(
                "no AWS credentials: pass aws_access_key_id and api_key (the secret key), set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure an AWS profile or role"
            )
        self._credentials = found

    def sign(self, request: httpx.Request, frozen: Any) -> None:
        """Add botocore's SigV4 headers for ``frozen`` (a ``ReadOnlyCredentials``) to
        ``request``. Signed: ``Content-Type``, ``Host`` and the ``X-Amz-*`` headers."""
        headers = {}
        if "content-type" in request.headers:
            headers["Content-Type"] = request.headers["content-type"]
        aws_request = self._botocore.awsrequest.AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        self._botocore.auth.SigV4Auth(frozen, self.service, self.region).add_auth(aws_request)
        for name in _SIGNATURE_HEADERS:
            value = aws_request.headers.get(name)
            if value is not None:
                request.headers[name] = value

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, Any, None]:
        raise RuntimeError("SigV4Signer signs the requests of an httpx.AsyncClient only")

    async def frozen_credentials(self) -> Any:
        """The keys to sign with now (a ``ReadOnlyCredentials``; the default chain's are
        renewed as they near their expiry)."""
        await self.ensure_credentials()
        if self._from_chain:  # a refresh may block on the network
            return await asyncio.to_thread(self._credentials.get_frozen_credentials)
        return self._credentials.get_frozen_credentials()

    async def presign(self, url: str, *, expires: int) -> str:
        """``url`` (a ``GET``, e.g. a WebSocket's) with botocore's SigV4 query signature added
        (:class:`botocore.auth.SigV4QueryAuth`): the ``X-Amz-*`` parameters, valid for
        ``expires`` seconds, only ``host`` signed."""
        frozen = await self.frozen_credentials()
        request = self._botocore.awsrequest.AWSRequest(method="GET", url=url)
        self._botocore.auth.SigV4QueryAuth(
            frozen, self.service, self.region, expires=expires
        ).add_auth(request)
        return str(request.url)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        self.sign(request, await self.frozen_credentials())
        yield request
