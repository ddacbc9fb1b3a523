"""The Flappy Bird data collector: trains (or loads) a PPO player, records episodes from a mix of good and bad
policies and caches both. Plain functions, no Lightning: the DataModule (`worldmodels.flappy.data`) calls
`ensure_episodes` from `prepare_data` (rank 0 builds) and `setup` (every rank loads).

1. `ensure_policy`: a stable-baselines3 PPO `MlpPolicy` trained on the real `FlappyBird-v0` (features
   observation, `use_lidar=False`, its pipes reordered so the next pipe to pass comes first: `pipes_ahead_first`),
   then scored over `eval_episodes` deterministic games (score = pipes passed; `ppo_policy` plays it).
   Cached in `cache_dir/flappy/ppo-<hash>/`: `policy.zip` and `manifest.json` (the config subset that made it, its
   hash, the scores, the zip's sha256).
2. `ensure_episodes`: `episodes` games, episode i with a game seed and a policy drawn from (seed, i) alone, recorded
   by `workers` processes and stored in `cache_dir/flappy/episodes-<hash>/` (format: `worldmodels.flappy.episodes`).
   The policies: `ppo`, `noisy_ppo` (a random action with probability `noisy_epsilon`), `random` (flaps with
   probability `random_flap_prob`), `do_nothing`, `give_up` (plays for a number of frames drawn from
   `give_up_after`, then never flaps). The episodes' hash covers the PPO hash and the token spec, so retraining
   the player or changing the spec records afresh; the number of workers does not change the result.

Both caches are written into a temporary directory that is synced and renamed into place when complete; on load, a
missing manifest, a checksum or shape mismatch or another config's manifest means "rebuild", with a log line saying
why, while an episode manifest edited by hand stops with `EditedManifestError` (delete the folder to rebuild). One
process at a time builds a cache, holding the flock of `<cache>.lock` beside it: a second run that needs the same
cache logs that it waits, then loads what the first built. A build killed outright (kill -9, OOM) leaves its
`.<cache>.tmp-*` folder; the next `ensure_episodes` removes it unless its builder still holds the lock, and the
recording workers die with their parent.

`policy="heuristic"` replaces PPO everywhere by the scripted `HeuristicPolicy` (a stand-in, not PPO; no training):
tests and quick runs use it.

Recording workers are started with `spawn` (safe next to torch), so a script of your own that calls
`ensure_episodes` with workers > 0 needs the usual `if __name__ == "__main__":` guard.

Prebuild the caches outside training (e.g. before a multi-GPU run) with the run's own overrides:

    python -m worldmodels.collect data.collector.episodes=2000
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import gymnasium
import numpy as np
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from tqdm import tqdm

from worldmodels.core.files import fsync_dir, fsync_file
from worldmodels.flappy import episodes as episode_store
from worldmodels.flappy.config import POLICY_NAMES, CollectorConfig
from worldmodels.flappy.game import (
    BIRD_X,
    NOOP,
    PIPE_WIDTH,
    SCREEN_WIDTH,
    CallablePolicy,
    DoNothingPolicy,
    FlappyGame,
    GiveUpPolicy,
    HeuristicPolicy,
    NoisyPolicy,
    Policy,
    RandomPolicy,
)
from worldmodels.flappy.tokens import SPEC

log = logging.getLogger(__name__)

ENV_ID = "FlappyBird-v0"
PLAYS_BASE = ("ppo", "noisy_ppo", "give_up")  # the policies that consult PPO (or its heuristic stand-in)
# PPO for 12 features and 2 actions: sb3's default MLP (two tanh layers of 64); a rollout of n_steps x ppo_envs
# = 2048 steps per update, in minibatches of 256 (sb3 spends ~4 ms per minibatch whatever its size, so bigger ones
# learn more per second than its default 64), 10 epochs. gamma 0.99 looks ~100 frames (2-3 pipes) ahead, enough
# to value a pipe's +1 over the +0.1 per frame; a small entropy bonus keeps exploring; the learning rate decays
# linearly to 0 for a steady final policy (1e-3 learned faster but collapsed for a while mid-run).
PPO_HYPERPARAMETERS = {
    "n_steps": 256, "batch_size": 256, "n_epochs": 10, "learning_rate": 3e-4, "learning_rate_final": 0.0,
    "gamma": 0.99, "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.01, "vf_coef": 0.5, "max_grad_norm": 0.5,
    "net_arch": [64, 64],
}
EVAL_MAX_FRAMES = 10_000  # evaluation games end here (264 pipes), so a perfect player's evaluation still ends
LANES = 64  # games a recorder plays in lockstep, sharing one batched PPO forward pass per frame
EPISODE_STREAM, SPLIT_STREAM, EVAL_STREAM = 1, 2, 3  # seed streams: episodes, the train/val split, PPO evaluation
_HEURISTIC = HeuristicPolicy()
PR_SET_PDEATHSIG = 1  # linux/prctl.h
T = TypeVar("T")


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def ppo_config(cfg: CollectorConfig) -> dict:
    """Everything that decides the trained policy and its scores (the PPO cache key)."""
    return {"env": ENV_ID, "use_lidar": False, "observation": "pipes_ahead_first", "timesteps": cfg.ppo_timesteps,
            "envs": cfg.ppo_envs,
            "seed": cfg.ppo_seed, "eval_episodes": cfg.eval_episodes, "eval_max_frames": EVAL_MAX_FRAMES,
            "hyperparameters": PPO_HYPERPARAMETERS}


def episodes_config(cfg: CollectorConfig, seed: int) -> dict:
    """Everything that decides the recorded episodes (the episode cache key), as JSON types."""
    config = {"format_version": episode_store.VERSION, "seed": seed, "episodes": cfg.episodes,
              "max_frames": cfg.max_frames, "val_fraction": cfg.val_fraction, "mix": dict(sorted(cfg.mix.items())),
              "noisy_epsilon": cfg.noisy_epsilon, "random_flap_prob": cfg.random_flap_prob,
              "give_up_after": list(cfg.give_up_after), "policy": cfg.policy, "lanes": LANES,
              "ppo": config_hash(ppo_config(cfg)) if cfg.policy == "ppo" else None, "token_spec": SPEC.to_json()}
    return json.loads(json.dumps(config))


# ---- the caches on disk ---------------------------------------------------------------------------------------
# One process at a time builds a cache `<cache>/`: the one holding the exclusive flock of `<cache>.lock` beside it (the
# file stays, as deleting a lock file that others wait on would let two builders in). It writes `.<cache>.tmp-*` and
# renames that into place. A builder killed with SIGKILL leaves its temporary folder behind, and the kernel drops its
# lock; as only the lock's holder makes them, such folders are removed by whoever next gets the lock.

LEFTOVER = re.compile(r"\.(?P<cache>[^.]+)\.(?:tmp|old)-[^.]+")  # what atomic_directory leaves if killed


def _lock_path(final: Path) -> Path:
    return final.with_name(f"{final.name}.lock")


def _try_lock(lock) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextmanager
def build_lock(final: Path) -> Iterator[None]:
    """Hold the build lock of cache `final` inside the block: wait (saying so) while another process builds it, then
    remove what builders killed mid-build left of it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(_lock_path(final), "a") as lock:
        if not _try_lock(lock):
            log.info("%s: another process is building it; waiting for its lock %s", final.name, lock.name)
            fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_leftovers(final)
        yield


