"""Breakout rows streamed from many seeded simulators: there is no fixed dataset, the game makes more.

A row is (K context frames oldest -> newest, the action taken, the next frame), all uint8 HxWx3; batches are
dicts `context` (B, K, 64, 64, 3), `action` (B,), `target` (B, 64, 64, 3), normalized on the model's device.
K is the net's `model.context_frames` (4 unless set).
With `unroll` n > 1 a row also carries the game's next n - 1 steps: `next_actions` (B, n - 1) and `next_targets`
(B, n - 1, 64, 64, 3), for the objective's unrolled loss.
With `event_keep` < 1 the stream drops ordinary rows: every row whose target or newest context frame was made by
a step with an event (`step_events`: a brick broken, a ball lost and served again, a wall or paddle bounce) is kept,
the others at that rate, so the rare events (a serve is 0.2% of the messy tracker's rows) weigh more per step.

Every stream derives its games' seeds from (seed, stream, rank, worker, generation) with numpy's SeedSequence:
train, validation and test use different `stream` ids, so held-out seeds never meet the training games; each
DataLoader worker and each DDP rank plays its own games; a resumed run starts a new `generation` (the step it
resumed at) so it continues with fresh games instead of replaying the ones it has already seen.

    python -c "from worldmodels.breakout.data import *; print(next(iter(BreakoutStream(BreakoutDataConfig()))).keys())"
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from worldmodels.breakout.config import BreakoutDataConfig, PolicyConfig
from worldmodels.breakout.denoiser import CONTEXT_FRAMES
from worldmodels.breakout.sim import BreakoutSim, StepResult, TrackerPolicy
from worldmodels.core.data import TRAIN, StreamDataModule


def stream_seeds(seed: int, stream: int, rank: int, worker: int, generation: int, count: int) -> np.ndarray:
    """`count` game seeds (uint32) for one stream position; different arguments give unrelated seeds."""
    return np.random.SeedSequence([seed, stream, rank, worker, generation]).generate_state(count)


def step_events(result: StepResult) -> np.ndarray:
    """(G,) bool: the step broke a brick, lost a ball (and served a new one) or bounced off a wall or the paddle."""
    return (result.reward > 0) | result.life_lost | result.game_over | result.wall_bounce | result.paddle_bounce


class BreakoutStream(IterableDataset):
    """Endless (or `max_batches`-long) batches of rows from `games_per_worker` simulators."""

    def __init__(self, cfg: BreakoutDataConfig, seed: int = 0, stream: int = TRAIN, generation: int = 0,
                 max_batches: int | None = None, rank: int = 0, context_frames: int = CONTEXT_FRAMES):
        self.cfg, self.seed, self.stream, self.generation = cfg, seed, stream, generation
        self.max_batches, self.rank, self.context_frames = max_batches, rank, context_frames

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        games = self.cfg.games_per_worker
        rank = self.rank
        sim = BreakoutSim(stream_seeds(self.seed, self.stream, rank, worker, self.generation, games))
        policy_seed = stream_seeds(self.seed, self.stream, rank, worker, self.generation, 1)[0]
        policy = TrackerPolicy(self.cfg.policy, np.random.default_rng(policy_seed))
        rng = np.random.default_rng(policy_seed + 1)
        k = self.context_frames

        history = [sim.render()]
        for _ in range(self.cfg.warmup_steps + k - 1):
            history = (history + [self._advance(sim, policy)[1]])[-k:]
        # A row spans k + unroll frames and unroll actions; fill all but the newest step first.
        # events[:, j]: something happened (`step_events`) on the step that made frames[:, j].
        frames = np.stack(history, axis=1)  # (G, k, H, W, 3)
        events = np.zeros((games, k), bool)
        acts = np.zeros((games, 0), np.int64)
        for _ in range(self.cfg.unroll - 1):
            step_actions, frame, event = self._advance(sim, policy)
            frames = np.concatenate([frames, frame[:, None]], axis=1)
            events = np.concatenate([events, event[:, None]], axis=1)
            acts = np.concatenate([acts, step_actions[:, None].astype(np.int64)], axis=1)

        # With several workers each one serves its share of max_batches.
        budget = None if self.max_batches is None else len(range(worker, self.max_batches, workers))
        served, carry = 0, None
        while budget is None or served < budget:
            step_actions, frame, event = self._advance(sim, policy)
            window = np.concatenate([frames, frame[:, None]], axis=1)  # (G, k + unroll, H, W, 3)
            window_events = np.concatenate([events, event[:, None]], axis=1)  # (G, k + unroll)
            window_acts = np.concatenate([acts, step_actions[:, None].astype(np.int64)], axis=1)  # (G, unroll)
            order = rng.permutation(games)
            if self.cfg.event_keep < 1.0:
                # A row is an event row when its target or its newest context frame was made by an event step
                # (so "the frame after a paddle bounce" counts); other rows are kept at the event_keep rate.
                keep = window_events[:, k - 1] | window_events[:, k]
                keep |= rng.random(games) < self.cfg.event_keep
                order = order[keep[order]]
            rows = {"context": window[order, :k], "action": window_acts[order, 0],
                    "target": window[order, k]}
            if self.cfg.unroll > 1:
                rows["next_actions"] = window_acts[order, 1:]  # (R, unroll - 1)
                rows["next_targets"] = window[order, k + 1:]  # (R, unroll - 1, ...)
            if carry is not None:  # kept rows left over from the last step come first
                rows = {key: np.concatenate([carry[key], value]) for key, value in rows.items()}
            full = len(rows["action"]) - len(rows["action"]) % self.cfg.batch_size
            for start in range(0, full, self.cfg.batch_size):
                yield {key: torch.from_numpy(value[start:start + self.cfg.batch_size]) for key, value in rows.items()}
                served += 1
                if budget is not None and served >= budget:
                    return
            left = len(rows["action"]) > full  # rows short of a whole batch wait (none when every row is kept)
            carry = {key: value[full:] for key, value in rows.items()} if left else None
            frames, events, acts = window[:, 1:], window_events[:, 1:], window_acts[:, 1:]

    @staticmethod
    def _advance(sim: BreakoutSim, policy: TrackerPolicy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of every game under the policy: (actions (G,), next frames (G, H, W, 3), `step_events` (G,))."""
        policy.maybe_reset(sim)
        actions = policy.act(sim)
        result = sim.step(actions)
        return actions, sim.render(), step_events(result)


