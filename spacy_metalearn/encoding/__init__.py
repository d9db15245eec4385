"""Turning docs into embeddings: the embedder every path shares, the
transformer's top layers apart from the frozen ones, and the ONNX Runtime
inference backends."""
