"""Export a trained model to ONNX plus its JSON manifest (`docs/design.md`, "ONNX artifacts"), checked first.

    python -m worldmodels.export outputs/breakout/<run>/checkpoints/last.ckpt [--out DIR] [--name breakout]

Writes `<name>.onnx` and `<name>.json` (by default into the run's `export/` folder), plus a task's extra graphs
(Flappy: `<name>.prefill.onnx`, `<name>.frame.onnx`). The manifest is the web player's only source of shapes,
normalization and sampler defaults or token spec; the same key facts go into the ONNX file's metadata_props.
Before anything is written the graphs are run with onnxruntime and the export fails if they disagree with PyTorch
by more than the tolerance (default 1e-4). Each task's exporter: `worldmodels/<task>/export.py`.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from worldmodels.core.errors import UserError, one_line_errors
from worldmodels.tasks import export_module, load_checkpoint


def default_out_dir(checkpoint: Path) -> Path:
    """`<run>/export` for a checkpoint at `<run>/checkpoints/x.ckpt`, else an `export/` folder beside it."""
    return (checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent) / "export"


def check_arguments(args: argparse.Namespace) -> None:
    """The flags, before the checkpoint is loaded: an output folder that can be a folder, a name that is a file stem,
    a tolerance that can pass."""
    if args.out is not None:
        existing = next((p for p in (args.out, *args.out.parents) if p.exists()), None)  # it or its nearest parent
        if existing is not None and not existing.is_dir():
            raise UserError(f"--out: {existing} is a file, not a folder; give the folder to write the export into "
                            f"(it is made when missing)")
    if args.name is not None:
        separators = {"/", "\\", os.sep, os.altsep} - {None}
        if args.name in ("", ".", "..") or any(sep in args.name for sep in separators):
            raise UserError(f"--name: must be a file stem, without a folder (got {args.name!r}); pick the folder "
                            f"with --out")
        if args.name.endswith((".onnx", ".json")):
            raise UserError(f"--name: must be a file stem; .onnx and .json are added (got {args.name!r})")
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise UserError(f"--tolerance: must be a finite number > 0 (got {args.tolerance})")


@one_line_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worldmodels.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a .ckpt written by python -m worldmodels.train")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <run>/export)")
    parser.add_argument("--name", default=None, help="file stem (default: the task name)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max |onnxruntime - PyTorch| accepted")
    args = parser.parse_args(argv)
    check_arguments(args)

    run, module = load_checkpoint(args.checkpoint)
    out_dir = args.out or default_out_dir(args.checkpoint)
    onnx_path, manifest_path, max_diff = export_module(module, run, out_dir, args.name, args.tolerance)
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB) and {manifest_path}; "
          f"max |onnxruntime - PyTorch| = {max_diff:.2e}")


if __name__ == "__main__":
    main()
