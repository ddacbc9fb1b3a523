"""Evaluate a world model against the true game on held-out data; each task's part is `worldmodels/<task>/evaluate.py`.

    python -m worldmodels.evaluate outputs/breakout/<run>/export/breakout.onnx
    python -m worldmodels.evaluate outputs/breakout/<run>/checkpoints/last.ckpt --games 64 --horizon 32 --steps 4
    python -m worldmodels.evaluate models/flappy/flappy.onnx --loop-games 40
    python -m worldmodels.evaluate outputs/breakout/<run>/export/breakout.onnx --wandb   # results to W&B too

Breakout: one-step (teacher-forced) and autonomous-rollout metrics against the true simulator, beside the
"copy last frame" baseline; tables, JSON (`<model>.eval.json`), a side-by-side GIF and a plot against the horizon.
Flappy: scripted players of three skills on the real game and the dream (closed loop, held-out seeds), the game's
rules checked on every dreamed transition, teacher-forced accuracy per token field, and free rollouts on held-out
episodes with the real new gaps forced and with the dream's own.
`--wandb` logs the JSON to a W&B run (job_type "evaluate"; offline when no API key is configured) linked to the
model's training run (`worldmodels.core.loggers.log_evaluation`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from worldmodels.core.config import RunConfig
from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.core.manifest import onnx_session, read_manifest
from worldmodels.core.schema import ConfigError
from worldmodels.tasks import TASKS, get_task, load_checkpoint, task_config, validate

# A manifest tensor's dtype -> onnxruntime's name for the type of a graph's input or output.
ORT_TYPES = {"float32": "tensor(float)", "float64": "tensor(double)", "int64": "tensor(int64)"}


def check_out(out: Path | None) -> None:
    """`--out` is a file path in an existing folder. Refused rather than made: a mistyped folder would otherwise
    take the summary (and Breakout's GIF and plot) somewhere the user never looks, after minutes of evaluation."""
    if out is None:
        return
    if out.is_dir():
        raise UserError(f"--out: {out} is a folder; give the JSON summary's file path (e.g. {out / 'model.eval.json'})")
    if not out.parent.is_dir():
        raise UserError(f"--out: folder {out.parent} does not exist; create it first or pick a path in an existing "
                        f"folder")


def tensors(described) -> str:
    return ", ".join(f"{name} {dtype}[{','.join(str(d) for d in shape)}]" for name, dtype, shape in described)


def same_tensor(arg, listed: dict) -> bool:
    """An onnxruntime input or output (NodeArg) is the manifest's tensor: its dtype, rank and every fixed size."""
    shape = listed["shape"]
    return (arg.type == ORT_TYPES[listed["dtype"]] and len(arg.shape) == len(shape)
            and all(a == b for a, b in zip(arg.shape, shape, strict=True) if isinstance(a, int) and isinstance(b, int)))


def check_graph(path: Path, manifest: dict) -> None:
    """The .onnx graph is the one its manifest describes: the task in its metadata, and its inputs and outputs by
    position (count, dtype, fixed sizes), as the readers find them."""
    session = onnx_session(path)
    manifest_name = path.with_suffix(".json").name
    graph_task = session.get_modelmeta().custom_metadata_map.get("worldmodels.task")
    if graph_task is not None and graph_task != manifest["task"]:
        raise UserError(f"{path} is a {graph_task} graph but {manifest_name} beside it describes a "
                        f"{manifest['task']} export; put the graph's own manifest beside it, or re-export")
    for side, graph, listed in (("inputs", session.get_inputs(), manifest["inputs"]),
                                ("outputs", session.get_outputs(), manifest["outputs"])):
        if len(graph) != len(listed) or not all(map(same_tensor, graph, listed)):
            described = tensors((arg.name, arg.type.removeprefix("tensor(").rstrip(")"), arg.shape) for arg in graph)
            expected = tensors((t["name"], t["dtype"], t["shape"]) for t in listed)
            raise UserError(f"{path} does not match {manifest_name} ({manifest['task']}): the graph's {side} are "
                            f"{described}, the manifest's {expected}; put the graph's own manifest beside it, or "
                            f"re-export")


def export_run(path: Path) -> tuple[RunConfig, dict[str, Any]]:
    """The training config of an exported .onnx, from the manifest beside it, checked against the graph: validated,
    and as the manifest holds it."""
    manifest = read_manifest(path)
    manifest_path = path.with_suffix(".json")
    try:
        run = validate(manifest["training_config"])
    except ConfigError as err:
        raise UserError(f"{manifest_path}: training_config: {err}; re-export the model") from None
    if run.task_name != manifest["task"]:
        raise UserError(f"{manifest_path}: task is {manifest['task']!r} but its training_config trains "
                        f"{run.task_name!r}; re-export the model")
    check_graph(path, manifest)
    return run, manifest["training_config"]


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a .ckpt from training or an exported .onnx (manifest beside it)")
    parser.add_argument("--seed", type=int, default=0, help="picks the held-out games and the sampler noise")
    parser.add_argument("--out", type=Path, default=None, help="JSON summary path (default: <model>.eval.json)")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the results to a W&B run (job_type evaluate, linked to the training run; "
                             "offline when no API key is configured), its files under <out's folder>/wandb/")
    parser.add_argument("--wandb-project", default=None, metavar="NAME",
                        help="the W&B project (implies --wandb; default: the training run's logger.project)")
    for name in TASKS:  # each task's flags live in its light config module: --help loads no model code
        task_config(name).add_eval_arguments(parser.add_argument_group(f"{name} models"))
    args = parser.parse_args(argv)
    check_out(args.out)
    if not args.model.is_file():
        raise UserError(f"no model file at {args.model}")
    args.out = args.out or args.model.with_suffix(".eval.json")
    if args.model.suffix == ".onnx":
        (run, run_config), module = export_run(args.model), None
    else:
        run, module = load_checkpoint(args.model)
        run_config = module.run_config
    import torch  # ~3 s: after the flags and inputs are checked, so that --help and bad input answer at once

    with torch.no_grad():  # not set_grad_enabled(False): a caller's own grad mode survives main()
        get_task(run.task_name).evaluate(args, args.model, run, module)
    if args.wandb or args.wandb_project:
        from worldmodels.core.loggers import log_evaluation  # imports wandb (~2 s): only when asked for

        arguments = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        print(f"logged to {log_evaluation(args.out, args.model, run, run_config, args.wandb_project, arguments)}")


if __name__ == "__main__":
    main()
