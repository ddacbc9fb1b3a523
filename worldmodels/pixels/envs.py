"""Episodes of any gymnasium env as small RGB frames: making the env, reading and resizing its frames, the players.

An episode is `frames` uint8 (T + 1, S, S, 3) and `actions` int64 (T,): `actions[t]` leads from `frames[t]` to
`frames[t + 1]`; `frames[0]` is the frame after `reset(seed=...)`. One agent step repeats its action `frame_skip`
times in the env (the frame kept is the last one's); with probability `sticky` each env step repeats the env's
previous action instead (ALE's sticky actions), so a model cannot learn a deterministic game it will not meet. The
recorded action is the agent's, which is what a player presses.

Players (`make_player`): `random` (i.i.d. uniform), `holder` (keeps each key for about 10 steps), `data` (the training
data's mix: `policy.hold`, and the SB3 policy for `policy.sb3_share` of the episodes when `policy.sb3_path` is set),
`sb3` (the SB3 policy alone).

    python -c "from worldmodels.pixels.envs import *; print(play(GymPixelsDataConfig(), [0], 'random')[0][0].shape)"
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path

import gymnasium
import numpy as np
import torch
from tqdm import tqdm

from worldmodels.core.errors import UserError
from worldmodels.core.files import write_atomic
from worldmodels.pixels.config import MAX_ACTIONS, GymPixelsDataConfig, PixelsPolicyConfig

Episode = tuple[np.ndarray, np.ndarray]  # frames uint8 (T + 1, S, S, 3), actions int64 (T,)
CACHE_VERSION = 1  # bump when episodes are made differently: older caches are then ignored


def make_env(env_id: str, env_kwargs: dict | None = None):
    """`gymnasium.make(env_id, render_mode="rgb_array", **env_kwargs)` with a Discrete action space, or a UserError
    that says what to install or change."""
    if env_id.startswith("ALE/"):
        try:
            import ale_py  # an optional extra (worldmodels[atari]): only ALE/ env ids need it
        except ImportError:
            raise UserError(f"{env_id} needs ale-py (the Atari games, ROMs included): pip install "
                            "'worldmodels[atari]'") from None
        gymnasium.register_envs(ale_py)
    kwargs = {"render_mode": "rgb_array", **(env_kwargs or {})}
    try:
        env = gymnasium.make(env_id, **kwargs)
    except gymnasium.error.Error as err:
        raise UserError(f"data.env_id: gymnasium cannot make {env_id!r} ({err})") from None
    if not isinstance(env.action_space, gymnasium.spaces.Discrete):
        env.close()
        raise UserError(f"data.env_id: {env_id} has {env.action_space}; the pixel model needs Discrete actions")
    if not 1 <= env.action_space.n <= MAX_ACTIONS:
        env.close()
        raise UserError(f"data.env_id: {env_id} has {env.action_space.n} actions; at most {MAX_ACTIONS} are supported")
    return env


def action_names(env) -> list[str]:
    """The env's names for its actions (ALE's `get_action_meanings`), else `action 0`, `action 1`, ..."""
    meanings = getattr(env.unwrapped, "get_action_meanings", None)
    if callable(meanings):
        return [str(m) for m in meanings()]
    return [f"action {i}" for i in range(int(env.action_space.n))]


def env_facts(cfg: GymPixelsDataConfig) -> tuple[int, list[str]]:
    """(number of actions, their names) of the configured env, made and closed at once."""
    env = make_env(cfg.env_id, cfg.env_kwargs)
    try:
        return int(env.action_space.n), action_names(env)
    finally:
        env.close()


def is_image(obs) -> bool:
    return isinstance(obs, np.ndarray) and obs.ndim == 3 and obs.shape[-1] == 3 and obs.dtype == np.uint8


def raw_frame(env, obs) -> np.ndarray:
    """The env's picture: its observation when that is an RGB image, else `render()` (rgb_array)."""
    if is_image(obs):
        return obs
    frame = env.render()
    if not is_image(np.asarray(frame)):
        raise UserError(f"{env.spec.id if env.spec else env}: neither its observation nor render() is an RGB "
                        "image; make it with render_mode='rgb_array' support")
    return np.asarray(frame)


