"""How far can any 4-frame model keep the ball? A physics oracle that knows the game's rules exactly but, like the
world model, sees only the 4 context frames, dreams the same held-out games as `evaluate`.

    .venv/bin/python experiments/breakout_levers/ceiling.py [--games 16] [--context 4] [--out evals/...json]

The ball's state (x, y, vx, vy) is not in the pixels: a frame shows the ball's pixel, floor(position + 0.5), and vx
takes any value in [0.25, 1.5] px a frame. The oracle tries every state on a grid at the oldest context frame (x every
0.02 px and y on the game's 0.25 px lattice within the observed pixel, vx every 0.01 px a frame, both vy signs),
plays each one through the simulator's own rules with the true keys for 3 steps, keeps those whose ball pixels match
all 4 frames (or the newest 3, 2 or 1 where a serve inside the context started a new flight), and takes the kept
state nearest their mean. It then plays the game on from that state with the true keys (the paddle and bricks read
from the newest context frame, exact on true frames); its frames are scored by `evaluate`'s own rollout scores.
Where no state fits even the newest frame (no ball in it) the oracle has no ball and that game counts as lost at
frame 1. A new serve after a lost ball takes a random vx, as in the game. The oracle's ball-kept horizon is what a
perfect 4-frame world model would reach, up to the grid's resolution. `--context 8` or `16` gives the oracle more
frames (the same games and target frames: every rollout starts where `evaluate`'s do): what more context would buy
a model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from worldmodels.breakout.denoiser import CONTEXT_FRAMES
from worldmodels.breakout.evaluate import EVAL_CONTEXT, play_games, rollout_scores
from worldmodels.breakout.players import PLAYERS
from worldmodels.breakout.readout import read_balls, read_bricks
from worldmodels.breakout.sim import BALL_MAX_VX, BALL_MIN_VX, BALL_VY, BreakoutSim, _pixel

HERE = Path(__file__).resolve().parent
X_OFFSETS = np.arange(-0.5, 0.5, 0.02)
Y_OFFSETS = np.arange(-0.5, 0.5, 0.25)
SPEEDS = np.arange(BALL_MIN_VX, BALL_MAX_VX + 1e-9, 0.01)


def candidates(px: int, py: int) -> np.ndarray:
    """(C, 4) ball states x, y, vx, vy whose pixel is (px, py)."""
    vx = np.concatenate([-SPEEDS, SPEEDS])
    grid = np.meshgrid(px + X_OFFSETS, py + Y_OFFSETS, vx, [-BALL_VY, BALL_VY], indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1)


def set_ball(sim: BreakoutSim, state: np.ndarray) -> None:
    sim.ball_x, sim.ball_y, sim.ball_vx, sim.ball_vy = (state[:, i].astype(np.float64).copy() for i in range(4))


def estimate(frames: np.ndarray, actions: np.ndarray, paddle_x: np.ndarray) -> np.ndarray | None:
    """The ball state (4,) at the newest of 4 context frames (4, H, W, 3), or None where no state fits them."""
    balls = read_balls(frames)
    if balls.missing.any():
        return None
    top_left = (balls.centre - 1).round().astype(np.int64)  # a 2x2 ball's centre is its top-left pixel + 1
    start = candidates(*top_left[0])
    sim = BreakoutSim(np.zeros(len(start), np.int64), auto_reset=False)
    sim.paddle_x[:] = paddle_x[0]
    sim.bricks[:] = read_bricks(frames[:1])[0]
    sim.lives[:] = 3
    set_ball(sim, start)
    fits = np.ones(len(start), bool)
    for t in range(1, len(frames)):
        sim.step(np.full(len(start), actions[t - 1]))
        fits &= (_pixel(sim.ball_x) == top_left[t, 0]) & (_pixel(sim.ball_y) == top_left[t, 1])
    if not fits.any():
        return None
    now = np.stack([sim.ball_x, sim.ball_y, sim.ball_vx, sim.ball_vy], axis=1)[fits]
    return now[np.argmin(((now - now.mean(axis=0)) ** 2).sum(axis=1))]


def latest_estimate(frames: np.ndarray, actions: np.ndarray, paddle_x: np.ndarray) -> np.ndarray | None:
    """`estimate` on the most context frames that one ball's flight explains: all 4, else the newest 3, 2 or 1 (a
    serve inside the context starts a new flight, with a random vx the frames before it cannot tell)."""
    for first in range(len(frames)):
        state = estimate(frames[first:], actions[first:], paddle_x[first:])
        if state is not None:
            return state
    return None


def oracle_rollout(frames: np.ndarray, actions: np.ndarray, paddle_x: np.ndarray, horizon: int) -> np.ndarray:
    """The oracle's dream (horizon, G, H, W, 3) from context frames (C, G, ...) and the true keys (C - 1 + horizon,
    G); paddle_x (C, G) is the paddle's true left edge in the context frames."""
    games = frames.shape[1]
    newest = len(frames) - 1
    sim = BreakoutSim(np.arange(games), auto_reset=True)
    sim.paddle_x[:] = paddle_x[newest]
    sim.bricks[:] = read_bricks(frames[newest])
    sim.lives[:] = 3
    states = [latest_estimate(frames[:, g], actions[:newest, g], paddle_x[:, g]) for g in range(games)]
    found = np.array([s is not None for s in states])
    gone = np.array([0.0, 200.0, 0.0, 0.0])  # no state fits: the ball is far below the frame (missing, and stays so)
    set_ball(sim, np.stack([s if s is not None else gone for s in states]))
    sim.lives[~found] = 1_000_000  # a game without a ball never serves one
    out = []
    for t in range(horizon):
        sim.step(actions[newest + t])
        sim.ball_y[~found] = 200.0
        out.append(sim.render())
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=16, help="held-out games per player (evaluate's --games)")
    parser.add_argument("--horizon", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--context", type=int, default=CONTEXT_FRAMES,
                        help="context frames the oracle sees; its rollouts start where evaluate's do (frame "
                             f"{EVAL_CONTEXT}), more than {EVAL_CONTEXT} start that many frames in")
    parser.add_argument("--out", type=Path, help="default: evals/ceiling_<context>_frames_from8.json")
    args = parser.parse_args()
    if args.context < 1:
        parser.error(f"--context must be >= 1 (got {args.context})")
    out = args.out or HERE / "evals" / f"ceiling_{args.context}_frames_from{EVAL_CONTEXT}.json"
    players = list(PLAYERS)
    c = args.context
    first = max(c, EVAL_CONTEXT) - 1  # the newest context frame, as in evaluate
    played = play_games(players, args.games, first + max(args.horizon, 128), args.seed)
    pred = oracle_rollout(played.frames[first + 1 - c:first + 1], played.actions[first + 1 - c:],
                          played.paddle_x[first + 1 - c:first + 1], args.horizon)
    truth = played.frames[first + 1:first + 1 + args.horizon]
    scores = rollout_scores(truth, pred, played.players)
    summary = {"games_per_player": args.games, "players": players, "seed": args.seed, "horizon": args.horizon,
               "context": c, "oracle": scores}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    kept, h = scores["ball_kept"], scores["horizons"]
    print(f"{c}-frame physics oracle, {args.games} x {len(players)} held-out games: ball-kept median {kept['median']:g}"
          f" (mean {kept['mean']:.1f}; per player {kept['per_player']}); ball within 1.5 px at 8: "
          f"{h['8']['ball_within']:.3f}, at 32: {h['32']['ball_within']:.3f}, at 64: {h['64']['ball_within']:.3f}; "
          f"ball missing at 32: {h['32']['ball_missing']:.3f} -> {out}")


if __name__ == "__main__":
    main()
