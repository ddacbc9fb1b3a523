"""Evaluate a Breakout world model against the true simulator on held-out games (`python -m worldmodels.evaluate`).

    python -m worldmodels.evaluate outputs/breakout/<run>/export/breakout.onnx
    python -m worldmodels.evaluate outputs/breakout/<run>/checkpoints/last.ckpt --games 64 --horizon 32 --steps 4

Games on the evaluation seed stream (never used in training) are played by the scripted policy; the model then
predicts (a) one step ahead from the true last 4 frames at every step (teacher-forced), and (b) the whole horizon
autonomously from the first 4 frames, its own frames feeding its context, driven by the true actions.
Two baselines are scored on the same frames in the same run: "copy last frame" (the latest context frame; frozen
at the start frame in the rollout) and the true simulator (a check on the pixel read-outs: it must score
perfectly). Metrics: PSNR, ball position error in pixels (and the share of frames where the ball vanished),
paddle x error, brick-grid accuracy. Prints tables and writes JSON (default: `<model>.eval.json`), a GIF of the
real game beside the model's rollout (`.eval.gif`) and a plot of the metrics against the horizon (`.eval.png`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodels.breakout.config import PolicyConfig
from worldmodels.breakout.data import play, stream_seeds
from worldmodels.breakout.denoiser import CONTEXT_FRAMES, INPUT_NAME, OUTPUT_NAME, frames_to_tensor, tensor_to_frames
from worldmodels.breakout.media import save_horizon_plot, save_rollout_gif
from worldmodels.breakout.metrics import COPY, MODEL, TRUE, frame_metrics
from worldmodels.breakout.sampler import Denoise, dream_rollout, sample_next_frame
from worldmodels.core.data import EVAL
from worldmodels.core.errors import UserError
from worldmodels.core.manifest import onnx_session, read_manifest

HORIZONS = (1, 2, 4, 8, 16, 32, 64, 128)
COLUMNS = ("psnr", "ball_err_px", "ball_missing", "paddle_err_px", "brick_acc")


@dataclass
class LoadedModel:
    denoise: Denoise
    steps: int
    sigma_max: float
    sigma_min: float
    description: str


def load_model(path: Path, checkpoint: tuple | None = None) -> LoadedModel:
    """A Breakout denoiser callable with its sampler defaults, from a training checkpoint (or its already loaded
    `(run, module)`) or an exported .onnx."""
    if not path.is_file():
        raise UserError(f"no model file at {path}")
    if path.suffix == ".onnx":
        manifest = read_manifest(path)
        if manifest.get("task") != "breakout":
            raise UserError(f"{path} is a {manifest.get('task')!r} model, not breakout")
        session = onnx_session(path)

        def denoise(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])

        s = manifest["sampler"]
        return LoadedModel(denoise, s["steps"], s["sigma_max"], s["sigma_min"], f"onnx {path}")
    if checkpoint is None:
        raise UserError(f"{path}: give an exported .onnx, or the checkpoint's (run, module) from "
                        "worldmodels.tasks.load_checkpoint")
    run, module = checkpoint
    if run.task_name != "breakout":
        raise UserError(f"{path} is a {run.task_name!r} checkpoint, not breakout")
    s = run.module.sampler
    return LoadedModel(module.inference_net, s.steps, s.sigma_max, s.sigma_min, f"checkpoint {path}")


def evaluate(model: LoadedModel, games: int = 32, horizon: int = 32, seed: int = 0,
             policy: PolicyConfig | None = None) -> dict:
    policy = policy or PolicyConfig()
    seeds = stream_seeds(seed, EVAL, 0, 0, 0, games)
    frames, actions = play(policy, seeds, CONTEXT_FRAMES - 1 + horizon, warmup=32, policy_seed=seed)
    truth = frames[CONTEXT_FRAMES:]  # (T, G, H, W, 3)
    step_actions = torch.from_numpy(actions[CONTEXT_FRAMES - 1:])  # (T, G): leads to truth[t]
    generator = torch.Generator().manual_seed(seed)

    one_step = []
    for t in tqdm(range(horizon), desc="one-step", leave=False):
        context = frames_to_tensor(torch.from_numpy(frames[t:t + CONTEXT_FRAMES]).transpose(0, 1))
        pred = sample_next_frame(model.denoise, context, step_actions[t], model.steps, model.sigma_max,
                                 model.sigma_min, generator=generator)
        one_step.append(tensor_to_frames(pred).numpy())
    start = torch.from_numpy(frames[:CONTEXT_FRAMES]).transpose(0, 1)  # (G, 4, H, W, 3)
    rollout = dream_rollout(model.denoise, start, step_actions, model.steps, model.sigma_max, model.sigma_min,
                            generator).numpy()

    flat = lambda x: x.reshape(-1, *x.shape[-3:])  # (T, G, H, W, 3) -> (T*G, H, W, 3)
    predictors = {
        MODEL: (np.stack(one_step), rollout),
        COPY: (frames[CONTEXT_FRAMES - 1:-1], np.broadcast_to(frames[CONTEXT_FRAMES - 1], truth.shape)),
        TRUE: (truth, truth),
    }
    horizons = [h for h in HORIZONS if h <= horizon]
    return {
        "games": games, "horizon": horizon, "seed": seed, "frames": {"truth": truth, "rollout": rollout},
        "sampler": {"steps": model.steps, "sigma_max": model.sigma_max, "sigma_min": model.sigma_min},
        "one_step": {name: frame_metrics(flat(p), flat(truth)) for name, (p, _) in predictors.items()},
        "rollout": {name: {str(h): frame_metrics(r[h - 1], truth[h - 1]) for h in horizons}
                    for name, (_, r) in predictors.items()},
    }


def format_tables(result: dict) -> str:
    head = f"{'':<22}" + "".join(f"{c:>15}" for c in COLUMNS)
    fmt = lambda m: "".join(f"{m[c]:>15.3f}" for c in COLUMNS)
    lines = [f"one-step, teacher-forced ({result['games']} games x {result['horizon']} steps, "
             f"sampler K={result['sampler']['steps']})", head]
    lines += [f"{name:<22}{fmt(m)}" for name, m in result["one_step"].items()]
    lines += ["", f"autonomous rollout with the true actions ({result['games']} games)", f"{'horizon':<8}" + head[8:]]
    for h in result["rollout"][MODEL]:
        lines += [f"{h:<8}{name:<14}{fmt(result['rollout'][name][h])}" for name in (MODEL, COPY)]
    return "\n".join(lines)


def run(args: argparse.Namespace, path: Path, run, module) -> None:
    """`python -m worldmodels.evaluate` for a Breakout model (`module` None for an export): tables, JSON, GIF, plot."""
    if args.games < 1 or args.horizon < 1:
        raise UserError("--games and --horizon must be >= 1")
    model = load_model(path, None if module is None else (run, module))
    model.steps = args.steps or model.steps
    model.sigma_max = args.sigma_max or model.sigma_max
    if model.steps < 1 or not 0 < model.sigma_min < model.sigma_max:
        raise UserError(f"need steps >= 1 and 0 < sigma_min < sigma_max (got {model.steps}, {model.sigma_min}, "
                        f"{model.sigma_max})")
    result = evaluate(model, args.games, args.horizon, args.seed)
    result["model"] = model.description
    frames = result.pop("frames")
    print(format_tables(result))
    out = args.out  # `worldmodels.evaluate.main` fills in the default, <model>.eval.json
    out.write_text(json.dumps(result, indent=2) + "\n")
    save_rollout_gif(frames["truth"], frames["rollout"], out.with_suffix(".gif"))
    save_horizon_plot(result, out.with_suffix(".png"))
    print(f"\nwrote {out} and, beside it, {out.with_suffix('.gif').name} (real | model) and "
          f"{out.with_suffix('.png').name} (metrics vs horizon)")
