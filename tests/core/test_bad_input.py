"""Bad input stops at start with one line naming the fix (`error: <key>: <problem>`, exit status 2), before any work:
no run folder, no training, no export, no evaluation. In process (each command's `main`), so the machine's slow
interpreter start-up is paid once; tests/core/test_config.py runs the train command as a user does."""

from __future__ import annotations

import json
import shutil
import sys
import typing
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from worldmodels import evaluate, export, train
from worldmodels.breakout import config as breakout_config
from worldmodels.core import config as core_config
from worldmodels.core.config import CHECKPOINT_KEY, compose_config
from worldmodels.flappy import config as flappy_config
from worldmodels.tasks import build_module, validate

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"


def one_error_line(capsys, call) -> str:
    """Run `call`, which must exit with status 2 and print exactly one line on stderr; that line."""
    with pytest.raises(SystemExit) as exit_:
        call()
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1, err
    return lines[0]


def train_error(tmp_path, monkeypatch, capsys, *overrides: str) -> str:
    """`python -m worldmodels.train <overrides>` in process: its one error line; Hydra made no run folder."""
    monkeypatch.setattr(sys, "argv", ["worldmodels.train", *overrides, f"hydra.run.dir={tmp_path / 'run'}"])
    line = one_error_line(capsys, train.main)
    assert not (tmp_path / "run").exists(), "the run folder was made before the error"
    return line


BAD_TRAIN = [
    # range checks (`validate`) now run before Hydra makes the run folder
    (["model.width=-3"], "error: model.width: must be > 0 (got -3)"),
    (["module.sigma_min=2.0"], "error: module.sigma_min: must be < sigma_max (got 2.0 >= 1.0)"),
    # a model of another task
    (["model=token_transformer"], "error: model.name: 'token_transformer' belongs to task flappy, not breakout; "
                                  "pick model=<tiny_denoiser|fast_denoiser>, or task=flappy"),
    (["task=flappy", "model=tiny_denoiser"], "error: model.name: 'tiny_denoiser' belongs to task breakout"),
    # trainer values Lightning would refuse only after the data and the model are built
    (["trainer.devices=0"], "error: trainer.devices: must be >= 1 or auto (got 0)"),
    (["trainer.devices=-2"], "error: trainer.devices: must be >= 1 or auto (got -2)"),
    (["trainer.devices=[0,0]"], "error: trainer.devices: must be a non-empty list of distinct device indices"),
    (["trainer.devices=many"], "error: trainer.devices: must be auto, a device count >= 1 or a list"),
    (["trainer.precision=bogus"], "error: trainer.precision: unknown precision 'bogus' (known: 32-true, 32, "),
    (["trainer.strategy=bogus"], "error: trainer.strategy: unknown strategy 'bogus' (known: auto, single_device, "
                                 "ddp, "),
    (["trainer.strategy=dpp"], "error: trainer.strategy: unknown strategy 'dpp' (did you mean ddp? known: auto, "),
    # what a whole run used to find only at its end
    (["trainer.val_check_interval=30000"], "error: trainer.val_check_interval: must be <= trainer.max_steps=20000"),
    (["optimized_metric=val/lossx"], "error: optimized_metric: module 'diffusion' logs no 'val/lossx' (it logs "
                                     "val/loss, val/psnr, val/psnr_copy_last, and global_step)"),
    (["optimized_metric=loss"], "error: optimized_metric: must be val/<name>, test/<name>, train/<name> or "
                                "global_step (got 'loss')"),
    (["optimized_metric=val/"], "error: optimized_metric: must be val/<name>"),
    (["optimized_metric=test/loss", "run_test=false"], "error: optimized_metric: 'test/loss' is logged only by the "
                                                       "test loop; set run_test=true"),
    (["optimized_metric=train/psnr"], "error: optimized_metric: module 'diffusion' logs no 'train/psnr' (it logs "
                                      "train/loss, train/lr, and global_step)"),
    (["task=flappy", "optimized_metric=val/acc_birdy"], "error: optimized_metric: module 'tokens' logs no "
                                                        "'val/acc_birdy'"),
    (["module.sigma_max=inf"], "error: module.sigma_max: must be a finite number (got inf)"),
    (["module.sigma_max=nan"], "error: module.sigma_max: must be a finite number (got nan)"),
    (["module.sampler.sigma_max=inf"], "error: module.sampler.sigma_max: must be a finite number (got inf)"),
    (["module.optim.lr=inf"], "error: module.optim.lr: must be a finite number > 0 (got inf)"),
    # a U-Net whose lowest resolution would be below 1 px of a 64 px frame (7 widths reach 1 px and still run)
    (["model=fast_denoiser", "model.widths=[8,8,8,8,8,8,8,8]", "model.blocks=[1,1,1,1,1,1,1,1]"],
     "error: model.widths: 8 resolutions halve a 64 px frame below 1 px; give at most 7 widths"),
]


