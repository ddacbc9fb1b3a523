"""Breakout pictures: what the denoiser does, written at each validation (rank 0) and sent to the logger, and the
evaluation's side-by-side GIF and horizon plot.

- `media/samples_step<N>.png`: rows of held-out examples; columns: the 4 context frames | the true next frame |
  one-shot denoising of the true frame at a few sigmas | the full warm-start sampler at a few step counts.
- `media/rollout_step<N>.gif`: the real simulator beside the model dreaming on its own output, same actions.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image, ImageDraw

from worldmodels.breakout.config import BreakoutDataConfig, PolicyConfig, SamplerConfig
from worldmodels.breakout.data import BreakoutStream, play, stream_seeds
from worldmodels.breakout.denoiser import denoiser_input, frames_to_tensor, tensor_to_frames
from worldmodels.breakout.metrics import COPY, MODEL
from worldmodels.breakout.sampler import dream_rollout, sample_next_frame
from worldmodels.core.config import RolloutConfig, SamplesConfig
from worldmodels.core.data import EVAL, VAL
from worldmodels.core.media import GAP, LABEL_HEIGHT, labelled_grid, log_media


class BreakoutSampleGrid(L.Callback):
    def __init__(self, cfg: SamplesConfig, sampler: SamplerConfig, out_dir: Path, seed: int = 0):
        self.cfg, self.sampler, self.out_dir, self.seed = cfg, sampler, Path(out_dir), seed
        self.last_path: Path | None = None

    @torch.no_grad()
    def grid(self, net: torch.nn.Module, device: torch.device) -> Image.Image:
        data = BreakoutDataConfig(batch_size=self.cfg.rows, games_per_worker=self.cfg.rows)
        k = net.context_frames
        batch = next(iter(BreakoutStream(data, self.seed, VAL, max_batches=1, context_frames=k)))
        context = frames_to_tensor(batch["context"]).to(device)
        target = frames_to_tensor(batch["target"]).to(device)
        action = batch["action"].to(device)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        columns, labels = [], [f"ctx t-{k - i}" for i in range(k)] + ["truth"]
        for sigma in self.cfg.sigmas:
            s = torch.full((len(action),), sigma, device=device)
            noisy = target + sigma * torch.randn(target.shape, generator=generator, device=device)
            columns.append(net(denoiser_input(noisy, context, action, s)))
            labels.append(f"x0 @ s={sigma:g}")
        for steps in self.cfg.steps:
            columns.append(sample_next_frame(net, context, action, steps, self.sampler.sigma_max,
                                             self.sampler.sigma_min, generator=generator))
            labels.append(f"sampler K={steps}")
        predictions = [tensor_to_frames(c).cpu().numpy() for c in columns]
        rows = [[*batch["context"][i].numpy(), batch["target"][i].numpy(), *(p[i] for p in predictions)]
                for i in range(len(action))]
        return labelled_grid(rows, labels)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"samples_step{trainer.global_step:06d}.png"
        self.grid(pl_module.inference_net, pl_module.device).save(path)
        self.last_path = path
        log_media(trainer, "media/samples", path)


class BreakoutRolloutGif(L.Callback):
    def __init__(self, cfg: RolloutConfig, sampler: SamplerConfig, policy: PolicyConfig, out_dir: Path, seed: int = 0):
        self.cfg, self.sampler, self.policy, self.out_dir, self.seed = cfg, sampler, policy, Path(out_dir), seed
        self.last_path: Path | None = None

    def frames(self, net: torch.nn.Module, device: torch.device) -> list[Image.Image]:
        seeds = stream_seeds(self.seed, EVAL, 0, 0, 0, 1)
        k = net.context_frames
        real, actions = play(self.policy, seeds, k - 1 + self.cfg.frames, warmup=32)
        context = torch.from_numpy(real[:k].transpose(1, 0, 2, 3, 4)).to(device)  # (1, k, H, W, 3)
        dream_actions = torch.from_numpy(actions[k - 1:]).to(device)  # (T, 1)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        dream = dream_rollout(net, context, dream_actions, self.sampler.steps, self.sampler.sigma_max,
                              self.sampler.sigma_min, generator).cpu().numpy()
        images = []
        for t in range(self.cfg.frames):
            truth = real[k + t, 0]
            images.append(labelled_grid([[truth, dream[t, 0]]], ["real", f"model t={t + 1}"], scale=4))
        return images

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"rollout_step{trainer.global_step:06d}.gif"
        images = self.frames(pl_module.inference_net, pl_module.device)
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / self.cfg.fps), loop=0)
        self.last_path = path
        log_media(trainer, "media/rollout", path)


def save_rollout_gif(truth: np.ndarray, rollout: np.ndarray, path: Path, games: int = 4, fps: int = 10,
                     labels: list[str] | None = None) -> None:
    """Animated grid: one row per game, the real simulator beside the model's autonomous rollout (`labels` name the
    games' players in the real column's label)."""
    shown = range(min(games, truth.shape[1]))
    real = "real" if labels is None else "real: " + ", ".join(labels[g] for g in shown)
    images = [labelled_grid([[truth[t, g], rollout[t, g]] for g in shown], [real, f"model t={t + 1}"])
              for t in range(len(truth))]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def save_rollout_strip(truth: np.ndarray, rollout: np.ndarray, path: Path, labels: list[str], every: int = 4) -> None:
    """One still image: for each game a row of the true frames over a row of the dream, every `every`th frame (the
    last frame alone for a rollout shorter than that)."""
    steps = range(min(every, len(truth)) - 1, len(truth), every)
    rows = []
    for g in range(truth.shape[1]):
        rows += [[truth[t, g] for t in steps], [rollout[t, g] for t in steps]]
    scale, margin = 2, 64
    image = labelled_grid(rows, [f"t={t + 1}" for t in steps], scale=scale)
    # Name each pair of rows in a left margin: the player and "real", then "dream".
    canvas = Image.new("RGB", (image.width + margin, image.height), (40, 40, 40))
    canvas.paste(image, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    cell = truth.shape[2] * scale + GAP
    for g, label in enumerate(labels):
        draw.text((2, LABEL_HEIGHT + 2 * g * cell + 2), f"{label}\nreal", fill=(230, 230, 230))
        draw.text((2, LABEL_HEIGHT + (2 * g + 1) * cell + 2), "dream", fill=(120, 220, 240))
    canvas.save(path)


def save_horizon_plot(result: dict, path: Path) -> None:
    """Against the rollout horizon: share of games with the ball within 1.5 px, extra balls and PSNR; model vs the
    frozen start frame."""
    import matplotlib  # heavy (~1 s): only the evaluation's plot pays for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after matplotlib.use, so the headless backend is the one loaded

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    panels = (("ball_within", "ball within 1.5 px (share of games)"), ("extra_ball", "extra ball (share of games)"),
              ("psnr", "PSNR (dB)"))
    for name, label in ((MODEL, "model"), (COPY, "frozen start frame")):
        horizons = result["rollout"][name]["horizons"]
        x = [int(h) for h in horizons]
        for ax, (metric, _) in zip(axes, panels, strict=True):
            ax.plot(x, [horizons[str(h)][metric] for h in x], label=label)
    for ax, (_, label) in zip(axes, panels, strict=True):
        ax.set_xlabel("rollout horizon (frames)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    kept = result["rollout"][MODEL]["ball_kept"]["median"]
    fig.suptitle(f"autonomous rollout, {result['games_per_player']} held-out games x {len(result['players'])} "
                 f"players, sampler K={result['sampler']['steps']}; ball-kept horizon median {kept:g}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