def remove_stale_leftovers(folder: Path) -> None:
    """Remove the temporary folders killed builders left in `folder`, of every cache that nobody is building now,
    so that even a cache whose config is never built again does not keep its dead builder's ~1 GB."""
    if not folder.is_dir():
        return
    for name in sorted({m["cache"] for path in folder.glob(".*") if (m := LEFTOVER.fullmatch(path.name))}):
        with open(_lock_path(folder / name), "a") as lock:
            if _try_lock(lock):
                _remove_leftovers(folder / name)


def _remove_leftovers(final: Path) -> None:
    """Delete `final`'s temporary folders; call it only holding `final`'s lock, or a live builder's go too."""
    for path in sorted(final.parent.glob(f".{final.name}.*")):
        if LEFTOVER.fullmatch(path.name):
            log.info("removing %s, left by a build that did not finish", path)
            shutil.rmtree(path, ignore_errors=True)


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield an empty temporary directory beside `final`; when the block succeeds it becomes `final` (replacing a
    broken one), when it fails or is interrupted it is deleted. Readers never see a half-written `final`, nor does a
    power cut after the rename leave one: the files and their folder reach the disk before it, the parent after.
    Hold `final`'s `build_lock` around it, so that what a SIGKILL leaves is removed by the next build."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        tmp.chmod(0o755)
        for path in tmp.iterdir():
            fsync_file(path)
        fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def cached_or_built(directory: Path, load: Callable[[], T], build: Callable[[], T], what: str) -> T:
    """`load()` the cache at `directory` if it is valid, else `build()` it under its lock. A process that waited for
    the lock loads what the holder built instead of building it again."""
    try:
        return load()
    except episode_store.CacheError:
        pass
    with build_lock(directory):
        try:
            return load()
        except episode_store.CacheError as err:
            if directory.exists():
                log.warning("%s: rebuilding the cache: %s", what, err)
        return build()