@pytest.mark.parametrize("overrides, message", BAD_TRAIN, ids=[" ".join(o) for o, _ in BAD_TRAIN])
def test_train_stops_before_the_run_folder(tmp_path, monkeypatch, capsys, overrides, message):
    assert train_error(tmp_path, monkeypatch, capsys, *overrides).startswith(message)


GOOD_TRAIN = [
    ["trainer.devices=auto"], ["trainer.devices=[0,1]", "trainer.accelerator=gpu"], ["trainer.precision=32"],
    ["trainer.precision=bf16-mixed"], ["trainer.strategy=ddp_spawn"], ["trainer.val_check_interval=20000"],
    ["optimized_metric=global_step"], ["optimized_metric=test/psnr"], ["optimized_metric=train/lr"],
    ["task=flappy", "optimized_metric=val/done_recall"], ["module.sigma_max=3.5"],
]


@pytest.mark.parametrize("overrides", GOOD_TRAIN, ids=[" ".join(o) for o in GOOD_TRAIN])
def test_good_values_still_pass(overrides):
    validate(compose_config(overrides))


def test_precisions_and_strategies_are_lightnings():
    """The static lists the schema checks against (it does not import Lightning) are what Lightning accepts."""
    from lightning.fabric.connector import _PRECISION_INPUT
    from lightning.pytorch.strategies import StrategyRegistry

    accepted = {str(v) for literal in typing.get_args(_PRECISION_INPUT) for v in typing.get_args(literal)}
    assert sorted(core_config.PRECISIONS) == sorted(accepted)
    assert sorted(core_config.STRATEGIES) == sorted({"auto", *StrategyRegistry.available_strategies()})


def test_each_objectives_metrics_are_what_compute_loss_returns(one_torch_thread):
    """`METRICS` (what optimized_metric is checked against) lists exactly what a real compute_loss returns."""
    run = validate(compose_config(["debug=smoke"]))
    module = build_module(run, {})
    frames = torch.randint(0, 256, (2, 5, 64, 64, 3), dtype=torch.uint8)
    batch = {"context": frames[:, :4], "target": frames[:, 4], "action": torch.tensor([0, 2])}
    assert set(module.compute_loss(batch)[1]) == set(breakout_config.METRICS["diffusion"]["train"])
    held_out = module.compute_loss(batch, generator=torch.Generator().manual_seed(0))[1]
    assert set(held_out) == set(breakout_config.METRICS["diffusion"]["held_out"])

    from worldmodels.flappy.tokens import SPEC  # imports the game: only this test needs it

    run = validate(compose_config(["task=flappy", "debug=smoke"]))
    module = build_module(run, {})
    frame, generator = SPEC.tokens_per_frame, torch.Generator().manual_seed(0)
    positions = torch.arange(3 * frame)
    tokens = torch.stack([torch.randint(*SPEC.slot_ranges()[int(p) % frame], (1,), generator=generator)[0]
                          for p in positions])
    done_slot = [s.field for s in SPEC.frame].index("done")
    tokens[frame + done_slot] = SPEC.label_id("done", "yes")  # a death, so done_recall has an example
    batch = {"tokens": tokens[None], "positions": positions[None], "mask": torch.ones(1, 3 * frame, dtype=torch.bool)}
    assert set(module.compute_loss(batch)[1]) == set(flappy_config.METRICS["tokens"]["train"])
    assert set(module.compute_loss(batch, generator=generator)[1]) == set(flappy_config.METRICS["tokens"]["held_out"])


