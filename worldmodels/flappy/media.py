"""Flappy pictures, drawn from tokens alone: the side-by-side GIF of a held-out episode and the model playing it.

- `media/rollout_step<N>.gif` (each validation, rank 0): a held-out episode beside the model playing it from the
  episode's first frames with the episode's actions (the model's own done token ends its side).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from worldmodels.core.config import RolloutConfig
from worldmodels.core.media import labelled_grid, log_media
from worldmodels.flappy.decoding.decoder import FrameDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend
from worldmodels.flappy.render import render_frame
from worldmodels.flappy.tokens import SPEC


def render_tokens(tokens, scale: float = 0.5) -> list[np.ndarray]:
    """Flappy frames drawn from tokens alone: tokens (F*10,), (F, 10) or (F, 9) -> uint8 (H, W, 3) frames."""
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
