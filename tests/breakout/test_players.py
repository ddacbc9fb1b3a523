"""The Breakout evaluation's players behave as their docstrings say, and differ in skill."""

import numpy as np
import pytest

from worldmodels.breakout.players import PLAYERS, make_player
from worldmodels.breakout.sim import NOOP, BreakoutSim


def play(name: str, steps: int = 600, games: int = 16):
    sim, player = BreakoutSim(np.arange(games) + 7), make_player(name, 3)
    actions, lost = [], 0
    for _ in range(steps):
        actions.append(player.act(sim))
        lost += sim.step(actions[-1]).life_lost.sum()
    return np.stack(actions), lost


def test_players_differ_in_skill():
    lost = {name: play(name)[1] for name in PLAYERS}
    assert lost["tracker"] < lost["sloppy"] < lost["random"], lost
    assert lost["holder"] > lost["tracker"], lost


def test_key_holder_holds_each_key_for_4_to_15_frames():
    actions, _ = play("holder", steps=300, games=4)
    for game in actions.T:
        runs = np.diff(np.flatnonzero(np.diff(np.r_[-1, game, -1]) != 0))  # lengths of equal-key runs
        assert runs[1:-1].min() >= 4  # a run can join the next when the same key is picked again


def test_sloppy_tracker_has_lapses_and_random_uses_every_key():
    actions, _ = play("sloppy", steps=600, games=4)
    noop_runs = [len(r) for game in actions.T for r in np.split(game, np.flatnonzero(np.diff(game != NOOP)) + 1)
                 if r[0] == NOOP]
    assert max(noop_runs) >= 5
    random_actions, _ = play("random", steps=100, games=4)
    assert set(np.unique(random_actions)) == {0, 1, 2}


def test_unknown_player_is_refused():
    with pytest.raises(ValueError, match="unknown player 'robot'"):
        make_player("robot", 0)
