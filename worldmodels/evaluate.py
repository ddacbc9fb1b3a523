"""Evaluate a world model against the true game on held-out data. Flappy models: see `worldmodels/flappy_eval.py`.

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
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from worldmodels.data import EVAL
from worldmodels.data.breakout import play, stream_seeds
from worldmodels.errors import UserError, one_line_errors
from worldmodels.games.breakout import PolicyConfig
from worldmodels.metrics import frame_metrics
from worldmodels.nets.denoiser import CONTEXT_FRAMES, INPUT_NAME, OUTPUT_NAME, frames_to_tensor, tensor_to_frames
from worldmodels.sampling import Denoise, dream_rollout, sample_next_frame

MODEL, COPY, TRUE = "model", "copy last frame", "true simulator"
HORIZONS = (1, 2, 4, 8, 16, 32, 64, 128)
COLUMNS = ("psnr", "ball_err_px", "ball_missing", "paddle_err_px", "brick_acc")


@dataclass
class LoadedModel:
    denoise: Denoise
    steps: int
    sigma_max: float
    sigma_min: float
    description: str


def read_manifest(path: Path) -> dict:
    """The JSON manifest beside an exported .onnx."""
    manifest_path = path.with_suffix(".json")
    if not manifest_path.is_file():
        raise UserError(f"{path} has no manifest {manifest_path.name} beside it; re-export it")
    try:
        return json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{manifest_path} is not valid JSON ({err.msg}); re-export the model") from err


def onnx_session(path: Path):
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for corrupt files
        raise UserError(f"{path} is not a loadable ONNX model ({type(err).__name__})") from err


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
    from worldmodels.tasks import load_checkpoint

    run, module = checkpoint or load_checkpoint(path)
    if run.task_name != "breakout":
        raise UserError(f"{path} is a {run.task_name!r} checkpoint, not breakout")
    s = run.module.sampler
    return LoadedModel(module.inference_net, s.steps, s.sigma_max, s.sigma_min, f"checkpoint {path}")


def main_flappy(args: argparse.Namespace, checkpoint: tuple | None) -> None:
    from worldmodels.callbacks.ppo_collector import ensure_episodes
    from worldmodels.config import validate
    from worldmodels.data.flappy_tokens import SPEC
    from worldmodels.flappy_eval import evaluate_flappy, format_flappy, onnx_forward, torch_forward
    from worldmodels.token_sampling import OrtBackend, TorchBackend

    if args.model.suffix == ".onnx":
        manifest = read_manifest(args.model)
        run = validate(manifest["training_config"])
        prefill = args.model.with_name(manifest["prefill_onnx"])
        backend = OrtBackend(onnx_session(args.model), onnx_session(prefill),
                             ring=manifest["decoding"].get("sliding_window", False))
        forward = onnx_forward(backend.prefill_session)
    else:
        run, module = checkpoint
        backend, forward = TorchBackend(module.inference_net), torch_forward(module.inference_net)
    # The cache of this machine (conf/paths/default.yaml's rule), not the training machine's path in the manifest:
    # the episodes are keyed by the collector config, so they are found (or rebuilt) wherever the cache lives.
    cache_dir = Path(os.environ.get("WORLDMODELS_CACHE", Path.cwd() / ".cache"))
    data_run = run
    if args.episodes_like is not None:  # held-out episodes of another model's data (e.g. a different policy mix)
        if args.episodes_like.suffix not in (".json", ".onnx") or not args.episodes_like.with_suffix(".json").is_file():
            raise UserError(f"--episodes-like {args.episodes_like}: give an exported flappy .json/.onnx manifest")
        data_run = validate(json.loads(args.episodes_like.with_suffix(".json").read_text())["training_config"])
    store = ensure_episodes(data_run.data.collector, cache_dir, data_run.seed)
    held_out = np.asarray(store.val_ids)
    by_policy = {}
    for name in sorted({store.policy_name(int(i)) for i in held_out}):
        ids = [int(i) for i in held_out if store.policy_name(int(i)) == name][:args.episodes_per_policy]
        by_policy[name] = [np.asarray(store.episode(i), np.int64) for i in ids]
    # Teacher forcing reads whole windows through the prefill graph, which holds at most `context` tokens; a
    # sliding-window model trained on longer windows is scored on the same windows as any other.
    window_frames = min(run.data.window_frames, run.model.context // SPEC.tokens_per_frame)
    result = evaluate_flappy(forward, backend, by_policy, window_frames, args.start_frames,
                             run.module.decoding.slide_frames, args.seed)
    result["model"] = str(args.model)
    result["episodes_from"] = str(args.episodes_like or args.model)
    print(format_flappy(result))
    out = args.out or args.model.with_suffix(".eval.json")
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {out}")


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


def save_rollout_gif(truth: np.ndarray, rollout: np.ndarray, path: Path, games: int = 4, fps: int = 10) -> None:
    """Animated grid: one row per game, the real simulator beside the model's autonomous rollout."""
    from worldmodels.callbacks.media import labelled_grid

    shown = range(min(games, truth.shape[1]))
    images = [labelled_grid([[truth[t, g], rollout[t, g]] for g in shown], ["real", f"model t={t + 1}"])
              for t in range(len(truth))]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def save_horizon_plot(result: dict, path: Path) -> None:
    """PSNR and ball error against the rollout horizon, model vs copy-last-frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for name in (MODEL, COPY):
        rollout = result["rollout"][name]
        horizons = [int(h) for h in rollout]
        for ax, metric in zip(axes, ("psnr", "ball_err_px"), strict=True):
            ax.plot(horizons, [rollout[str(h)][metric] for h in horizons], marker="o", label=name)
    for ax, label in zip(axes, ("PSNR (dB)", "ball position error (px)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("rollout horizon (frames)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"autonomous rollout, {result['games']} held-out games, sampler K={result['sampler']['steps']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a .ckpt from training or an exported .onnx (manifest beside it)")
    parser.add_argument("--games", type=int, default=32, help="held-out games played in parallel")
    parser.add_argument("--horizon", type=int, default=32, help="steps per game (one-step) and rollout length")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps K (default: the model's)")
    parser.add_argument("--sigma-max", type=float, default=None, help="warm-start noise (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="picks the held-out games and the sampler noise")
    parser.add_argument("--out", type=Path, default=None, help="JSON summary path (default: <model>.eval.json)")
    parser.add_argument("--episodes-per-policy", type=int, default=6, help="flappy: held-out episodes per policy")
    parser.add_argument("--start-frames", type=int, default=20, help="flappy: real frames a free rollout starts from")
    parser.add_argument("--episodes-like", type=Path, default=None,
                        help="flappy: evaluate on the held-out episodes of this export's data (default: the model's)")
    args = parser.parse_args(argv)
    if args.games < 1 or args.horizon < 1 or args.episodes_per_policy < 1 or args.start_frames < 1:
        raise UserError("--games, --horizon, --episodes-per-policy and --start-frames must be >= 1")
    torch.set_grad_enabled(False)
    if not args.model.is_file():
        raise UserError(f"no model file at {args.model}")
    checkpoint = None
    if args.model.suffix == ".onnx":
        task = read_manifest(args.model).get("task")
    else:
        from worldmodels.tasks import load_checkpoint

        checkpoint = load_checkpoint(args.model)
        task = checkpoint[0].task_name
    if task == "flappy":
        return main_flappy(args, checkpoint)

    model = load_model(args.model, checkpoint)
    model.steps = args.steps or model.steps
    model.sigma_max = args.sigma_max or model.sigma_max
    if model.steps < 1 or not 0 < model.sigma_min < model.sigma_max:
        raise UserError(f"need steps >= 1 and 0 < sigma_min < sigma_max (got {model.steps}, {model.sigma_min}, "
                        f"{model.sigma_max})")
    result = evaluate(model, args.games, args.horizon, args.seed)
    result["model"] = model.description
    frames = result.pop("frames")
    print(format_tables(result))
    out = args.out or args.model.with_suffix(".eval.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    save_rollout_gif(frames["truth"], frames["rollout"], out.with_suffix(".gif"))
    save_horizon_plot(result, out.with_suffix(".png"))
    print(f"\nwrote {out} and, beside it, {out.with_suffix('.gif').name} (real | model) and "
          f"{out.with_suffix('.png').name} (metrics vs horizon)")


if __name__ == "__main__":
    main()
