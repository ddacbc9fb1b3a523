"""Flappy end to end: a real `task=flappy debug=smoke` run (scripted stand-in player) and what it leaves behind."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from tests.conftest import run_cli
from worldmodels.flappy.decoding.backends import OrtBackend
from worldmodels.flappy.decoding.decoder import FrameDecoder
from worldmodels.flappy.tokens import SPEC, TokenSpec
from worldmodels.tasks import load_checkpoint

pytestmark = pytest.mark.slow  # every test reads a real task=flappy training run


def test_smoke_run_trains_and_exports_both_graphs(flappy_smoke_run):
    assert (flappy_smoke_run / "checkpoints" / "last.ckpt").is_file()
    gif = sorted((flappy_smoke_run / "media").glob("rollout_step*.gif"))[-1]
    assert Image.open(gif).n_frames >= 2
    export = flappy_smoke_run / "export"
    manifest = json.loads((export / "flappy.json").read_text())
    assert manifest["task"] == "flappy" and manifest["prefill_onnx"] == "flappy.prefill.onnx"
    # debug=smoke plays callbacks.onnx_export.parity_frames=10 frames on both runtimes (100 tokens), not 1,000 tokens
    assert manifest["parity"]["tokens"] == 10 * SPEC.tokens_per_frame and manifest["parity"]["identical_tokens"]
    assert manifest["frame_graph"]["parity"]["frames"] == 10 and manifest["frame_graph"]["parity"]["identical_frames"]
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    assert TokenSpec.from_json(manifest["token_spec"]) == SPEC  # the spec travels whole
    names = [i.name for i in ort.InferenceSession(str(export / "flappy.onnx")).get_inputs()]
    assert names == ["tokens", "position", "k_cache", "v_cache", "cache_len"]


def test_exported_start_contexts_are_real_openings_the_decoder_accepts(flappy_smoke_run):
    export = flappy_smoke_run / "export"
    manifest = json.loads((export / "flappy.json").read_text())
    contexts = [np.asarray(c) for c in manifest["start_contexts"]]
    assert len(manifest["start_context_seeds"]) == len(contexts)  # each context's game, to replay it
    assert contexts and all(len(c) % SPEC.tokens_per_frame == SPEC.state_tokens_per_frame for c in contexts)
    assert all(SPEC.well_formed_frames(np.append(c, SPEC.offsets["action"]).reshape(-1, 10)).all() for c in contexts)
    decoder = FrameDecoder(OrtBackend.from_files(export / "flappy.onnx", export / "flappy.prefill.onnx", ring=False),
                           slide_frames=manifest["decoding"]["slide_frames"])
    decoder.reset(contexts[0])
    for _ in range(5):
        assert SPEC.is_well_formed(decoder.step(1))


def test_checkpoint_carries_the_start_contexts(flappy_smoke_run):
    run, module = load_checkpoint(flappy_smoke_run / "checkpoints" / "last.ckpt")
    assert run.task_name == "flappy" and module.export_extras["start_contexts"]


def test_evaluate_command_on_the_flappy_export(flappy_smoke_run, tmp_path):
    out = tmp_path / "eval.json"
    result = run_cli("worldmodels.evaluate", str(flappy_smoke_run / "export" / "flappy.onnx"),
                     "--episodes-per-policy", "1", "--loop-games", "2", "--max-frames", "80", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "closed loop (scripted players" in result.stdout and "the game's rules" in result.stdout
    summary = json.loads(out.read_text())
    assert summary["rollout"]["all"]["malformed_frames"] == 0
    assert 0 <= summary["teacher_forced"]["all"]["acc_bird_y"] <= 1
    assert set(summary["closed_loop"]) == {"good", "medium", "sloppy"}
    assert all(s["games"] == 2 and s["env_score_matches"] == 1.0 for s in summary["closed_loop"].values())
    real = summary["rules"]["real"]  # the real games pass every rule; the dream is checked on its own frames
    assert real["transitions"] > 0 and all(v == 0 for k, v in real.items() if k.endswith("_rate"))
    assert summary["rules"]["dream"]["transitions"] > 0
    assert set(summary["forced_rollout"]["all"]) >= {"deaths_within_1", "drift_horizon_median"}


def test_evaluate_on_another_exports_episodes(flappy_smoke_run, tmp_path):
    """--episodes-like: the held-out episodes of another data config (here: a do-nothing-only mix)."""
    model = flappy_smoke_run / "export" / "flappy.onnx"
    manifest = json.loads(model.with_suffix(".json").read_text())
    collector = manifest["training_config"]["data"]["collector"]
    collector["mix"] = {"ppo": 0.0, "noisy_ppo": 0.0, "random": 0.0, "do_nothing": 1.0, "give_up": 0.0}
    other = tmp_path / "other.json"
    other.write_text(json.dumps(manifest))
    out = tmp_path / "eval.json"
    result = run_cli("worldmodels.evaluate", str(model), "--episodes-like", str(other), "--episodes-per-policy", "1",
                     "--loop-games", "1", "--max-frames", "40", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert summary["episodes_from"] == str(other)
    assert set(summary["teacher_forced"]) == {"do_nothing", "all"}  # only the other mix's policy was evaluated
    bad = run_cli("worldmodels.evaluate", str(model), "--episodes-like", str(tmp_path / "nope.txt"))
    assert bad.returncode != 0 and "--episodes-like" in bad.stderr and "Traceback" not in bad.stderr
