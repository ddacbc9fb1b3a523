"""Export a trained model to ONNX plus its JSON manifest (DESIGN.md contract 4), checked against PyTorch first.

    python -m worldmodels.export outputs/breakout/<run>/checkpoints/last.ckpt [--out DIR] [--name breakout]

Writes `<name>.onnx` and `<name>.json` (by default into the run's `export/` folder). The manifest is the web
player's only source of shapes, normalization and sampler defaults; the same key facts go into the ONNX file's
metadata_props. Before anything is written the ONNX graph is run with onnxruntime on real game rows and random
inputs, and the export fails if any output differs from PyTorch by more than the tolerance (default 1e-4).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from worldmodels.config import RunConfig
from worldmodels.errors import UserError, one_line_errors
from worldmodels.nets.denoiser import (
    CONTEXT_FRAMES,
    INPUT_CHANNELS,
    INPUT_NAME,
    OUTPUT_CHANNELS,
    OUTPUT_NAME,
    denoiser_input,
    frames_to_tensor,
)

MANIFEST_FORMAT_VERSION = 1
OPSET = 17
FRAME = 64
PARITY_TOKENS = 1000  # Flappy: tokens decoded on PyTorch and onnxruntime before an export is accepted
FRAME_PARITY_FRAMES = 300  # Flappy: frames made by the frame graph and the per-token graph before an export is accepted


class ExportError(UserError):
    """The exported graph disagrees with PyTorch, or could not be written."""


def git_commit() -> str | None:
    """The checkout's commit (with `+dirty` when it has uncommitted changes), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; an export is meant to be read by servers and other users
    os.replace(tmp, path)


def metadata_props(manifest: dict, *extra: str) -> dict[str, str]:
    """The manifest's key facts as ONNX metadata_props (strings): task, format, inputs/outputs, commit, `extra`."""
    props = {
        "worldmodels.task": manifest["task"],
        "worldmodels.format_version": str(manifest["format_version"]),
        "worldmodels.git_commit": manifest["git_commit"] or "unknown",
    }
    props.update({f"worldmodels.{key}": json.dumps(manifest[key]) for key in ("inputs", "outputs", *extra)})
    return props


def parity_inputs(seed: int = 0) -> torch.Tensor:
    """Inputs for the parity check: real game rows at several noise levels and actions, plus pure random planes."""
    from worldmodels.data import EVAL
    from worldmodels.data.breakout import BreakoutDataConfig, BreakoutStream

    batch = next(iter(BreakoutStream(BreakoutDataConfig(batch_size=4, games_per_worker=4), seed, EVAL, max_batches=1)))
    generator = torch.Generator().manual_seed(seed)
    target = frames_to_tensor(batch["target"])
    sigma = torch.tensor([0.02, 0.1, 0.5, 1.0])
    noisy = target + sigma[:, None, None, None] * torch.randn(target.shape, generator=generator)
    real = denoiser_input(noisy, frames_to_tensor(batch["context"]), batch["action"], sigma)
    random = torch.randn((2, INPUT_CHANNELS, FRAME, FRAME), generator=generator)
    return torch.cat([real, random])  # (6, 19, 64, 64)


def onnx_max_abs_diff(session: ort.InferenceSession, net: nn.Module, inputs: torch.Tensor) -> float:
    with torch.no_grad():
        expected = net(inputs).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy()})[0]
    return float(np.abs(got - expected).max())


def breakout_manifest(run: RunConfig, run_config: dict, name: str, parameters: int, max_diff: float,
                      tolerance: float, metrics: dict | None) -> dict:
    sampler = run.module.sampler
    return {
        "format": "worldmodels-manifest",
        "format_version": MANIFEST_FORMAT_VERSION,
        "task": "breakout",
        "name": name,
        "onnx": f"{name}.onnx",
        "opset": OPSET,
        "inputs": [{"name": INPUT_NAME, "shape": ["N", INPUT_CHANNELS, FRAME, FRAME], "dtype": "float32"}],
        "outputs": [{"name": OUTPUT_NAME, "shape": ["N", OUTPUT_CHANNELS, FRAME, FRAME], "dtype": "float32"}],
        "frame": {"height": FRAME, "width": FRAME, "channels": 3, "context_frames": CONTEXT_FRAMES,
                  "actions": ["noop", "left", "right"]},
        "input_layout": [
            {"name": "noisy_next_frame", "channels": 3},
            {"name": "context_frames", "channels": 3 * CONTEXT_FRAMES, "order": "oldest_first"},
            {"name": "action", "channels": 3, "encoding": "one_hot_full_planes"},
            {"name": "sigma", "channels": 1, "encoding": "constant_plane"},
        ],
        "normalization": {"to_model": "x / 127.5 - 1", "to_bytes": "floor((y + 1) * 127.5 + 0.5) clamped to [0, 255]"},
        "sampler": {"kind": "warm_start_euler_x0", "schedule": "geometric", "steps": sampler.steps,
                    "sigma_max": sampler.sigma_max, "sigma_min": sampler.sigma_min},
        "model": {**asdict(run.model), "parameters": parameters},
        "parity": {"max_abs_diff": max_diff, "tolerance": tolerance, "runtime": f"onnxruntime {ort.__version__}"},
        "git_commit": git_commit(),
        "metrics": metrics or {},
        "training_config": run_config,
    }


