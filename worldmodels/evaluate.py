"""Evaluate a world model against the true game on held-out data; each task's part is `worldmodels/<task>/evaluate.py`.

    python -m worldmodels.evaluate outputs/breakout/<run>/export/breakout.onnx
    python -m worldmodels.evaluate outputs/breakout/<run>/checkpoints/last.ckpt --games 64 --horizon 32 --steps 4
    python -m worldmodels.evaluate models/flappy/flappy.onnx --episodes-per-policy 50

Breakout: one-step (teacher-forced) and autonomous-rollout metrics against the true simulator, beside the
"copy last frame" baseline; tables, JSON (`<model>.eval.json`), a side-by-side GIF and a plot against the horizon.
Flappy: teacher-forced accuracy per token field and free rollouts on held-out episodes, per policy of the data mix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.manifest import read_manifest
from worldmodels.tasks import TASKS, get_task, load_checkpoint, validate


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a .ckpt from training or an exported .onnx (manifest beside it)")
    parser.add_argument("--seed", type=int, default=0, help="picks the held-out games and the sampler noise")
    parser.add_argument("--out", type=Path, default=None, help="JSON summary path (default: <model>.eval.json)")
    for name in TASKS:
        get_task(name).eval_arguments(parser.add_argument_group(f"{name} models"))
    args = parser.parse_args(argv)
    torch.set_grad_enabled(False)
    if not args.model.is_file():
        raise UserError(f"no model file at {args.model}")
    if args.model.suffix == ".onnx":
        run, module = validate(read_manifest(args.model)["training_config"]), None
    else:
        run, module = load_checkpoint(args.model)
    get_task(run.task_name).evaluate(args, args.model, run, module)


if __name__ == "__main__":
    main()
