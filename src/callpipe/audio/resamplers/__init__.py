"""Pipecat's resampler classes over callpipe's resampling (:mod:`callpipe.audio.resample`)."""