def resize(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (..., H, W, 3) -> uint8 (..., size, size, 3), each output pixel the average of the pixels it covers."""
    lead = frames.shape[:-3]
    x = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:]).permute(0, 3, 1, 2).float()
    if x.shape[-2:] != (size, size):
        x = torch.nn.functional.adaptive_avg_pool2d(x, size)
    out = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out.reshape(*lead, size, size, 3)


class RandomPlayer:
    """Uniform random actions, each kept with probability `hold` at every step."""

    def __init__(self, num_actions: int, hold: float, rng: np.random.Generator):
        self.num_actions, self.hold, self.rng = num_actions, hold, rng
        self.previous: int | None = None

    def act(self, obs) -> int:
        if self.previous is None or self.rng.random() >= self.hold:
            self.previous = int(self.rng.integers(self.num_actions))
        return self.previous


class SB3Player:
    """A stable-baselines3 PPO policy on the env's own observations (deterministic), with `epsilon` random actions."""

    def __init__(self, path: str, num_actions: int, epsilon: float, rng: np.random.Generator):
        if not Path(path).is_file():
            raise UserError(f"policy.sb3_path: no SB3 policy file at {path}")
        from stable_baselines3 import PPO  # slow to import: only the sb3 player needs it

        self.model = PPO.load(path, device="cpu")
        self.num_actions, self.epsilon, self.rng = num_actions, epsilon, rng

    def act(self, obs) -> int:
        if self.rng.random() < self.epsilon:
            return int(self.rng.integers(self.num_actions))
        return int(self.model.predict(obs, deterministic=True)[0])


PLAYERS = ("random", "holder", "data", "sb3")


def make_player(name: str, policy: PixelsPolicyConfig, num_actions: int, rng: np.random.Generator):
    """The named player for one episode (`data` draws which of its mix plays it from `rng`)."""
    if name == "random":
        return RandomPlayer(num_actions, 0.0, rng)
    if name == "holder":
        return RandomPlayer(num_actions, 0.9, rng)
    if name == "sb3" or (name == "data" and policy.sb3_path and rng.random() < policy.sb3_share):
        if not policy.sb3_path:
            raise UserError("the sb3 player needs data.policy.sb3_path (a stable-baselines3 PPO .zip)")
        return SB3Player(policy.sb3_path, num_actions, policy.sb3_epsilon, rng)
    if name == "data":
        return RandomPlayer(num_actions, policy.hold, rng)
    raise UserError(f"unknown player {name!r}; choose from {', '.join(PLAYERS)}")


def episode_seeds(seed: int, stream: int, count: int) -> np.ndarray:
    """`count` env seeds for one stream (train, val, eval): different streams never share a seed."""
    return np.random.SeedSequence([seed, stream, 0x9E3779B9]).generate_state(count)


class PixelEnv(gymnasium.Wrapper):
    """The env as the pixel model sees it: observations are its frames resized to `frame_size` RGB; one step
    repeats the action `frame_skip` times, each env step repeating the env's previous action instead with
    probability `sticky` (rewards summed). `env_obs` keeps the env's own last observation (an SB3 policy's input)."""

    def __init__(self, env, frame_size: int, frame_skip: int, sticky: float, rng: np.random.Generator):
        super().__init__(env)
        self.observation_space = gymnasium.spaces.Box(0, 255, (frame_size, frame_size, 3), np.uint8)
        self.frame_size, self.frame_skip, self.sticky, self.rng = frame_size, frame_skip, sticky, rng
        self.env_obs, self.previous = None, 0

    def frame(self, obs) -> np.ndarray:
        return resize(raw_frame(self.env, obs)[None], self.frame_size)[0]

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.env_obs, self.previous = obs, 0
        return self.frame(obs), info

    def step(self, action):
        total = 0.0
        for _ in range(self.frame_skip):
            env_action = self.previous if self.rng.random() < self.sticky else int(action)
            obs, reward, terminated, truncated, info = self.env.step(env_action)
            self.previous, total = env_action, total + float(reward)
            if terminated or truncated:
                break
        self.env_obs = obs
        return self.frame(obs), total, terminated, truncated, info


def play_episode(env: PixelEnv, player, seed: int, max_steps: int) -> Episode:
    """One episode of up to `max_steps` agent steps."""
    frame, _ = env.reset(seed=int(seed))
    frames, actions = [frame], []
    for _ in range(max_steps):
        action = player.act(env.env_obs)
        frame, _, terminated, truncated, _ = env.step(action)
        frames.append(frame)
        actions.append(action)
        if terminated or truncated:
            break
    return np.stack(frames), np.asarray(actions, np.int64)


def play(cfg: GymPixelsDataConfig, seeds, player: str, progress: str | None = None) -> list[Episode]:
    """One episode per seed, all by the named player (`progress`: a tqdm label, or None for none)."""
    env = make_env(cfg.env_id, cfg.env_kwargs)
    num_actions = int(env.action_space.n)
    episodes = []
    try:
        for seed in tqdm(seeds, desc=progress, unit="episode", disable=progress is None, leave=False):
            rng = np.random.default_rng([int(seed), 1])  # the player's and the sticky actions' draws
            pixels = PixelEnv(env, cfg.frame_size, cfg.frame_skip, cfg.sticky, rng)
            agent = make_player(player, cfg.policy, num_actions, rng)
            episodes.append(play_episode(pixels, agent, seed, cfg.max_steps))
    finally:
        env.close()
    return episodes


def cache_key(cfg: GymPixelsDataConfig, seed: int, stream: int, count: int) -> str:
    """What the episodes depend on (not batching): same key, same episodes."""
    made = {k: v for k, v in asdict(cfg).items() if k not in ("batch_size", "num_workers", "val_batches", "unroll")}
    made.update(seed=seed, stream=stream, count=count, version=CACHE_VERSION)
    return hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:16]


def save_episodes(path: Path, episodes: list[Episode]) -> None:
    """All episodes in one .npz (frames concatenated, with each episode's length), written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, frames=np.concatenate([f for f, _ in episodes]), actions=np.concatenate([a for _, a in episodes]),
             lengths=np.asarray([len(a) for _, a in episodes], np.int64))
    write_atomic(path, buffer.getvalue())


def load_episodes(path: Path) -> list[Episode]:
    with np.load(path) as data:
        frames, actions, lengths = data["frames"], data["actions"], data["lengths"]
    episodes, f, a = [], 0, 0
    for n in lengths:
        episodes.append((frames[f:f + n + 1], actions[a:a + n]))
        f, a = f + n + 1, a + n
    return episodes


def cached_episodes(cfg: GymPixelsDataConfig, seed: int, stream: int, count: int, cache_dir: Path | None,
                    label: str) -> list[Episode]:
    """`count` episodes of the data's player on `stream`'s seeds, from `cache_dir/gym_pixels/` when made before."""
    path = None if cache_dir is None else Path(cache_dir) / "gym_pixels" / f"{cache_key(cfg, seed, stream, count)}.npz"
    if path is not None and path.is_file():
        return load_episodes(path)
    episodes = play(cfg, episode_seeds(seed, stream, count), "data", progress=f"{cfg.env_id} {label} episodes")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_episodes(path, episodes)
    return episodes