def fake_checkpoint(path: Path, *overrides: str, entry: bool = True) -> Path:
    """A file shaped like worldmodels.train's checkpoints (the resolved config under CHECKPOINT_KEY), no weights."""
    config = OmegaConf.to_container(compose_config(overrides), resolve=True)
    torch.save({CHECKPOINT_KEY: {"format": 1, "config": config, "extras": {}}, "state_dict": {}} if entry
               else {"state_dict": {}}, path)
    return path


def truncated(path: Path) -> Path:
    """`path` cut to half its bytes, as a crash in a plain copy would leave it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.ckpt", "error: ckpt_path: no checkpoint at {}"),
    (lambda d: d, "error: ckpt_path: {} is a folder, not a checkpoint"),
    (lambda d: (d / "empty.ckpt").touch() or d / "empty.ckpt", "error: ckpt_path: {} is empty, not a checkpoint"),
    (lambda d: (d / "text.ckpt").write_text("hello\n") and d / "text.ckpt",
     "error: ckpt_path: {} is not a readable checkpoint"),
    (lambda d: fake_checkpoint(d / "other.ckpt", entry=False), "error: ckpt_path: {} was not written by "
                                                               "worldmodels.train"),
    (lambda d: fake_checkpoint(d / "flappy.ckpt", "task=flappy"), "error: ckpt_path: {} is a 'flappy' checkpoint, "
                                                                  "this run trains 'breakout'; resume it with "
                                                                  "task=flappy"),
    (lambda d: fake_checkpoint(d / "fast.ckpt", "model=fast_denoiser"), "error: ckpt_path: {} holds a "
                                                                        "'fast_denoiser' model"),
    (lambda d: fake_checkpoint(d / "wide.ckpt", "model.width=64", "model.dilations=[1,2]"),
     "error: ckpt_path: {} holds a model of another shape (model.width=64 model.dilations=[1,2], this run builds "
     "model.width=96 model.dilations=[1,2,4,8]); resume it with model.width=64 model.dilations=[1,2]"),
    (lambda d: truncated(fake_checkpoint(d / "cut.ckpt")), "error: ckpt_path: {} is not a readable checkpoint"),
], ids=["missing", "folder", "empty", "text", "foreign", "other_task", "other_model", "other_shape", "truncated"])
def test_train_refuses_a_checkpoint_it_cannot_resume(tmp_path, monkeypatch, capsys, make, message):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    path = make(folder)
    line = train_error(tmp_path, monkeypatch, capsys, f"ckpt_path={path}")
    assert line.startswith(message.format(path)), line


def test_a_checkpoint_of_this_task_passes_the_check(tmp_path):
    path = fake_checkpoint(tmp_path / "ok.ckpt", "debug=smoke")
    train.check_overrides(["debug=smoke", f"ckpt_path={path}"])


BAD_EXPORT = [
    (["--out", "{file}"], "error: --out: {file} is a file, not a folder"),
    (["--out", "{file}/sub"], "error: --out: {file} is a file, not a folder"),
    (["--name", "../x"], "error: --name: must be a file stem, without a folder (got '../x')"),
    (["--name", "a/b"], "error: --name: must be a file stem, without a folder (got 'a/b')"),
    (["--name", ".."], "error: --name: must be a file stem"),
    (["--name", "breakout.onnx"], "error: --name: must be a file stem; .onnx and .json are added"),
    (["--tolerance", "0"], "error: --tolerance: must be a finite number > 0 (got 0.0)"),
    (["--tolerance", "-1"], "error: --tolerance: must be a finite number > 0 (got -1.0)"),
    (["--tolerance", "nan"], "error: --tolerance: must be a finite number > 0 (got nan)"),
]


@pytest.mark.parametrize("flags, message", BAD_EXPORT, ids=[" ".join(f) for f, _ in BAD_EXPORT])
def test_export_checks_its_flags_before_loading(tmp_path, capsys, flags, message):
    file = tmp_path / "a_file"
    file.write_text("x")
    flags = [f.format(file=file) for f in flags]
    # the checkpoint does not exist: the flags are checked first, before anything is loaded
    line = one_error_line(capsys, lambda: export.main([str(tmp_path / "last.ckpt"), *flags]))
    assert line.startswith(message.format(file=file)), line


def test_export_refuses_weights_that_do_not_fit_their_config(tmp_path, capsys):
    """A checkpoint whose stored config describes another net than its weights (edited, or mixed up)."""
    path = fake_checkpoint(tmp_path / "mixed.ckpt", "debug=smoke")
    line = one_error_line(capsys, lambda: export.main([str(path), "--out", str(tmp_path / "out")]))
    assert line.startswith(f"error: {path}: its weights do not fit the model its config describes (Missing key"), line
    assert not (tmp_path / "out").exists()


def copy_export(source: Path, folder: Path, stem: str | None = None) -> Path:
    """An export's graphs and manifest copied to `folder` (renamed to `stem`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in source.parent.glob(f"{source.stem}.*"):
        shutil.copy(path, folder / path.name.replace(source.stem, stem or source.stem, 1))
    return folder / f"{stem or source.stem}.onnx"


