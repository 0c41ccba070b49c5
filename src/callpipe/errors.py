"""The one exception tree of callpipe.

::

    CallpipeError
    ├── ConfigurationError (also ValueError)   bad arguments, raised at construction
    ├── MissingDependencyError (also ImportError)  an optional extra is not installed
    ├── ProtocolError                          the remote peer sent something we cannot use
    ├── InvalidStateError                      an API was used in the wrong state
    └── CallControlError                       a provider REST request failed for good

Bad input from the network is never raised out of a receive loop: serializers count and skip it.
``ProtocolError`` exists for code that wants to signal such a problem explicitly.
"""

from __future__ import annotations


class CallpipeError(Exception):
    """Root of every exception raised by callpipe."""


class ConfigurationError(CallpipeError, ValueError):
    """A constructor or setting was given values that cannot work."""


class MissingDependencyError(CallpipeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed. Install it with: pip install 'callpipe[{extra}]'"
        )
        self.extra = extra


class ProtocolError(CallpipeError):
    """The remote peer broke its protocol."""


class InvalidStateError(CallpipeError):
    """An operation was attempted in a state where it is not allowed."""


class CallControlError(CallpipeError):
    """A provider REST call-control request failed after its retries."""
