"""Run a file written for Pipecat on callpipe, unchanged: ``import pipecat.x`` → ``callpipe.x``.

:func:`install_pipecat_alias` adds an import hook that answers every ``pipecat`` and
``pipecat.*`` import with the callpipe module of the same path (the same module object, so
classes are shared and ``isinstance`` works across both names). A path callpipe does not have
fails with the usual ``ModuleNotFoundError``, naming the callpipe module that is missing.

Meant for trying an existing bot, or keeping one file that runs on either framework::

    try:
        from callpipe.utils.pipecat_alias import install_pipecat_alias
    except ImportError:
        pass  # Pipecat's own environment
    else:
        install_pipecat_alias()
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

_SOURCE = "pipecat"
_TARGET = "callpipe"


class _PipecatAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _SOURCE and not fullname.startswith(_SOURCE + "."):
            return None
        target_name = _TARGET + fullname[len(_SOURCE) :]
        real = importlib.import_module(target_name)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=hasattr(real, "__path__"))

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(_TARGET + spec.name[len(_SOURCE) :])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the callpipe module is already imported."""


_HOOK = _PipecatAlias()


def install_pipecat_alias() -> None:
    """Make ``pipecat`` imports resolve to callpipe (idempotent)."""
    if _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


def uninstall_pipecat_alias() -> None:
    """Remove the hook and the ``pipecat`` names it registered."""
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)
    for name in [n for n in sys.modules if n == _SOURCE or n.startswith(_SOURCE + ".")]:
        del sys.modules[name]
