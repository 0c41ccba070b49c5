"""The one exception tree of callpipe.

::

    CallpipeError
    ├── ConfigurationError (also ValueError)      bad arguments or settings, raised where given
    ├── MissingDependencyError (also ImportError)  an optional extra is not installed
    ├── ProtocolError (also ValueError)           the remote peer sent something we cannot use
    ├── ServiceAuthError                          a speech/LLM provider rejected the credentials
    ├── StreamTokenError                          a media stream's token was refused (runner)
    ├── OriginNotAllowedError (also ValueError)   a browser origin not in ``allowed_origins``
    ├── TokenStoreError                           the fleet's shared store (Redis) is unreachable
    ├── InvalidStateError                         an API was used in the wrong state
    │   └── CallEnded                             an action on a simulated call that has ended
    └── CallControlError                          a provider REST request failed for good

Every exception callpipe raises on purpose is one of these, so ``except CallpipeError`` catches
them all. ``ConfigurationError`` and ``ProtocolError`` are also ``ValueError`` because code
written for Pipecat catches ``ValueError`` (for example around ``parse_telephony_websocket``).

Bad input from the network is never raised out of a receive loop: serializers count and skip it.
``ProtocolError`` is for code that must report such a problem to its caller (the handshake
reader, a provider that answers nonsense).
"""

from __future__ import annotations


class CallpipeError(Exception):
    """Root of every exception raised by callpipe."""


class ConfigurationError(CallpipeError, ValueError):
    """A constructor, setting or argument was given values that cannot work."""


class MissingDependencyError(CallpipeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed. Install it with: pip install 'callpipe[{extra}]'"
        )
        self.extra = extra


class ProtocolError(CallpipeError, ValueError):
    """The remote peer broke its protocol."""


class ServiceAuthError(CallpipeError):
    """The provider rejected the credentials (HTTP 401/403): retrying cannot help."""


class StreamTokenError(CallpipeError):
    """Why a stream token was refused (safe to log: never contains the token)."""


class OriginNotAllowedError(CallpipeError, ValueError):
    """A WebSocket came from a browser origin that ``allowed_origins`` does not list (a
    ``ValueError``, as Pipecat raises; the runner refuses the call with one WARNING line)."""


class TokenStoreError(CallpipeError):
    """The fleet's shared store (stream tokens, dial records) could not be reached: refuse
    rather than admit unchecked."""


class InvalidStateError(CallpipeError):
    """An operation was attempted in a state where it is not allowed."""


class CallEnded(InvalidStateError):
    """Raised by actions on a simulated call (``callpipe.testing``) that has already ended."""


class CallControlError(CallpipeError):
    """A provider REST call-control request failed after its retries.

    ``reason`` is the provider's side of it (``HTTP 500 ...``, ``no answer within 5 s``) on one
    line and without the request path, which names the call: the transport logs it next to the
    masked call id. It defaults to the whole message.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
