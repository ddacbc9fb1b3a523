"""The token objective: soft-bin targets, slot-masked cross-entropy, slot weights, padding, metrics, and that a tiny
Transformer can fit a short game through it.

    python -m pytest tests/flappy/test_objective.py
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from worldmodels.core.errors import UserError
from worldmodels.core.schema import ConfigError
from worldmodels.flappy.config import TokenObjectiveConfig, TransformerConfig
from worldmodels.flappy.objective import TokenLoss, TokenModule, soft_target_table
from worldmodels.flappy.tokens import SPEC
from worldmodels.flappy.transformer import TokenTransformer

FRAME = SPEC.tokens_per_frame
DONE_SLOT = [s.field for s in SPEC.frame].index("done")
RESPAWN_SLOT = [s.field for s in SPEC.frame].index("respawn")
BIRD_Y = SPEC.id_range("bird_y")[0]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_batch(batch: int = 3, frames: int = 4, seed: int = 0) -> dict:
    """Tokens drawn from each slot's id range (the loss needs nothing more), starting mid-episode."""
    rng = np.random.default_rng(seed)
    ranges = SPEC.slot_ranges()
    length = frames * FRAME
    positions = 30 + np.arange(length)
    tokens = np.stack([[rng.integers(*ranges[p % FRAME]) for p in positions] for _ in range(batch)])
    return {"tokens": torch.as_tensor(tokens), "positions": torch.as_tensor(positions).expand(batch, -1).clone(),
            "mask": torch.ones(batch, length, dtype=torch.bool)}


def config(**overrides) -> TokenObjectiveConfig:
    return dataclasses.replace(TokenObjectiveConfig(), **overrides)


def test_target_table_rows_are_distributions_over_the_true_field():
    table = soft_target_table(SPEC, 1.5)
    assert torch.allclose(table.sum(1), torch.ones(SPEC.vocab_size))
    for f in SPEC.fields:
        start, stop = SPEC.id_range(f.name)
        rows = table[start:stop]
        assert rows[:, :start].sum() == 0 and rows[:, stop:].sum() == 0, f.name
        assert torch.equal(rows.argmax(1), torch.arange(start, stop)), f.name  # peak at the true bin
        if f.kind == "ordinal":
            assert (rows[5, start + 3:start + 8] > 0).all() and rows[5, start + 5] < 1, f.name
            assert rows[5, start + 5 + 5] > 0 and rows[5, start + 5 + 6] == 0  # truncated at ceil(3 * 1.5) = 5
        if f.hideable:  # the hidden id has a hard target and takes no mass from the bins
            hidden = SPEC.hidden_id(f.name)
            assert table[hidden, hidden] == 1 and table[hidden - 1, hidden] == 0
    assert torch.equal(soft_target_table(SPEC, 0.0), torch.eye(SPEC.vocab_size))


def test_gap_targets_stay_one_hot_by_default():
    """A new gap takes one of 8 heights: smoothing its target would teach heights between them."""
    table = TokenLoss(config(soft_bin_width=1.0)).target_table
    for name, smoothed in (("bird_y", True), ("pipe_x", True), ("gap_y", False)):
        start, stop = SPEC.id_range(name)
        bins = table[start:stop, start:stop]
        assert bool((bins[10, 9] > 0) & (bins[10, 10] < 1)) == smoothed, name
    every = TokenLoss(config(soft_bin_width=1.0, soft_bin_fields=["bird_y", "pipe_x", "gap_y"])).target_table
    assert torch.equal(every, soft_target_table(SPEC, 1.0))
    with pytest.raises(ValueError, match="not ordinal"):
        soft_target_table(SPEC, 1.0, ["done"])


def test_width_zero_is_cross_entropy_on_slot_masked_logits():
    batch = random_batch()
    logits = torch.randn(3, 4 * FRAME, SPEC.vocab_size) * 3
    loss, _ = TokenLoss(config(soft_bin_width=0.0, done_weight=1.0, respawn_weight=1.0, action_weight=1.0))(
        logits, batch)
    ranges = torch.tensor(SPEC.slot_ranges())[batch["positions"][:, 1:] % FRAME]  # (B, L-1, 2)
    ids = torch.arange(SPEC.vocab_size)
    legal = (ids >= ranges[..., :1]) & (ids < ranges[..., 1:])
    masked = logits[:, :-1].masked_fill(~legal, float("-inf"))
    expected = F.cross_entropy(masked.reshape(-1, SPEC.vocab_size), batch["tokens"][:, 1:].reshape(-1))
    assert torch.allclose(loss, expected, atol=1e-5)
    # Without the mask the loss would be higher: logits outside the slot's range must not count.
    assert F.cross_entropy(logits[:, :-1].reshape(-1, SPEC.vocab_size), batch["tokens"][:, 1:].reshape(-1)) > loss


