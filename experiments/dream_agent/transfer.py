"""Each exported policy in both worlds: its score in the dream and in the real game on the same number of games, and
how its dreamed games end (deaths the dream's own geometry cannot explain, i.e. no possible collision).

    .venv/bin/python experiments/dream_agent/transfer.py [--games 32] [--max-frames 2000]   # writes transfer.md

A policy that scores well in the real game but not in the dream meets a harder game in the dream; one that scores
in the dream but not in the real game learned something the dream allows and the game does not.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from worldmodels.dream.vector import FlappyDreamVecEnv
from worldmodels.flappy.collector import pipes_ahead_first
from worldmodels.flappy.game import FlappyGame

HERE = Path(__file__).resolve().parent
MODEL = "models/flappy/flappy.json"


def act(session, obs: np.ndarray) -> np.ndarray:
    return session.run(["logits"], {"obs": pipes_ahead_first(obs).astype(np.float32)})[0].argmax(1)


def dream_games(session, games: int, max_frames: int, seed: int) -> dict:
    venv = FlappyDreamVecEnv(games, model=MODEL, max_frames=max_frames)
    obs, _ = venv.reset(seed=seed)
    done, scores, unexplained, lengths = np.zeros(games, bool), np.zeros(games), 0, np.zeros(games)
    while not done.all():
        actions = act(session, obs)
        obs, _, terminated, truncated, info = venv.step(actions)
        for i in np.flatnonzero((terminated | truncated) & ~done):
            scores[i], lengths[i] = info["final_info"]["score"][i], info["final_info"]["frames"][i]
            if terminated[i] and not info["final_info"]["can_collide"][i]:
                unexplained += 1
        done |= terminated | truncated
    return {"mean_score": float(scores.mean()), "median_score": float(np.median(scores)),
            "mean_frames": float(lengths.mean()), "cut_at_max": int((lengths >= max_frames).sum()),
            "deaths_without_a_possible_collision": unexplained}


def real_games(session, games: int, max_frames: int, seed: int) -> dict:
    game, scores, lengths = FlappyGame(), [], []
    for i in range(games):
        game.reset(seed + i)
        frames = 0
        while not game.done and frames < max_frames:
            game.step(int(act(session, game.obs[None])[0]))
            frames += 1
        scores.append(game.score)
        lengths.append(frames)
    return {"mean_score": float(np.mean(scores)), "median_score": float(np.median(scores)),
            "mean_frames": float(np.mean(lengths)), "cut_at_max": int(sum(n >= max_frames for n in lengths))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=32)
    parser.add_argument("--max-frames", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2**31 + 7)  # above the collector's episode seeds
    args = parser.parse_args()
    rows = ["| policy | world | games | mean score | median | mean frames | cut at max | deaths without a possible "
            "collision |", "|---|---|---|---|---|---|---|---|"]
    out = {}
    for run in sorted(p for p in (HERE / "runs").iterdir() if (p / "policy.json").is_file()):
        manifest = json.loads((run / "policy.json").read_text())
        if manifest["task"] != "flappy":
            continue
        session = ort.InferenceSession(str(run / manifest["onnx"]), providers=["CPUExecutionProvider"])
        out[run.name] = {"dream": dream_games(session, args.games, args.max_frames, args.seed),
                         "real": real_games(session, args.games, args.max_frames, args.seed)}
        for world, r in out[run.name].items():
            rows.append(f"| {run.name} | {world} | {args.games} | {r['mean_score']:.2f} | {r['median_score']:.1f} | "
                        f"{r['mean_frames']:.0f} | {r['cut_at_max']} | "
                        f"{r.get('deaths_without_a_possible_collision', '')} |")
        print("\n".join(rows[-2:]))
    (HERE / "transfer.md").write_text(f"`transfer.py --games {args.games} --max-frames {args.max_frames}`\n\n"
                                      + "\n".join(rows) + "\n")
    (HERE / "transfer.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
