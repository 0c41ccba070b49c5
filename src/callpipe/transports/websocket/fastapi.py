"""Alias of :mod:`callpipe.transports.network.fastapi_websocket` under Pipecat's newer path."""

from callpipe.transports.network.fastapi_websocket import (
    FastAPIWebsocketInputTransport,
    FastAPIWebsocketOutputTransport,
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)

__all__ = [
    "FastAPIWebsocketInputTransport",
    "FastAPIWebsocketOutputTransport",
    "FastAPIWebsocketParams",
    "FastAPIWebsocketTransport",
]
