"""The Flappy DataModule: the collector's episodes (`worldmodels.flappy.collector`) cut into training windows.

`prepare_data` (rank 0 of each node) makes sure the PPO player and the recorded episodes exist in the cache,
building them if needed; `setup` (every rank) loads the verified store; `export_extras` hands an export its real
start contexts (openings of held-out episodes). The store's format is `worldmodels.flappy.episodes`.

Windows: a training example is up to `window_frames` whole frames of ONE episode, starting on a frame boundary,
as `tokens`, `positions` (absolute within the episode: start_frame * 10 + arange) and `mask` (False on the right
padding of episodes shorter than the window). A window is placed around a frame drawn uniformly from all frames
(so episodes count by their length), at a uniformly random place inside the window, then clamped to lie inside its
episode. Every window is therefore full where the episode allows, and the clamp makes game starts (and endings)
(window_frames + 1) / 2 times as likely as any other start frame, so the model sees many game openings.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from worldmodels.core.data import TRAIN, StreamDataModule
from worldmodels.core.errors import UserError
from worldmodels.flappy.collector import ensure_episodes
from worldmodels.flappy.config import FlappyDataConfig
from worldmodels.flappy.episodes import EpisodeStore
from worldmodels.flappy.tokens import SPEC

log = logging.getLogger(__name__)

PAD_TOKEN = 0  # what fills the padding; any id would do, the mask hides it
NO_EPISODES = ("flappy data: no episodes; give the DataModule a cache_dir (python -m worldmodels.train task=flappy "
               "does) or a store with set_episodes")
START_CONTEXTS, START_CONTEXT_FRAMES = 8, 20  # real openings the exported model ships for the player


def window_starts(frames: np.ndarray, window_frames: int, count: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(episode index into `frames`, start frame) of `count` windows, placed as the module docstring says."""
    cumulative = np.cumsum(frames.astype(np.int64))
    drawn = rng.integers(cumulative[-1], size=count)  # a frame drawn uniformly from all episodes' frames
    episode = np.searchsorted(cumulative, drawn, side="right")
    covered = drawn - (cumulative[episode] - frames[episode])
    start = covered - rng.integers(window_frames, size=count)
    return episode, np.clip(start, 0, np.maximum(frames[episode] - window_frames, 0))


def cut_windows(store: EpisodeStore, episodes: np.ndarray, starts: np.ndarray, window_frames: int,
                k: int = SPEC.tokens_per_frame) -> dict[str, torch.Tensor]:
    """The batch of windows (episode id, start frame): tokens, positions (B, L) int64 and mask (B, L) bool. `store`
    needs only `tokens` (every episode's, concatenated), `offsets` and `frames`; `k` is the tokens per frame."""
    length = window_frames * k
    tokens = np.full((len(episodes), length), PAD_TOKEN, np.int64)
    mask = np.zeros((len(episodes), length), bool)
    for row, (e, start) in enumerate(zip(episodes, starts, strict=True)):
        n = (min(window_frames, int(store.frames[e]) - int(start))) * k
        first = int(store.offsets[e]) + int(start) * k
        tokens[row, :n] = store.tokens[first:first + n]
        mask[row, :n] = True
    positions = starts[:, None].astype(np.int64) * k + np.arange(length)  # padding keeps counting; it is masked
    return {"tokens": torch.from_numpy(tokens), "positions": torch.from_numpy(positions),
            "mask": torch.from_numpy(mask)}


class FlappyWindows(IterableDataset):
    """Endless (or `max_batches`-long) batches of windows from `episode_ids`. Each (rank, DataLoader worker) draws
    from its own seed; a held-out stream (`max_batches` set, one process) is the same list of windows every time.
    `cfg` needs `window_frames` and `batch_size`; `k` is the tokens per frame (another spec's, for gym_tokens)."""

    def __init__(self, store: EpisodeStore, episode_ids: np.ndarray, cfg: FlappyDataConfig, seed: int = 0,
                 stream: int = TRAIN, rank: int = 0, generation: int = 0, max_batches: int | None = None,
                 k: int = SPEC.tokens_per_frame):
        if len(episode_ids) == 0:
            raise UserError(f"flappy data: no episodes for stream {stream} in {store.directory}")
        self.store, self.episode_ids, self.cfg = store, np.asarray(episode_ids, np.int64), cfg
        self.seed, self.stream, self.rank, self.generation = seed, stream, rank, generation
        self.max_batches, self.k = max_batches, k

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        rng = np.random.default_rng([self.seed, self.stream, self.rank, worker, self.generation])
        frames = np.asarray(self.store.frames)[self.episode_ids]
        # With several workers each one serves its share of max_batches.
        budget = None if self.max_batches is None else len(range(worker, self.max_batches, workers))
        served = 0
        while budget is None or served < budget:
            picked, starts = window_starts(frames, self.cfg.window_frames, self.cfg.batch_size, rng)
            yield cut_windows(self.store, self.episode_ids[picked], starts, self.cfg.window_frames, self.k)
            served += 1


