"""DTMF: in-band tone generation (:func:`dtmf_tones`) and Pipecat's ``dtmf.types`` path."""

from callpipe.audio.dtmf_tones import DTMF_FREQUENCIES, dtmf_tones

__all__ = ["DTMF_FREQUENCIES", "dtmf_tones"]
