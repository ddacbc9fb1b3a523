"""The Breakout read-outs are exact on true frames, and the simulator's events show in the frames."""

import numpy as np
import pytest

from worldmodels.breakout.players import PLAYERS, make_player
from worldmodels.breakout.readout import (
    EVENTS,
    classify_events,
    read_balls,
    read_objects,
    read_paddle,
    sim_ball_centre,
    sim_paddle_centre,
)
from worldmodels.breakout.sim import BALL_COLOR, PADDLE_WIDTH, SERVE_Y, BreakoutSim


def play_states(steps: int = 400, games: int = 8):
    """Frames, true objects and events of `games` games per player (every player, so every event occurs)."""
    out = []
    for p, name in enumerate(PLAYERS):
        sim, player = BreakoutSim(np.arange(games) + 1000 * p), make_player(name, p)
        after = np.zeros(games, bool)
        for _ in range(steps):
            before = sim.render()
            result = sim.step(player.act(sim))
            out.append((before, sim.render(), sim_ball_centre(sim), sim_paddle_centre(sim), sim.bricks.copy(),
                        classify_events(result, after), result))
            after = result.paddle_bounce.copy()
    return out


@pytest.fixture(scope="module")
def states():
    return play_states()


def test_read_outs_are_exact_on_true_frames(states):
    frames = np.concatenate([s[1] for s in states])
    objects = read_objects(frames)
    assert len(frames) == 400 * 8 * len(PLAYERS)  # 12,800 frames
    assert (objects.balls.count == 1).all()
    np.testing.assert_array_equal(objects.balls.centre, np.concatenate([s[2] for s in states]))
    np.testing.assert_array_equal(objects.paddle, np.concatenate([s[3] for s in states]))
    assert (objects.paddle_width == PADDLE_WIDTH).all()
    np.testing.assert_array_equal(objects.bricks, np.concatenate([s[4] for s in states]))


def test_a_missing_ball_and_an_extra_ball_are_seen():
    sim = BreakoutSim([3])
    frame = sim.render()
    blank = np.zeros_like(frame)
    assert read_balls(blank).missing.all() and np.isnan(read_balls(blank).centre).all()
    assert np.isnan(read_paddle(blank)[0]).all()
    two = frame.copy()
    two[0, 30:32, 5:7] = BALL_COLOR  # a second 2x2 ball far from the first
    balls = read_balls(two)
    assert balls.count[0] == 2 and balls.extra[0]
    dim = frame.copy()
    ball = (dim == BALL_COLOR).all(-1)
    dim[ball] = BALL_COLOR // 3  # a faint smear is not a ball
    assert read_balls(dim).missing.all()


def test_events_show_in_the_frames(states):
    counts = dict.fromkeys(EVENTS, 0)
    previous = read_objects(np.concatenate([s[0] for s in states]))
    games = len(states[0][0])
    for i, (_, _, ball, paddle, bricks, events, _) in enumerate(states):
        prev_bricks = previous.bricks[i * games:(i + 1) * games]
        prev_ball = previous.balls.centre[i * games:(i + 1) * games]
        for g, e in enumerate(events):
            name = EVENTS[e]
            counts[name] += 1
            lost = (prev_bricks[g] & ~bricks[g]).sum()
            if name in ("serve", "new_game"):
                assert ball[g, 1] == SERVE_Y + 1 and abs(ball[g, 0] - paddle[g]) <= 0.5
            if name == "new_game":  # a fresh wall; a serve within the game keeps the wall it had
                assert bricks[g].all() and not prev_bricks[g].all()
            elif name == "serve":
                assert lost == 0 and (bricks[g] == prev_bricks[g]).all()
            if name == "brick_break":
                assert lost == 1
            elif name not in ("serve", "new_game"):
                assert lost == 0 and np.abs(ball[g] - prev_ball[g]).max() <= 2
            if name == "paddle_bounce":
                assert ball[g, 1] == 57 and abs(ball[g, 0] - paddle[g]) <= PADDLE_WIDTH / 2 + 1
            if name == "wall_bounce":
                assert ball[g, 0] <= 2.5 or ball[g, 0] >= 61.5 or ball[g, 1] <= 2.5
    assert all(count >= 20 for count in counts.values()), counts