def export_breakout(net: nn.Module, run: RunConfig, run_config: dict, out_dir: str | Path, name: str = "breakout",
                    tolerance: float = 1e-4, metrics: dict | None = None) -> tuple[Path, Path, float]:
    """Write `<name>.onnx` + `<name>.json` into out_dir after the onnxruntime parity check. Returns paths and diff."""
    out_dir = Path(out_dir)
    net = copy.deepcopy(net).float().cpu().eval()  # the caller's module stays where and how it was
    inputs = parity_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation on every call
            torch.onnx.export(net, (inputs[:1],), str(raw), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "N"}, OUTPUT_NAME: {0: "N"}}, opset_version=OPSET,
                              dynamo=False)
        model = onnx.load(str(raw))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    max_diff = onnx_max_abs_diff(session, net, inputs)
    if not max_diff <= tolerance:
        raise ExportError(f"ONNX output differs from PyTorch by {max_diff:.3g} > tolerance {tolerance:g}; "
                          "nothing was written")
    parameters = sum(p.numel() for p in net.parameters())
    manifest = breakout_manifest(run, run_config, name, parameters, max_diff, tolerance, metrics)
    onnx.helper.set_model_props(model, metadata_props(manifest, "sampler", "normalization"))
    onnx_path, manifest_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    _write_atomic(onnx_path, model.SerializeToString())
    _write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return onnx_path, manifest_path, max_diff


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
                  slide_frames: int, seed: int = 0) -> tuple[float, bool]:
    """Play `frames` frames from `context` with random actions on PyTorch and on the ONNX graphs with the same
    uniforms: (max |logit difference| over every call, whether every chosen token was the same)."""
    from worldmodels.token_sampling import FrameDecoder, OrtBackend, TorchBackend

    runs = []
    ring = model.cfg.sliding_window
    for backend in (TorchBackend(model), OrtBackend.from_files(decode_path, prefill_path, ring=ring)):
        recorder = RecordingBackend(backend)
        decoder = FrameDecoder(recorder, slide_frames=slide_frames, seed=seed)
        decoder.reset(context)
        actions = np.random.default_rng(seed).integers(0, 2, frames)
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
    from worldmodels.data.flappy_tokens import SPEC
    from worldmodels.token_sampling import (
        FrameDecoder,
        FrameGraphDecoder,
        OrtBackend,
        OrtFrameBackend,
        sampled_gaps,
    )

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


