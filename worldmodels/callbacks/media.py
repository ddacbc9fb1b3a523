"""Pictures of what the models do, written at each validation (rank 0) and sent to the logger.

Breakout:
- `media/samples_step<N>.png`: rows of held-out examples; columns: the 4 context frames | the true next frame |
  one-shot denoising of the true frame at a few sigmas | the full warm-start sampler at a few step counts.
- `media/rollout_step<N>.gif`: the real simulator beside the model dreaming on its own output, same actions.
Flappy:
- `media/rollout_step<N>.gif`: a held-out episode beside the model playing it from the episode's first frames with
  the episode's actions, drawn from tokens alone (the model's own done token ends its side).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from PIL import Image, ImageDraw

from worldmodels.callbacks import log_media
from worldmodels.config import RolloutConfig, SamplesConfig
from worldmodels.data import EVAL, VAL
from worldmodels.data.breakout import BreakoutDataConfig, BreakoutStream, play, stream_seeds
from worldmodels.games.breakout import PolicyConfig
from worldmodels.modules.diffusion import SamplerConfig
from worldmodels.nets.denoiser import CONTEXT_FRAMES, denoiser_input, frames_to_tensor, tensor_to_frames
from worldmodels.sampling import dream_rollout, sample_next_frame

SCALE = 3  # nearest-neighbour upscaling so single pixels stay visible
LABEL_HEIGHT = 14
GAP = 2


def labelled_grid(rows: list[list[np.ndarray]], labels: list[str], scale: int = SCALE) -> Image.Image:
    """Tile uint8 (H, W, 3) frames into a grid with a text label above each column."""
    h, w = rows[0][0].shape[:2]
    cell_w, cell_h = w * scale + GAP, h * scale + GAP
    image = Image.new("RGB", (cell_w * len(labels), LABEL_HEIGHT + cell_h * len(rows)), (40, 40, 40))
    draw = ImageDraw.Draw(image)
    for c, label in enumerate(labels):
        draw.text((c * cell_w + 2, 1), label, fill=(230, 230, 230))
    for r, row in enumerate(rows):
        for c, frame in enumerate(row):
            tile = Image.fromarray(frame).resize((w * scale, h * scale), Image.NEAREST)
            image.paste(tile, (c * cell_w, LABEL_HEIGHT + r * cell_h))
    return image


class BreakoutSampleGrid(L.Callback):
    def __init__(self, cfg: SamplesConfig, sampler: SamplerConfig, out_dir: Path, seed: int = 0):
        self.cfg, self.sampler, self.out_dir, self.seed = cfg, sampler, Path(out_dir), seed
        self.last_path: Path | None = None

    @torch.no_grad()
    def grid(self, net: torch.nn.Module, device: torch.device) -> Image.Image:
        data = BreakoutDataConfig(batch_size=self.cfg.rows, games_per_worker=self.cfg.rows)
        batch = next(iter(BreakoutStream(data, self.seed, VAL, max_batches=1)))
        context = frames_to_tensor(batch["context"]).to(device)
        target = frames_to_tensor(batch["target"]).to(device)
        action = batch["action"].to(device)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        columns, labels = [], [f"ctx t-{CONTEXT_FRAMES - i}" for i in range(CONTEXT_FRAMES)] + ["truth"]
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
        real, actions = play(self.policy, seeds, CONTEXT_FRAMES - 1 + self.cfg.frames, warmup=32)
        context = torch.from_numpy(real[:CONTEXT_FRAMES].transpose(1, 0, 2, 3, 4)).to(device)  # (1, 4, H, W, 3)
        dream_actions = torch.from_numpy(actions[CONTEXT_FRAMES - 1:]).to(device)  # (T, 1)
        generator = torch.Generator(device=device).manual_seed(self.seed)
        dream = dream_rollout(net, context, dream_actions, self.sampler.steps, self.sampler.sigma_max,
                              self.sampler.sigma_min, generator).cpu().numpy()
        images = []
        for t in range(self.cfg.frames):
            truth = real[CONTEXT_FRAMES + t, 0]
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


def render_tokens(tokens, scale: float = 0.5) -> list[np.ndarray]:
    """Flappy frames drawn from tokens alone: tokens (F*10,), (F, 10) or (F, 9) -> uint8 (H, W, 3) frames."""
    from worldmodels.data.flappy_tokens import SPEC
    from worldmodels.games.flappy_render import render_frame

    states, _ = SPEC.decode_episode(tokens)
    return [render_frame(state, scale=scale) for state in states]


def side_by_side_gif(real_tokens, model_tokens, path: Path, fps: int = 15, scale: float = 0.5) -> Path:
    """GIF of real | model Flappy frames; the shorter side (e.g. a model that died early) holds its last frame."""
    real, model = render_tokens(real_tokens, scale), render_tokens(model_tokens, scale)
    if not real or not model:
        raise ValueError(f"need frames on both sides (got {len(real)} real, {len(model)} model)")
    images = []
    for t in range(max(len(real), len(model))):
        r, m = min(t, len(real) - 1), min(t, len(model) - 1)
        images.append(labelled_grid([[real[r], model[m]]], [f"real {r}", f"model {m}"], scale=1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


class FlappyRolloutGif(L.Callback):
    START_FRAMES = 20  # real frames the model starts from

    def __init__(self, cfg: RolloutConfig, out_dir: Path, seed: int = 0):
        self.cfg, self.out_dir, self.seed = cfg, Path(out_dir), seed
        self.last_path: Path | None = None

    def rollout(self, net: torch.nn.Module, episode: np.ndarray, slide_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """(real frames, model frames) as (F, 10) token arrays, the model driven by the episode's actions."""
        from worldmodels.data.flappy_tokens import SPEC
        from worldmodels.token_sampling import FrameDecoder, TorchBackend

        per_frame = SPEC.tokens_per_frame
        frames = episode.reshape(-1, per_frame)
        start = min(self.START_FRAMES, len(frames) - 1)
        decoder = FrameDecoder(TorchBackend(net), slide_frames=slide_frames, seed=self.seed)
        decoder.reset(frames[:start].reshape(-1)[:-1])  # whole frames, the last without its action
        dreamed = []
        for t in range(start, min(len(frames), start + self.cfg.frames)):
            state = decoder.step(int(frames[t - 1, -1]) - SPEC.offsets["action"])
            dreamed.append(np.append(state, frames[t, -1]))
            if decoder.done:
                break
        return frames[start:start + self.cfg.frames], np.stack(dreamed)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        store = trainer.datamodule.store
        episode = np.asarray(store.episode(int(store.val_ids[0])), np.int64)
        real, dreamed = self.rollout(pl_module.inference_net, episode, pl_module.cfg.decoding.slide_frames)
        path = side_by_side_gif(real, dreamed, self.out_dir / f"rollout_step{trainer.global_step:06d}.gif",
                                fps=self.cfg.fps)
        self.last_path = path
        log_media(trainer, "media/rollout", path)

