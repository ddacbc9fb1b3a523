"""python -m worldmodels.dream.agent: PPO in the dream, scored in the real game, its policy exported; resume; bad
flags refused before any work."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_ppo_in_the_dream_is_scored_in_the_real_game_and_exported(tmp_path):
    out = tmp_path / "agent"
    args = ("worldmodels.dream.agent", "flappy", "--envs", "2", "--eval-every", "256", "--eval-games", "2",
            "--games", "3", "--rollout", "128", "--out", str(out))
    result = run_cli(*args, "--steps", "512")
    assert result.returncode == 0, result.stderr[-2000:]
    curve = json.loads((out / "curve.json").read_text())
    assert [p["steps"] for p in curve] == [256, 512]
    final = json.loads((out / "result.json").read_text())
    assert final["world"] == "dream" and final["real_games"]["episodes"] == 3
    assert final["random_player"]["episodes"] == 3
    manifest = json.loads((out / "policy.json").read_text())
    assert manifest["format"] == "worldmodels-policy" and manifest["task"] == "flappy"
    session = ort.InferenceSession(str(out / manifest["onnx"]), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {"obs": np.zeros((5, 12), np.float32)})[0]
    assert logits.shape == (5, 2)
    # a rerun with more steps resumes from the saved policy
    result = run_cli(*args, "--steps", "768")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming" in result.stdout
    assert [p["steps"] for p in json.loads((out / "curve.json").read_text())] == [256, 512, 768]


def test_bad_flags_are_refused_in_one_line(tmp_path):
    for flags, message in ((["--steps", "0"], "--steps"), (["--model", str(tmp_path / "x.json")], "no exported")):
        result = run_cli("worldmodels.dream.agent", "flappy", "--out", str(tmp_path / "o"), *flags)
        assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "o").exists()
