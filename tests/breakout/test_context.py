"""More context frames (`model.context_frames`): rows, the export's input contract, a net started from a 4-frame
export (`model.init_from`), the dream env, and an evaluation that scores 4- and 8-frame models on the same frames."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from omegaconf import OmegaConf

from worldmodels.breakout.config import BreakoutDataConfig, FastDenoiserConfig
from worldmodels.breakout.data import BreakoutStream
from worldmodels.breakout.denoiser import FastDenoiser, latest_channels
from worldmodels.breakout.evaluate import LoadedModel, evaluate, load_model
from worldmodels.breakout.export import export_breakout, load_export_weights, parity_inputs
from worldmodels.core.config import CHECKPOINT_KEY, compose_config
from worldmodels.core.data import EVAL
from worldmodels.core.manifest import ExportError
from worldmodels.core.schema import ConfigError
from worldmodels.dream.breakout import BreakoutDreamEnv
from worldmodels.evaluate import export_run
from worldmodels.tasks import build_module, load_checkpoint, validate

SHAPE = ["model=fast_denoiser", "model.widths=[4,8,8]", "model.blocks=[1,1,1]", "model.output=palette"]


def export(tmp_path, context_frames: int, **overrides):
    """A random-weight palette FastDenoiser with `context_frames` frames, exported: (onnx path, manifest)."""
    cfg = compose_config(["debug=smoke", *SHAPE, f"model.context_frames={context_frames}"])
    run = validate(cfg)
    torch.manual_seed(context_frames)
    net = FastDenoiser(run.model)
    for p in net.parameters():  # zero-initialized heads would make every comparison trivial
        torch.nn.init.normal_(p, std=0.2)
    onnx_path, manifest_path, _ = export_breakout(net, run, OmegaConf.to_container(cfg, resolve=True), tmp_path)
    return onnx_path, json.loads(manifest_path.read_text())


def test_eight_frame_rows_are_the_four_frame_rows_with_four_older_frames():
    # The 8-frame stream warms up 4 steps longer (for its 4 extra frames); a 4-frame stream with 4 more warm-up
    # steps then plays the same games, so its rows are the newest half of the 8-frame rows.
    cfg = BreakoutDataConfig(batch_size=4, games_per_worker=4, warmup_steps=6)
    wide = next(iter(BreakoutStream(cfg, 3, EVAL, max_batches=1, context_frames=8)))
    narrow = next(iter(BreakoutStream(BreakoutDataConfig(batch_size=4, games_per_worker=4, warmup_steps=10), 3, EVAL,
                                      max_batches=1)))
    assert wide["context"].shape == (4, 8, 64, 64, 3) and narrow["context"].shape == (4, 4, 64, 64, 3)
    assert torch.equal(wide["context"][:, 4:], narrow["context"])
    assert torch.equal(wide["target"], narrow["target"]) and torch.equal(wide["action"], narrow["action"])
    assert not torch.equal(wide["context"][:, :4], wide["context"][:, 4:])  # the older frames are earlier frames


def test_the_export_declares_the_wider_input(tmp_path):
    onnx_path, manifest = export(tmp_path, 8)
    assert manifest["frame"]["context_frames"] == 8
    assert manifest["inputs"][0]["shape"][1] == 3 + 24 + 3 + 1
    assert [part["channels"] for part in manifest["input_layout"]] == [3, 24, 3, 1]
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1] == 31


def test_a_net_started_from_a_four_frame_export_computes_what_the_export_computes(tmp_path):
    onnx_path, _ = export(tmp_path, 4)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    narrow = parity_inputs(context_frames=4)  # (6, 19, 64, 64): real rows and random planes
    expected = session.run(None, {"input": narrow.numpy()})[0]
    net = FastDenoiser(FastDenoiserConfig(widths=[4, 8, 8], blocks=[1, 1, 1], output="palette", context_frames=8))
    load_export_weights(net, onnx_path)
    older = torch.randn(6, 12, 64, 64)  # whatever the 4 older frames hold, they start without weight
    wide = torch.cat([narrow[:, :3], older, narrow[:, 3:]], dim=1)
    with torch.no_grad():
        assert np.array_equal(net.eval()(wide).numpy(), expected)
        assert net.stem.weight[:, 3:15].abs().sum() == 0
        # and the newest frame is where the palette prior reads it
        assert torch.equal(wide[:, latest_channels(8)], narrow[:, latest_channels(4)])


def test_init_from_is_checked_before_training_and_a_checkpoint_or_export_does_not_need_it(tmp_path):
    with pytest.raises(ConfigError, match="init_from: no such file"):
        build_module(validate(compose_config(["debug=smoke", "model.init_from=nowhere.onnx"])), {})
    onnx_path, _ = export(tmp_path, 4)
    with pytest.raises(ExportError, match="another net shape"):  # debug=smoke's own widths are not the export's
        build_module(validate(compose_config(["debug=smoke", "model=fast_denoiser", "model.context_frames=8",
                                              f"model.init_from={onnx_path}"])), {})
    (tmp_path / "notes.onnx").write_text("not a graph")
    with pytest.raises(ExportError, match="is not an ONNX export"):
        build_module(validate(compose_config(["debug=smoke", f"model.init_from={tmp_path / 'notes.onnx'}"])), {})
    cfg = compose_config(["debug=smoke", *SHAPE, "model.context_frames=8", f"model.init_from={onnx_path}"])
    run_config = OmegaConf.to_container(cfg, resolve=True)
    module = build_module(validate(cfg), run_config)
    assert module.net.stem.weight.shape[1] == 31 and module.net.stem.weight[:, 3:15].abs().sum() == 0
    # A checkpoint of that run loads where the export it started from is gone: its own weights are used.
    with torch.no_grad():
        module.net.stem.weight.add_(1.0)
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": module.state_dict(), CHECKPOINT_KEY: {"format": 1, "config": run_config}}, path)
    onnx_path.unlink()
    _, loaded = load_checkpoint(path)
    assert torch.equal(loaded.net.stem.weight, module.net.stem.weight)
    assert loaded.run_config["model"]["init_from"] == str(onnx_path)  # where it started is still on record
    # and an export of it is read (the evaluate command validates its training config) without that file too
    _, again = export(tmp_path / "again", 4)
    again_path = tmp_path / "again" / "breakout.json"
    manifest = json.loads(again_path.read_text())
    manifest["training_config"]["model"]["init_from"] = str(onnx_path)
    again_path.write_text(json.dumps(manifest))
    run, _ = export_run(again_path.with_suffix(".onnx"))
    assert run.model.init_from == str(onnx_path) and load_model(again_path.with_suffix(".onnx")).context_frames == 4


def test_the_dream_env_starts_from_as_many_true_frames_as_the_export_takes(tmp_path):
    _, manifest = export(tmp_path, 8)
    env = BreakoutDreamEnv(model=tmp_path / "breakout.json")
    frame, _ = env.reset(seed=1)
    assert env.dreams.context.shape[1] == 8 and frame.shape == (64, 64, 3)
    assert len({env.dreams.context[0, i].tobytes() for i in range(8)}) > 1  # a game in play, not one frame copied
    frame, *_ = env.step(2)
    assert np.array_equal(env.dreams.context[0, -1], frame)


def test_models_with_4_or_8_frames_are_scored_on_the_same_frames():
    # Models that copy their newest context frame, one seeing 4 frames and one 8: evaluate must score both on the
    # same target frames, so they get the same numbers (with 8 frames read from frame 0, not 4, they would not).
    def copy_last(k: int) -> LoadedModel:
        return LoadedModel(lambda x: x[:, latest_channels(k)], 1, 1.0, 0.02, f"copy last, {k} frames",
                           context_frames=k)

    def scores(model: LoadedModel) -> dict:
        result = evaluate(model, games=2, horizon=8, one_step=6, players=["tracker", "random"], progress=False)
        picked = {"one_step": result["one_step"], "rollout": result["rollout"], "first": result["first_target_frame"]}
        return json.loads(json.dumps(picked, default=float).replace("NaN", '"nan"'))  # NaN (no such event) == NaN

    four, eight = scores(copy_last(4)), scores(copy_last(8))
    assert four == eight and eight["first"] == 8
    assert four["one_step"]["all"]["count"] == 2 * 2 * 6


def test_gym_pixels_refuses_other_context_lengths_before_any_work():
    with pytest.raises(ConfigError, match="task=gym_pixels takes 4 context frames"):
        validate(compose_config(["task=gym_pixels", "model.context_frames=8"]))
    assert validate(compose_config(["task=gym_pixels"])).model.context_frames == 4
