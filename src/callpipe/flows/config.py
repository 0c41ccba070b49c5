"""A flow written as data (``pipecat.flows.config`` in Pipecat 1.14).

A :class:`FlowConfig` holds the nodes of a flow, what each says and offers, and where each tool
leads, without any Python: tools are named, and a :class:`~callpipe.flows.Flow` later finds
the direct functions and action handlers of those names in the bot's code. A
``transition_only`` tool is the exception: it only moves to another node, so the config gives
its description and no code is needed.

Loading checks the shape: the initial node exists, every ``transition_to`` names a node, tool
names are unique in a node (and not also global), actions are well formed. YAML needs PyYAML
(``pip install 'callpipe[flows]'``); JSON and dicts need nothing more.

.. code-block:: yaml

    initial_node: greet
    nodes:
      greet:
        role_message: You take food orders.
        task_messages:
          - role: system
            content: Ask whether the caller wants pizza or sushi.
        functions:
          - name: choose_pizza
            transition_only: true
            description: The caller wants pizza.
            transition_to: pizza
      pizza:
        task_messages:
          - role: system
            content: Take the pizza order.
        functions:
          - name: place_order          # an async def place_order(flow_manager, ...) in code
            transition_to:
              field: status
              cases: {ok: done, sold_out: pizza}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callpipe.errors import ConfigurationError, MissingDependencyError
from callpipe.flows.types import ContextStrategy

BUILT_IN_ACTIONS_WITHOUT_HANDLER = frozenset({"tts_say", "end_conversation"})
BUILT_IN_ACTIONS = BUILT_IN_ACTIONS_WITHOUT_HANDLER | {"function"}


def case_key(value: Any) -> str:
    """How a branch compares a result value with its case keys: booleans (and the strings
    ``true``/``false`` in any case) as ``"true"``/``"false"``, anything else as ``str()``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text.lower() if text.lower() in ("true", "false") else text


