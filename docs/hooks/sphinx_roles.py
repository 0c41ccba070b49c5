"""Griffe extension: show Sphinx roles in docstrings as code in the API reference.

callpipe's docstrings cross-reference with Sphinx roles (``:class:`~callpipe.errors.X```), which
read well in ``help()`` but would appear literally on the site. ``:role:`~a.b.C``` becomes
```C``` and ``:role:`a.b.C``` becomes ```a.b.C```.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")


def _plain(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


class SphinxRoles(Extension):
    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(_plain, obj.docstring.value)