def edit_manifest(onnx: Path, edit) -> None:
    manifest = onnx.with_suffix(".json")
    manifest.write_text(json.dumps(edit(json.loads(manifest.read_text()))))


def drop(manifest: dict, *keys: str) -> dict:
    return {k: v for k, v in manifest.items() if k not in keys}


def test_evaluate_refuses_an_out_in_a_missing_folder_before_evaluating(tmp_path, capsys, monkeypatch):
    model = copy_export(MODELS / "breakout_tiny" / "breakout.onnx", tmp_path / "model")
    monkeypatch.setattr("worldmodels.breakout.evaluate.evaluate", lambda *a, **k: pytest.fail("evaluated"))
    out = tmp_path / "missing" / "x.json"
    line = one_error_line(capsys, lambda: evaluate.main([str(model), "--games", "1", "--horizon", "1",
                                                         "--out", str(out)]))
    assert line.startswith(f"error: --out: folder {out.parent} does not exist"), line
    line = one_error_line(capsys, lambda: evaluate.main([str(model), "--out", str(tmp_path)]))
    assert line.startswith(f"error: --out: {tmp_path} is a folder"), line


@pytest.mark.parametrize("source, edit, message", [
    ("breakout_tiny/breakout", lambda m: [1, 2, 3], "is not a worldmodels manifest (manifest: [1, 2, 3] is not of "
                                                    "type 'object')"),
    ("breakout_tiny/breakout", lambda m: drop(m, "training_config", "sampler"), "is not a worldmodels manifest"),
    ("breakout_tiny/breakout", lambda m: {**m, "training_config": {**m["training_config"],
                                                                   "model": {"name": "tiny_denoiser", "width": -3}}},
     "training_config: model.width: must be > 0 (got -3); re-export the model"),
    ("breakout_tiny/breakout", lambda m: {**m, "training_config": json.loads(
        (MODELS / "flappy_cpu" / "flappy.json").read_text())["training_config"]},
     "breakout.json: task is 'breakout' but its training_config trains 'flappy'; re-export the model"),
], ids=["list", "missing_keys", "bad_training_config", "task_mismatch"])
def test_evaluate_refuses_a_broken_manifest(tmp_path, capsys, source, edit, message):
    model = copy_export(MODELS / f"{source}.onnx", tmp_path)
    edit_manifest(model, edit)
    line = one_error_line(capsys, lambda: evaluate.main([str(model), "--games", "1", "--horizon", "1"]))
    assert line.startswith("error: ") and message in line, line


