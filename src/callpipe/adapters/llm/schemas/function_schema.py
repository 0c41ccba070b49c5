"""FunctionSchema: one tool the model may call, described once for every provider.

The schema can carry its handler: an LLM service then runs it for any context that advertises
the schema, without a separate ``register_function`` call (as in Pipecat 1.14).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FunctionSchema:
    """Name, description and JSON-schema parameters of a callable tool."""

    def __init__(
        self,
        name: str,
        description: str,
        properties: dict[str, Any],
        required: list[str],
        handler: Callable[..., Any] | None = None,
    ) -> None:
        self._name = name
        self._description = description
        self._properties = properties
        self._required = required
        self._handler = handler

    @property
    def name(self) -> str:
        return self._name

    @property
    def description(self) -> str:
        return self._description

    @property
    def properties(self) -> dict[str, Any]:
        return self._properties

    @property
    def required(self) -> list[str]:
        return self._required

    @property
    def handler(self) -> Callable[..., Any] | None:
        return self._handler

    def to_default_dict(self) -> dict[str, Any]:
        """The provider-neutral form: ``name``, ``description``, object ``parameters``."""
        return {
            "name": self._name,
            "description": self._description,
            "parameters": {
                "type": "object",
                "properties": self._properties,
                "required": self._required,
            },
        }

    def __repr__(self) -> str:
        return f"FunctionSchema({self._name!r})"
