"""Train a stable-baselines3 PPO agent inside a dream (or, as the baseline, in the real game) and score it in the
real game.

    python -m worldmodels.dream.agent flappy --world dream --steps 200000 --out runs/flappy_dream
    python -m worldmodels.dream.agent flappy --world real  --steps 200000 --out runs/flappy_real
    python -m worldmodels.dream.agent breakout --world dream --steps 20000 --out runs/breakout_dream

Flappy: PPO's `MlpPolicy` on the env's 12 features in the collector's `pipes_ahead_first` order (the project's PPO
player's setup and hyperparameters, `collector.PPO_HYPERPARAMETERS`, with n_steps set so that a rollout is 2,048
steps whatever the number of envs; `--rollout`), in `FlappyDreamVecEnv` (`--envs` dreams, one batched model call per
token) or in the real `FlappyBird-v0`. Every `--eval-every` steps it plays `--eval-games` deterministic games of the
real game (held-out seeds, `collector.evaluate_ppo`) for the learning curve; at the end `--games` games (default
100). Breakout: `CnnPolicy` on the 64x64 frames in `BreakoutDreamVecEnv` or the real simulator; scored by bricks
broken in real games of three lives, cut at 2,000 frames.

Writes into `--out`: `policy.zip` (saved at every evaluation: a rerun with the same arguments resumes from it, its
learning rate then decaying over the steps left), `curve.json` (steps, real-game scores, the training episodes' mean
return), `result.json` (the final games), and `policy.onnx` + `policy.json` (`export_policy`: observation in, action
logits out, for the web player).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from torch import nn
from tqdm import tqdm

from worldmodels.breakout.sim import BreakoutEnv, BreakoutVectorEnv
from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.files import write_atomic
from worldmodels.core.manifest import OPSET
from worldmodels.dream.breakout import BreakoutDreamVecEnv
from worldmodels.dream.flappy import manifest_path
from worldmodels.dream.sb3 import SB3VecEnv
from worldmodels.dream.vector import FlappyDreamVecEnv
from worldmodels.flappy.collector import (
    ENV_ID,
    PPO_HYPERPARAMETERS,
    PipesAheadFirst,
    evaluate_ppo,
    one_torch_thread,
    pipes_ahead_first,
)
from worldmodels.flappy.config import CollectorConfig

TASKS = ("flappy", "breakout")
WORLDS = ("dream", "real")
DEFAULT_MODELS = {"flappy": "models/flappy/flappy.json", "breakout": "models/breakout/breakout.json"}
ROLLOUT_STEPS = 2048  # PPO steps per update, split over the envs
BREAKOUT_MAX_FRAMES = 2000


def ppo_hyperparameters(envs: int, rollout: int = ROLLOUT_STEPS) -> dict:
    hp = dict(PPO_HYPERPARAMETERS)
    hp["n_steps"] = max(1, rollout // envs)
    hp["batch_size"] = min(hp["batch_size"], hp["n_steps"] * envs)
    return hp


def make_venv(task: str, world: str, model: str, envs: int, seed: int):
    """The sb3 VecEnv PPO trains in, seeded with `seed`."""
    if task == "flappy":
        if world == "real":
            return make_vec_env(ENV_ID, n_envs=envs, seed=seed, env_kwargs={"use_lidar": False},
                                wrapper_class=PipesAheadFirst)
        venv = SB3VecEnv(FlappyDreamVecEnv(envs, model=model), observation=pipes_ahead_first)
    else:
        if world == "real":
            return make_vec_env(lambda: TimeLimit(BreakoutEnv(), BREAKOUT_MAX_FRAMES), n_envs=envs, seed=seed)
        venv = SB3VecEnv(BreakoutDreamVecEnv(envs, model=model))
    venv.seed(seed)
    return venv


def real_scores(task: str, agent, games: int, seed: int) -> dict:
    """The agent's deterministic games in the real game on held-out seeds: score = pipes passed (Flappy) or bricks
    broken (Breakout)."""
    if task == "flappy":
        return evaluate_ppo(CollectorConfig(ppo_seed=seed, eval_episodes=games), agent)
    env = BreakoutVectorEnv(games, max_episode_steps=BREAKOUT_MAX_FRAMES)
    obs, _ = env.reset(seed=int(np.random.SeedSequence([seed, 3]).generate_state(1)[0]))
    scores, done, frames = np.zeros(games), np.zeros(games, bool), 0
    while not done.all():
        actions = agent.predict(obs, deterministic=True)[0]
        obs, reward, terminated, truncated, _ = env.step(actions)
        scores += np.where(done, 0, reward)
        done |= terminated | truncated
        frames += 1
    return {"mean_score": float(scores.mean()), "median_score": float(np.median(scores)),
            "max_score": int(scores.max()), "episodes": games, "frames": frames}


def random_scores(task: str, games: int, seed: int) -> dict:
    """A uniformly random player's scores on the same seeds as `real_scores`."""

    class Random:
        def __init__(self):
            self.rng = np.random.default_rng([seed, 4])

        def predict(self, obs, deterministic=True):
            return self.rng.integers(0, 3 if task == "breakout" else 2, size=len(obs)), None

    return real_scores(task, Random(), games, seed)


