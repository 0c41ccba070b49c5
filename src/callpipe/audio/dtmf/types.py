"""Pipecat path for the keypad enum; it is defined with the frames that carry it."""

from callpipe.frames.frames import KeypadEntry

__all__ = ["KeypadEntry"]
