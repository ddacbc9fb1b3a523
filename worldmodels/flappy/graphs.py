"""The exported Flappy graphs' tensor names, in order: what `transformer.export_onnx` and
`frame_graph.export_frame_onnx` write, what the manifest lists and what onnxruntime (here and in the browser) feeds
and reads. Light (no torch), so the ONNX decoders need none."""

from __future__ import annotations

DECODE_INPUTS = ["tokens", "position", "k_cache", "v_cache", "cache_len"]
DECODE_OUTPUTS = ["logits", "k_cache_out", "v_cache_out"]
PREFILL_INPUTS = ["tokens", "positions"]
PREFILL_OUTPUTS = ["logits", "k_cache", "v_cache", "cache_len"]
BATCH_OUTPUTS = ["logits", "k_new", "v_new", "slots"]  # the batched decode graph (`batch_graph.py`)
FRAME_OUTPUTS = ["state", "logits", "k_frame", "v_frame", "slots", "passes", "next_first"]


def frame_inputs(layers: int) -> list[str]:
    """The frame graph's input names, in order, for a model of `layers` layers."""
    return ["action", "position", *[f"k_cache_{i}" for i in range(layers)], *[f"v_cache_{i}" for i in range(layers)],
            "cache_len", "previous", "guess", "uniforms", "temperature"]
