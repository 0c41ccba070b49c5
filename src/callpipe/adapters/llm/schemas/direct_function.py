"""Direct functions: a tool described by its own signature and docstring (Pipecat 1.14).

``async def get_weather(params, city: str, unit: str = "celsius")`` with a Google-style
docstring (summary, then ``Args:`` with one ``name: description`` line per argument) becomes a
:class:`FunctionSchema` whose handler calls the function with ``params`` and the model's
arguments as keywords. Parameter types map to JSON schema types (``str``, ``int``, ``float``,
``bool``, lists, dicts, ``Literal[...]`` as an enum); arguments without a default are required.

:func:`tool_options` attaches call options (``cancel_on_interruption``, ``timeout_secs``) to a
direct function or a ``FunctionSchema`` handler; the LLM service reads them.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from callpipe.adapters.llm.schemas.function_schema import FunctionSchema

DirectFunction = Callable[..., Awaitable[Any]]

_OPTIONS_ATTR = "__callpipe_tool_options__"
_ARG_LINE = re.compile(r"^\s*(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True)
class ToolOptions:
    """Call options of one tool."""

    cancel_on_interruption: bool = True
    timeout_secs: float | None = None
    cancellable_by_llm: bool = False


def tool_options(
    fn: Callable[..., Any] | None = None,
    *,
    cancel_on_interruption: bool = True,
    timeout_secs: float | None = None,
    cancellable_by_llm: bool = False,
) -> Any:
    """Decorator, with or without arguments: attach :class:`ToolOptions` to a handler."""
    options = ToolOptions(cancel_on_interruption, timeout_secs, cancellable_by_llm)

    def attach(function: Callable[..., Any]) -> Callable[..., Any]:
        setattr(function, _OPTIONS_ATTR, options)
        return function

    return attach(fn) if fn is not None else attach


def options_of(handler: object) -> ToolOptions | None:
    """The options a handler was decorated with, if any."""
    found = getattr(handler, _OPTIONS_ATTR, None)
    return found if isinstance(found, ToolOptions) else None


def _json_type(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return {"type": "string", "enum": [str(a) for a in args]}
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return _json_type(rest[0]) if len(rest) == 1 else {}
    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is list or origin is list:
        schema: dict[str, Any] = {"type": "array"}
        if args:
            schema["items"] = _json_type(args[0])
        return schema
    if annotation is dict or origin is dict:
        return {"type": "object"}
    return {}


def _docstring_parts(doc: str) -> tuple[str, dict[str, str]]:
    """(summary, {argument: description}) from a Google-style docstring."""
    lines = inspect.cleandoc(doc).splitlines() if doc else []
    summary: list[str] = []
    for line in lines:
        if not line.strip() or line.strip().endswith(":"):
            break
        summary.append(line.strip())
    described: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent = 0
    for line in lines:
        if line and not line[0].isspace():
            section = line.strip() if line.strip().endswith(":") else None
            current = None
            continue
        if section not in ("Args:", "Arguments:", "Parameters:") or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(line)
        if match and (current is None or indent <= arg_indent):
            current, arg_indent = match.group(1), indent
            described[current] = match.group(2).strip()
        elif current is not None:
            described[current] = f"{described[current]} {line.strip()}".strip()
    return " ".join(summary), described


class DirectFunctionWrapper:
    """A direct function and the :class:`FunctionSchema` read from it."""

    def __init__(self, function: DirectFunction, *, first_parameter: str = "params") -> None:
        """``first_parameter``: the name the function's first parameter must have (it is not
        part of the schema); Pipecat Flows' direct functions take ``flow_manager`` there."""
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"direct function {function!r} must be 'async def'")
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())
        if not parameters or parameters[0].name != first_parameter:
            raise TypeError(
                f"direct function {function.__name__}: first parameter must be '{first_parameter}'"
            )
        hints = typing.get_type_hints(function)
        summary, described = _docstring_parts(function.__doc__ or "")
        properties: dict[str, Any] = {}
        required: list[str] = []
        for parameter in parameters[1:]:
            schema = _json_type(hints.get(parameter.name, Any))
            if parameter.name in described:
                schema["description"] = described[parameter.name]
            properties[parameter.name] = schema
            if parameter.default is inspect.Parameter.empty:
                required.append(parameter.name)
        self.function = function
        self.name = function.__name__
        self.description = summary
        self.properties = properties
        self.required = required

    async def invoke(self, params: Any) -> Any:
        """Run the function with the call's ``params`` and the model's arguments."""
        return await self.function(params=params, **dict(params.arguments))

    def to_function_schema(self) -> FunctionSchema:
        async def handler(params: Any) -> Any:
            return await self.invoke(params)

        options = options_of(self.function)
        if options is not None:
            setattr(handler, _OPTIONS_ATTR, options)
        return FunctionSchema(self.name, self.description, self.properties, self.required, handler)