# ---- the PPO player -------------------------------------------------------------------------------------------


def pipes_ahead_first(obs: np.ndarray) -> np.ndarray:
    """The env's features observation(s) (..., 12) with the three pipes reordered: those the bird has not passed
    first, by x, then the passed ones. The env orders pipes by x alone, so the pipe the bird has just passed keeps
    the first place until it leaves the screen, and the next pipe takes it only when it is 1 px from the bird.
    On the env's order PPO plateaued at a mean score of ~5 after 1M steps, flying at the height of the gap it had
    passed; on this order it scored ~90 after 600k. The trained policy expects this order: use `ppo_policy`."""
    obs = np.asarray(obs)
    pipes = obs[..., :9].reshape(*obs.shape[:-1], 3, 3)  # (..., pipe, [x, gap top, gap bottom])
    passed = pipes[..., 0] * SCREEN_WIDTH + PIPE_WIDTH < BIRD_X  # the pipe's right edge is behind the bird
    order = np.argsort(passed, axis=-1, kind="stable")
    pipes = np.take_along_axis(pipes, order[..., None], axis=-2)
    return np.concatenate([pipes.reshape(*obs.shape[:-1], 9), obs[..., 9:]], axis=-1)


class PipesAheadFirst(gymnasium.ObservationWrapper):
    """The env as PPO trains on it: see `pipes_ahead_first` (the observation space is unchanged)."""

    def observation(self, obs: np.ndarray) -> np.ndarray:
        return pipes_ahead_first(obs)


def ppo_policy(model) -> Policy:
    """A trained sb3 PPO model as a `Policy` for `record_episode`: the env's observation in, a deterministic
    action out."""
    return CallablePolicy(lambda obs: model.predict(pipes_ahead_first(obs), deterministic=True)[0])


class ProgressBar(BaseCallback):
    """Drives a tqdm bar over PPO's timesteps, showing the mean score of the last 100 training games."""

    def __init__(self, total: int):
        super().__init__()
        self.total = total
        self.scores: deque[int] = deque(maxlen=100)

    def _on_training_start(self) -> None:
        self.bar = tqdm(total=self.total, desc="PPO", unit="step", unit_scale=True, dynamic_ncols=True)

    def _on_step(self) -> bool:
        # A finished game's info still carries its final score (the vec env resets the game afterwards).
        infos, dones = self.locals["infos"], self.locals["dones"]
        self.scores.extend(info["score"] for info, done in zip(infos, dones, strict=True) if done)
        self.bar.update(self.num_timesteps - self.bar.n)
        return True

    def _on_rollout_end(self) -> None:
        if self.scores:
            self.bar.set_postfix(score=f"{np.mean(self.scores):.1f}")

    def _on_training_end(self) -> None:
        self.bar.close()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block. A 64-wide MLP gains nothing from more, and its tiny ops pay
    for thread hand-offs: PPO ran 70x slower on two threads of a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_ppo(cfg: CollectorConfig):
    """A PPO model trained for `cfg.ppo_timesteps` steps (with a progress bar)."""
    hp = dict(PPO_HYPERPARAMETERS)
    first, last = hp.pop("learning_rate"), hp.pop("learning_rate_final")
    env = make_vec_env(ENV_ID, n_envs=cfg.ppo_envs, seed=cfg.ppo_seed, env_kwargs={"use_lidar": False},
                       wrapper_class=PipesAheadFirst)
    # sb3 calls the schedule with the share of training still to go: 1 at the start, 0 at the end.
    model = PPO("MlpPolicy", env, learning_rate=lambda remaining: last + (first - last) * remaining,
                policy_kwargs={"net_arch": hp.pop("net_arch")}, seed=cfg.ppo_seed, device="cpu", verbose=0, **hp)
    with torch.enable_grad():  # a caller may have switched gradients off (evaluate does)
        model.learn(cfg.ppo_timesteps, callback=ProgressBar(cfg.ppo_timesteps))
    env.close()
    return model


