"""``document_fields``: make ``help()`` on a settings model list its fields and what they do.

``help()`` on a pydantic model shows the class docstring and pydantic's own methods, never the
fields' descriptions. Settings models (``FastAPIWebsocketParams``, ``PipelineParams``,
``VADParams``) keep the description of each option in its ``Field(description=...)``, the one
place it is written, and call this once after the class so the docstring lists them too.
"""

from __future__ import annotations

import inspect
import textwrap

from pydantic import BaseModel


def document_fields(cls: type[BaseModel]) -> None:
    """Append each field, its default and its description to ``cls.__doc__``."""
    lines = [inspect.cleandoc(cls.__doc__ or cls.__name__), "", "Fields:", ""]
    for name, field in cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        lines.append(f"{name} = {default!r}")
        lines.append(
            textwrap.fill(
                field.description or "",
                96,
                initial_indent="    ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
        )
    cls.__doc__ = "\n".join(lines)
