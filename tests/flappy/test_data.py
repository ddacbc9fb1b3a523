"""The Flappy data pipeline: the PPO collector's caches, the recorded episodes, and the windows the model trains on.

Episodes come from the scripted HeuristicPolicy standing in for PPO (`policy="heuristic"`), except in the one test
that trains a tiny PPO player.

    python -m pytest tests/flappy/test_data.py
"""

from __future__ import annotations

import dataclasses
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from worldmodels.core.data import TRAIN
from worldmodels.core.errors import UserError
from worldmodels.core.schema import ConfigError
from worldmodels.flappy import collector
from worldmodels.flappy.collector import (
    CollectorConfig,
    config_hash,
    ensure_episodes,
    ensure_policy,
    episode_plan,
    episodes_config,
    make_policy,
    pipes_ahead_first,
    ppo_policy,
)
from worldmodels.flappy.config import FlappyDataConfig
from worldmodels.flappy.data import FlappyDataModule, FlappyWindows, held_out_start_contexts, held_out_start_ids
from worldmodels.flappy.episodes import CacheError, EpisodeStore
from worldmodels.flappy.game import BIRD_X, PIPE_WIDTH, SCREEN_WIDTH, FlappyGame, HeuristicPolicy, record_episode
from worldmodels.flappy.tokens import SPEC

K = SPEC.tokens_per_frame
DONE_YES, DONE_NO = SPEC.label_id("done", "yes"), SPEC.label_id("done", "no")
NOOP_ID = SPEC.label_id("action", "noop")
DONE_AT = SPEC.position_of("done")
MIX = {"ppo": 0.3, "noisy_ppo": 0.2, "random": 0.3, "do_nothing": 0.0, "give_up": 0.2}
CFG = CollectorConfig(policy="heuristic", episodes=24, max_frames=200, workers=2, val_fraction=0.25, mix=MIX,
                      give_up_after=[20, 60])
SEED = 7
# Longer than the random and give-up episodes (~50-110 frames), so some windows need padding.
DATA = FlappyDataConfig(batch_size=16, window_frames=60, val_batches=3, collector=CFG)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def store(cache_dir) -> EpisodeStore:
    """The episodes of CFG, recorded by two worker processes."""
    return ensure_episodes(CFG, cache_dir, SEED)


def small(**changes) -> CollectorConfig:
    return dataclasses.replace(CFG, **{"episodes": 12, "workers": 0, **changes})


def arrays(s: EpisodeStore) -> dict[str, np.ndarray]:
    return {name: np.array(getattr(s, name)) for name in ("tokens", "offsets", "frames", "policy", "score", "seed")}


def find_episode(s: EpisodeStore, tokens: np.ndarray, start: int, candidates) -> list[int]:
    """The candidate episodes whose tokens from frame `start` on begin with `tokens`."""
    return [e for e in candidates
            if np.array_equal(s.episode(e)[start * K:start * K + len(tokens)], tokens)]


# ---- the cache ------------------------------------------------------------------------------------------------


def test_cache_is_written_then_reused(store, cache_dir, caplog):
    files = {p.name for p in store.directory.iterdir()}
    assert files == {"tokens.npy", "offsets.npy", "frames.npy", "policy.npy", "score.npy", "seed.npy",
                     "manifest.json"}
    manifest = json.loads((store.directory / "manifest.json").read_text())
    assert manifest["config"] == episodes_config(CFG, SEED) and manifest["episodes"] == CFG.episodes
    assert set(manifest["files"]) == files - {"manifest.json"}
    assert store.tokens.dtype == np.int16 and store.offsets.dtype == np.int64 and store.policy.dtype == np.int8
    assert not [p for p in store.directory.parent.iterdir() if p.name.startswith(".")], "temporary dirs left over"

    before = {p.name: p.stat().st_mtime_ns for p in store.directory.iterdir()}
    with caplog.at_level(logging.INFO, logger=collector.__name__):
        again = ensure_episodes(CFG, cache_dir, SEED)
    assert again.directory == store.directory
    assert {p.name: p.stat().st_mtime_ns for p in store.directory.iterdir()} == before
    assert "cached" in caplog.text and "recording" not in caplog.text


