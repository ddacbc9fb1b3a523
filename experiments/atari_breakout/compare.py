"""Atari Breakout's pixel model beside our own Breakout model, on one evaluation: the gym_pixels harness.

    python experiments/atari_breakout/compare.py models/atari_breakout/atari_breakout.onnx models/breakout/breakout.onnx

Each model is judged on its own game's held-out episodes (Atari: ALE/Breakout-v5 with the data's frame skip and
sticky actions; ours: worldmodels/Breakout-v0, the simulator as a gymnasium env), played by the same players
(random, holder), with the same read-outs (`worldmodels.pixels.evaluate`): one-step PSNR and moving-pixel IoU beside
copy-last, and autonomous rollouts beside the frozen start frame. Neither model's own object read-outs are used: our
Breakout's ball and paddle read-outs do not exist for Atari frames. Writes a markdown table (stdout and --out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

from worldmodels.core.manifest import read_manifest
from worldmodels.pixels.config import GymPixelsDataConfig
from worldmodels.pixels.evaluate import evaluate, load_model

HORIZONS = ("1", "4", "16", "64")


def game_of(manifest: dict) -> GymPixelsDataConfig:
    """The env a manifest's model dreams: a gym_pixels manifest names it; a breakout one is our simulator."""
    if manifest["task"] == "breakout":
        return GymPixelsDataConfig(env_id="worldmodels/Breakout-v0", max_steps=400)
    game = manifest["game"]
    return GymPixelsDataConfig(env_id=game["env_id"], env_kwargs=game["env_kwargs"], frame_skip=game["frame_skip"],
                               sticky=game["sticky"], frame_size=manifest["frame"]["height"], max_steps=400)


def row(name: str, result: dict) -> list[str]:
    o, r = result["one_step"], result["rollout"]
    cells = [name, f"{o['model']['psnr']:.2f} / {o['copy_last']['psnr']:.2f}",
             f"{o['model']['moving_iou']:.3f} / {o['copy_last']['moving_iou']:.3f}"]
    for h in HORIZONS:
        m, f = r["model"].get(h), r["frozen_start"].get(h)
        cells.append("-" if m is None else f"{m['psnr']:.2f} / {f['psnr']:.2f}")
    for h in HORIZONS:
        m, f = r["model"].get(h), r["frozen_start"].get(h)
        missing = "" if m is None else f" ({m['objects_missing']:.2f})"
        cells.append("-" if m is None else f"{m['objects_iou']:.3f} / {f['objects_iou']:.3f}{missing}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="exported .onnx files (gym_pixels or breakout)")
    parser.add_argument("--games", type=int, default=16, help="held-out episodes per player and game")
    parser.add_argument("--horizon", type=int, default=64)
    parser.add_argument("--one-step", type=int, default=32, help="one-step predictions per episode")
    parser.add_argument("--players", default="random,holder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("compare.md"))
    args = parser.parse_args()
    header = (["model (game)", "one-step PSNR model / copy-last", "moving-pixel IoU model / copy-last"]
              + [f"PSNR @{h} model / frozen" for h in HORIZONS]
              + [f"objects IoU @{h} model / frozen (missing)" for h in HORIZONS])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    results = {}
    for path in args.models:
        manifest = read_manifest(path)
        data = game_of(manifest)
        model = load_model(path, None, None)
        result = evaluate(model, SimpleNamespace(data=data), args.players.split(","), args.games, args.horizon,
                          args.one_step, args.seed)
        result.pop("frames")
        results[str(path)] = result
        lines.append("| " + " | ".join(row(f"{path.parent.name} ({data.env_id})", result)) + " |")
    table = "\n".join(lines)
    print(table)
    args.out.write_text(f"players: {args.players}; {args.games} games each; horizon {args.horizon}\n\n{table}\n")
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
