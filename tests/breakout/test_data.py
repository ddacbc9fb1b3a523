"""The Breakout row stream: shapes, determinism, disjoint seeds for workers, splits and resumed runs."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from worldmodels.breakout.config import BreakoutDataConfig, PolicyConfig
from worldmodels.breakout.data import BreakoutDataModule, BreakoutStream, play, stream_seeds
from worldmodels.breakout.sim import BreakoutSim, TrackerPolicy
from worldmodels.core.data import TRAIN, VAL

CFG = BreakoutDataConfig(batch_size=4, games_per_worker=8, warmup_steps=4)


def batches(stream, n):
    it = iter(stream)
    return [next(it) for _ in range(n)]


def fingerprints(batch_list):
    return {bytes(b["target"][i].numpy().tobytes()) + bytes(b["context"][i].numpy().tobytes())
            for b in batch_list for i in range(len(b["action"]))}


def test_batch_layout():
    b = batches(BreakoutStream(CFG), 1)[0]
    assert b["context"].shape == (4, 4, 64, 64, 3) and b["context"].dtype == torch.uint8
    assert b["target"].shape == (4, 64, 64, 3) and b["target"].dtype == torch.uint8
    assert b["action"].shape == (4,) and b["action"].dtype == torch.int64
    assert set(b["action"].tolist()) <= {0, 1, 2}


def test_rows_are_real_transitions():
    # Each row's context is four consecutive frames of one game and its target is that game's next frame.
    frames, actions = play(PolicyConfig(), np.array([5, 6]), steps=6)
    sim = BreakoutSim(np.array([5]))
    for t in range(6):
        assert np.array_equal(sim.render(), frames[t, :1])
        sim.step(actions[t, :1])


def test_stream_is_deterministic_and_seeded():
    a = fingerprints(batches(BreakoutStream(CFG, seed=1), 4))
    assert a == fingerprints(batches(BreakoutStream(CFG, seed=1), 4))
    assert not a & fingerprints(batches(BreakoutStream(CFG, seed=2), 4))


def test_validation_and_resumed_streams_use_other_games():
    train = fingerprints(batches(BreakoutStream(CFG, stream=TRAIN), 4))
    assert not train & fingerprints(batches(BreakoutStream(CFG, stream=VAL), 4))
    assert not train & fingerprints(batches(BreakoutStream(CFG, stream=TRAIN, generation=100), 4))


def test_workers_play_different_games():
    loader = DataLoader(BreakoutStream(CFG), batch_size=None, num_workers=2)
    it = iter(loader)
    first, second = next(it), next(it)  # DataLoader alternates workers: one batch from each
    assert not fingerprints([first]) & fingerprints([second])


def test_held_out_streams_are_finite_and_repeatable():
    dm = BreakoutDataModule(BreakoutDataConfig(batch_size=4, games_per_worker=8, val_batches=3))
    first = list(dm.val_dataloader())
    assert len(first) == 3
    assert fingerprints(first) == fingerprints(list(dm.val_dataloader()))


def test_datamodule_state_moves_the_train_stream():
    dm = BreakoutDataModule(CFG)
    dm.load_state_dict({"generation": 7})
    assert dm.train_dataloader().dataset.generation == 7


def test_unrolled_rows_are_consecutive_steps_of_one_game():
    cfg = BreakoutDataConfig(batch_size=4, games_per_worker=4, warmup_steps=4, unroll=3)
    first, second = batches(BreakoutStream(cfg), 2)
    assert first["next_targets"].shape == (4, 2, 64, 64, 3) and first["next_actions"].shape == (4, 2)
    # One step later each game's window has moved by one frame: match the games by content.
    for i in range(4):
        window = torch.cat([second["context"][i], second["target"][i][None], second["next_targets"][i]])
        matches = [j for j in range(4) if torch.equal(
            torch.cat([first["context"][j], first["target"][j][None], first["next_targets"][j]])[1:], window[:-1])]
        assert len(matches) == 1
        j = matches[0]
        assert second["action"][i] == first["next_actions"][j, 0]
        assert torch.equal(second["next_actions"][i, :1], first["next_actions"][j, 1:])


def test_one_step_rows_carry_no_unroll_keys():
    assert set(batches(BreakoutStream(CFG), 1)[0]) == {"context", "action", "target"}


def row_keys(batch_list) -> list[bytes]:
    """Each row's 4 context frames and target as one byte string, in the order served."""
    return [b"".join(b["context"][i, k].numpy().tobytes() for k in range(4)) + b["target"][i].numpy().tobytes()
            for b in batch_list for i in range(len(b["action"]))]


def test_event_keep_keeps_every_event_row_and_drops_the_others():
    # Nearly no ordinary row survives, so every row served must be one the game's own step results call an event.
    cfg = BreakoutDataConfig(batch_size=4, games_per_worker=8, warmup_steps=4, event_keep=1e-9,
                             policy=PolicyConfig(miss_rate=0.5))
    rows = batches(BreakoutStream(cfg), 12)
    # Replay the stream's games (its seeds and policy, as BreakoutStream.__iter__ draws them) with their events.
    seeds = stream_seeds(0, TRAIN, 0, 0, 0, 8)
    sim = BreakoutSim(seeds)
    policy = TrackerPolicy(cfg.policy, np.random.default_rng(stream_seeds(0, TRAIN, 0, 0, 0, 1)[0]))
    frames, events = [sim.render()], [np.zeros(8, bool)]
    for _ in range(600):
        _, frame, event = BreakoutStream._advance(sim, policy)
        frames.append(frame)
        events.append(event)
    event_rows, ordinary_rows = set(), set()
    for t in range(4, len(frames)):
        for g in range(8):
            key = b"".join(frames[k][g].tobytes() for k in range(t - 4, t + 1))
            (event_rows if events[t][g] | events[t - 1][g] else ordinary_rows).add(key)
    served = row_keys(rows)
    assert all(key in event_rows for key in served)
    assert len(set(served)) == len(served) == 48  # 12 full batches of distinct rows
    # With every row kept the same games give mostly ordinary rows.
    everything = row_keys(batches(BreakoutStream(BreakoutDataConfig(batch_size=4, games_per_worker=8, warmup_steps=4,
                                                                    policy=cfg.policy)), 12))
    assert sum(key in ordinary_rows for key in everything) > 24
