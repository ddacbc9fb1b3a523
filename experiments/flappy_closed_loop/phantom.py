"""Where does the dream kill the bird without a collision? Plays the closed loop (`worldmodels.flappy.closed_loop`,
the seeds `evaluate` uses) on an export and describes every dreamed death that the rule checker finds no possible
collision for: the obstacle nearest to the bird's box in the death frame (lower pipe, upper pipe, ground), the
clearance to it in pixels (bin centres), whether a pipe overlaps the bird horizontally, and whether the bird's last
move, repeated once, would have hit it (a death one frame early).

    .venv/bin/python experiments/flappy_closed_loop/phantom.py models/flappy/flappy.json [--games 20] \
        [--out experiments/flappy_closed_loop/phantom.md]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
from flappy_bird_gymnasium.envs.constants import PIPE_WIDTH, PLAYER_HEIGHT, PLAYER_WIDTH

from worldmodels.flappy.closed_loop import closed_loop
from worldmodels.flappy.decoding.decoder import from_manifest
from worldmodels.flappy.game import BIRD_X, GROUND_Y, PIPE_GAP
from worldmodels.flappy.players import SKILLS
from worldmodels.flappy.tokens import SPEC


def nearest_obstacle(state, bird_y: float) -> tuple[str, float, bool]:
    """(obstacle, clearance in px, a pipe overlaps the bird in x) for a bird box whose top is at `bird_y`."""
    best = ("ground", GROUND_Y - (bird_y + PLAYER_HEIGHT))
    overlap = False
    for visible, x, gap in zip(state.visible, state.pipe_x, state.gap_y, strict=True):
        if not visible or not (x < BIRD_X + PLAYER_WIDTH and x + PIPE_WIDTH > BIRD_X):
            continue
        overlap = True
        for name, clearance in (("lower pipe", gap + PIPE_GAP / 2 - (bird_y + PLAYER_HEIGHT)),
                                ("upper pipe", bird_y - (gap - PIPE_GAP / 2))):
            if clearance < best[1]:
                best = (name, clearance)
    return best[0], float(best[1]), overlap


def describe(frames: np.ndarray) -> dict:
    last, before = (SPEC.decode_frame(np.asarray(f, np.int64))[0] for f in (frames[-1], frames[-2]))
    obstacle, clearance, overlap = nearest_obstacle(last, last.bird_y)
    step = last.bird_y - before.bird_y
    _, next_clearance, _ = nearest_obstacle(last, last.bird_y + step)
    return {"obstacle": obstacle, "clearance": clearance, "overlap": overlap, "falling": step > 0,
            "hit_next_frame": next_clearance < 0}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("export", help="an export's manifest (.json) or .onnx")
    ap.add_argument("--games", type=int, default=20, help="closed-loop games per player skill (default 20)")
    ap.add_argument("--out", type=Path, help="write the table here as markdown (default: print it)")
    args = ap.parse_args(argv)
    if args.games < 1:
        ap.error("--games must be >= 1")
    pairs = closed_loop(from_manifest(args.export), SKILLS, games=args.games)
    rows, games = [], 0
    for skill, played in pairs.items():
        for i, (_, dream) in enumerate(played):
            games += 1
            if dream.died and not dream.transitions[-1].can_collide:
                rows.append({"skill": skill, "game": i, "frame": dream.length - 1, **describe(dream.frames)})
    lines = [f"{len(rows)} deaths without a possible collision in {games} dreamed games "
             f"({len(rows) / games:.2f} per game), {args.export}", "",
             "| skill | game | death frame | nearest obstacle | clearance (px) | pipe overlaps bird | falling "
             "| last move repeated hits |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['skill']} | {r['game']} | {r['frame']} | {r['obstacle']} | {r['clearance']:.1f} | "
              f"{'yes' if r['overlap'] else 'no'} | {'yes' if r['falling'] else 'no'} | "
              f"{'yes' if r['hit_next_frame'] else 'no'} |" for r in rows]
    if rows:
        kinds = Counter(r["obstacle"] for r in rows)
        early = sum(r["hit_next_frame"] for r in rows)
        lines += ["", "By obstacle: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common())
                  + f"; the bird's last move repeated once hits it in {early} of {len(rows)}; median clearance "
                  f"{np.median([r['clearance'] for r in rows]):.1f} px."]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