class BreakoutDataModule(StreamDataModule):
    """Train, validation and test streams on disjoint seeds (see `StreamDataModule` for resume and held-out sets),
    rows of `context_frames` context frames."""

    def __init__(self, cfg: BreakoutDataConfig, seed: int = 0, context_frames: int = CONTEXT_FRAMES):
        super().__init__(cfg, seed=seed)
        self.context_frames = context_frames

    def _stream(self, stream: int, generation: int, max_batches: int | None) -> BreakoutStream:
        return BreakoutStream(self.cfg, self.seed, stream, generation, max_batches, rank=self.rank,
                              context_frames=self.context_frames)


def play(policy_cfg: PolicyConfig, seeds: np.ndarray, steps: int, warmup: int = 0,
         policy_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Play `len(seeds)` games under the policy: frames uint8 (steps + 1, G, H, W, 3) and actions (steps, G).

    `frames[0]` is the frame after `warmup` steps; `actions[t]` leads from `frames[t]` to `frames[t + 1]`.
    """
    sim = BreakoutSim(seeds)
    policy = TrackerPolicy(policy_cfg, np.random.default_rng(policy_seed))
    for _ in range(warmup):
        BreakoutStream._advance(sim, policy)
    frames, actions = [sim.render()], []
    for _ in range(steps):
        action, frame, _ = BreakoutStream._advance(sim, policy)
        actions.append(action.astype(np.int64))
        frames.append(frame)
    return np.stack(frames), np.stack(actions)
