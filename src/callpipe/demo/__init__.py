"""The built-in offline demo bot (``callpipe demo``): see :mod:`callpipe.demo.bot`."""

from callpipe.demo.main import main

__all__ = ["main"]