def test_damaged_or_unfinished_cache_is_detected_and_rebuilt(tmp_path, caplog):
    cfg = small()
    original = arrays(ensure_episodes(cfg, tmp_path, SEED))
    directory = ensure_episodes(cfg, tmp_path, SEED).directory

    with open(directory / "tokens.npy", "r+b") as f:  # flip bytes in the middle of the token data
        f.seek(400)
        byte = f.read(2)
        f.seek(400)
        f.write(bytes(b ^ 0xFF for b in byte))
    with pytest.raises(CacheError, match="tokens.npy: sha256"):
        EpisodeStore(directory)
    with caplog.at_level(logging.WARNING, logger=collector.__name__):
        rebuilt = ensure_episodes(cfg, tmp_path, SEED)
    assert "rebuilding" in caplog.text and "tokens.npy" in caplog.text
    assert all(np.array_equal(rebuilt_array, original[name]) for name, rebuilt_array in arrays(rebuilt).items())

    caplog.clear()
    (directory / "manifest.json").unlink()
    with pytest.raises(CacheError, match="manifest.json: missing"):
        EpisodeStore(directory)
    with caplog.at_level(logging.WARNING, logger=collector.__name__):
        rebuilt = ensure_episodes(cfg, tmp_path, SEED)
    assert "rebuilding" in caplog.text and (directory / "manifest.json").is_file()
    assert np.array_equal(rebuilt.tokens, original["tokens"])

    np.save(directory / "frames.npy", np.asarray(rebuilt.frames)[:-1])  # a file of the wrong shape
    with pytest.raises(CacheError, match="frames.npy"):
        EpisodeStore(directory, verify=False)
    with pytest.raises(CacheError):
        ensure_episodes(cfg, tmp_path, SEED, build=False)


def test_another_config_gets_another_cache():
    base = config_hash(episodes_config(CFG, SEED))
    changed = [episodes_config(dataclasses.replace(CFG, max_frames=150), SEED), episodes_config(CFG, SEED + 1),
               episodes_config(dataclasses.replace(CFG, mix={**MIX, "do_nothing": 0.1}), SEED),
               episodes_config(dataclasses.replace(CFG, policy="ppo"), SEED)]
    assert len({base, *map(config_hash, changed)}) == 5
    # The number of recording processes does not change the episodes, so it shares the cache.
    assert config_hash(episodes_config(dataclasses.replace(CFG, workers=7), SEED)) == base
    # The key holds the token spec and the PPO player's own key: retraining or a new spec records afresh.
    ppo = episodes_config(dataclasses.replace(CFG, policy="ppo"), SEED)
    assert ppo["token_spec"] == SPEC.to_json()
    assert ppo["ppo"] != episodes_config(dataclasses.replace(CFG, policy="ppo", ppo_timesteps=10), SEED)["ppo"]


# ---- the episodes ---------------------------------------------------------------------------------------------


def test_episodes_are_well_formed_and_end_in_death_unless_cut(store):
    for e in range(store.num_episodes):
        frames = store.episode(e).reshape(-1, K)
        assert len(frames) == store.frames[e] <= CFG.max_frames
        assert SPEC.well_formed_frames(frames).all(), f"episode {e} has a malformed frame"
        done = frames[:, DONE_AT]
        assert (done[:-1] == DONE_NO).all()
        if len(frames) < CFG.max_frames:  # a game cut at max_frames may or may not have died on its last frame
            assert done[-1] == DONE_YES, f"episode {e} stops without a death"
        assert frames[-1, -1] == NOOP_ID  # the last frame has no successor
    assert (np.asarray(store.frames) < CFG.max_frames).any() and (np.asarray(store.frames) == CFG.max_frames).any()


def test_recorded_episodes_replay_exactly_with_record_episode(store):
    """Episodes are recorded in lockstep batches; each must equal a plain `record_episode` of its seed and policy."""
    game = FlappyGame()
    for e in range(0, store.num_episodes, 3):
        policy = make_policy(store.policy_name(e), CFG, HeuristicPolicy())
        states, actions, score = record_episode(game, policy, int(store.seed[e]), CFG.max_frames)
        assert np.array_equal(SPEC.encode_episode(states, actions), store.episode(e)), f"episode {e}"
        assert score == store.score[e]


def test_policy_mix_is_followed_and_recording_is_deterministic(store, tmp_path):
    seeds, policy = episode_plan(CFG, SEED)
    assert np.array_equal(store.policy, policy) and np.array_equal(store.seed, seeds)
    used = {store.policy_name(e) for e in range(store.num_episodes)}
    assert used == {name for name, weight in MIX.items() if weight > 0}
    assert sum(len(store.policy_ids(name)) for name in store.policy_names) == store.num_episodes
    # The heuristic stand-in survives the 200 frames; random flapping does not.
    assert (np.asarray(store.frames)[store.policy_ids("ppo")] == CFG.max_frames).all()
    assert (np.asarray(store.frames)[store.policy_ids("random")] < CFG.max_frames).all()

    idle = ensure_episodes(small(mix={"do_nothing": 1.0}), tmp_path, SEED)
    assert {idle.policy_name(e) for e in range(idle.num_episodes)} == {"do_nothing"}
    assert all((idle.episode(e).reshape(-1, K)[:, -1] == NOOP_ID).all() for e in range(idle.num_episodes))

    # Same config and seed, recorded again in this process instead of two workers: identical arrays.
    again = ensure_episodes(dataclasses.replace(CFG, workers=0), tmp_path, SEED)
    assert again.directory != store.directory
    assert all(np.array_equal(again_array, arrays(store)[name]) for name, again_array in arrays(again).items())


