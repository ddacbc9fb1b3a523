"""Export a Flappy token Transformer: the KV-cache decode graph, the prefill graph, the frame graph, the batched decode
graph (the dream environments'), and the manifest.

    python -m worldmodels.export outputs/flappy/<run>/checkpoints/last.ckpt       (the entry point; this is its part)

Nothing is written unless a 1,000-token decode on PyTorch and onnxruntime agrees (logits within the tolerance,
identical tokens) and the frame graph makes the per-token decoder's frames over 300 frames.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from torch import nn

from worldmodels.core.config import RunConfig
from worldmodels.core.files import write_atomic
from worldmodels.core.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_FORMAT_VERSION,
    OPSET,
    ExportError,
    git_commit,
    metadata_props,
    portable_config,
    write_manifest,
)
from worldmodels.flappy.batch_graph import write_batch_graph
from worldmodels.flappy.decoding.backends import OrtBackend, OrtFrameBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder, FrameGraphDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend
from worldmodels.flappy.decoding.rules import frame_rules, sampled_gaps
from worldmodels.flappy.frame_graph import export_frame_onnx
from worldmodels.flappy.graphs import (
    DECODE_INPUTS,
    DECODE_OUTPUTS,
    FRAME_OUTPUTS,
    PREFILL_INPUTS,
    PREFILL_OUTPUTS,
    frame_inputs,
)
from worldmodels.flappy.tokens import SPEC, TokenSpec
from worldmodels.flappy.transformer import export_onnx

PARITY_TOKENS = 1000  # tokens decoded on PyTorch and onnxruntime before an export is accepted
FRAME_PARITY_FRAMES = 300  # frames made by the frame graph and the per-token graph before an export is accepted


class RecordingBackend:
    """Wraps a token-decoding backend and keeps every logits vector it returns (for the parity check)."""

    def __init__(self, backend):
        self.backend, self.context, self.ring = backend, backend.context, backend.ring
        self.logits, self.step_logits = [], []  # every call's; the decode steps' only

    def prefill(self, tokens, positions):
        logits, state = self.backend.prefill(tokens, positions)
        self.logits.append(logits)
        return logits, state

    def step(self, token, position, state):
        logits, state = self.backend.step(token, position, state)
        self.logits.append(logits)
        self.step_logits.append(logits)
        return logits, state


def flappy_parity(model, decode_path: Path, prefill_path: Path, context: np.ndarray, frames: int,
                  slide_frames: int, seed: int = 0, spec: TokenSpec = SPEC) -> tuple[float, bool]:
    """Play `frames` frames from `context` with random actions on PyTorch and on the ONNX graphs with the same
    uniforms: (max |logit difference| over every call, whether every chosen token was the same). `spec`: the token
    spec the model was trained on (gym_tokens' declared one)."""
    runs = []
    ring = model.cfg.sliding_window
    for backend in (TorchBackend(model), OrtBackend.from_files(decode_path, prefill_path, ring=ring)):
        recorder = RecordingBackend(backend)
        decoder = FrameDecoder(recorder, spec, slide_frames=slide_frames, seed=seed)
        decoder.reset(context)
        actions = np.random.default_rng(seed).integers(0, len(spec.field_named("action").labels), frames)
        for action in actions:
            decoder.step(int(action))
        runs.append((np.stack(recorder.logits), decoder.history))
    (torch_logits, torch_tokens), (ort_logits, ort_tokens) = runs
    same = torch_tokens == ort_tokens and torch_logits.shape == ort_logits.shape
    diff = float(np.abs(torch_logits - ort_logits).max()) if torch_logits.shape == ort_logits.shape else float("inf")
    return diff, same


def flappy_frame_parity(frame_path: Path, decode_path: Path, prefill_path: Path, context: np.ndarray, frames: int,
                        slide_frames: int, temperature: float = 1.0, seed: int = 0, ring: bool = False) -> dict:
    """Play `frames` frames from `context` with random actions and the same uniforms on onnxruntime twice: one
    decode-graph call per token (FrameDecoder, sliding before a frame that does not fit) and one frame-graph call
    per frame (FrameGraphDecoder). Returns whether every frame was identical, the max |logit difference| after each
    fed token, the frame graph's mean passes per frame, and the run's slides and sampled gaps (new pipes, of which
    after a respawn)."""
    recorder = RecordingBackend(OrtBackend.from_files(decode_path, prefill_path, ring=ring))
    per_token = FrameDecoder(recorder, slide_frames=slide_frames, temperature=temperature, seed=seed,
                             slide_before_frame=True)
    per_frame = FrameGraphDecoder(OrtFrameBackend.from_files(frame_path, prefill_path, ring=ring),
                                  slide_frames=slide_frames, temperature=temperature, seed=seed)
    graph_logits = []
    for decoder in (per_token, per_frame):
        decoder.reset(context)
    for action in np.random.default_rng(seed).integers(0, 2, frames):
        per_token.step(int(action))
        per_frame.step(int(action))
        graph_logits.append(per_frame.frame_logits)
    step_logits = np.stack(recorder.step_logits).reshape(frames, SPEC.tokens_per_frame, -1)
    made = np.array(per_token.history[len(context):]).reshape(frames, SPEC.tokens_per_frame)[:, 1:]
    sampled, respawns = sampled_gaps(made, np.asarray(context)[-SPEC.state_tokens_per_frame:])
    return {"frames": frames, "identical_frames": per_token.history == per_frame.history,
            "max_abs_diff": float(np.abs(step_logits - np.stack(graph_logits)).max()),
            "passes_per_frame": per_frame.passes / frames, "slides": per_frame.slides, "sampled_gaps": sampled,
            "respawn_gaps": respawns,
            "reference": "FrameDecoder(OrtBackend, slide_before_frame=True), same actions and uniforms"}


def decode_graph_keys(cfg, vocab_size: int) -> dict:
    """The manifest's `inputs`, `outputs` (the batch-1 per-token decode graph's) and `prefill` keys for a
    TokenTransformer of config `cfg` over `vocab_size` ids."""
    cache_shape = [cfg.layers, 1, cfg.heads, cfg.context, cfg.head_dim]
    shapes = ([1, 1], [1], cache_shape, cache_shape, [1])
    dtypes = ("int64", "int64", "float32", "float32", "int64")
    return {
        "inputs": [{"name": n, "shape": s, "dtype": d} for n, s, d in zip(DECODE_INPUTS, shapes, dtypes, strict=True)],
        "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in zip(DECODE_OUTPUTS, (
            [1, vocab_size], cache_shape, cache_shape), strict=True)],
        "prefill": {"inputs": PREFILL_INPUTS, "outputs": PREFILL_OUTPUTS},
    }


