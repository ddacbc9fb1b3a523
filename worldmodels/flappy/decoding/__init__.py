"""Flappy token decoding: the rules, the KV-cache window, the backends (PyTorch, ONNX) and the decoders."""