class PolicyGraph(nn.Module):
    """An sb3 actor-critic policy's action logits for a batch of observations (images scaled as sb3 scales them)."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, obs):
        features = self.policy.extract_features(obs.float(), self.policy.pi_features_extractor)
        return self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))


def export_policy(agent, task: str, out: Path, info: dict) -> tuple[Path, Path]:
    """`policy.onnx` (input `obs` (N, *observation shape), output `logits` (N, actions); the deterministic action
    is the argmax) and `policy.json` beside it; checked against sb3's own deterministic actions first."""
    policy = agent.policy.eval()
    shape = agent.observation_space.shape
    dtype = torch.uint8 if agent.observation_space.dtype == np.uint8 else torch.float32
    example = torch.zeros((4, *shape), dtype=dtype)
    onnx_path = out / "policy.onnx"
    tmp = out / ".policy.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(PolicyGraph(policy), (example,), str(tmp), input_names=["obs"], output_names=["logits"],
                          dynamic_axes={"obs": {0: "N"}, "logits": {0: "N"}}, opset_version=OPSET, dynamo=False)
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    probe = (rng.integers(0, 256, (64, *shape)).astype(np.uint8) if dtype == torch.uint8
             else rng.uniform(-1, 1, (64, *shape)).astype(np.float32))
    ours = session.run(["logits"], {"obs": probe})[0].argmax(1)
    theirs = agent.predict(probe, deterministic=True)[0]
    if not np.array_equal(ours, theirs):
        tmp.unlink()
        raise RuntimeError("the exported policy's argmax differs from sb3's deterministic actions")
    tmp.replace(onnx_path)
    manifest = {"format": "worldmodels-policy", "format_version": 1, "task": task, "onnx": onnx_path.name,
                "input": {"name": "obs", "shape": [1, *map(int, shape)],
                          "dtype": "uint8" if dtype == torch.uint8 else "float32"},
                "output": {"name": "logits", "shape": [1, int(agent.action_space.n)]},
                "observation": OBSERVATIONS[task], "action": "argmax of logits", **info}
    path = out / "policy.json"
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return onnx_path, path


OBSERVATIONS = {
    "flappy": "FlappyBird-v0's 12 normalized features (use_lidar=False) as worldmodels.dream.flappy.features makes "
              "them from a dreamed state, then reordered by worldmodels.flappy.collector.pipes_ahead_first (pipes "
              "the bird has not passed first, by x)",
    "breakout": "the 64x64 RGB frame, uint8, channels last (the policy scales it to [0, 1])",
}


