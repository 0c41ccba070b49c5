"""The errors of Pipecat Flows (``pipecat.flows.exceptions`` in Pipecat 1.14).

They hang under :class:`~callpipe.errors.CallpipeError`::

    FlowError
    ├── FlowInitializationError   initialize() failed
    ├── FlowTransitionError       a node change was asked for at the wrong time
    ├── InvalidFunctionError      a node's function is neither a schema nor a usable function
    ├── ActionError               an action is unknown or its handler failed
    └── FlowReferenceError        a flow config names tools or handlers nobody gave

:class:`FlowProblem` is one entry of a ``FlowReferenceError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from callpipe.errors import CallpipeError


class FlowError(CallpipeError):
    """Something went wrong in a flow (the base of the flow errors)."""


class FlowInitializationError(FlowError):
    """:meth:`FlowManager.initialize` could not set the flow up."""


class FlowTransitionError(FlowError):
    """A node could not be entered (for example before ``initialize()``)."""


class InvalidFunctionError(FlowError):
    """A node's function cannot be offered to the model or its handler misbehaved."""


class ActionError(FlowError):
    """A pre/post action has no handler, or its handler raised."""


@dataclass
class FlowProblem:
    """One unresolved reference of a flow config.

    ``code`` says what kind (``missing_tool``, ``ambiguous_tool``, ``invalid_tool``,
    ``missing_handler``, ``ambiguous_handler``); ``message`` is for people; ``node`` and
    ``function`` name where it is, when that applies.
    """

    code: str
    message: str
    node: str | None = None
    function: str | None = None


class FlowReferenceError(FlowError):
    """A flow config refers to things that were not provided; ``problems`` lists them all."""

    def __init__(self, problems: list[FlowProblem]) -> None:
        self.problems = problems
        listed = "\n".join(f"- {problem.message}" for problem in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"flow config has {len(problems)} {noun}:\n{listed}")
