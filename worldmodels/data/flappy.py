"""Recorded Flappy Bird episodes on disk (`EpisodeStore`) and the DataModule that cuts them into training windows.

The PPO collector callback (`worldmodels.callbacks.ppo_collector`) records the episodes once per config and hands
the loaded store to `FlappyDataModule.set_episodes`; this file defines the store's format and reads it.

Episode store format: one directory, `cache_dir/flappy/episodes-<hash>/`, holding E episodes:

    tokens.npy    int16 [N]      every episode's tokens (`worldmodels.data.flappy_tokens`), concatenated
    offsets.npy   int64 [E + 1]  episode e is tokens[offsets[e]:offsets[e + 1]]; offsets[0] = 0, offsets[E] = N
    frames.npy    int32 [E]      frames per episode (= token count / 10)
    policy.npy    int8  [E]      which policy played it: an index into manifest["policy_names"]
    score.npy     int32 [E]      pipes passed
    seed.npy      int64 [E]      the game's reset seed, so `FlappyGame().reset(seed)` + the actions replays it
    manifest.json format and version, the config that made it and its hash, counts, the policy id -> name table,
                  the held-out episode ids (`val_episodes`), and each array file's sha256, dtype and shape

An episode ends with a done=yes frame, unless it was cut at the collector's max_frames. Loading verifies every file
against the manifest and raises `CacheError` naming the file and the problem.

Windows: a training example is up to `window_frames` whole frames of ONE episode, starting on a frame boundary,
as `tokens`, `positions` (absolute within the episode: start_frame * 10 + arange) and `mask` (False on the right
padding of episodes shorter than the window). A window is placed around a frame drawn uniformly from all frames
(so episodes count by their length), at a uniformly random place inside the window, then clamped to lie inside its
episode. Every window is therefore full where the episode allows, and the clamp makes game starts (and endings)
(window_frames + 1) / 2 times as likely as any other start frame, so the model sees many game openings.

    python -c "from worldmodels.data.flappy import EpisodeStore; s = EpisodeStore('.cache/flappy/episodes-<hash>'); \
print(s.num_episodes, s.policy_names)"
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from worldmodels.data import TRAIN, StreamDataModule
from worldmodels.data.flappy_tokens import SPEC
from worldmodels.errors import UserError

FORMAT, VERSION = "flappy-episodes", 1
MANIFEST = "manifest.json"
ARRAYS = {"tokens": np.int16, "offsets": np.int64, "frames": np.int32, "policy": np.int8, "score": np.int32,
          "seed": np.int64}
PAD_TOKEN = 0  # what fills the padding; any id would do, the mask hides it
NO_EPISODES = ("flappy data: no episodes were set; the PPO collector callback provides them, so run through "
               "python -m worldmodels.train task=flappy")


class CacheError(UserError):
    """A cached file is missing, damaged or made by another config."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_episodes(directory: Path, tokens: Sequence[np.ndarray], policy, score, seed, manifest: dict) -> None:
    """Write one store into an empty `directory`: the arrays from per-episode token arrays, then the manifest
    (last, so a directory without one is plainly unfinished). `manifest` must hold `policy_names`, `val_episodes`
    and whatever describes the config; counts and file checksums are added here."""
    directory = Path(directory)
    frames = np.array([len(t) // SPEC.tokens_per_frame for t in tokens], np.int32)
    offsets = np.concatenate([[0], np.cumsum(frames.astype(np.int64) * SPEC.tokens_per_frame)])
    # Streamed into a memory-mapped file: 50k episodes can reach 1 GB, and a concatenated copy would double it.
    out = np.lib.format.open_memmap(directory / "tokens.npy", mode="w+", dtype=np.int16, shape=(int(offsets[-1]),))
    for start, episode in zip(offsets[:-1], tokens, strict=True):
        out[start:start + len(episode)] = episode
    out.flush()
    del out
    arrays = {"offsets": offsets, "frames": frames, "policy": policy, "score": score, "seed": seed}
    for name, values in arrays.items():
        np.save(directory / f"{name}.npy", np.asarray(values, ARRAYS[name]))
    files = {}
    for name, dtype in ARRAYS.items():
        path = directory / f"{name}.npy"
        shape = [int(offsets[-1])] if name == "tokens" else list(np.shape(arrays[name]))
        files[path.name] = {"sha256": sha256_file(path), "dtype": np.dtype(dtype).name, "shape": shape}
    manifest = {"format": FORMAT, "version": VERSION, **manifest, "episodes": len(frames),
                "frames": int(frames.sum()), "tokens": int(offsets[-1]), "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


class EpisodeStore:
    """The recorded episodes of one store directory, memory-mapped and verified against the manifest."""

    def __init__(self, directory: str | Path, verify: bool = True):
        self.directory = Path(directory)
        self.manifest = self._read_manifest()
        files = self.manifest["files"]
        arrays = {}
        for name, dtype in ARRAYS.items():
            path = self.directory / f"{name}.npy"
            entry = files.get(path.name)
            if entry is None:
                raise CacheError(f"{self.directory / MANIFEST}: no entry for {path.name}")
            if not path.is_file():
                raise CacheError(f"{path}: missing")
            if verify and sha256_file(path) != entry["sha256"]:
                raise CacheError(f"{path}: sha256 does not match the manifest (damaged or partly written)")
            try:
                arrays[name] = np.load(path, mmap_mode="r")
            except ValueError as err:
                raise CacheError(f"{path}: not a readable .npy file ({err})") from err
            if arrays[name].dtype != dtype or list(arrays[name].shape) != entry["shape"]:
                raise CacheError(f"{path}: {arrays[name].dtype}{list(arrays[name].shape)} but the manifest says "
                                 f"{entry['dtype']}{entry['shape']}")
        self.tokens, self.offsets, self.frames = arrays["tokens"], arrays["offsets"], arrays["frames"]
        self.policy, self.score, self.seed = arrays["policy"], arrays["score"], arrays["seed"]
        self.policy_names: tuple[str, ...] = tuple(self.manifest["policy_names"])
        self.val_ids = np.array(sorted(self.manifest["val_episodes"]), np.int64)
        self.train_ids = np.setdiff1d(np.arange(self.num_episodes), self.val_ids)
        self._check_consistent()

    def _read_manifest(self) -> dict:
        path = self.directory / MANIFEST
        if not path.is_file():
            raise CacheError(f"{path}: missing (the store was never finished)")
        try:
            manifest = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CacheError(f"{path}: not valid JSON ({err})") from err
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise CacheError(f"{path}: format {manifest.get('format')!r} v{manifest.get('version')}, "
                             f"expected {FORMAT!r} v{VERSION}")
        return manifest

    def _check_consistent(self) -> None:
        e, offsets, val = self.num_episodes, np.asarray(self.offsets), self.val_ids
        problems = [
            (self.manifest["episodes"] != e, f"manifest says {self.manifest['episodes']} episodes, files hold {e}"),
            (offsets[0] != 0 or offsets[-1] != len(self.tokens), "offsets do not span tokens.npy"),
            (not np.array_equal(np.diff(offsets), self.frames.astype(np.int64) * SPEC.tokens_per_frame),
             "offsets disagree with frames.npy"),
            (e and self.frames.min() < 1, "an episode has no frames"),
            (e and not 0 <= self.policy.min() <= self.policy.max() < len(self.policy_names),
             "policy.npy has ids outside manifest policy_names"),
            (len(np.unique(val)) != len(val) or (len(val) > 0 and (val[0] < 0 or val[-1] >= e)),
             "val_episodes are not distinct episode ids"),
        ]
        for broken, problem in problems:
            if broken:
                raise CacheError(f"{self.directory}: {problem}")

    # Worker processes get the directory, not the arrays: they map the same files instead of copying them.
    def __getstate__(self) -> dict:
        return {"directory": self.directory}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"], verify=False)

    @property
    def num_episodes(self) -> int:
        return len(self.frames)

    def episode(self, i: int) -> np.ndarray:
        """Episode i's tokens, int64 [frames * 10]."""
        return np.asarray(self.tokens[self.offsets[i]:self.offsets[i + 1]], np.int64)

    def policy_name(self, i: int) -> str:
        return self.policy_names[self.policy[i]]

    def policy_ids(self, name: str) -> np.ndarray:
        """The ids of the episodes played by policy `name`."""
        if name not in self.policy_names:
            raise UserError(f"no policy {name!r} in {self.directory} (known: {', '.join(self.policy_names)})")
        return np.flatnonzero(np.asarray(self.policy) == self.policy_names.index(name))


POLICY_NAMES = ("ppo", "noisy_ppo", "random", "do_nothing", "give_up")  # index = the id stored per episode


@dataclass
class CollectorConfig:
    """How the Flappy player is trained and which episodes are recorded with it."""

    ppo_timesteps: int = 1_000_000  # PPO environment steps
    ppo_envs: int = 8  # parallel environments PPO collects rollouts from
    ppo_seed: int = 0
    eval_episodes: int = 100  # deterministic games that score the trained policy
    episodes: int = 50_000  # episodes to record
    max_frames: int = 2000  # frames per recorded episode at most, so a perfect player cannot run forever
    workers: int = 2  # recording processes (0: record in this process)
    val_fraction: float = 0.05  # share of episodes held out for validation and test
    mix: dict[str, float] = field(default_factory=lambda: {
        "ppo": 0.4, "noisy_ppo": 0.2, "random": 0.15, "do_nothing": 0.05, "give_up": 0.2})  # policy weights
    # noisy_ppo: chance per frame of a uniformly random action. Flappy forgives little: with the 1M-step player,
    # 0.05 dies at about the first pipe (~100 frames) and 0.2 within ~50 frames, as early as random flapping.
    noisy_epsilon: float = 0.05
    random_flap_prob: float = 0.1  # random: chance per frame of a flap
    give_up_after: list[int] = field(default_factory=lambda: [30, 300])  # give_up: plays [low, high] frames
    policy: str = "ppo"  # "ppo", or "heuristic": the scripted HeuristicPolicy stands in for PPO (no training)

    def validate(self, key: str) -> None:
        from worldmodels.config import require

        for name in ("ppo_timesteps", "ppo_envs", "eval_episodes", "max_frames"):
            require(getattr(self, name) > 0, f"{key}.{name}", f"must be > 0 (got {getattr(self, name)})")
        require(self.episodes >= 2, f"{key}.episodes", f"must be >= 2 (got {self.episodes})")
        require(self.workers >= 0, f"{key}.workers", "must be >= 0")
        require(0.0 < self.val_fraction < 1.0, f"{key}.val_fraction", f"must be in (0, 1) (got {self.val_fraction})")
        for name, weight in self.mix.items():
            require(name in POLICY_NAMES, f"{key}.mix.{name}", f"unknown policy (known: {', '.join(POLICY_NAMES)})")
            require(weight >= 0, f"{key}.mix.{name}", f"must be >= 0 (got {weight})")
        require(sum(self.mix.values()) > 0, f"{key}.mix", "the weights must sum to more than 0")
        for name in ("noisy_epsilon", "random_flap_prob"):
            require(0.0 <= getattr(self, name) <= 1.0, f"{key}.{name}", "must be in [0, 1]")
        require(len(self.give_up_after) == 2 and 0 <= self.give_up_after[0] <= self.give_up_after[1],
                f"{key}.give_up_after", f"must be [low, high] with 0 <= low <= high (got {self.give_up_after})")
        require(self.policy in ("ppo", "heuristic"), f"{key}.policy", f"must be ppo or heuristic (got {self.policy!r})")


@dataclass
class FlappyDataConfig:
    """Where Flappy episodes come from (the collector) and how they are cut into windows and batched."""

    name: str = "flappy"
    batch_size: int = 64
    window_frames: int = 38  # whole frames per example: 38 x 10 = 380 tokens, inside a 384-token context
    num_workers: int = 0  # DataLoader processes cutting windows (cheap: 0 is usually enough)
    val_batches: int = 16  # fixed held-out batches per validation (and per test)
    collector: CollectorConfig = field(default_factory=CollectorConfig)

    def validate(self, key: str) -> None:
        from worldmodels.config import require

        require(self.batch_size > 0, f"{key}.batch_size", f"must be > 0 (got {self.batch_size})")
        require(self.window_frames > 0, f"{key}.window_frames", f"must be > 0 (got {self.window_frames})")
        require(self.num_workers >= 0, f"{key}.num_workers", "must be >= 0")
        require(self.val_batches > 0, f"{key}.val_batches", "must be > 0")
        self.collector.validate(f"{key}.collector")

    @property
    def window_tokens(self) -> int:
        return self.window_frames * SPEC.tokens_per_frame


def window_starts(frames: np.ndarray, window_frames: int, count: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(episode index into `frames`, start frame) of `count` windows, placed as the module docstring says."""
    cumulative = np.cumsum(frames.astype(np.int64))
    drawn = rng.integers(cumulative[-1], size=count)  # a frame drawn uniformly from all episodes' frames
    episode = np.searchsorted(cumulative, drawn, side="right")
    covered = drawn - (cumulative[episode] - frames[episode])
    start = covered - rng.integers(window_frames, size=count)
    return episode, np.clip(start, 0, np.maximum(frames[episode] - window_frames, 0))


def cut_windows(store: EpisodeStore, episodes: np.ndarray, starts: np.ndarray, window_frames: int
                ) -> dict[str, torch.Tensor]:
    """The batch of windows (episode id, start frame): tokens, positions (B, L) int64 and mask (B, L) bool."""
    k = SPEC.tokens_per_frame
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
    from its own seed; a held-out stream (`max_batches` set, one process) is the same list of windows every time."""

    def __init__(self, store: EpisodeStore, episode_ids: np.ndarray, cfg: FlappyDataConfig, seed: int = 0,
                 stream: int = TRAIN, rank: int = 0, generation: int = 0, max_batches: int | None = None):
        if len(episode_ids) == 0:
            raise UserError(f"flappy data: no episodes for stream {stream} in {store.directory}")
        self.store, self.episode_ids, self.cfg = store, np.asarray(episode_ids, np.int64), cfg
        self.seed, self.stream, self.rank, self.generation = seed, stream, rank, generation
        self.max_batches = max_batches

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
            yield cut_windows(self.store, self.episode_ids[picked], starts, self.cfg.window_frames)
            served += 1


class FlappyDataModule(StreamDataModule):
    """Training windows from the training episodes; validation and test from the held-out episodes.

    Validation and test cut different fixed window lists (streams VAL and TEST) from the same held-out episodes,
    which no training window ever touches; nothing is selected on validation scores, so the two are equally fair.
    """

    def __init__(self, cfg: FlappyDataConfig, seed: int = 0):
        super().__init__(cfg, seed)
        self.store: EpisodeStore | None = None

    def set_episodes(self, store: EpisodeStore) -> None:
        self.store = store

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
    """Up to `count` real game openings for a player to start from: the first `frames` frames of held-out episodes,
    the last one without its action (so each is `frames * 10 - 1` int64 tokens and the player supplies the next
    action). Only episodes that live past the context qualify, so no context holds a death; PPO episodes come first
    (ordinary play), then the other policies', each in id order."""
    if frames < 1:
        raise UserError(f"held_out_start_contexts: frames must be >= 1 (got {frames})")
    candidates = store.val_ids[np.asarray(store.frames)[store.val_ids] > frames]
    is_ppo = [store.policy_name(i) == "ppo" for i in candidates]
    ordered = [i for i, ppo in zip(candidates, is_ppo, strict=True) if ppo]
    ordered += [i for i, ppo in zip(candidates, is_ppo, strict=True) if not ppo]
    length = frames * SPEC.tokens_per_frame - 1
    return [store.episode(i)[:length] for i in ordered[:count]]
