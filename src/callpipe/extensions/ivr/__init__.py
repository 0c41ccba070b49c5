"""Phone-menu (IVR) navigation for outbound calls (``callpipe.extensions.ivr``)."""

from callpipe.extensions.ivr.ivr_navigator import IVRNavigator, IVRProcessor, IVRStatus

__all__ = ["IVRNavigator", "IVRProcessor", "IVRStatus"]