def test_split_is_by_episode_and_disjoint(store):
    assert len(np.intersect1d(store.train_ids, store.val_ids)) == 0
    assert np.array_equal(np.union1d(store.train_ids, store.val_ids), np.arange(store.num_episodes))
    assert len(store.val_ids) == round(CFG.episodes * CFG.val_fraction)


# ---- the windows ----------------------------------------------------------------------------------------------


def datamodule(store) -> FlappyDataModule:
    dm = FlappyDataModule(DATA, seed=SEED)
    dm.set_episodes(store)
    return dm


def test_windows_stay_in_one_episode_on_frame_boundaries_with_absolute_positions(store):
    windows = iter(datamodule(store).train_dataloader())
    padded = starts_at_zero = 0
    for _ in range(8):
        batch = next(windows)
        tokens, positions, mask = batch["tokens"].numpy(), batch["positions"].numpy(), batch["mask"].numpy()
        assert tokens.shape == positions.shape == mask.shape == (DATA.batch_size, DATA.window_tokens)
        for row in range(DATA.batch_size):
            n = int(mask[row].sum())
            assert mask[row, :n].all() and n % K == 0  # whole frames, then padding only
            start = int(positions[row, 0]) // K
            assert positions[row, 0] % K == 0
            assert np.array_equal(positions[row], start * K + np.arange(DATA.window_tokens))
            matches = find_episode(store, tokens[row, :n], start, store.train_ids)
            assert matches, "a window is not a slice of a training episode"
            # Full unless the episode ends first: the window stops exactly there, never running into another.
            assert any(n == min(DATA.window_frames, store.frames[e] - start) * K for e in matches)
            padded += n < DATA.window_tokens
            starts_at_zero += start == 0
    assert padded and starts_at_zero


def test_game_starts_are_at_least_as_likely_as_any_other_start(store):
    rng_windows = FlappyWindows(store, store.train_ids, dataclasses.replace(DATA, batch_size=4000), seed=1)
    starts = next(iter(rng_windows))["positions"][:, 0].numpy() // K
    counts = np.bincount(starts)
    assert counts[0] >= counts[1:].max()


def test_workers_and_ranks_draw_different_windows(store):
    train = FlappyWindows(store, store.train_ids, DATA, seed=SEED, stream=TRAIN)
    loader = iter(DataLoader(train, batch_size=None, num_workers=2))
    first, second = next(loader), next(loader)  # one from each worker
    assert not np.array_equal(first["positions"], second["positions"])
    other_rank = FlappyWindows(store, store.train_ids, DATA, seed=SEED, stream=TRAIN, rank=1)
    assert not np.array_equal(next(iter(train))["positions"], next(iter(other_rank))["positions"])


def test_validation_windows_are_held_out_and_the_same_every_time(store):
    dm = datamodule(store)
    first, second = list(dm.val_dataloader()), list(dm.val_dataloader())
    assert len(first) == DATA.val_batches
    for a, b in zip(first, second, strict=True):
        assert all(np.array_equal(a[key], b[key]) for key in ("tokens", "positions", "mask"))
    batch = first[0]
    for row in range(DATA.batch_size):
        n = int(batch["mask"][row].sum())
        start = int(batch["positions"][row, 0]) // K
        assert find_episode(store, batch["tokens"][row, :n].numpy(), start, store.val_ids)
    test = next(iter(dm.test_dataloader()))
    assert not np.array_equal(test["positions"], batch["positions"])


def test_datamodule_without_episodes_says_how_to_get_them():
    with pytest.raises(UserError, match="python -m worldmodels.train task=flappy"):
        FlappyDataModule(DATA).train_dataloader()


def test_held_out_start_contexts_are_real_openings_ending_on_a_state(store):
    contexts = held_out_start_contexts(store, count=3, frames=30)
    assert len(contexts) == 3
    for context in contexts:
        assert len(context) == 30 * K - 1
        frames = context[:29 * K].reshape(-1, K)
        assert SPEC.well_formed_frames(frames).all() and SPEC.is_well_formed(context[29 * K:])
        assert DONE_YES not in context
        assert find_episode(store, context, 0, store.val_ids)
    first = find_episode(store, contexts[0], 0, store.val_ids)[0]
    assert store.policy_name(first) == "ppo"


