"""gym_pixels rows: windows of recorded episodes, as Breakout's (`worldmodels.breakout.data`) batches.

A source gives episodes (`worldmodels.pixels.envs.Episode`): `data=gym_pixels` plays them in a gymnasium env on
the training seeds (train) and on held-out seeds (validation, test, the export's start frames), cached under
`paths.cache_dir/gym_pixels/`; `data=minari` reads a local Minari dataset and holds out its last episodes. Batches
are dicts `context` (B, 4, S, S, 3), `action` (B,), `target` (B, S, S, 3) (and, with `unroll` n > 1,
`next_actions` (B, n - 1), `next_targets` (B, n - 1, S, S, 3)), uint8 frames; a window never crosses an episode's
end. The training stream draws windows at random, its seed moving on with the resumed step (`generation`).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import torch
from PIL import Image
from torch.utils.data import IterableDataset, get_worker_info

from worldmodels.breakout.denoiser import CONTEXT_FRAMES
from worldmodels.core.data import TEST, TRAIN, VAL, StreamDataModule
from worldmodels.core.errors import UserError
from worldmodels.pixels.config import GymPixelsDataConfig, MinariDataConfig
from worldmodels.pixels.envs import Episode, cached_episodes, env_facts, resize


@dataclass
class Source:
    """A game's episodes and what the model and the player need to know about it."""

    train: list[Episode]
    held_out: list[Episode]
    num_actions: int
    action_names: list[str]
    game: dict  # how the frames were made: env id, frame skip, sticky actions (or the Minari dataset)


def gym_facts(cfg: GymPixelsDataConfig) -> dict:
    return {"source": "gymnasium", "env_id": cfg.env_id, "env_kwargs": cfg.env_kwargs, "frame_skip": cfg.frame_skip,
            "sticky": cfg.sticky}


def gym_source(cfg: GymPixelsDataConfig, seed: int, cache_dir: Path | None) -> Source:
    num_actions, names = env_facts(cfg)
    train = cached_episodes(cfg, seed, TRAIN, cfg.train_episodes, cache_dir, "train")
    held_out = cached_episodes(cfg, seed, VAL, cfg.val_episodes, cache_dir, "held-out")
    return Source(train, held_out, num_actions, names, gym_facts(cfg))


def open_minari(dataset_id: str):
    try:
        import minari  # an optional extra, and slow to import: only data=minari needs it
    except ImportError:
        raise UserError("data=minari needs minari: pip install 'worldmodels[minari]'") from None
    try:
        return minari.load_dataset(dataset_id)
    except (FileNotFoundError, ValueError) as err:
        raise UserError(f"data.dataset_id: no local Minari dataset {dataset_id!r} ({err}); `minari list local` "
                        "lists them, python -m worldmodels.record makes one") from None


def minari_facts(dataset) -> tuple[int, list[str]]:
    space = dataset.action_space
    if not isinstance(space, gymnasium.spaces.Discrete):
        raise UserError(f"data.dataset_id: {dataset.spec.dataset_id} has {space} actions; the pixel model needs "
                        "Discrete actions")
    names = (dataset.storage.metadata.get("description") or "").partition("actions: ")[2].splitlines()[0:1]
    names = [n.strip() for n in names[0].split(",")] if names else []
    if len(names) != space.n:
        names = [f"action {i}" for i in range(int(space.n))]
    return int(space.n), names


def minari_source(cfg: MinariDataConfig) -> Source:
    dataset = open_minari(cfg.dataset_id)
    num_actions, names = minari_facts(dataset)
    episodes = []
    for episode in dataset.iterate_episodes():
        obs = episode.observations
        if isinstance(obs, dict):
            if cfg.image_key is None or cfg.image_key not in obs:
                raise UserError(f"data.image_key: {cfg.dataset_id}'s observations are a dict with keys "
                                f"{', '.join(obs)}; name the image's with data.image_key=<key>")
            obs = obs[cfg.image_key]
        obs = np.asarray(obs)
        if obs.ndim != 4 or obs.shape[-1] != 3 or obs.dtype != np.uint8:
            raise UserError(f"data.dataset_id: {cfg.dataset_id}'s observations are {obs.dtype} {obs.shape[1:]}, "
                            "not RGB images (H, W, 3) uint8; record it with python -m worldmodels.record")
        episodes.append((resize(obs, cfg.frame_size), np.asarray(episode.actions, np.int64).reshape(-1)))
    if len(episodes) <= cfg.val_episodes:
        raise UserError(f"data.val_episodes: {cfg.dataset_id} has {len(episodes)} episodes; holding out "
                        f"{cfg.val_episodes} leaves none to train on")
    game = {"source": "minari", "dataset_id": cfg.dataset_id}
    return Source(episodes[:-cfg.val_episodes], episodes[-cfg.val_episodes:], num_actions, names, game)


