"""The scripted players (`worldmodels.flappy.players`): deterministic given their rng, `delay` acts on old states,
lapses give NOOPs, they aim at the next pipe not passed, bad skills are refused, and on the real game the named skills
score in order good > medium > sloppy.

    python -m pytest tests/flappy/test_players.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from worldmodels.flappy.game import FLAP, NOOP, FlappyGame, FlappyState, HeuristicPolicy, record_episode
from worldmodels.flappy.players import SKILLS, ScriptedPlayer, Skill
from worldmodels.flappy.tokens import SPEC

NAN = math.nan
GAP = 180.0  # a legal gap centre; with the default margin of 20 the player flaps while the bird's centre is > 200
LOW = FlappyState(300.0, (True, False), (150.0, NAN), (GAP, NAN), respawn=False, done=False)  # centre 312: flap
HIGH = FlappyState(100.0, (True, False), (150.0, NAN), (GAP, NAN), respawn=False, done=False)  # centre 112: noop


@pytest.fixture(scope="module")
def real_states(game):
    """The decoded token states of a 600-frame heuristic game (what a player sees in the closed loop)."""
    states, actions, _ = record_episode(game, HeuristicPolicy(), seed=1, max_frames=600)
    decoded, _ = SPEC.decode_episode(SPEC.encode_episode(states, actions))
    return decoded


def actions_of(player: ScriptedPlayer, states, seed: int = 0) -> list[int]:
    player.reset(np.random.default_rng(seed))
    return [player(state) for state in states]


def test_a_player_is_deterministic_given_its_rng(real_states):
    skill = Skill(delay=1, lapse=0.05, aim=8.0)
    first = actions_of(ScriptedPlayer(skill), real_states, seed=5)
    assert FLAP in first and NOOP in first
    assert actions_of(ScriptedPlayer(skill), real_states, seed=5) == first
    player = ScriptedPlayer(skill)
    actions_of(player, real_states[:100], seed=9)  # a reset clears what an earlier game left
    assert actions_of(player, real_states, seed=5) == first
    assert actions_of(ScriptedPlayer(skill), real_states, seed=6) != first, "the rng should matter"


def test_delay_acts_on_the_state_delay_frames_old():
    states = [LOW, HIGH, HIGH, HIGH, LOW, LOW, HIGH, LOW]
    now = [FLAP if s is LOW else NOOP for s in states]
    assert actions_of(ScriptedPlayer(Skill(delay=0)), states) == now
    for delay in (1, 2, 3):
        # Until `delay` frames have been seen, the player acts on the first state it saw.
        expected = [now[max(0, i - delay)] for i in range(len(states))]
        assert actions_of(ScriptedPlayer(Skill(delay=delay)), states) == expected, f"delay {delay}"


def test_a_lapse_gives_runs_of_noops():
    states = [LOW] * 400  # the bird always wants a flap
    assert set(actions_of(ScriptedPlayer(Skill(lapse=0.0)), states)) == {FLAP}
    actions = actions_of(ScriptedPlayer(Skill(lapse=0.2)), states, seed=3)
    runs, run = [], 0
    for action in actions:  # the runs of NOOPs that a FLAP ended (the last one may be cut short by the game's end)
        if action == NOOP:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert len(runs) > 10 and actions.count(FLAP) > 100
    assert min(runs) >= 2, "a lapse lasts at least 2 frames"


def test_the_player_aims_at_the_next_pipe_not_passed():
    # Slot 0's pipe (x 0, right edge 52) is behind the bird (x 57): the player aims at slot 1's gap.
    passed_low_gap = FlappyState(170.0, (True, True), (0.0, 150.0), (220.0, 150.0), respawn=False, done=False)
    assert actions_of(ScriptedPlayer(Skill()), [passed_low_gap]) == [FLAP]  # centre 182 > 150 + 20
    ahead_low_gap = FlappyState(170.0, (True, True), (10.0, 150.0), (220.0, 150.0), respawn=False, done=False)
    assert actions_of(ScriptedPlayer(Skill()), [ahead_low_gap]) == [NOOP]  # slot 0 still ahead: 182 < 220 + 20
    nothing_ahead = FlappyState(400.0, (True, False), (0.0, NAN), (220.0, NAN), respawn=False, done=False)
    assert actions_of(ScriptedPlayer(Skill()), [nothing_ahead]) == [NOOP]


@pytest.mark.parametrize("skill", [Skill(delay=-1), Skill(lapse=1.0), Skill(lapse=-0.1), Skill(aim=-1.0)])
def test_an_invalid_skill_is_refused(skill):
    with pytest.raises(ValueError, match="skill"):
        ScriptedPlayer(skill)


def play(game: FlappyGame, skill: Skill, seed: int, max_frames: int = 1500) -> int:
    """One real game, the player reading each state through the tokens as in the closed loop; returns the score."""
    player = ScriptedPlayer(skill)
    player.reset(np.random.default_rng(seed))
    state, frames = game.reset(seed), 1
    while not game.done and frames < max_frames:
        view = SPEC.decode_frame(SPEC.encode_frame(state, NOOP))[0]
        state, frames = game.step(player(view)), frames + 1
    return game.score


def test_skills_score_in_order_on_the_real_game(game):
    means = {name: np.mean([play(game, skill, seed) for seed in range(4)]) for name, skill in SKILLS.items()}
    assert means["good"] > means["medium"] > means["sloppy"], means
    assert means["good"] >= 20 and means["sloppy"] >= 1, means
