"""task=gym_tokens: a recording's declared observation fields as tokens, the windows, the one-step scorer, and the
round trip a user makes (record --observations state -> train -> export -> evaluate)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli
from worldmodels.core.errors import UserError
from worldmodels.core.manifest import manifest_problem, read_manifest
from worldmodels.core.schema import ConfigError, build
from worldmodels.flappy.data import FlappyWindows
from worldmodels.flappy.tokens import SPEC, TokenSpec
from worldmodels.gym_tokens.config import MinariTokensDataConfig
from worldmodels.gym_tokens.data import (
    RecordedEpisode,
    TokenEpisodes,
    encode_recorded,
    recorded_spec,
    resolve_fields,
)
from worldmodels.gym_tokens.evaluate import TokenModel, one_step_tokens, values_of

DECLARED = {"dataset_id": "test/state-v0", "bins": 16, "margin": 0.1,
            "fields": [{"index": 2, "name": "angle", "bins": 32, "low": -1.0, "high": 1.0}, {"index": 0}]}


def episodes(count: int = 3, frames: int = 20, seed: int = 0, terminated: bool = True) -> list[RecordedEpisode]:
    rng = np.random.default_rng(seed)
    return [RecordedEpisode(rng.uniform(-0.9, 0.9, (frames, 3)), rng.integers(0, 3, frames - 1), terminated)
            for _ in range(count)]


def declared(**changes) -> MinariTokensDataConfig:
    return build({**DECLARED, **changes}, MinariTokensDataConfig, "data")


def test_each_declared_field_owns_an_id_range_in_declaration_order():
    fields = resolve_fields(declared(), episodes())
    spec = recorded_spec(fields, ["left", "stay", "right"])
    assert [f.name for f in fields] == ["angle", "obs0"]
    assert [f.bins for f in fields] == [32, 16]  # its own bins, else the data section's
    assert [slot.name for slot in spec.frame] == ["angle", "obs0", "done", "action"]
    assert spec.id_range("angle") == (0, 32) and spec.id_range("obs0") == (32, 48)
    assert spec.id_range("done") == (48, 50) and spec.id_range("action") == (50, 53)
    assert spec.vocab_size == 53 and spec.ordinal_fields == ("angle", "obs0")
    assert TokenSpec.from_json(spec.to_json()) == spec  # what the manifest carries rebuilds the same spec


def test_a_range_left_out_is_the_training_episodes_span_widened_by_the_margin():
    train = episodes()
    column = np.concatenate([e.observations[:, 0] for e in train])
    lo, hi = column.min(), column.max()
    field = resolve_fields(declared(), train)[1]
    assert field.low == pytest.approx(lo - 0.1 * (hi - lo)) and field.high == pytest.approx(hi + 0.1 * (hi - lo))
    assert resolve_fields(declared(), train)[0].low == -1.0  # a declared range is kept as given
    every = resolve_fields(declared(fields=[]), train)  # no declaration: every entry, named by its index
    assert [(f.name, f.index, f.bins) for f in every] == [("obs0", 0, 16), ("obs1", 1, 16), ("obs2", 2, 16)]


def test_tokens_round_trip_within_half_a_bin_with_done_on_a_terminated_episodes_last_frame_only():
    train = episodes()
    fields = resolve_fields(declared(), train)
    spec = recorded_spec(fields, ["a", "b", "c"])
    for terminated in (True, False):
        episode = RecordedEpisode(train[0].observations, train[0].actions, terminated)
        tokens = encode_recorded(spec, fields, episode).reshape(-1, spec.tokens_per_frame)
        assert len(tokens) == len(episode.observations)  # T steps: T + 1 observations, T + 1 frames
        values, done = values_of(spec, fields, tokens[:, :spec.state_tokens_per_frame])
        for i, f in enumerate(fields):
            assert np.abs(values[:, i] - episode.observations[:, f.index]).max() <= spec.bin_width(f.name) / 2 + 1e-9
        assert done.tolist() == [False] * (len(tokens) - 1) + [terminated]
        actions = tokens[:, -1] - spec.offsets["action"]
        assert actions.tolist() == [*episode.actions.tolist(), 0]  # the last frame's action: none was taken


def test_values_out_of_a_declared_range_clip_to_its_end_bins():
    fields = resolve_fields(declared(), episodes())
    spec = recorded_spec(fields, ["a", "b", "c"])
    wild = RecordedEpisode(np.array([[0.0, 0.0, -5.0], [0.0, 0.0, 5.0]]), np.array([1]), False)
    tokens = encode_recorded(spec, fields, wild).reshape(2, -1)
    assert tokens[:, 0].tolist() == [0, 31]


@pytest.mark.parametrize("changes, message", [
    ({"fields": [{"index": 0, "low": 1.0, "high": 1.0}]}, "data.fields\\[0\\].low: must be below high"),
    ({"fields": [{"index": 0, "bins": 1}]}, "data.fields\\[0\\].bins"),
    ({"fields": [{"index": 0, "name": "x"}, {"index": 1, "name": "x"}]}, "two fields are named 'x'"),
    ({"fields": [{"index": 0, "name": "done"}]}, "done and action are the spec's own fields"),
    ({"fields": [{"index": 0, "name": "cart x"}]}, "plain identifier"),
    ({"dataset_id": "???"}, "data.dataset_id: must name a local Minari dataset"),
])
def test_bad_declarations_fail_in_one_line(changes, message):
    with pytest.raises(ConfigError, match=message):
        declared(**changes)


def test_a_field_past_the_observation_is_refused_with_its_index():
    with pytest.raises(UserError, match=r"data.fields\[0\].index: 7 is past the observation's 3 entries"):
        resolve_fields(declared(fields=[{"index": 7}]), episodes())


def test_decode_values_is_for_specs_without_pipes():
    with pytest.raises(ValueError, match="pipe slots"):
        SPEC.decode_values(np.zeros((1, SPEC.tokens_per_frame), np.int64))


def test_training_windows_hold_whole_frames_of_one_episode_at_their_slots():
    train = episodes(count=4, frames=9)
    fields = resolve_fields(declared(), train)
    spec = recorded_spec(fields, ["a", "b", "c"])
    k = spec.tokens_per_frame
    store = TokenEpisodes([encode_recorded(spec, fields, e) for e in train], k, "test")
    cfg = declared(window_frames=12, batch_size=16)
    batch = next(iter(FlappyWindows(store, np.arange(4), cfg, seed=1, k=k)))
    tokens, positions, mask = (batch[key].numpy() for key in ("tokens", "positions", "mask"))
    assert tokens.shape == (16, 12 * k) and (positions[:, 0] % k == 0).all()
    assert mask.sum(1).tolist() == [9 * k] * 16  # 9-frame episodes fill 9 of the window's 12 frames
    ranges = np.array(spec.slot_ranges())
    slot = positions % k
    assert ((tokens >= ranges[slot, 0]) & (tokens < ranges[slot, 1]) | ~mask).all()
    assert any((row[mask[i]] == store.tokens[:9 * k]).all() for i, row in enumerate(tokens))


def test_one_step_scores_every_frame_from_the_true_tokens_before_it():
    """An oracle whose logits point at the true next token must be reproduced exactly on every frame after the
    first, also when the episode is several context windows long (the windows overlap by half)."""
    train = episodes(count=1, frames=40)
    fields = resolve_fields(declared(), train)
    spec = recorded_spec(fields, ["a", "b", "c"])
    tokens = encode_recorded(spec, fields, train[0])
    seen = []

    def prefill(chunk, positions):
        seen.append((int(positions[0]), len(chunk)))
        logits = np.zeros((len(chunk), spec.vocab_size))
        start = int(positions[0])
        for i in range(len(chunk)):
            if start + i + 1 < len(tokens):
                logits[i, tokens[start + i + 1]] = 1.0  # what follows, read off the truth at this absolute position
        return logits

    model = TokenModel(backend=None, spec=spec, context=10 * spec.tokens_per_frame, slide_frames=2, label="oracle",
                       prefill=prefill)
    predicted = one_step_tokens(model, tokens)
    assert (predicted == tokens.reshape(40, -1)).all()
    assert len(seen) > 2 and all(n <= model.context for _, n in seen)  # 40 frames in 10-frame windows


@pytest.mark.slow
def test_minari_round_trip_record_state_train_export_evaluate(tmp_path, monkeypatch):
    pytest.importorskip("minari", reason="the minari extra is not installed")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))
    refused = run_cli("worldmodels.record", "FrozenLake-v1", "--dataset-id", "test/lake-v0", "--observations",
                      "state", "--episodes", "2")
    assert refused.returncode != 0 and "not a Box of numbers" in refused.stderr  # a Discrete observation
    recorded = run_cli("worldmodels.record", "CartPole-v1", "--dataset-id", "test/cartstate-v0", "--observations",
                       "state", "--episodes", "12", "--player", "random", "--seed", "4")
    assert recorded.returncode == 0, recorded.stderr[-3000:]
    assert "task=gym_tokens data.dataset_id=test/cartstate-v0" in recorded.stdout
    run_dir = tmp_path / "run"
    fields = "data.fields=[{index: 0, name: cart_x, low: -2.4, high: 2.4}, {index: 2, name: pole_angle, bins: 48}]"
    trained = run_cli("worldmodels.train", "task=gym_tokens", "data.dataset_id=test/cartstate-v0", fields,
                      "debug=smoke", "logger=csv", f"hydra.run.dir={run_dir}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    manifest = read_manifest(run_dir / "export" / "gym_tokens.json")
    assert manifest_problem(manifest) is None and manifest["task"] == "gym_tokens"
    assert [(f["name"], f["index"], f["bins"], f["low"]) for f in manifest["fields"]][0] == ("cart_x", 0, 64, -2.4)
    assert manifest["fields"][1]["bins"] == 48 and manifest["token_spec"]["vocab_size"] == 64 + 48 + 2 + 2
    assert manifest["parity"]["identical_tokens"] and manifest["game"]["dataset_id"] == "test/cartstate-v0"
    out = tmp_path / "eval.json"
    evaluated = run_cli("worldmodels.evaluate", str(run_dir / "export" / "gym_tokens.onnx"), "--horizon", "8",
                        "--out", str(out))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "| copy_last |" in evaluated.stdout and "## Autonomous rollout (recorded actions)" in evaluated.stdout
    report = json.loads(out.read_text())
    assert report["games"] == 2 and [f["name"] for f in report["fields"]] == ["cart_x", "pole_angle"]
    assert set(report["one_step"]) == {"model", "copy_last", "constant_velocity", "done"}
    assert report["rollout"]["by_horizon"]["1"]["games"] == 2 and out.with_suffix(".png").stat().st_size > 0
    other = run_cli("worldmodels.record", "CartPole-v1", "--dataset-id", "test/cartother-v0", "--observations",
                    "state", "--episodes", "3", "--player", "holder", "--seed", "9")
    assert other.returncode == 0, other.stderr[-3000:]
    elsewhere = run_cli("worldmodels.evaluate", str(run_dir / "export" / "gym_tokens.onnx"), "--horizon", "4",
                        "--recording", "test/cartother-v0", "--out", str(tmp_path / "other.json"))
    assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
    assert "3 episodes (never trained on) of test/cartother-v0" in elsewhere.stdout
    assert json.loads((tmp_path / "other.json").read_text())["games"] == 3
    acrobot = run_cli("worldmodels.record", "Acrobot-v1", "--dataset-id", "test/acrobot-v0", "--observations",
                      "state", "--episodes", "1", "--max-steps", "5")
    assert acrobot.returncode == 0, acrobot.stderr[-3000:]
    wrong = run_cli("worldmodels.evaluate", str(run_dir / "export" / "gym_tokens.onnx"), "--recording",
                    "test/acrobot-v0", "--out", str(tmp_path / "wrong.json"))
    assert wrong.returncode != 0 and "(not the same game)" in wrong.stderr and not (tmp_path / "wrong.json").exists()
    checkpoint = run_cli("worldmodels.evaluate", str(run_dir / "checkpoints" / "last.ckpt"), "--horizon", "8",
                         "--out", str(tmp_path / "ckpt.json"))
    assert checkpoint.returncode == 0, checkpoint.stderr[-3000:]
    from_checkpoint = json.loads((tmp_path / "ckpt.json").read_text())
    # PyTorch and the export decode the same tokens, so they score the same
    for key in ("error_share_of_range", "within_one_bin"):
        assert from_checkpoint["one_step"]["model"][key] == pytest.approx(report["one_step"]["model"][key])
    for horizon, row in ((h, r) for h, r in report["rollout"]["by_horizon"].items() if r["games"]):
        assert from_checkpoint["rollout"]["by_horizon"][horizon]["error_model"] == pytest.approx(row["error_model"])