@pytest.mark.parametrize("graph, manifest", [("flappy_cpu/flappy", "breakout_tiny/breakout"),
                                             ("breakout_tiny/breakout", "flappy_cpu/flappy")],
                         ids=["breakout_manifest_flappy_graph", "flappy_manifest_breakout_graph"])
def test_evaluate_refuses_a_manifest_of_another_graph(tmp_path, capsys, graph, manifest):
    """e.g. a Breakout manifest beside a Flappy .onnx: stopped before the evaluation feeds the graph the wrong
    inputs (or, for Flappy, collects its episodes)."""
    model = copy_export(MODELS / f"{graph}.onnx", tmp_path, "model")
    shutil.copy(MODELS / f"{manifest}.json", model.with_suffix(".json"))
    line = one_error_line(capsys, lambda: evaluate.main([str(model), "--games", "1", "--horizon", "1",
                                                         "--episodes-per-policy", "1"]))
    graph_task, manifest_task = graph.split("/")[1], manifest.split("/")[1]
    assert line == (f"error: {model} is a {graph_task} graph but model.json beside it describes a {manifest_task} "
                    f"export; put the graph's own manifest beside it, or re-export")


@pytest.mark.parametrize("flags, message", [
    (["--loop-games", "0"], "--episodes-per-policy, --start-frames, --loop-games and --max-frames must be >= 1"),
    (["--max-frames", "20"], "--max-frames (20) must be more than --start-frames (20)"),
], ids=["no_games", "too_short"])
def test_evaluate_refuses_bad_flappy_flags_before_any_work(capsys, flags, message):
    """Refused before the episode cache is looked for (a fresh machine would first spend minutes rebuilding it)."""
    line = one_error_line(capsys, lambda: evaluate.main([str(MODELS / "flappy" / "flappy.onnx"), *flags]))
    assert line == f"error: {message}", line


@pytest.mark.parametrize("flags, message", [
    (["--one-step", "0"], "--games, --horizon and --one-step must be >= 1"),
    (["--players", "tracker,robot"], "--players: unknown robot; choose from tracker, holder, sloppy, random"),
    (["--players", ","], "--players: unknown (none given); choose from tracker, holder, sloppy, random"),
], ids=["no_steps", "unknown_player", "no_player"])
def test_evaluate_refuses_bad_breakout_flags_before_any_work(capsys, monkeypatch, flags, message):
    monkeypatch.setattr("worldmodels.breakout.evaluate.load_model", lambda *a, **k: pytest.fail("loaded the model"))
    line = one_error_line(capsys, lambda: evaluate.main([str(MODELS / "breakout" / "breakout.onnx"), *flags]))
    assert line == f"error: {message}", line


def test_evaluate_refuses_a_graph_whose_tensors_differ_from_its_manifest(tmp_path, capsys):
    """The same task, but the graph is not the one the manifest lists (its metadata does not tell them apart)."""
    model = copy_export(MODELS / "breakout_tiny" / "breakout.onnx", tmp_path)
    edit_manifest(model, lambda m: {**m, "inputs": [{**m["inputs"][0], "shape": ["N", 20, 64, 64]}],  # the layout
                                    "input_layout": [{**b, "channels": 13} if b["name"] == "context_frames" else b
                                                     for b in m["input_layout"]]})  # adds up: only the graph differs
    line = one_error_line(capsys, lambda: evaluate.main([str(model), "--games", "1", "--horizon", "1"]))
    assert line.startswith(f"error: {model} does not match breakout.json (breakout): the graph's inputs are "
                           f"input float[N,19,64,64], the manifest's input float32[N,20,64,64]"), line


def test_evaluate_main_leaves_the_callers_grad_mode_alone(tmp_path, capsys):
    """`main` runs in process in these tests (and in notebooks): a refused input must not switch autograd off."""
    with pytest.raises(SystemExit):
        evaluate.main([str(tmp_path / "missing.onnx")])
    assert torch.is_grad_enabled()