class FlowConfig(BaseModel):
    """A flow as data: ``initial_node``, ``nodes`` by name, ``global_functions``.

    Load it with :meth:`from_file` (``.yaml``/``.yml``/``.json``), :meth:`from_yaml`,
    :meth:`from_json` or ``FlowConfig.model_validate(a_dict)``. ``!include path`` in YAML
    pulls in another file, relative to ``base_dir`` (the file's folder for
    :meth:`from_file`); it can read any file the process can, so only use it for configs you
    ship (``from_yaml`` without ``base_dir`` refuses it). Prompts may use ``{{ key }}``
    placeholders, filled in from ``FlowManager.state`` when the node is entered.
    """

    model_config = ConfigDict(extra="forbid")

    class Message(BaseModel):
        """A task message: ``role`` and ``content``."""

        model_config = ConfigDict(extra="forbid")
        role: str
        content: str

    class Branch(BaseModel):
        """Where to go by a field of the tool's result: ``cases`` maps values to nodes
        (compared with :func:`case_key`), ``default`` is for any other value (without one
        the flow stays on the node)."""

        model_config = ConfigDict(extra="forbid")
        field: str
        cases: dict[str, str] = Field(min_length=1)
        default: str | None = None

        @field_validator("cases", mode="before")
        @classmethod
        def _case_keys(cls, value: Any) -> Any:
            if isinstance(value, Mapping):
                return {case_key(k): v for k, v in value.items()}
            return value

        def targets(self) -> list[str]:
            return [*self.cases.values(), *([self.default] if self.default else [])]

    class Function(BaseModel):
        """A tool of a node: the name of a direct function in the handlers, or, with
        ``transition_only``, a parameterless tool described here (``description``) that
        moves to ``transition_to``. ``transition_to`` is a node name or a
        :class:`FlowConfig.Branch`; without it the tool stays on the node."""

        model_config = ConfigDict(extra="forbid")
        name: str
        transition_only: bool = False
        description: str | None = None
        transition_to: str | FlowConfig.Branch | None = None

        @model_validator(mode="after")
        def _shape(self) -> FlowConfig.Function:
            if self.transition_only:
                if not self.description:
                    raise ValueError(f"transition_only function {self.name!r} needs a description")
                if not isinstance(self.transition_to, str):
                    raise ValueError(
                        f"transition_only function {self.name!r} must name its target node"
                    )
            elif self.description is not None:
                raise ValueError(
                    f"function {self.name!r}: only transition_only functions take a "
                    "description (a direct function's docstring describes it)"
                )
            return self

        def targets(self) -> list[str]:
            if self.transition_to is None:
                return []
            if isinstance(self.transition_to, str):
                return [self.transition_to]
            return self.transition_to.targets()

    class Action(BaseModel):
        """A pre/post action: ``type`` and, for ``function`` (required) or a custom type
        (optional), the name of its ``handler``. Other keys go to the handler as given."""

        model_config = ConfigDict(extra="allow")
        type: str
        handler: str | None = None

        @model_validator(mode="after")
        def _handler_rules(self) -> FlowConfig.Action:
            if self.type == "function" and not self.handler:
                raise ValueError("a 'function' action needs a 'handler'")
            if self.type in BUILT_IN_ACTIONS_WITHOUT_HANDLER and self.handler is not None:
                raise ValueError(f"the built-in {self.type!r} action takes no 'handler'")
            return self

        def extras(self) -> dict[str, Any]:
            return dict(self.model_extra or {})

    class Node(BaseModel):
        """A node: as :class:`~callpipe.flows.NodeConfig`, with tools and handlers by name
        and ``context_strategy`` as ``"append"`` or ``"reset"``."""

        model_config = ConfigDict(extra="forbid")
        task_messages: list[FlowConfig.Message]
        role_message: str | None = None
        functions: list[FlowConfig.Function] = Field(default_factory=list)
        pre_actions: list[FlowConfig.Action] = Field(default_factory=list)
        post_actions: list[FlowConfig.Action] = Field(default_factory=list)
        context_strategy: Literal["append", "reset"] | None = None
        respond_immediately: bool = True

        @model_validator(mode="after")
        def _unique_tools(self) -> FlowConfig.Node:
            _check_unique([f.name for f in self.functions], "node")
            return self

        def context_strategy_enum(self) -> ContextStrategy | None:
            return ContextStrategy(self.context_strategy) if self.context_strategy else None

    initial_node: str
    nodes: dict[str, FlowConfig.Node] = Field(min_length=1)
    global_functions: list[FlowConfig.Function] = Field(default_factory=list)

    @model_validator(mode="after")
    def _graph(self) -> FlowConfig:
        if self.initial_node not in self.nodes:
            raise ValueError(f"initial_node {self.initial_node!r} is not one of the nodes")
        _check_unique([f.name for f in self.global_functions], "global_functions")
        global_names = {f.name for f in self.global_functions}
        for node_name, node in self.nodes.items():
            for function in node.functions:
                if function.name in global_names:
                    raise ValueError(
                        f"node {node_name!r}: {function.name!r} is also a global function"
                    )
                _check_targets(function, self.nodes, f"node {node_name!r}")
        for function in self.global_functions:
            _check_targets(function, self.nodes, "global_functions")
        return self

    @classmethod
    def from_yaml(cls, text: str, *, base_dir: Path | None = None) -> FlowConfig:
        """Load YAML text (``!include`` only with a ``base_dir``)."""
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - PyYAML comes with the flows extra
            raise MissingDependencyError("pyyaml", "flows") from exc
        loader = _include_loader(yaml, base_dir) if base_dir is not None else yaml.SafeLoader
        return cls.model_validate(_mapping(yaml.load(text, loader)))

    @classmethod
    def from_json(cls, text: str) -> FlowConfig:
        """Load JSON text."""
        return cls.model_validate(_mapping(json.loads(text)))

    @classmethod
    def from_file(cls, path: str | Path) -> FlowConfig:
        """Load a ``.json`` file, or a YAML one (``!include`` relative to its folder)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return cls.from_json(text)
        return cls.from_yaml(text, base_dir=path.parent)


def _include_loader(yaml: Any, base_dir: Path) -> Any:
    """A SafeLoader subclass whose ``!include`` reads a file relative to ``base_dir``."""

    class IncludeLoader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def include(loader: Any, node: Any) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigurationError("!include takes a file path")
        with (base_dir / str(loader.construct_scalar(node))).open(encoding="utf-8") as file:
            return yaml.load(file, IncludeLoader)

    IncludeLoader.add_constructor("!include", include)
    return IncludeLoader


def _mapping(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigurationError("a flow config must be a mapping at the top level")
    return data


def _check_unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"function {name!r} appears twice in {where}")
        seen.add(name)


def _check_targets(function: FlowConfig.Function, nodes: Mapping[str, Any], where: str) -> None:
    for target in function.targets():
        if target not in nodes:
            raise ValueError(
                f"{where}: function {function.name!r} goes to {target!r}, which is not a node"
            )
