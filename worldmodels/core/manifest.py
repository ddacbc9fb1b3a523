"""The export contract every task shares: the manifest's format, ONNX opset, atomic writes, reading an export.

An export is `<name>.onnx` (plus a task's extra graphs) and `<name>.json`, its manifest: task, format and version,
shapes and names of inputs/outputs, normalization, sampler defaults or token spec, training config, git commit,
metrics (`docs/design.md`, "ONNX artifacts"). The manifest is the web player's only source of these facts; the same
key facts go into the ONNX file's metadata_props. `manifest.schema.json` beside this file is the JSON Schema every
manifest is written against; Python (`manifest_problem`, in `write_manifest` and `read_manifest`) and the web player
both check it.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

import jsonschema

from worldmodels.core.errors import UserError
from worldmodels.core.files import write_atomic

MANIFEST_FORMAT = "worldmodels-manifest"
MANIFEST_FORMAT_VERSION = 1
OPSET = 17
SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")


class ExportError(UserError):
    """The exported graph disagrees with PyTorch, or could not be written."""


def git_commit() -> str | None:
    """The checkout's commit (with `+dirty` when it has uncommitted changes), or None outside a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def portable_config(run_config: dict) -> dict:
    """The run's resolved config as a manifest carries it: `paths` relative to `paths.root_dir` (itself `.`), and a
    path outside the root as its folder name only, so an export names no directory of the machine it was made on."""
    paths = dict(run_config.get("paths") or {})
    root = Path(paths.get("root_dir") or ".")

    def portable(value):
        if not isinstance(value, str) or not Path(value).is_absolute():
            return value
        path = Path(value)
        return (path.relative_to(root).as_posix() or ".") if path.is_relative_to(root) else path.name

    return {**run_config, "paths": {k: "." if k == "root_dir" else portable(v) for k, v in paths.items()}}


def metadata_props(manifest: dict, *extra: str) -> dict[str, str]:
    """The manifest's key facts as ONNX metadata_props (strings): task, format, inputs/outputs, commit, `extra`."""
    props = {
        "worldmodels.task": manifest["task"],
        "worldmodels.format_version": str(manifest["format_version"]),
        "worldmodels.git_commit": manifest["git_commit"] or "unknown",
    }
    props.update({f"worldmodels.{key}": json.dumps(manifest[key]) for key in ("inputs", "outputs", *extra)})
    return props


@functools.cache
def manifest_validator() -> jsonschema.Draft202012Validator:
    """The schema, read and compiled once per process (play checks every manifest it lists)."""
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def manifest_problem(manifest) -> str | None:
    """What makes `manifest` break the schema, in one line (the first problem, with its JSON path), or None."""
    error = jsonschema.exceptions.best_match(manifest_validator().iter_errors(manifest))
    if error is None:
        return layout_problem(manifest)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    return f"{where or 'manifest'}: {error.message}"


def layout_problem(manifest: dict) -> str | None:
    """What a schema cannot say of a pixel manifest: its input channels are the sum of `input_layout`'s blocks, and
    the action block has one plane per name in `frame.actions` (and per `num_actions`, where given)."""
    layout = manifest.get("input_layout")
    if not layout:
        return None
    channels, total = manifest["inputs"][0]["shape"][1], sum(block["channels"] for block in layout)
    if channels != total:
        return f"inputs[0].shape: {channels} channels, but input_layout adds up to {total}"
    planes = next((block["channels"] for block in layout if block["name"] == "action"), None)
    names = len(manifest["frame"]["actions"])
    if planes is not None and planes != names:
        return f"input_layout: {planes} action planes for {names} names in frame.actions"
    if manifest.get("num_actions", names) != names:
        return f"num_actions: {manifest['num_actions']}, but frame.actions names {names}"
    return None


def write_manifest(path: Path, manifest: dict) -> None:
    """Write `manifest` as JSON, atomically, after checking it against the schema (the player checks it too)."""
    problem = manifest_problem(manifest)
    if problem:
        raise ExportError(f"the manifest breaks {SCHEMA_PATH.name} ({problem}); nothing was written")
    write_atomic(path, (json.dumps(manifest, indent=2) + "\n").encode())


def read_manifest(path: Path) -> dict:
    """The JSON manifest beside an exported .onnx, checked against the schema."""
    manifest_path = path.with_suffix(".json")
    if not manifest_path.is_file():
        raise UserError(f"{path} has no manifest {manifest_path.name} beside it; re-export it")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{manifest_path} is not valid JSON ({err.msg}); re-export the model") from err
    problem = manifest_problem(manifest)
    if problem:
        raise UserError(f"{manifest_path} is not a worldmodels manifest ({problem}); re-export the model")
    return manifest


def onnx_session(path: Path):
    """An onnxruntime CPU session for `path`, or a one-line UserError for a file that is not a loadable model."""
    import onnxruntime as ort  # heavy (~0.5 s): only the commands that run a model pay for it

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for corrupt files
        raise UserError(f"{path} is not a loadable ONNX model ({type(err).__name__})") from err
