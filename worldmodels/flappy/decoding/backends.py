"""The models a decoder drives, behind a fixed-size KV cache (batch 1): the exported ONNX graphs here (onnxruntime
and numpy, no torch), PyTorch in `pytorch.py`.

`OrtBackend` (and `TorchBackend`) make one token per call (`prefill`, `step`); `OrtFrameBackend` (and
`TorchFrameBackend`) make a whole frame per call with the frame graph (`frame`). The same decoder drives either, so a
test can pin the exported graphs to the PyTorch code they were traced from. `ring` is the exported model's
`sliding_window` and must be given: a per-token decoder with the wrong one makes other frames, and nothing in the
graph tells; `worldmodels.flappy.decoding.decoder.from_manifest` reads it from the manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from worldmodels.flappy.decoding.window import cache_length, check_room
from worldmodels.flappy.graphs import DECODE_OUTPUTS, FRAME_OUTPUTS, PREFILL_OUTPUTS

State = Any  # a backend's cache: torch tensors or numpy arrays, opaque to the decoder


class Backend(Protocol):
    """One model behind a fixed-size KV cache of `context` tokens, batch 1, logits as float32 numpy (vocab,).
    `ring`: the model's sliding-window attention keeps the cache as a ring that never slides (the window is always
    the newest `context` tokens); otherwise (or when a backend has no `ring`) the cache holds a frame-aligned
    window that the decoder slides."""

    context: int
    ring: bool

    def prefill(self, tokens: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, State]:
        """A fresh cache holding `tokens` (T <= context) at `positions`; the logits after the last of them."""

    def step(self, token: int, position: int, state: State) -> tuple[np.ndarray, State]:
        """Append one token (the window must have room); the logits after it."""


class OrtBackend:
    """The graphs written by `worldmodels.flappy.transformer.export_onnx`, run with onnxruntime."""

    def __init__(self, decode_session, prefill_session, *, ring: bool):
        self.decode, self.prefill_session, self.ring = decode_session, prefill_session, ring
        # The decode graph's k_cache is (layers, batch, heads, context, head_dim), the frame graph's k_cache_0 is
        # layer 0's (1, heads, context, head_dim); only batch may be dynamic.
        shapes = {i.name: i.shape for i in decode_session.get_inputs()}
        self.context = int(shapes["k_cache"][3] if "k_cache" in shapes else shapes["k_cache_0"][2])

    @classmethod
    def from_files(cls, decode_path: str | Path, prefill_path: str | Path, *, ring: bool,
                   threads: int = 1) -> OrtBackend:
        """`ring`: the exported model's `sliding_window` (the manifest's decoding.sliding_window)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                    for p in (decode_path, prefill_path)]
        return cls(*sessions, ring=ring)

    def prefill(self, tokens, positions):
        feeds = {"tokens": np.asarray(tokens, np.int64)[None], "positions": np.asarray(positions, np.int64)[None]}
        logits, k, v, length = self.prefill_session.run(PREFILL_OUTPUTS, feeds)
        return logits[0, -1], (k, v, length)

    def step(self, token, position, state):
        k, v, length = state
        feeds = {"tokens": np.array([[token]], np.int64), "position": np.array([position], np.int64),
                 "k_cache": k, "v_cache": v, "cache_len": length}
        logits, k, v = self.decode.run(DECODE_OUTPUTS, feeds)
        return logits[0], (k, v, cache_length(length, 1, self))


class FrameBackend(Protocol):
    """A model behind a fixed-size KV cache that makes a whole frame per call (the frame graph), plus the prefill."""

    context: int
    ring: bool

    def prefill(self, tokens: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, State]:
        """As Backend.prefill."""

    def frame(self, action_id: int, position: int, state: State, previous, guess, uniforms: np.ndarray,
              temperature: float) -> tuple[np.ndarray, np.ndarray, State, int, int]:
        """Feed the action at `position` and make the frame (an ordered window must have room for all its
        tokens): (state tokens int64 (9,), logits float32 (10, vocab) after each fed token, the cache with the
        frame written into it, the passes the frame took, the next frame's first slot after the first action)."""


class OrtFrameBackend(OrtBackend):
    """The frame graph written by `worldmodels.flappy.frame_graph.export_frame_onnx` and the prefill graph. The
    cache arrays are written in place: a frame's 10 rows go into their slots, nothing is reallocated."""

    def __init__(self, frame_session, prefill_session, *, ring: bool):
        super().__init__(frame_session, prefill_session, ring=ring)
        self.frame_session = frame_session
        logits = next(o for o in frame_session.get_outputs() if o.name == "logits")
        self.tokens_per_call = int(logits.shape[0])  # (tokens per frame, vocab)

    @classmethod
    def from_files(cls, frame_path: str | Path, prefill_path: str | Path, *, ring: bool,
                   threads: int = 1) -> OrtFrameBackend:
        return super().from_files(frame_path, prefill_path, ring=ring, threads=threads)

    def step(self, token, position, state):
        raise NotImplementedError("the frame graph makes whole frames: use frame()")

    def frame(self, action_id, position, state, previous, guess, uniforms, temperature):
        k, v, length = state
        check_room(int(np.asarray(length).reshape(-1)[0]), self.tokens_per_call, self)
        feeds = {"action": np.array([action_id], np.int64), "position": np.array([position], np.int64),
                 **{f"k_cache_{i}": layer for i, layer in enumerate(k)},
                 **{f"v_cache_{i}": layer for i, layer in enumerate(v)},
                 "cache_len": np.asarray(length, np.int64).reshape(1),
                 "previous": np.asarray(previous, np.int64).reshape(-1),
                 "guess": np.asarray(guess, np.int64).reshape(-1),
                 "uniforms": np.asarray(uniforms, np.float64).reshape(-1),
                 "temperature": np.array([temperature], np.float64)}
        frame, logits, k_frame, v_frame, slots, passes, next_first = self.frame_session.run(FRAME_OUTPUTS, feeds)
        k[:, :, :, slots] = k_frame
        v[:, :, :, slots] = v_frame
        return frame, logits, (k, v, cache_length(length, len(slots), self)), int(passes[0]), int(next_first[0])
