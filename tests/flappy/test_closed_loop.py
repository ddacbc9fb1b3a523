"""The closed-loop harness: one scripted player on the real game and on a dream, scored by one rule; the forced-gap
rollout; and a tiny model played through both (frames well formed, the dream starts from the real game).

    python -m pytest tests/flappy/test_closed_loop.py
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldmodels.flappy.closed_loop import (
    closed_loop,
    loop_summary,
    play_dream,
    play_real,
    real_gaps,
    rule_summary,
)
from worldmodels.flappy.config import TransformerConfig
from worldmodels.flappy.decoding.decoder import FrameDecoder
from worldmodels.flappy.decoding.pytorch import TorchBackend
from worldmodels.flappy.decoding.rules import generate_state, pipe_is_new
from worldmodels.flappy.evaluate import free_rollout
from worldmodels.flappy.game import NOOP, FlappyGame, HeuristicPolicy, record_episode
from worldmodels.flappy.physics import RULES
from worldmodels.flappy.players import SKILLS
from worldmodels.flappy.tokens import SPEC
from worldmodels.flappy.transformer import TokenTransformer

STATE, ACTION = SPEC.state_tokens_per_frame, SPEC.offsets["action"]
VISIBLE = SPEC.label_id("marker", "visible")
PIPE_X, GAP_Y = SPEC.id_range("pipe_x")[0], SPEC.id_range("gap_y")[0]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class RealGameDecoder:
    """A stand-in "model" whose dream is the real game: reset replays the context's actions on the game the seed
    names, step plays it on. With it, a dream must equal the real game it started from."""

    def __init__(self) -> None:
        self.game, self.gaps_given = FlappyGame(), []

    def reset(self, context_tokens, seed: int) -> None:
        frames = np.append(np.asarray(context_tokens), ACTION).reshape(-1, SPEC.tokens_per_frame)
        self.game.reset(seed)
        for action in frames[:-1, -1] - ACTION:
            self.game.step(int(action))
        self.previous = frames[-1, :STATE].tolist()

    def step(self, action: int, choose_gap=None) -> np.ndarray:
        frame = SPEC.encode_frame(self.game.step(action), NOOP)[:STATE]
        if choose_gap is not None:  # asked for each new pipe, in slot order, as the decoder asks
            self.gaps_given += [choose_gap(k) for k in range(2) if pipe_is_new(k, frame.tolist(), self.previous)]
        self.previous = frame.tolist()
        return frame

    @property
    def done(self) -> bool:
        return self.game.done


def test_a_dream_that_is_the_game_scores_as_the_game():
    pairs = closed_loop(RealGameDecoder(), skills={"good": SKILLS["good"], "sloppy": SKILLS["sloppy"]}, games=3,
                        start_frames=20, max_frames=700)
    for games in pairs.values():
        for real, dream in games:
            assert real.score == real.env_score  # the token-frame score rule is the env's
            assert np.array_equal(real.frames, dream.frames) and np.array_equal(real.actions, dream.actions)
    summary = loop_summary(pairs["good"], 700)
    assert summary["score_ratio"] == 1.0 and summary["length_ratio"] == 1.0 and summary["env_score_matches"] == 1.0
    assert summary["real_score_mean"] > 5  # the good player passes pipes: the scores compared are not all 0
    rules = rule_summary([g for games in pairs.values() for pair in games for g in pair])
    assert all(rules[f"{rule}_rate"] == 0 for rule in RULES)
    assert rules["respawns"] > 0 and rules["respawn_token_present"] == 1.0 and rules["new_gap_legal"] == 1.0
    assert rules["deaths_without_collision_per_game"] == 0 and rules["collisions_without_death_per_game"] == 0


def test_a_different_dream_shows_in_the_scores():
    """The same harness tells a dream apart from the game: one whose bird never falls scores nothing."""

    class FloatingBird(RealGameDecoder):
        def step(self, action, choose_gap=None):
            frame = super().step(action)
            frame[SPEC.position_of("bird_y")] = SPEC.to_bins("bird_y", 0.0)  # pinned high above every gap
            return frame

    [(real, dream)] = closed_loop(FloatingBird(), skills={"good": SKILLS["good"]}, games=1, max_frames=400)["good"]
    assert real.score > 3 and dream.score < real.score
    assert sum(t.broken["bird"] for t in dream.transitions) > 0


@pytest.fixture(scope="module")
def tiny() -> FrameDecoder:
    torch.manual_seed(0)
    net = TokenTransformer(TransformerConfig(vocab_size=SPEC.vocab_size, layers=1, heads=2, width=16, context=120))
    return FrameDecoder(TorchBackend(net.eval()), slide_frames=4, slide_before_frame=True)


def test_a_tiny_model_plays_the_closed_loop(tiny):
    game = FlappyGame()
    real = play_real(game, SKILLS["medium"], seed=5, max_frames=200)
    dream = play_dream(tiny, SKILLS["medium"], real, seed=5, start_frames=10, max_frames=60)
    assert np.array_equal(dream.frames[:10], real.frames[:10])  # the dream starts from the real game's frames
    assert np.array_equal(dream.actions[:9], real.actions[:9])  # and the player is where the real game left it
    assert len(dream.frames) <= 60 and len(dream.transitions) == len(dream.frames) - 1
    assert SPEC.well_formed_frames(np.concatenate([dream.frames, np.full((len(dream.frames), 1), ACTION)], 1)).all()


def test_forced_gaps_are_the_real_episodes_in_order():
    states, actions, _ = record_episode(FlappyGame(), HeuristicPolicy(), seed=3, max_frames=400)
    episode = SPEC.encode_episode(states, actions)
    frames = episode.reshape(-1, SPEC.tokens_per_frame)
    gaps = real_gaps(frames[:, :STATE])
    assert len(gaps) >= 5 and all(GAP_Y <= g < GAP_Y + SPEC.field_named("gap_y").bins for g in gaps)
    decoder = RealGameDecoder()
    row = free_rollout(decoder, episode, start_frames=20, seed=3, forced=True)
    after_start = real_gaps(frames[19:, :STATE])
    assert decoder.gaps_given == after_start[:len(decoder.gaps_given)] and decoder.gaps_given
    assert row["drift_horizon"] == len(frames) - 20 and not row["phantom_death"]


def test_choose_gap_replaces_only_a_new_pipes_draw():
    """On a respawn frame pipe 1's gap is new: choose_gap gives it; pipe 0's gap stays the model's."""
    previous = [5, VISIBLE, PIPE_X + 20, GAP_Y + 30, VISIBLE, PIPE_X + 75, GAP_Y + 60,
                SPEC.label_id("respawn", "no"), SPEC.label_id("done", "no")]
    favourite = {0: 5, 1: VISIBLE, 2: PIPE_X + 75, 3: GAP_Y + 60, 4: VISIBLE, 5: PIPE_X + 100}

    def logits_after(frame):
        logits = np.zeros(SPEC.vocab_size)
        if len(frame) in favourite:
            logits[favourite[len(frame)]] = 10.0
        return logits

    def decode(choose_gap):
        frame: list[int] = []

        def feed(token):
            frame.append(token)
            return logits_after(frame)

        return generate_state(feed, logits_after(frame), previous, np.array([0.5, 0.5]), 1.0, SPEC, choose_gap)

    asked = []
    forced = decode(lambda pipe: asked.append(pipe) or GAP_Y + 41)
    assert forced[6] == GAP_Y + 41 and forced[3] == GAP_Y + 60 and asked == [1]
    assert decode(lambda pipe: None)[6] == decode(None)[6]  # None leaves the draw to the uniforms
    with pytest.raises(ValueError, match="not a legal gap"):
        decode(lambda pipe: PIPE_X)
