"""One TLS context per process for the HTTP clients made per call.

httpx builds a new ``SSLContext`` for every client by default and loads the CA bundle into it:
about 25 ms of CPU on the event loop (measured 23 ms here) and 0.9 MiB, once per client. A call
makes several clients (its LLM and REST services, the provider's call control at hang-up, the
call-record webhook), and while one is built every other call on the loop waits. Every client
made on the loop passes ``verify=shared_ssl_context()`` instead.

The ``websockets`` client does the same for every ``wss://`` connection it opens (its default is
a fresh ``ssl.create_default_context()``: 21 ms here), and a call opens one per streaming STT and
TTS service; :func:`shared_websocket_ssl_context` is that default, made once.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["shared_ssl_context", "shared_websocket_ssl_context"]


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The process's TLS context (certificate checks on, httpx's defaults), made on first use."""
    return httpx.create_ssl_context()


@functools.cache
def shared_websocket_ssl_context() -> ssl.SSLContext:
    """The process's TLS context for ``wss://`` provider sockets: what ``websockets`` would make
    for each connection (``ssl.create_default_context()``, the system's CA store), made once.
    Kept apart from :func:`shared_ssl_context`, whose ALPN list httpcore sets for HTTP."""
    return ssl.create_default_context()