def test_a_start_contexts_seed_replays_its_game(store):
    """The seeds an export carries beside its start contexts: the real game reset with one and fed the context's
    actions makes the context's frames again."""
    from worldmodels.flappy.game import FlappyGame  # the real game: only this test replays it

    ids = held_out_start_ids(store, count=3, frames=30)
    length = 30 * K - 1
    assert [c.tolist() for c in held_out_start_contexts(store, 3, 30)] == [store.episode(i)[:length].tolist()
                                                                          for i in ids]
    for i in ids:
        context = store.episode(i)[:length]
        actions = context[K - 1::K] - SPEC.offsets["action"]  # the action closing each frame
        game = FlappyGame()
        states = [game.reset(int(store.seed[i]))] + [game.step(int(a)) for a in actions]
        assert SPEC.encode_episode(states, np.append(actions, 0))[:length].tolist() == context.tolist()


# ---- the config and the callback ------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ({"mix": {"ppo": 1.0, "expert": 1.0}}, "mix.expert: unknown policy \\(known: ppo, noisy_ppo, random"),
    ({"mix": {"ppo": -1.0, "random": 2.0}}, "mix.ppo: must be >= 0"),
    ({"mix": {"ppo": 0.0}}, "mix: the weights must sum to more than 0"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"give_up_after": [300, 30]}, "give_up_after"),
    ({"policy": "expert"}, "policy: must be ppo or heuristic"),
])
def test_bad_collector_config_names_the_key(change, message):
    with pytest.raises(ConfigError, match=f"data.collector.{message}"):
        dataclasses.replace(CFG, **change).validate("data.collector")


def test_datamodule_prepares_loads_and_reports_the_episodes(store, cache_dir):
    dm = FlappyDataModule(DATA, seed=SEED, cache_dir=cache_dir)
    logged = []
    dm.trainer = SimpleNamespace(loggers=[SimpleNamespace(log_metrics=lambda metrics, step: logged.append(metrics))])
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")  # reported once
    assert dm.store is not None and dm.store.directory == store.directory
    assert len(logged) == 1 and logged[0]["data/episodes"] == CFG.episodes
    openings = dm.export_extras()["start_contexts"]  # real held-out openings, for the export
    assert openings and all(len(c) % 10 == 9 for c in openings)
    with pytest.raises(UserError, match="no episodes"):
        FlappyDataModule(DATA, seed=SEED).setup("fit")


# ---- PPO ------------------------------------------------------------------------------------------------------


def test_ppo_sees_the_pipe_ahead_first():
    game = FlappyGame()
    game.reset(3)
    right_edges = game.obs[[0, 3, 6]] * SCREEN_WIDTH + PIPE_WIDTH
    while right_edges[0] >= BIRD_X:  # play until the env's first-listed pipe is behind the bird
        game.step(HeuristicPolicy()(game.obs))
        right_edges = game.obs[[0, 3, 6]] * SCREEN_WIDTH + PIPE_WIDTH
    obs = game.obs
    assert right_edges[1] > BIRD_X and not game.done
    reordered = pipes_ahead_first(obs)
    assert np.array_equal(reordered, np.concatenate([obs[3:9], obs[0:3], obs[9:]]))
    assert np.array_equal(pipes_ahead_first(np.stack([obs, reordered])), np.stack([reordered, reordered]))


@pytest.mark.slow
def test_tiny_ppo_run_is_cached_scored_and_reused(tmp_path, monkeypatch):
    from stable_baselines3 import PPO

    cfg = small(policy="ppo", ppo_timesteps=2048, ppo_envs=2, eval_episodes=3, episodes=4, max_frames=100)
    with torch.no_grad():  # as under `evaluate`, which may have to rebuild the cache: PPO still trains
        path, scores = ensure_policy(cfg, tmp_path)
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert path.is_file() and path.parent.name == f"ppo-{manifest['hash']}"
    assert manifest["scores"] == scores and scores["episodes"] == 3
    assert {"mean_score", "median_score", "max_score"} <= set(scores)
    assert manifest["config"]["timesteps"] == 2048 and len(manifest["sha256"]) == 64

    def no_training(cfg):
        raise AssertionError("PPO retrained although a valid cache exists")

    monkeypatch.setattr(collector, "train_ppo", no_training)
    assert ensure_policy(cfg, tmp_path) == (path, scores)

    # The cached player plays as a Policy, and records episodes.
    model = PPO.load(path, device="cpu")
    states, actions, _ = record_episode(FlappyGame(), ppo_policy(model), seed=1, max_frames=50)
    assert len(states) == len(actions) > 1
    episodes = ensure_episodes(cfg, tmp_path, SEED)
    assert episodes.manifest["ppo_scores"] == scores and episodes.manifest["config"]["ppo"] == manifest["hash"]

    with open(path, "r+b") as f:  # a damaged zip is never used: it is retrained
        f.seek(100)
        f.write(b"\0" * 8)
    with pytest.raises(AssertionError, match="retrained"):
        ensure_policy(cfg, tmp_path)