def evaluate_ppo(cfg: CollectorConfig, model) -> dict:
    """Scores (pipes passed) of `eval_episodes` deterministic games on seeds apart from the recorded ones."""
    seeds = np.random.SeedSequence([cfg.ppo_seed, EVAL_STREAM]).generate_state(cfg.eval_episodes).astype(np.int64)
    recorder = _Recorder(cfg, _batched(model.predict), EVAL_MAX_FRAMES)
    plays = [recorder([(s, "ppo") for s in seeds[a:a + LANES]]) for a in range(0, len(seeds), LANES)]
    scores = np.array([score for chunk in plays for _, score in chunk])
    capped = sum(len(tokens) == EVAL_MAX_FRAMES * SPEC.tokens_per_frame for chunk in plays for tokens, _ in chunk)
    return {"mean_score": float(scores.mean()), "median_score": float(np.median(scores)),
            "max_score": int(scores.max()), "episodes": len(scores), "capped_episodes": int(capped)}


def ensure_policy(cfg: CollectorConfig, cache_dir: Path) -> tuple[Path | None, dict]:
    """(path of the trained `policy.zip`, its evaluation scores), trained now unless a valid cache holds it.
    With `policy="heuristic"` there is nothing to train: (None, {})."""
    if cfg.policy == "heuristic":
        log.info("collector policy=heuristic: the scripted HeuristicPolicy stands in for PPO (nothing to train)")
        return None, {}
    config = ppo_config(cfg)
    directory = Path(cache_dir) / "flappy" / f"ppo-{config_hash(config)}"

    def load() -> tuple[Path, dict]:
        manifest = _load_policy_manifest(directory, config)
        log.info("PPO policy: cached at %s (mean score %.1f)", directory, manifest["scores"]["mean_score"])
        return directory / "policy.zip", manifest["scores"]

    return cached_or_built(directory, load, lambda: _train_policy(cfg, config, directory), "PPO policy")


def _train_policy(cfg: CollectorConfig, config: dict, directory: Path) -> tuple[Path, dict]:
    log.info("PPO policy: training %d steps on %d envs into %s", cfg.ppo_timesteps, cfg.ppo_envs, directory)
    start = time.perf_counter()
    with one_torch_thread():
        model = train_ppo(cfg)
        seconds = time.perf_counter() - start
        scores = evaluate_ppo(cfg, model)
    log.info("PPO policy: %.0f steps/s; scores over %d games: mean %.1f, median %.1f, max %d",
             cfg.ppo_timesteps / seconds, scores["episodes"], scores["mean_score"], scores["median_score"],
             scores["max_score"])
    with atomic_directory(directory) as tmp:
        model.save(tmp / "policy.zip")
        manifest = {"format": "flappy-ppo", "version": 1, "hash": config_hash(config), "config": config,
                    "scores": scores, "train_seconds": round(seconds, 1),
                    "stable_baselines3": stable_baselines3.__version__,
                    "sha256": episode_store.sha256_file(tmp / "policy.zip")}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return directory / "policy.zip", scores


def _load_policy_manifest(directory: Path, config: dict) -> dict:
    path = directory / "manifest.json"
    if not path.is_file():
        raise episode_store.CacheError(f"{path}: missing")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise episode_store.CacheError(f"{path}: not valid JSON ({err})") from err
    if manifest.get("config") != json.loads(json.dumps(config)):
        raise episode_store.CacheError(f"{path}: made by another config")
    zip_path = directory / "policy.zip"
    if not zip_path.is_file() or episode_store.sha256_file(zip_path) != manifest.get("sha256"):
        raise episode_store.CacheError(f"{zip_path}: missing or its sha256 does not match the manifest")
    return manifest


# ---- recording ------------------------------------------------------------------------------------------------


