"""What the gRPC fakes share: one ``grpc.aio`` server on ``127.0.0.1`` (a free port, no TLS)
that serves the handlers the fake hands over, its address, and ``start``/``stop``.

``grpc`` is imported when a fake starts, so importing a fake needs no ``grpcio``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from callpipe.testing.fakes._server import ServedFake

if TYPE_CHECKING:
    import grpc


class ServedGRPCFake(ServedFake):
    """A fake provider speaking gRPC; a subclass names its services in :meth:`_handlers`."""

    _grpc: grpc.aio.Server | None = None
    _port = 0

    def _handlers(self) -> Sequence[grpc.GenericRpcHandler]:
        """The generic handlers of the services this fake serves."""
        raise NotImplementedError

    @property
    def target(self) -> str:
        """``127.0.0.1:PORT``: the target of a gRPC channel to this fake."""
        return f"127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the fake's address as a URL (its ``CALLPIPE_*_URL``)."""
        return f"http://{self.target}"

    @property
    def secure(self) -> bool:
        return False

    def serve_tls(self, certfile: str, keyfile: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} serves without TLS")

    async def start(self) -> None:
        import grpc

        server = grpc.aio.server()
        server.add_generic_rpc_handlers(tuple(self._handlers()))
        self._port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._grpc = server

    async def stop(self) -> None:
        server, self._grpc = self._grpc, None
        if server is not None:
            await server.stop(None)
