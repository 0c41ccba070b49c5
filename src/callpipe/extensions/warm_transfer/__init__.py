"""Warm transfer with the caller on hold (``callpipe.extensions.warm_transfer``)."""

from callpipe.extensions.warm_transfer.warm_transfer import WarmTransferProcessor

__all__ = ["WarmTransferProcessor"]
