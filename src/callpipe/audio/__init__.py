"""Audio DSP for phone calls: G.711, streaming resampling, WAV, volume and VAD.

Pure functions and small stateful objects over 16-bit little-endian PCM ``bytes``. Nothing here
touches the network; only the VAD analyzers are ``async`` (so a shared engine can batch).
Submodules are imported explicitly (``callpipe.audio.g711`` ...) so that importing one does not
load numpy-heavy siblings or onnxruntime.
"""