def export_flappy(net: nn.Module, run: RunConfig, run_config: dict, out_dir: str | Path, name: str = "flappy",
                  tolerance: float = 1e-4, metrics: dict | None = None,
                  start_contexts: list[list[int]] | None = None) -> tuple[Path, Path, float]:
    """Write `<name>.onnx` (KV-cache decode graph), `<name>.prefill.onnx`, `<name>.frame.onnx` (one call per frame)
    and `<name>.json` into out_dir after a 1,000-token decode on PyTorch and onnxruntime agrees (logits within
    `tolerance`, identical tokens) and the frame graph makes the per-token decoder's frames over 300 frames."""
    from worldmodels.data.flappy_tokens import SPEC
    from worldmodels.nets.frame_graph import FRAME_OUTPUTS, export_frame_onnx, frame_inputs
    from worldmodels.nets.transformer import (
        DECODE_INPUTS,
        DECODE_OUTPUTS,
        PREFILL_INPUTS,
        PREFILL_OUTPUTS,
        export_onnx,
    )
    from worldmodels.token_sampling import frame_rules

    if not start_contexts:
        raise ExportError("a Flappy export needs real start contexts from held-out episodes; the checkpoint has "
                          "none (was it trained with the PPO collector callback?)")
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
        frames = PARITY_TOKENS // SPEC.tokens_per_frame
        max_diff, same = flappy_parity(net, decode_tmp, prefill_tmp, np.asarray(start_contexts[0]), frames,
                                       slide_frames)
        if not (max_diff <= tolerance and same):
            raise ExportError(f"ONNX decoding differs from PyTorch over {PARITY_TOKENS} tokens: max |logit diff| "
                              f"{max_diff:.3g} (tolerance {tolerance:g}), identical tokens: {same}; "
                              "nothing was written")
        temperature = run.module.decoding.temperature
        frame_parity = flappy_frame_parity(frame_tmp, decode_tmp, prefill_tmp, np.asarray(start_contexts[0]),
                                           FRAME_PARITY_FRAMES, slide_frames, temperature,
                                           ring=net.cfg.sliding_window)
        if not (frame_parity["identical_frames"] and frame_parity["max_abs_diff"] <= tolerance):
            raise ExportError(f"the frame graph's frames differ from the per-token decoder's over "
                              f"{FRAME_PARITY_FRAMES} frames (identical: {frame_parity['identical_frames']}, max "
                              f"|logit diff| {frame_parity['max_abs_diff']:.3g}, tolerance {tolerance:g}); "
                              "nothing was written")
        decode_model, prefill_model = onnx.load(str(decode_tmp)), onnx.load(str(prefill_tmp))
        frame_model = onnx.load(str(frame_tmp))
    cfg = run.model
    cache_shape = [cfg.layers, 1, cfg.heads, cfg.context, cfg.head_dim]
    frame_rows = [cfg.layers, 1, cfg.heads, SPEC.tokens_per_frame, cfg.head_dim]
    per_frame, pipes = SPEC.state_tokens_per_frame, len(SPEC.marker_positions)
    manifest = {
        "format": "worldmodels-manifest",
        "format_version": MANIFEST_FORMAT_VERSION,
        "task": "flappy",
        "name": name,
        "onnx": f"{name}.onnx",
        "prefill_onnx": f"{name}.prefill.onnx",
        "opset": OPSET,
        "inputs": [
            {"name": DECODE_INPUTS[0], "shape": [1, 1], "dtype": "int64"},
            {"name": DECODE_INPUTS[1], "shape": [1], "dtype": "int64"},
            {"name": DECODE_INPUTS[2], "shape": cache_shape, "dtype": "float32"},
            {"name": DECODE_INPUTS[3], "shape": cache_shape, "dtype": "float32"},
            {"name": DECODE_INPUTS[4], "shape": [1], "dtype": "int64"},
        ],
        "outputs": [{"name": n, "shape": s, "dtype": "float32"} for n, s in zip(DECODE_OUTPUTS, (
            [1, SPEC.vocab_size], cache_shape, cache_shape), strict=True)],
        "prefill": {"inputs": PREFILL_INPUTS, "outputs": PREFILL_OUTPUTS},
        "frame_onnx": f"{name}.frame.onnx",
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
            "guess": "worldmodels.token_sampling.frame_guess, its first slot replaced by the previous call's "
                     "next_first when the action is the first label (any ids change only the passes, never the "
                     "frame)",
            "rules": "worldmodels/nets/frame_graph.py",
            "parity": {**frame_parity, "tolerance": tolerance, "runtime": f"onnxruntime {ort.__version__}"},
        },
        "token_spec": SPEC.to_json(),
        "decoding": {"context": cfg.context, "sliding_window": cfg.sliding_window, "slide_frames": slide_frames,
                     "temperature": run.module.decoding.temperature, "rules": "worldmodels/token_sampling.py"},
        "start_contexts": [list(map(int, c)) for c in start_contexts],
        "model": {**asdict(cfg), "parameters": sum(p.numel() for p in net.parameters())},
        "parity": {"max_abs_diff": max_diff, "identical_tokens": same, "tokens": PARITY_TOKENS,
                   "tolerance": tolerance, "runtime": f"onnxruntime {ort.__version__}"},
        "git_commit": git_commit(),
        "metrics": metrics or {},
        "training_config": run_config,
    }
    props = metadata_props(manifest, "token_spec")
    onnx.helper.set_model_props(decode_model, props)
    onnx.helper.set_model_props(prefill_model, {**props, "worldmodels.graph": "prefill"})
    onnx.helper.set_model_props(frame_model, {**props, "worldmodels.graph": "frame"})
    onnx_path, manifest_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    _write_atomic(onnx_path, decode_model.SerializeToString())
    _write_atomic(out_dir / f"{name}.prefill.onnx", prefill_model.SerializeToString())
    _write_atomic(out_dir / f"{name}.frame.onnx", frame_model.SerializeToString())
    _write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return onnx_path, manifest_path, max_diff


def export_module(module, run: RunConfig, out_dir: str | Path, name: str | None = None, tolerance: float = 1e-4,
                  metrics: dict | None = None) -> tuple[Path, Path, float]:
    """Export a trained LightningModule of either task (its EMA weights when it has them)."""
    name = name or run.task_name
    if run.task_name == "breakout":
        return export_breakout(module.inference_net, run, module.run_config, out_dir, name, tolerance, metrics)
    if run.task_name == "flappy":
        return export_flappy(module.inference_net, run, module.run_config, out_dir, name, tolerance, metrics,
                             module.export_extras.get("start_contexts"))
    raise ExportError(f"no exporter for task {run.task_name!r}")


def default_out_dir(checkpoint: Path) -> Path:
    """`<run>/export` for a checkpoint at `<run>/checkpoints/x.ckpt`, else an `export/` folder beside it."""
    return (checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent) / "export"


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by python -m worldmodels.train")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/export)")
    parser.add_argument("--name", default=None, help="file stem (default: the task name)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |onnxruntime - PyTorch| accepted")
    args = parser.parse_args(argv)

    from worldmodels.tasks import load_checkpoint

    run, module = load_checkpoint(args.checkpoint)
    out_dir = args.out or default_out_dir(args.checkpoint)
    onnx_path, manifest_path, max_diff = export_module(module, run, out_dir, args.name, args.tolerance)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) and {manifest_path}; "
          f"max |onnxruntime - PyTorch| = {max_diff:.2e}")


if __name__ == "__main__":
    main()