def test_soft_targets_prefer_near_misses():
    batch = random_batch(batch=1, frames=2)
    objective = TokenLoss(config(soft_bin_width=1.0))
    target_bin = 60
    batch["tokens"][0, FRAME] = BIRD_Y + target_bin  # frame 1's bird_y, predicted from position FRAME - 1

    def bird_loss(predicted_bin: int) -> float:
        logits = torch.zeros(1, 2 * FRAME, SPEC.vocab_size)
        logits[0, FRAME - 1, BIRD_Y + predicted_bin] = 8.0
        _, ce, *_ = objective.per_position(logits, batch)
        return float(ce[0, FRAME - 1])

    assert bird_loss(target_bin) < bird_loss(target_bin + 1) < bird_loss(target_bin + 5)
    # At width 0 a near miss is as wrong as a far one.
    hard = TokenLoss(config(soft_bin_width=0.0))
    logits = torch.zeros(1, 2 * FRAME, SPEC.vocab_size)
    logits[0, FRAME - 1, BIRD_Y + target_bin + 1] = 8.0
    near = float(hard.per_position(logits, batch)[1][0, FRAME - 1])
    logits[0, FRAME - 1] = 0
    logits[0, FRAME - 1, BIRD_Y + target_bin + 5] = 8.0
    assert near == pytest.approx(float(hard.per_position(logits, batch)[1][0, FRAME - 1]), rel=1e-5)


def test_done_and_respawn_weights_scale_their_positions():
    batch = random_batch()
    logits = torch.randn(3, 4 * FRAME, SPEC.vocab_size)
    plain = TokenLoss(config(done_weight=1.0, respawn_weight=1.0, action_weight=1.0))
    _, ce, weight, _, slots = plain.per_position(logits, batch)
    assert torch.equal(weight, torch.ones_like(weight))
    loss, _ = TokenLoss(config(done_weight=7.0, respawn_weight=3.0, action_weight=0.0))(logits, batch)
    w = torch.ones_like(ce)
    w[slots == DONE_SLOT], w[slots == RESPAWN_SLOT], w[slots == FRAME - 1] = 7.0, 3.0, 0.0
    assert torch.allclose(loss, (w * ce).sum() / w.sum())
    assert not torch.allclose(loss, ce.mean())


def test_padding_is_ignored():
    batch = random_batch(batch=2, frames=3)
    logits = torch.randn(2, 3 * FRAME, SPEC.vocab_size)
    objective = TokenLoss(config())
    short = {k: v[:, :2 * FRAME] for k, v in batch.items()}
    expected, _ = objective(logits[:, :2 * FRAME], short)
    batch["mask"][:, 2 * FRAME:] = False
    # Whatever sits in the padding (even ids illegal for the slot) changes nothing.
    batch["tokens"][:, 2 * FRAME:] = 0
    logits[:, 2 * FRAME:] = 100.0
    loss, _ = objective(logits, batch)
    assert torch.allclose(loss, expected)


def test_metrics_and_misaligned_positions():
    batch = random_batch(batch=2, frames=3)
    targets = batch["tokens"][:, 1:]
    batch["tokens"][0, FRAME + DONE_SLOT] = SPEC.label_id("done", "yes")
    logits = torch.zeros(2, 3 * FRAME, SPEC.vocab_size)
    logits[:, :-1].scatter_(-1, targets[..., None], 10.0)  # a perfect prediction of every next token
    _, metrics = TokenLoss(config())(logits, batch)
    assert metrics["acc_bird_y"] == metrics["acc1_gap_y"] == metrics["acc_done"] == metrics["done_recall"] == 1.0
    # One bin off on every bird_y: exact accuracy 0, within-one-bin accuracy 1.
    bird = (targets >= BIRD_Y) & (targets < BIRD_Y + 127)
    logits[:, :-1][bird] = logits[:, :-1][bird].roll(1, dims=-1)
    _, metrics = TokenLoss(config())(logits, batch)
    assert metrics["acc_bird_y"] == 0.0 and metrics["acc1_bird_y"] == 1.0
    batch["positions"] += 1  # positions no longer say which slot a token fills
    with pytest.raises(UserError, match="position % 10"):
        TokenLoss(config())(logits, batch)


def test_config_checks_name_the_key():
    with pytest.raises(ConfigError, match="m.soft_bin_width"):
        config(soft_bin_width=-1.0).validate("m")
    with pytest.raises(ConfigError, match="m.soft_bin_fields.*'done' is not an ordinal field"):
        config(soft_bin_fields=["done"]).validate("m")
    with pytest.raises(ConfigError, match="m.decoding.temperature"):
        TokenObjectiveConfig(decoding=dataclasses.replace(TokenObjectiveConfig().decoding, temperature=0)).validate("m")
    with pytest.raises(UserError, match="vocab_size"):
        TokenModule(TokenTransformer(TransformerConfig(vocab_size=50, layers=1, heads=2, width=16)), config(), {})


def test_tiny_transformer_overfits_a_short_game():
    torch.manual_seed(0)
    net = TokenTransformer(TransformerConfig(vocab_size=SPEC.vocab_size, layers=2, heads=2, width=32, context=60))
    module = TokenModule(net, config(), run_config={})
    single = random_batch(batch=1, frames=3, seed=1)
    batch = {k: v.repeat(1, 2) for k, v in single.items()}  # the same 3 frames twice: the second copy is learnable
    batch["positions"] = torch.arange(30, 30 + 6 * FRAME)[None]
    optimizer = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss, _ = module.compute_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses[::10]
