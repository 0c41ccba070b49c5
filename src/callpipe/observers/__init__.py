"""Observers: watch frames move through a pipeline without being part of it."""