def source_facts(cfg) -> tuple[int, list[str]]:
    """(actions, names) of a data config's game, without playing or reading its episodes."""
    if cfg.name == "minari":
        return minari_facts(open_minari(cfg.dataset_id))
    return env_facts(cfg)


def load_source(cfg, seed: int, cache_dir: Path | None) -> Source:
    return minari_source(cfg) if cfg.name == "minari" else gym_source(cfg, seed, cache_dir)


def windows(episodes: list[Episode], span: int) -> np.ndarray:
    """(W, 2) every (episode, first frame) whose `span` frames lie inside one episode."""
    rows = [(e, j) for e, (frames, _) in enumerate(episodes) for j in range(len(frames) - span + 1)]
    return np.asarray(rows, np.int64).reshape(-1, 2)


class WindowStream(IterableDataset):
    """Batches of random windows of the episodes: endless, or `max_batches` long (the same ones every time)."""

    def __init__(self, episodes: list[Episode], batch_size: int, unroll: int, seed: int, max_batches: int | None):
        self.episodes, self.batch_size, self.unroll = episodes, batch_size, unroll
        self.seed, self.max_batches = seed, max_batches
        self.index = windows(episodes, CONTEXT_FRAMES + unroll)
        if len(self.index) == 0:
            raise UserError(f"no episode has the {CONTEXT_FRAMES + unroll} frames a row needs; play longer episodes "
                            "(data.max_steps) or lower data.unroll")

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, worker])
        budget = None if self.max_batches is None else len(range(worker, self.max_batches, workers))
        served = 0
        while budget is None or served < budget:
            picks = self.index[rng.integers(len(self.index), size=self.batch_size)]
            frames = np.stack([self.episodes[e][0][j:j + CONTEXT_FRAMES + self.unroll] for e, j in picks])
            actions = np.stack([self.episodes[e][1][j + CONTEXT_FRAMES - 1:j + CONTEXT_FRAMES - 1 + self.unroll]
                                for e, j in picks])
            row = {"context": torch.from_numpy(frames[:, :CONTEXT_FRAMES]),
                   "action": torch.from_numpy(actions[:, 0]),
                   "target": torch.from_numpy(frames[:, CONTEXT_FRAMES])}
            if self.unroll > 1:
                row["next_actions"] = torch.from_numpy(actions[:, 1:])
                row["next_targets"] = torch.from_numpy(frames[:, CONTEXT_FRAMES + 1:])
            yield row
            served += 1


class PixelsDataModule(StreamDataModule):
    """Train windows from the source's training episodes; validation and test from its held-out ones."""

    def __init__(self, cfg, seed: int = 0, cache_dir: str | Path | None = None):
        super().__init__(cfg, seed)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.source: Source | None = None

    def loaded(self) -> Source:
        if self.source is None:
            self.source = load_source(self.cfg, self.seed, self.cache_dir)
        return self.source

    def _stream(self, stream: int, generation: int, max_batches: int | None) -> WindowStream:
        source = self.loaded()
        episodes = source.train if stream == TRAIN else source.held_out
        seed = int(np.random.SeedSequence([self.seed, stream, self.rank, generation]).generate_state(1)[0])
        return WindowStream(episodes, self.cfg.batch_size, self.cfg.unroll, seed, max_batches)

    def export_extras(self) -> dict:
        """What the export writes into the manifest: the game, its action names and start frames (held out)."""
        source = self.loaded()
        return {"game": source.game, "action_names": source.action_names,
                "start_frames": [png_base64(np.concatenate(list(c), axis=1)) for c in start_frames(source.held_out)]}


START_FRAMES = 8  # start contexts carried in the manifest for the browser's fully dreamed game


def start_frames(episodes: list[Episode], count: int = START_FRAMES) -> np.ndarray:
    """uint8 (count, 4, S, S, 3): each one a held-out episode's first 4 frames, cycling over the episodes."""
    usable = [frames for frames, _ in episodes if len(frames) >= CONTEXT_FRAMES]
    if not usable:
        raise UserError(f"no held-out episode has {CONTEXT_FRAMES} frames to start a dream from")
    return np.stack([usable[i % len(usable)][:CONTEXT_FRAMES] for i in range(count)])


def png_base64(image: np.ndarray) -> str:
    """An RGB uint8 image as base64 PNG (how the manifest carries start frames: the 4 frames side by side)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def png_frames(data: str) -> np.ndarray:
    """A manifest start-frame strip back to uint8 (4, S, S, 3)."""
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return np.stack(np.split(strip, CONTEXT_FRAMES, axis=1))


__all__ = ["PixelsDataModule", "Source", "load_source", "source_facts", "start_frames", "TEST", "VAL"]
