"""NVIDIA: the NIM LLM over its OpenAI-compatible API; Riva speech recognition and synthesis over
gRPC (``stt``, ``tts``; ``callpipe[nvidia]``)."""
