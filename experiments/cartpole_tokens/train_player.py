"""A CartPole player that is not the training data's: stable-baselines3 PPO, for `record --player sb3`.

    python experiments/cartpole_tokens/train_player.py --steps 40000 --out experiments/cartpole_tokens/ppo_cartpole.zip

Prints its mean score over 20 deterministic games of the real env.
"""

from __future__ import annotations

import argparse

import gymnasium
import numpy as np
from stable_baselines3 import PPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40_000, help="PPO env steps (default 40,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="the .zip to write")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    model = PPO("MlpPolicy", gymnasium.make("CartPole-v1"), seed=args.seed, verbose=0, device="cpu")
    model.learn(args.steps, progress_bar=False)
    model.save(args.out)
    env, scores = gymnasium.make("CartPole-v1"), []
    for game in range(20):
        obs, _ = env.reset(seed=10_000 + game)
        done, score = False, 0.0
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(int(action))
            score, done = score + reward, terminated or truncated
        scores.append(score)
    print(f"{args.out}: mean score {np.mean(scores):.1f} over 20 games (min {min(scores):.0f}, max {max(scores):.0f})")


if __name__ == "__main__":
    main()
