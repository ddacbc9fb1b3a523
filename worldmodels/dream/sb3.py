"""A gymnasium vector env with same-step autoreset (the dream vector envs) as a stable-baselines3 `VecEnv`, so that
PPO trains on N dreams stepped by one batched model call:

    from stable_baselines3 import PPO
    venv = SB3VecEnv(FlappyDreamVecEnv(16, model="models/flappy/flappy.json"), observation=pipes_ahead_first)
    PPO("MlpPolicy", venv).learn(100_000)

`observation` (optional) maps a batch of observations to what the policy sees (e.g. the collector's
`pipes_ahead_first`, the order the project's PPO player is trained on); it is applied to `terminal_observation`
too. An episode's end carries sb3's `terminal_observation` and `TimeLimit.truncated`, and its `episode` record
(`r`, `l`) for sb3's logger, plus the env's own info (the ended game's, e.g. its `score`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env import VecEnv


class SB3VecEnv(VecEnv):
    def __init__(self, env: VectorEnv, observation: Callable[[np.ndarray], np.ndarray] | None = None):
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError("SB3VecEnv needs a vector env with same-step autoreset (the dream vector envs)")
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self.env, self.observation = env, observation or (lambda obs: obs)
        self._actions: np.ndarray | None = None
        self._returns = np.zeros(env.num_envs)
        self._lengths = np.zeros(env.num_envs, np.int64)
        self._seed: int | None = None

    def reset(self):
        obs, _ = self.env.reset(seed=self._seed)
        self._seed = None
        self._returns[:], self._lengths[:] = 0, 0
        return self.observation(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        obs, rewards, terminated, truncated, info = self.env.step(self._actions)
        self._returns += rewards
        self._lengths += 1
        done = terminated | truncated
        keys = [k for k in info if not k.startswith("_") and k not in ("final_obs", "final_info")]
        infos = [{k: info[k][i] for k in keys} for i in range(self.num_envs)]
        for i in np.flatnonzero(done):
            final = info["final_obs"][i]
            infos[i].update({"terminal_observation": self.observation(final[None])[0],
                             "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                             "episode": {"r": float(self._returns[i]), "l": int(self._lengths[i])},
                             **{k: v[i] for k, v in info["final_info"].items() if not k.startswith("_")}})
            self._returns[i], self._lengths[i] = 0, 0
        return self.observation(obs), rewards.astype(np.float32), done, infos

    def seed(self, seed: int | None = None):
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name, indices=None):
        return [getattr(self.env, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        raise NotImplementedError("the dreams share one model: call the vector env's methods on SB3VecEnv.env")

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * len(self._indices(indices))

    def _indices(self, indices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
