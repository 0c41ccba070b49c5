"""Frames: the vocabulary of the pipeline. See :mod:`callpipe.frames.frames`."""
