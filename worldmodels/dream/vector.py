"""N Flappy dreams stepped together: `worldmodels/FlappyDream-v0` as a gymnasium `VectorEnv`, every token of all N
dreams made by one call of the export's batched decode graph (`worldmodels.flappy.batch_graph`).

    envs = gymnasium.make_vec("worldmodels/FlappyDream-v0", num_envs=16, vectorization_mode="vector_entry_point",
                              model="models/flappy/flappy.json")

`BatchedDreams` is the decoder: the rules of `worldmodels.flappy.decoding.rules` (`choose_token` per slot, one
uniform per pipe slot per frame from each dream's own stream) over one KV cache of shape (layers, N, heads, context,
head_dim). A step feeds the N actions, then each state slot's N tokens: 10 batched calls per step whatever N. An
ordered (non-ring) window slides by the rule `from_manifest` gives the export (before a frame that does not fit when
it has a frame graph, else when the window is full), by re-prefilling that dream's row alone. Each dream's frames
are those a `FlappyDreamEnv` with the same seed makes (up to logit ties at float32 precision:
`tests/dream/test_flappy_dream.py`).

Autoreset is gymnasium's same-step mode: the step on which dream i ends returns the first observation of its next
game and puts the last one in `info["final_obs"]` (and its info in `info["final_info"]`). `reset(seed=s)` seeds
dream i with s + i, as N `FlappyDreamEnv`s reset with those seeds.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from worldmodels.core.errors import UserError
from worldmodels.core.manifest import read_manifest
from worldmodels.dream.flappy import (
    DEFAULT_MODEL,
    MAX_FRAMES,
    DreamGame,
    check_action,
    check_render_mode,
    load_contexts,
    manifest_path,
    observation_space,
    ort_session,
    pick_context,
    vector_rngs,
)
from worldmodels.flappy.decoding.decoder import check_context, frame_uniforms
from worldmodels.flappy.decoding.rules import choose_token
from worldmodels.flappy.decoding.window import cache_length, window_start
from worldmodels.flappy.graphs import BATCH_OUTPUTS, PREFILL_OUTPUTS
from worldmodels.flappy.render import render_frame
from worldmodels.flappy.tokens import TokenSpec


class BatchedDreams:
    """N token dreams over the batched decode graph (module docstring). `reset_row(i, context, seed)` starts dream
    i; `step(actions)` makes every dream's next state frame, (N, 9) int64."""

    def __init__(self, path: str | Path, num: int, threads: int = 1):
        self.path, manifest = manifest_path(path, "flappy")
        if "batch_onnx" not in manifest:
            raise UserError(f"{self.path} has no batched decode graph: add one with python -m "
                            f"worldmodels.flappy.batch_graph {self.path}")
        self.spec = TokenSpec.from_json(manifest["token_spec"])
        decoding, model = manifest["decoding"], manifest["model"]
        self.ring, self.context = bool(decoding.get("sliding_window", False)), int(decoding["context"])
        self.slide_frames, self.temperature = int(decoding["slide_frames"]), float(decoding["temperature"])
        self.slide_before_frame = bool(manifest.get("frame_onnx"))  # from_manifest's rule for the export
        self.batch = ort_session(self.path.parent / manifest["batch_onnx"], threads)
        self.prefill = ort_session(self.path.parent / manifest["prefill_onnx"], threads)
        shape = (model["layers"], num, model["heads"], self.context, model["width"] // model["heads"])
        self.k, self.v = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
        self.length = np.zeros(num, np.int64)
        self.num = num
        self.history: list[list[int]] = [[] for _ in range(num)]
        self.window = [0] * num
        self.rngs = [np.random.default_rng(0) for _ in range(num)]

    def reset_row(self, i: int, context, seed: int) -> None:
        tokens = check_context(context, 0, self.spec)
        self.history[i], self.rngs[i] = tokens.tolist(), np.random.default_rng(seed)
        self.window[i] = window_start(len(tokens), self.context, self.spec)
        self._prefill_row(i)

    def _prefill_row(self, i: int) -> None:
        tokens = np.asarray(self.history[i][self.window[i]:], np.int64)
        positions = np.arange(self.window[i], len(self.history[i]), dtype=np.int64)
        _, k, v, length = self.prefill.run(PREFILL_OUTPUTS, {"tokens": tokens[None], "positions": positions[None]})
        self.k[:, i], self.v[:, i], self.length[i] = k[:, 0], v[:, 0], int(length.reshape(-1)[0])

    def _slide(self, i: int) -> None:
        self.window[i] += self.slide_frames * self.spec.tokens_per_frame
        self._prefill_row(i)

    def _feed(self, tokens: np.ndarray) -> np.ndarray:
        if not self.ring and not self.slide_before_frame:  # slide a full window before the token
            for i in range(self.num):
                if len(self.history[i]) - self.window[i] == self.context:
                    self._slide(i)
        positions = np.array([len(h) for h in self.history], np.int64)
        logits, k_new, v_new, slots = self.batch.run(BATCH_OUTPUTS, {
            "tokens": tokens.reshape(-1, 1), "position": positions, "k_cache": self.k, "v_cache": self.v,
            "cache_len": self.length})
        rows, slots = np.arange(self.num), slots[:, 0]
        self.k[:, rows, :, slots] = np.moveaxis(k_new[:, :, :, 0], 1, 0)
        self.v[:, rows, :, slots] = np.moveaxis(v_new[:, :, :, 0], 1, 0)
        self.length = cache_length(self.length, 1, self)
        for history, token in zip(self.history, tokens.tolist(), strict=True):
            history.append(token)
        return logits

    def step(self, actions) -> np.ndarray:
        spec = self.spec
        actions = np.asarray(actions, np.int64).reshape(self.num)
        if not self.ring and self.slide_before_frame:  # before a frame that does not fit (FrameGraphDecoder's)
            for i in range(self.num):
                if len(self.history[i]) - self.window[i] + spec.tokens_per_frame > self.context:
                    self._slide(i)
        uniforms = [frame_uniforms(None, rng, spec) for rng in self.rngs]
        per = spec.state_tokens_per_frame
        previous = [h[-per:] for h in self.history]
        logits = self._feed(spec.offsets["action"] + actions)
        frames = [[] for _ in range(self.num)]
        for slot in range(per):
            tokens = np.array([choose_token(slot, logits[i], frames[i], previous[i], uniforms[i], self.temperature,
                                            spec) for i in range(self.num)], np.int64)
            for frame, token in zip(frames, tokens.tolist(), strict=True):
                frame.append(token)
            logits = self._feed(tokens)
        return np.array(frames, np.int64)


class FlappyDreamVecEnv(VectorEnv):
    """`num_envs` Flappy dreams with same-step autoreset (module docstring); the arguments are `FlappyDreamEnv`'s."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30, "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int = 1, model: str | Path = DEFAULT_MODEL, max_frames: int = MAX_FRAMES,
                 render_mode: str | None = None, threads: int = 1):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1 (got {num_envs})")
        check_render_mode(render_mode)
        self.dreams = BatchedDreams(model, num_envs, threads)
        self.contexts = load_contexts(read_manifest(self.dreams.path), self.dreams.path)
        self.num_envs, self.render_mode = num_envs, render_mode
        self.games = [DreamGame(self.dreams.spec, max_frames) for _ in range(num_envs)]
        self.single_observation_space = observation_space()
        self.single_action_space = gymnasium.spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.rngs = [seeding.np_random()[0] for _ in range(num_envs)]
        self._started = False

    def _start(self, i: int, options: dict | None = None) -> None:
        context = pick_context(self.rngs[i], self.contexts, options)
        self.dreams.reset_row(i, context, int(self.rngs[i].integers(2**32)))
        self.games[i].start(context)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        self.rngs = vector_rngs(seed, self.num_envs, self.rngs)
        for i in range(self.num_envs):
            self._start(i, options)
        self._started = True
        return self._observations(), self._infos()

    def step(self, actions):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = [check_action(a) for a in np.asarray(actions).reshape(-1)]
        if len(actions) != self.num_envs:
            raise ValueError(f"step: {len(actions)} actions for {self.num_envs} envs")
        frames = self.dreams.step(actions)
        rewards, terminated, truncated = np.zeros(self.num_envs), np.zeros(self.num_envs, bool), \
            np.zeros(self.num_envs, bool)
        for i, (game, action, frame) in enumerate(zip(self.games, actions, frames, strict=True)):
            rewards[i], terminated[i], truncated[i] = game.advance(action, frame)
        observations, infos = self._observations(), self._infos()
        ended = terminated | truncated
        if ended.any():
            infos["final_obs"] = np.empty(self.num_envs, object)
            for i in np.flatnonzero(ended):
                infos["final_obs"][i] = observations[i].copy()
            infos["final_info"] = {**{k: v.copy() for k, v in infos.items() if not k.startswith("final")},
                                   **{f"_{k}": ended.copy() for k in ("score", "frames", "can_collide")}}
            infos["_final_obs"], infos["_final_info"] = ended.copy(), ended.copy()
            for i in np.flatnonzero(ended):
                self._start(int(i))
                observations[i] = self.games[i].observation()
            infos.update(self._infos())
        return observations, rewards, terminated, truncated, infos

    def _observations(self) -> np.ndarray:
        return np.stack([game.observation() for game in self.games])

    def _infos(self) -> dict:
        return {key: np.array([g.info()[key] for g in self.games]) for key in ("score", "frames", "can_collide")}

    def render(self):
        if self.render_mode != "rgb_array" or not self._started:
            return None
        return tuple(render_frame(game.state) for game in self.games)