class FlappyDataModule(StreamDataModule):
    """Training windows from the training episodes; validation and test from the held-out episodes.

    Validation and test cut different fixed window lists (streams VAL and TEST) from the same held-out episodes,
    which no training window ever touches; nothing is selected on validation scores, so the two are equally fair.
    """

    def __init__(self, cfg: FlappyDataConfig, seed: int = 0, cache_dir: str | Path | None = None):
        super().__init__(cfg, seed)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.store: EpisodeStore | None = None
        self._reported = False

    def set_episodes(self, store: EpisodeStore) -> None:
        """Use `store` instead of the collector's cache (tests, notebooks)."""
        self.store = store

    def prepare_data(self) -> None:
        """Rank 0 of each node: train or load the PPO player and record or load the episodes (cached)."""
        if self.store is None and self.cache_dir is not None:
            self.store = ensure_episodes(self.cfg.collector, self.cache_dir, self.seed)

    def setup(self, stage: str) -> None:
        """Every rank: load the store rank 0 made (verified against its manifest), report it once."""
        if self.store is None and self.cache_dir is not None:
            self.store = ensure_episodes(self.cfg.collector, self.cache_dir, self.seed, build=False)
        store = self._store()
        if not self._reported:
            self._reported = True
            self._report(store)

    def _report(self, store: EpisodeStore) -> None:
        manifest = store.manifest
        metrics = {f"ppo/{k}": v for k, v in manifest.get("ppo_scores", {}).items()}
        metrics.update({"data/episodes": manifest["episodes"], "data/frames": manifest["frames"],
                        "data/val_episodes": len(store.val_ids)})
        log.info("collector: %s", ", ".join(f"{k}={v:g}" for k, v in metrics.items()))
        for logger in self.trainer.loggers if self.trainer is not None else ():
            logger.log_metrics(metrics, step=0)

    def export_extras(self) -> dict:
        """Real openings of held-out episodes and the reset seeds of their games (`FlappyGame().reset(seed)` and
        the context's actions replay it): they travel in the checkpoint, so an export needs nothing else."""
        store = self._store()
        ids = held_out_start_ids(store, START_CONTEXTS, START_CONTEXT_FRAMES)
        length = START_CONTEXT_FRAMES * SPEC.tokens_per_frame - 1
        return {"start_contexts": [store.episode(i)[:length].tolist() for i in ids],
                "start_context_seeds": [int(store.seed[i]) for i in ids]}

    def _store(self) -> EpisodeStore:
        if self.store is None:
            raise UserError(NO_EPISODES)
        return self.store

    def _stream(self, stream: int, generation: int, max_batches: int | None) -> FlappyWindows:
        store = self._store()
        episodes = store.train_ids if stream == TRAIN else store.val_ids
        return FlappyWindows(store, episodes, self.cfg, self.seed, stream, self.rank, generation,
                             max_batches=max_batches)


def held_out_start_contexts(store: EpisodeStore, count: int, frames: int) -> list[np.ndarray]:
    """Up to `count` real game openings for a player to start from: the first `frames` frames of held-out episodes
    (`held_out_start_ids`), the last one without its action (so each is `frames * 10 - 1` int64 tokens and the player
    supplies the next action)."""
    length = frames * SPEC.tokens_per_frame - 1
    return [store.episode(i)[:length] for i in held_out_start_ids(store, count, frames)]


def held_out_start_ids(store: EpisodeStore, count: int, frames: int) -> list[int]:
    """The held-out episodes whose openings are start contexts: only those that live past `frames` frames, so no
    context holds a death; PPO episodes first (ordinary play), then the other policies', each in id order."""
    if frames < 1:
        raise UserError(f"held_out_start_contexts: frames must be >= 1 (got {frames})")
    candidates = store.val_ids[np.asarray(store.frames)[store.val_ids] > frames]
    is_ppo = [store.policy_name(i) == "ppo" for i in candidates]
    ordered = [i for i, ppo in zip(candidates, is_ppo, strict=True) if ppo]
    ordered += [i for i, ppo in zip(candidates, is_ppo, strict=True) if not ppo]
    return [int(i) for i in ordered[:count]]