def check_arguments(args: argparse.Namespace) -> None:
    for name in ("steps", "envs", "eval_every", "eval_games", "games", "rollout"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')}: must be >= 1 (got {getattr(args, name)})")
    if args.world == "dream":
        manifest_path(args.model, args.task)


def train(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curve_path, zip_path = out / "curve.json", out / "policy.zip"
    curve = json.loads(curve_path.read_text()) if curve_path.is_file() and zip_path.is_file() else []
    venv = make_venv(args.task, args.world, args.model, args.envs, args.seed)
    hp = ppo_hyperparameters(args.envs, args.rollout)
    first, last = hp.pop("learning_rate"), hp.pop("learning_rate_final")
    arch = hp.pop("net_arch")
    if zip_path.is_file() and curve:
        agent = PPO.load(zip_path, env=venv, device="cpu")
        print(f"resuming {zip_path} at {agent.num_timesteps} steps")
    else:
        kind = "MlpPolicy" if args.task == "flappy" else "CnnPolicy"
        agent = PPO(kind, venv, learning_rate=lambda remaining: last + (first - last) * remaining,
                    policy_kwargs={"net_arch": arch}, seed=args.seed, device="cpu", verbose=0, **hp)
        curve = []

    returns: list[float] = []
    start = time.perf_counter()

    def evaluate_now(steps: int) -> None:
        scores = real_scores(args.task, agent, args.eval_games, args.seed)
        curve.append({"steps": steps, "real_mean_score": scores["mean_score"],
                      "real_median_score": scores["median_score"],
                      "train_return_mean": float(np.mean(returns)) if returns else None,
                      "seconds": round(time.perf_counter() - start, 1)})
        returns.clear()
        agent.save(zip_path)
        write_atomic(curve_path, (json.dumps(curve, indent=1) + "\n").encode())
        tqdm.write(json.dumps(curve[-1]))

    class Progress(BaseCallback):
        """The bar, the training episodes' returns, and a real-game evaluation (and save) every eval_every steps."""

        def _on_training_start(self):
            self.bar = tqdm(total=args.steps, initial=self.num_timesteps, desc=f"PPO in the {args.world}",
                            unit="step", unit_scale=True, dynamic_ncols=True)
            self.next_eval = (self.num_timesteps // args.eval_every + 1) * args.eval_every

        def _on_step(self):
            returns.extend(info["episode"]["r"] for info in self.locals["infos"] if "episode" in info)
            self.bar.update(self.num_timesteps - self.bar.n)
            if self.num_timesteps >= self.next_eval:
                evaluate_now(int(self.num_timesteps))
                self.next_eval += args.eval_every
            return True

        def _on_training_end(self):
            self.bar.close()

    # one learn call, so that the learning rate decays over the whole run as the collector's PPO does (a resumed
    # run decays over what is left)
    with one_torch_thread(), torch.enable_grad():
        if agent.num_timesteps < args.steps:
            agent.learn(args.steps - agent.num_timesteps, callback=Progress(), reset_num_timesteps=False)
        if not curve or curve[-1]["steps"] != agent.num_timesteps:
            evaluate_now(int(agent.num_timesteps))
        final = real_scores(args.task, agent, args.games, args.seed)
    result = {"task": args.task, "world": args.world, "model": args.model if args.world == "dream" else None,
              "steps": int(agent.num_timesteps), "envs": args.envs, "seed": args.seed, "real_games": final,
              "random_player": random_scores(args.task, args.games, args.seed)}
    write_atomic(out / "result.json", (json.dumps(result, indent=1) + "\n").encode())
    export_policy(agent, args.task, out, {"trained_in": args.world, "steps": int(agent.num_timesteps),
                                           "real_mean_score": final["mean_score"]})
    venv.close()
    return result


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.dream.agent", description=__doc__.split("\n\n")[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument("--world", choices=WORLDS, default="dream", help="where PPO trains (default: dream)")
    parser.add_argument("--model", default=None, help="the export to dream in (default: models/<task>/<task>.json)")
    parser.add_argument("--steps", type=int, default=200_000, help="PPO environment steps")
    parser.add_argument("--envs", type=int, default=16, help="environments (dreams) stepped together")
    parser.add_argument("--eval-every", type=int, default=25_000, help="steps between learning-curve evaluations")
    parser.add_argument("--eval-games", type=int, default=20, help="real games per learning-curve point")
    parser.add_argument("--games", type=int, default=100, help="real games of the final score")
    parser.add_argument("--rollout", type=int, default=ROLLOUT_STEPS,
                        help="PPO steps per update, over all envs (default 2048; training stops at a whole update)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder (resumes from its policy.zip)")
    args = parser.parse_args(argv)
    args.model = args.model or DEFAULT_MODELS[args.task]
    check_arguments(args)
    result = train(args)
    print(json.dumps({k: result[k] for k in ("task", "world", "steps", "real_games", "random_player")}))


if __name__ == "__main__":
    main()
