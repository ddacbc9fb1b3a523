"""The manifest's JSON Schema (`worldmodels/core/manifest.schema.json`): every shipped export keeps it, an export
that would break it writes nothing, and `evaluate` refuses a manifest that breaks it with one line."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from worldmodels.core.errors import UserError
from worldmodels.core.manifest import ExportError, manifest_problem, portable_config, read_manifest, write_manifest
from worldmodels.evaluate import main as evaluate_main

# every shipped model manifest (a policy's policy.json is another format: web/src/shell/policy.ts checks it)
SHIPPED = [p for p in sorted((ROOT / "models").glob("*/*.json"))
           if json.loads(p.read_text()).get("format") != "worldmodels-policy"]


def test_models_ship_with_manifests():
    assert {p.parent.name for p in SHIPPED} >= {"breakout", "breakout_tiny", "flappy", "flappy_cpu"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.parent.name)
def test_every_shipped_manifest_keeps_the_schema(path):
    assert manifest_problem(json.loads(path.read_text())) is None


@pytest.mark.parametrize("change, problem", [
    (lambda m: m.pop("inputs"), "manifest: 'inputs' is a required property"),
    (lambda m: m.update(format_version=99), "format_version: 1 was expected"),
    (lambda m: m.update(format="something-else"), "format:"),
    (lambda m: m.update(task="pong"), "task:"),
    (lambda m: m["inputs"][0].update(dtype="int8"), "inputs[0].dtype:"),
    (lambda m: m.update(onnx=3), "onnx: 3 is not of type 'string'"),
])
def test_a_broken_manifest_is_named_by_its_first_problem(change, problem):
    manifest = json.loads((ROOT / "models" / "breakout" / "breakout.json").read_text())
    broken = copy.deepcopy(manifest)
    change(broken)
    assert manifest_problem(broken).startswith(problem)


def test_a_flappy_manifest_needs_its_token_spec():
    manifest = json.loads((ROOT / "models" / "flappy" / "flappy.json").read_text())
    del manifest["token_spec"]
    assert "token_spec" in manifest_problem(manifest)
    assert manifest_problem([1, 2]) == "manifest: [1, 2] is not of type 'object'"


def test_write_manifest_refuses_a_broken_one_and_writes_nothing(tmp_path):
    manifest = json.loads((ROOT / "models" / "breakout" / "breakout.json").read_text())
    write_manifest(tmp_path / "ok.json", manifest)
    assert json.loads((tmp_path / "ok.json").read_text()) == manifest
    del manifest["sampler"]
    with pytest.raises(ExportError, match="sampler"):
        write_manifest(tmp_path / "bad.json", manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.json"]


def _copy_model(tmp_path: Path, change) -> Path:
    source = ROOT / "models" / "breakout"
    manifest = json.loads((source / "breakout.json").read_text())
    change(manifest)
    (tmp_path / "breakout.json").write_text(json.dumps(manifest))
    (tmp_path / "breakout.onnx").write_bytes((source / "breakout.onnx").read_bytes())
    return tmp_path / "breakout.onnx"


def test_read_manifest_refuses_an_unknown_version(tmp_path):
    model = _copy_model(tmp_path, lambda m: m.update(format_version=99))
    with pytest.raises(UserError, match="format_version: 1 was expected"):
        read_manifest(model)


def test_evaluate_refuses_a_manifest_of_another_version_in_one_line(tmp_path, capsys):
    model = _copy_model(tmp_path, lambda m: m.update(format_version=99))
    with pytest.raises(SystemExit) as exit_:
        evaluate_main([str(model), "--games", "1", "--horizon", "1"])
    stderr = capsys.readouterr().err
    assert exit_.value.code == 2
    assert stderr.strip().count("\n") == 0 and "format_version: 1 was expected" in stderr
    assert not (tmp_path / "breakout.eval.json").exists()


def test_a_manifests_config_names_no_directory_of_the_training_machine():
    config = {"seed": 0, "paths": {"root_dir": "/work/snap", "output_dir": "/work/snap/outputs/breakout/run-1",
                                   "cache_dir": "/elsewhere/cache"}}
    assert portable_config(config) == {"seed": 0, "paths": {"root_dir": ".", "output_dir": "outputs/breakout/run-1",
                                                            "cache_dir": "cache"}}
    assert portable_config({"paths": {"root_dir": ".", "output_dir": ".", "cache_dir": ".cache"}})["paths"] == {
        "root_dir": ".", "output_dir": ".", "cache_dir": ".cache"}


def absolute_paths(value, where: str = ""):
    """Every string in a JSON value that looks like an absolute path, with where it is."""
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in absolute_paths(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in absolute_paths(v, f"{where}[{i}]")]
    return [(where, value)] if isinstance(value, str) and value.startswith(("/", "~")) else []


@pytest.mark.parametrize("manifest", sorted((ROOT / "models").glob("*/*.json")), ids=lambda p: p.parent.name)
def test_shipped_manifests_carry_no_absolute_path(manifest):
    assert absolute_paths(json.loads(manifest.read_text())) == []