def _batched(predict: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """Base actions for a batch of env observations (n, 12) from a PPO model's `predict`, deterministic."""
    return lambda obs: predict(pipes_ahead_first(obs), deterministic=True)[0]


def _heuristic_actions(obs: np.ndarray) -> np.ndarray:
    return np.array([_HEURISTIC(o) for o in obs])


class _BaseAction:
    """The base player inside one game's policy wrappers: it answers with the action the recorder's batched
    forward pass computed for this game's current observation."""

    action = NOOP

    def reset(self, rng: np.random.Generator) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> int:
        return self.action


def make_policy(name: str, cfg: CollectorConfig, base: Policy) -> Policy:
    """The mix policy `name` around the base player `base` (PPO or the heuristic)."""
    if name == "ppo":
        return base
    if name == "noisy_ppo":
        return NoisyPolicy(base, cfg.noisy_epsilon)
    if name == "random":
        return RandomPolicy(cfg.random_flap_prob)
    if name == "do_nothing":
        return DoNothingPolicy()
    if name == "give_up":
        return GiveUpPolicy(base, tuple(cfg.give_up_after))
    raise ValueError(f"unknown policy {name!r}")


class _Recorder:
    """Plays up to LANES games at once, frame by frame, exactly as `record_episode` plays each one (the policy's
    rng from [seed, 1], at most `max_frames` states, a NOOP after the last one), but with one batched base-player
    call per frame for all games that need it: the PPO forward pass costs the same for 1 or 16 observations."""

    def __init__(self, cfg: CollectorConfig, base_actions: Callable[[np.ndarray], np.ndarray], max_frames: int):
        self.cfg, self.base_actions, self.max_frames = cfg, base_actions, max_frames
        self.games = [FlappyGame() for _ in range(LANES)]

    def __call__(self, chunk: list[tuple[int, str]]) -> list[tuple[np.ndarray, int]]:
        """(game seed, policy name) per game -> (int16 tokens, score) per game."""
        bases = [_BaseAction() for _ in chunk]
        policies = [make_policy(name, self.cfg, base) for (_, name), base in zip(chunk, bases, strict=True)]
        states, actions = [], []
        for game, policy, (seed, _) in zip(self.games[:len(chunk)], policies, chunk, strict=True):
            policy.reset(np.random.default_rng([int(seed), 1]))
            states.append([game.reset(int(seed))])
            actions.append([])
        playing = [j for j in range(len(chunk)) if len(states[j]) < self.max_frames]
        while playing:
            asking = [j for j in playing if chunk[j][1] in PLAYS_BASE]
            if asking:
                obs = np.stack([self.games[j].obs for j in asking])
                for j, action in zip(asking, self.base_actions(obs), strict=True):
                    bases[j].action = int(action)
            for j in playing:
                action = int(policies[j](self.games[j].obs))
                actions[j].append(action)
                states[j].append(self.games[j].step(action))
            playing = [j for j in playing if not self.games[j].done and len(states[j]) < self.max_frames]
        return [(SPEC.encode_episode(s, [*a, NOOP]).astype(np.int16), self.games[j].score)
                for j, (s, a) in enumerate(zip(states, actions, strict=True))]


_WORKER_RECORDER: _Recorder | None = None  # each recording process's own recorder


def _one_thread_call(recorder: _Recorder, chunk: list[tuple[int, str]]) -> list[tuple[np.ndarray, int]]:
    with one_torch_thread():
        return recorder(chunk)


def _start_worker(cfg: CollectorConfig, policy_path: Path | None, parent: int) -> None:
    """Pool initializer: die with the parent, one torch thread per process (see one_torch_thread; the workers fill
    the cores), the policy loaded once from its zip onto the CPU."""
    global _WORKER_RECORDER
    _exit_with_parent(parent)
    torch.set_num_threads(1)
    _WORKER_RECORDER = _make_recorder(cfg, policy_path)


def _exit_with_parent(parent: int) -> None:
    """End this worker as soon as the process `parent` that started it dies. A parent killed with SIGKILL cannot
    terminate its pool, and a worker would play its chunk to the end first (~15 s at full size). On Linux the kernel
    sends the SIGKILL (prctl PR_SET_PDEATHSIG); elsewhere a thread watches for the worker being orphaned."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    else:
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it died before the watch began
        os._exit(1)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


def _record_in_worker(chunk: list[tuple[int, str]]) -> list[tuple[np.ndarray, int]]:
    return _WORKER_RECORDER(chunk)


def _make_recorder(cfg: CollectorConfig, policy_path: Path | None) -> _Recorder:
    if policy_path is None:
        return _Recorder(cfg, _heuristic_actions, cfg.max_frames)
    return _Recorder(cfg, _batched(PPO.load(policy_path, device="cpu").predict), cfg.max_frames)


def episode_plan(cfg: CollectorConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(game seed, policy id) of each episode; episode i's pair depends on (seed, i) alone."""
    weights = np.array([cfg.mix.get(name, 0.0) for name in POLICY_NAMES], np.float64)
    game_seeds = np.empty(cfg.episodes, np.int64)
    policy = np.empty(cfg.episodes, np.int8)
    for i in range(cfg.episodes):
        rng = np.random.default_rng([seed, EPISODE_STREAM, i])
        game_seeds[i] = rng.integers(2**31)
        policy[i] = rng.choice(len(POLICY_NAMES), p=weights / weights.sum())
    return game_seeds, policy


def validation_episodes(num_episodes: int, val_fraction: float, seed: int) -> list[int]:
    """The held-out episode ids: a seeded random share, at least one and never all."""
    count = min(num_episodes - 1, max(1, round(num_episodes * val_fraction)))
    return sorted(np.random.default_rng([seed, SPLIT_STREAM]).permutation(num_episodes)[:count].tolist())


def record_episodes(cfg: CollectorConfig, seed: int, policy_path: Path | None
                    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """(tokens per episode, score, game seed, policy id) of every planned episode, in episode order."""
    game_seeds, policy = episode_plan(cfg, seed)
    plan = list(zip(game_seeds.tolist(), [POLICY_NAMES[p] for p in policy], strict=True))
    chunks = [plan[a:a + LANES] for a in range(0, len(plan), LANES)]
    tokens, scores = [], []
    with tqdm(total=len(plan), desc="recording", unit="episode", dynamic_ncols=True) as bar:
        if cfg.workers == 0:
            recorder = _make_recorder(cfg, policy_path)
            played, pool = (_one_thread_call(recorder, chunk) for chunk in chunks), None
        else:
            # spawn: torch and forked threads do not mix, and a fresh process loads only what it needs
            pool = multiprocessing.get_context("spawn").Pool(cfg.workers, _start_worker,
                                                              (cfg, policy_path, os.getpid()))
            played = pool.imap(_record_in_worker, chunks)
        try:
            for chunk in played:
                tokens.extend(t for t, _ in chunk)
                scores.extend(s for _, s in chunk)
                bar.update(len(chunk))
        finally:
            if pool is not None:
                pool.terminate()
    return tokens, np.array(scores, np.int32), game_seeds, policy


def ensure_episodes(cfg: CollectorConfig, cache_dir: Path, seed: int, build: bool = True):
    """The `EpisodeStore` for (cfg, seed), recorded now (training PPO first if needed) unless a valid cache holds
    it. With `build=False` a missing or broken cache raises `CacheError` instead. Either way it first removes what
    builders killed mid-build left in the cache folder."""
    config = episodes_config(cfg, seed)
    directory = Path(cache_dir) / "flappy" / f"episodes-{config_hash(config)}"
    remove_stale_leftovers(directory.parent)

    def load() -> episode_store.EpisodeStore:
        store = episode_store.EpisodeStore(directory)
        if store.manifest.get("config") != config:
            raise episode_store.CacheError(f"{directory / 'manifest.json'}: made by another config")
        log.info("episodes: cached at %s (%d episodes, %d frames)", directory, store.num_episodes,
                 store.manifest["frames"])
        return store

    if not build:
        return load()
    return cached_or_built(directory, load, lambda: _record_store(cfg, cache_dir, seed, config, directory),
                           "episodes")


def _record_store(cfg: CollectorConfig, cache_dir: Path, seed: int, config: dict, directory: Path
                  ) -> episode_store.EpisodeStore:
    policy_path, scores = ensure_policy(cfg, cache_dir)
    log.info("episodes: recording %d with %d workers into %s", cfg.episodes, cfg.workers, directory)
    start = time.perf_counter()
    tokens, score, game_seeds, policy = record_episodes(cfg, seed, policy_path)
    with atomic_directory(directory) as tmp:
        manifest = {"hash": config_hash(config), "config": config, "policy_names": list(POLICY_NAMES),
                    "base_policy": cfg.policy, "ppo_scores": scores,
                    "val_episodes": validation_episodes(cfg.episodes, cfg.val_fraction, seed),
                    "record_seconds": round(time.perf_counter() - start, 1)}
        episode_store.write_episodes(tmp, tokens, policy, score, game_seeds, manifest)
    return episode_store.EpisodeStore(directory)
