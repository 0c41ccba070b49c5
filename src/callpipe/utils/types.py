"""``NOT_GIVEN``: "no value was passed", distinct from ``None`` (which often means "switch off").

Pipecat 1.14's ``LLMContext`` defaults its tools and tool choice to this sentinel; bots compare
with :func:`is_given`.
"""

from __future__ import annotations

from typing import Literal, TypeGuard, TypeVar

_T = TypeVar("_T")


class NotGiven:
    """The type of :data:`NOT_GIVEN` (a falsy singleton)."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


def is_given(value: _T | NotGiven) -> TypeGuard[_T]:
    """True when ``value`` is anything but :data:`NOT_GIVEN`."""
    return not isinstance(value, NotGiven)


def assert_given(value: _T | NotGiven) -> _T:
    """``value``, which must not be ``NOT_GIVEN`` (a ``RuntimeError`` if it is)."""
    if isinstance(value, NotGiven):
        raise RuntimeError("expected a value, got NOT_GIVEN")
    return value


def require_given(value: _T | None | NotGiven, what: str) -> _T:
    """``value``, which must be given and neither None nor empty (a ``ValueError`` naming
    ``what`` if it is; a ``RuntimeError`` for ``NOT_GIVEN``)."""
    given = assert_given(value)
    if given is None or given == "":
        raise ValueError(f"{what} must be specified")
    return given