def export_flappy(net: nn.Module, run: RunConfig, run_config: dict, out_dir: str | Path, name: str = "flappy",
                  tolerance: float = 1e-4, metrics: dict | None = None,
                  start_contexts: list[list[int]] | None = None,
                  start_context_seeds: list[int] | None = None) -> tuple[Path, Path, float]:
    """Write `<name>.onnx` (KV-cache decode graph), `<name>.prefill.onnx`, `<name>.frame.onnx` (one call per frame),
    `<name>.batch.onnx` (one token for each of N dreams per call, `batch_graph.py`) and `<name>.json` into out_dir
    after a 1,000-token decode on PyTorch and onnxruntime agrees (logits within `tolerance`, identical tokens) and
    the frame graph makes the per-token decoder's frames over 300 frames (`callbacks.onnx_export.parity_frames`
    frames for both instead, when set)."""
    if not start_contexts:
        raise ExportError("a Flappy export needs real start contexts from held-out episodes; the checkpoint has "
                          "none (was it trained with python -m worldmodels.train task=flappy?)")
    out_dir = Path(out_dir)
    net = copy.deepcopy(net).float().cpu().eval()
    slide_frames = run.module.decoding.slide_frames
    with tempfile.TemporaryDirectory() as tmp:
        decode_tmp, prefill_tmp = Path(tmp) / "decode.onnx", Path(tmp) / "prefill.onnx"
        frame_tmp = Path(tmp) / "frame.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(net, decode_tmp, prefill_tmp, dynamic_batch=False)  # the player decodes one game
            export_frame_onnx(net, frame_rules(SPEC), frame_tmp)
        chosen = run.callbacks.onnx_export.parity_frames
        frames = chosen or PARITY_TOKENS // SPEC.tokens_per_frame
        graph_frames = chosen or FRAME_PARITY_FRAMES
        max_diff, same = flappy_parity(net, decode_tmp, prefill_tmp, np.asarray(start_contexts[0]), frames,
                                       slide_frames)
        if not (max_diff <= tolerance and same):
            raise ExportError(f"ONNX decoding differs from PyTorch over {frames * SPEC.tokens_per_frame} tokens: "
                              f"max |logit diff| "
                              f"{max_diff:.3g} (tolerance {tolerance:g}), identical tokens: {same}; "
                              "nothing was written")
        temperature = run.module.decoding.temperature
        frame_parity = flappy_frame_parity(frame_tmp, decode_tmp, prefill_tmp, np.asarray(start_contexts[0]),
                                           graph_frames, slide_frames, temperature,
                                           ring=net.cfg.sliding_window)
        if not (frame_parity["identical_frames"] and frame_parity["max_abs_diff"] <= tolerance):
            raise ExportError(f"the frame graph's frames differ from the per-token decoder's over "
                              f"{graph_frames} frames (identical: {frame_parity['identical_frames']}, max "
                              f"|logit diff| {frame_parity['max_abs_diff']:.3g}, tolerance {tolerance:g}); "
                              "nothing was written")
        decode_model, prefill_model = onnx.load(str(decode_tmp)), onnx.load(str(prefill_tmp))
        frame_model = onnx.load(str(frame_tmp))
    cfg = run.model
    cache_shape = [cfg.layers, 1, cfg.heads, cfg.context, cfg.head_dim]
    frame_rows = [cfg.layers, 1, cfg.heads, SPEC.tokens_per_frame, cfg.head_dim]
    per_frame, pipes = SPEC.state_tokens_per_frame, len(SPEC.marker_positions)
    manifest = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "task": "flappy",
        "name": name,
        "onnx": f"{name}.onnx",
        "prefill_onnx": f"{name}.prefill.onnx",
        "opset": OPSET,
        **decode_graph_keys(cfg, SPEC.vocab_size),
        "frame_onnx": f"{name}.frame.onnx",
        "batch_onnx": f"{name}.batch.onnx",
        "frame_graph": {
            "inputs": [{"name": n, "shape": shape, "dtype": dtype} for n, shape, dtype in zip(
                frame_inputs(cfg.layers), ([1], [1], *[cache_shape[1:]] * (2 * cfg.layers), [1], [per_frame],
                                           [per_frame], [pipes], [1]),
                ("int64", "int64", *["float32"] * (2 * cfg.layers), "int64", "int64", "int64", "float64", "float64"),
                strict=True)],
            "outputs": [{"name": n, "shape": shape, "dtype": dtype} for n, shape, dtype in zip(FRAME_OUTPUTS, (
                [per_frame], [SPEC.tokens_per_frame, SPEC.vocab_size], frame_rows, frame_rows,
                [SPEC.tokens_per_frame], [1], [1]), ("int64", "float32", "float32", "float32", "int64", "int64",
                                                     "int64"), strict=True)],
            "tokens_per_call": SPEC.tokens_per_frame,
            "cache": "feed layer l of the cache as k_cache_l/v_cache_l; after each call write k_frame/v_frame row i "
                     "(axis 3) into cache slot slots[i] and set "
                     "cache_len to min(cache_len + tokens_per_call, context) (ring) or cache_len + tokens_per_call; "
                     "an ordered window (decoding.sliding_window false) slides before a call when cache_len + "
                     "tokens_per_call > context: drop the oldest slide_frames frames and run the prefill graph "
                     "over the rest at their positions (FrameDecoder with slide_before_frame=True makes the same "
                     "frames one token per call)",
            "guess": "worldmodels.flappy.decoding.rules.frame_guess, its first slot replaced by the previous call's "
                     "next_first when the action is the first label (any ids change only the passes, never the "
                     "frame)",
            "rules": "worldmodels/flappy/frame_graph.py",
            "parity": {**frame_parity, "tolerance": tolerance, "runtime": f"onnxruntime {ort.__version__}"},
        },
        "token_spec": SPEC.to_json(),
        "decoding": {"context": cfg.context, "sliding_window": cfg.sliding_window, "slide_frames": slide_frames,
                     "temperature": run.module.decoding.temperature, "rules": "worldmodels/flappy/decoding/rules.py"},
        "start_contexts": [list(map(int, c)) for c in start_contexts],
        # the reset seed of each context's game (checkpoints from before they were recorded have none)
        **({"start_context_seeds": list(map(int, start_context_seeds))} if start_context_seeds else {}),
        "model": {**asdict(cfg), "parameters": sum(p.numel() for p in net.parameters())},
        "parity": {"max_abs_diff": max_diff, "identical_tokens": same, "tokens": frames * SPEC.tokens_per_frame,
                   "tolerance": tolerance, "runtime": f"onnxruntime {ort.__version__}"},
        "git_commit": git_commit(),
        "metrics": metrics or {},
        "training_config": portable_config(run_config),
    }
    props = metadata_props(manifest, "token_spec")
    onnx.helper.set_model_props(decode_model, props)
    onnx.helper.set_model_props(prefill_model, {**props, "worldmodels.graph": "prefill"})
    onnx.helper.set_model_props(frame_model, {**props, "worldmodels.graph": "frame"})
    onnx_path, manifest_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    write_atomic(onnx_path, decode_model.SerializeToString())
    write_atomic(out_dir / f"{name}.prefill.onnx", prefill_model.SerializeToString())
    write_atomic(out_dir / f"{name}.frame.onnx", frame_model.SerializeToString())
    write_batch_graph(net, out_dir / f"{name}.batch.onnx")
    write_manifest(manifest_path, manifest)
    return onnx_path, manifest_path, max_diff
