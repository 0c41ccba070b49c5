"""The smart-turn v3 end-of-turn model (ONNX, run with onnxruntime; no torch)."""
