"""The game's rules on token frames (`worldmodels.flappy.physics`): real frames never break a rule, deaths and scores
agree with the env, each rule fails on frames edited to break exactly it, the death geometry flags impossible deaths
and missed collisions, and the pipe spacings and bird update are the env's.

    python -m pytest tests/flappy/test_physics.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from flappy_bird_gymnasium.envs.constants import PLAYER_HEIGHT

from worldmodels.flappy.decoding.rules import is_respawn
from worldmodels.flappy.game import (
    FLAP,
    GROUND_Y,
    NOOP,
    FlappyState,
    HeuristicPolicy,
    RandomPolicy,
    record_episode,
)
from worldmodels.flappy.physics import (
    GAP_CENTRES,
    RULES,
    SPACINGS,
    RuleChecker,
    bird_step,
    check_game,
    pipe_spacings,
)
from worldmodels.flappy.tokens import SPEC

NAN = math.nan
POS = {slot.name: i for i, slot in enumerate(SPEC.frame)}
STATE = SPEC.state_tokens_per_frame
VISIBLE, HIDDEN = SPEC.label_id("marker", "visible"), SPEC.label_id("marker", "hidden")
YES, NO = SPEC.label_id("respawn", "yes"), SPEC.label_id("respawn", "no")
# (policy, seed, max_frames): long heuristic games (deaths at pipes, respawns) and short random ones (early deaths).
GAMES = [(HeuristicPolicy(), 0, 1500), (RandomPolicy(0.12), 1, 600), (HeuristicPolicy(), 2, 1000),
         (RandomPolicy(0.12), 3, 600), (HeuristicPolicy(), 4, 800), (RandomPolicy(0.12), 5, 600),
         (HeuristicPolicy(), 6, 1200), (RandomPolicy(0.12), 7, 600)]


@pytest.fixture(scope="module")
def real_games(game):
    """[(states, actions, score, frames (T, 10), transitions)] for GAMES."""
    out = []
    for policy, seed, max_frames in GAMES:
        states, actions, score = record_episode(game, policy, seed=seed, max_frames=max_frames)
        frames = SPEC.encode_episode(states, actions).reshape(-1, SPEC.tokens_per_frame)
        out.append((states, actions, score, frames, check_game(frames, actions)))
    return out


@pytest.fixture(scope="module")
def episode(game):
    """A 400-frame heuristic game to edit: (states, actions, frames (T, 10))."""
    states, actions, _ = record_episode(game, HeuristicPolicy(), seed=0, max_frames=400)
    assert len(states) == 400 and sum(s.respawn for s in states) >= 5
    return states, actions, SPEC.encode_episode(states, actions).reshape(-1, SPEC.tokens_per_frame)


def broken_at(frames, actions, t: int) -> set[str]:
    """The rules broken by the transition into frame t (only the frames up to t are checked)."""
    assert all(SPEC.is_well_formed(frame) for frame in frames[:t + 1]), "an edit made an illegal token"
    transition = check_game(frames[:t + 1], actions[:t + 1])[t - 1]
    return {rule for rule in RULES if transition.broken[rule]}


def hide(frame, k: int) -> None:
    frame[POS[f"pipe{k}_marker"]] = HIDDEN
    frame[POS[f"pipe{k}_x"]] = SPEC.hidden_id("pipe_x")
    frame[POS[f"pipe{k}_gap_y"]] = SPEC.hidden_id("gap_y")


def quiet_frame(states, lo: int, hi: int, x_range: tuple[float, float]) -> int:
    """A frame t in [lo, hi) with no respawn in t-3..t+1 and slot 0's pipe x in x_range (both slots visible)."""
    for t in range(lo, hi):
        if (not any(s.respawn for s in states[t - 3:t + 2]) and all(states[t].visible)
                and x_range[0] < states[t].pipe_x[0] < x_range[1]):
            return t
    raise AssertionError(f"no quiet frame in [{lo}, {hi}) with pipe 0 in {x_range}")


def respawn_frames(states) -> list[int]:
    return [t for t, s in enumerate(states) if s.respawn]


# ---- real frames ---------------------------------------------------------------------------------------------------


def test_real_frames_break_no_rule(real_games):
    transitions = [tr for *_, trs in real_games for tr in trs]
    assert len(transitions) > 2000
    for rule in RULES:
        assert not any(tr.broken[rule] for tr in transitions), f"a real frame broke rule {rule!r}"
    deaths = [tr for tr in transitions if tr.done]
    assert len(deaths) >= 6, "most of the games should end in a death"
    assert all(tr.can_collide for tr in deaths), "a real death without a possible collision"
    assert not any(tr.must_collide and not tr.done for tr in transitions), "a certain collision without a death"
    assert sum(tr.respawn for tr in transitions) > 50
    assert sum(len(tr.new_gaps) for tr in transitions) > 50
    assert {gap for tr in transitions for gap in tr.new_gaps} <= set(SPEC.to_bins("gap_y", GAP_CENTRES).tolist())


def test_real_events_match_the_env(real_games):
    for states, _, score, _, transitions in real_games:
        assert [tr.respawn for tr in transitions] == [s.respawn for s in states[1:]]
        assert [tr.respawn_token for tr in transitions] == [s.respawn for s in states[1:]]
        assert [tr.done for tr in transitions] == [s.done for s in states[1:]]
        assert sum(tr.passed for tr in transitions) == score
    assert sum(score for _, _, score, _, _ in real_games) > 30, "the games should score pipes"


# ---- each rule fails on frames edited to break it ------------------------------------------------------------------


def test_bird_rule_breaks_on_a_rise_without_a_flap(episode):
    states, actions, frames = episode
    t = next(t for t in range(100, 400) if actions[t - 1] == NOOP and 100 < states[t].bird_y < 300)
    edited = frames.copy()
    edited[t, POS["bird_y"]] -= 4  # 15 px higher than the game put it, with no flap
    assert broken_at(frames, actions, t) == set()
    assert broken_at(edited, actions, t) == {"bird"}


def test_bird_rule_breaks_on_a_fall_faster_than_gravity(episode):
    states, actions, frames = episode
    t = next(t for t in range(100, 400) if 100 < states[t].bird_y < 300)
    edited = frames.copy()
    edited[t, POS["bird_y"]] += 6  # 22 px lower: more than the top speed of 10 px a frame beyond the real move
    assert broken_at(edited, actions, t) == {"bird"}


def test_pipe_speed_rule_breaks_when_the_pipes_jump(episode):
    states, actions, frames = episode
    t = quiet_frame(states, 100, 400, (20.0, 150.0))
    assert not is_respawn(frames[t], frames[t - 1])
    edited = frames.copy()
    edited[t, POS["pipe0_x"]] -= 3  # both pipes 8 px further left than 4 px a frame, their spacing kept
    edited[t, POS["pipe1_x"]] -= 3
    assert broken_at(frames, actions, t) == set()
    assert broken_at(edited, actions, t) == {"pipe_speed"}


def test_pipe_spacing_rule_breaks_on_an_illegal_distance(episode):
    states, actions, frames = episode
    t = respawn_frames(states)[2]  # slot 1 shows a new pipe here, so only its distance to pipe 0 is checked
    edited = frames.copy()
    edited[t, POS["pipe1_x"]] -= 10  # 27 px closer to pipe 0 than any legal spacing
    assert broken_at(frames, actions, t) == set()
    assert broken_at(edited, actions, t) == {"pipe_spacing"}


def test_settled_gap_rule_breaks_when_a_gap_moves(episode):
    states, actions, frames = episode
    t = quiet_frame(states, 100, 400, (0.0, 200.0))
    for k in range(2):
        edited = frames.copy()
        edited[t, POS[f"pipe{k}_gap_y"]] += 1 if edited[t, POS[f"pipe{k}_gap_y"]] < SPEC.hidden_id("gap_y") - 1 else -1
        assert broken_at(edited, actions, t) == {"settled_gap"}, f"slot {k}"
    assert broken_at(frames, actions, t) == set()


def test_new_gap_rule_breaks_on_an_off_grid_gap(episode):
    states, actions, frames = episode
    legal = set(SPEC.to_bins("gap_y", GAP_CENTRES).tolist())
    t = respawn_frames(states)[2]
    edited = frames.copy()
    gap = int(edited[t, POS["pipe1_gap_y"]]) - SPEC.offsets["gap_y"]
    assert gap in legal
    off = gap + 3 if gap + 3 < SPEC.field_named("gap_y").bins else gap - 3
    assert off not in legal
    edited[t, POS["pipe1_gap_y"]] = SPEC.offsets["gap_y"] + off
    assert broken_at(frames, actions, t) == set()
    assert broken_at(edited, actions, t) == {"new_gap"}


def test_respawn_timing_breaks_on_an_early_respawn(episode):
    states, actions, frames = episode
    t = quiet_frame(states, 100, 400, (60.0, 150.0))
    s = states[t]
    # A well-formed recycling frame (slot 0 takes slot 1's pipe, slot 1 hidden, the token says yes), but slot 0's
    # pipe is mid-screen, far from x = -52.
    early = FlappyState(s.bird_y, (True, False), (s.pipe_x[1], NAN), (s.gap_y[1], NAN), respawn=True, done=False)
    edited = frames.copy()
    edited[t] = SPEC.encode_frame(early, actions[t])
    assert is_respawn(edited[t], edited[t - 1])
    assert broken_at(frames, actions, t) == set()
    assert broken_at(edited, actions, t) == {"respawn_timing"}


def test_respawn_timing_breaks_when_a_due_respawn_is_missing(episode):
    states, actions, frames = episode
    t = respawn_frames(states)[2]
    before = states[t - 1]
    assert before.pipe_x[0] - 4 < -52, "slot 0's pipe leaves the screen on this frame"
    # The pipes just move on: slot 0 keeps its pipe (its x clips to the lowest bin), no recycling, token no.
    kept = FlappyState(states[t].bird_y, (True, True), (before.pipe_x[0] - 4, before.pipe_x[1] - 4), before.gap_y,
                       respawn=False, done=False)
    edited = frames.copy()
    edited[t] = SPEC.encode_frame(kept, actions[t])
    assert not is_respawn(edited[t], edited[t - 1])
    assert broken_at(frames, actions, t) == set()
    assert "respawn_timing" in broken_at(edited, actions, t)


def test_respawn_token_rule_breaks_when_the_token_lies(episode):
    states, actions, frames = episode
    t = respawn_frames(states)[2]
    edited = frames.copy()
    assert edited[t, POS["respawn"]] == YES
    edited[t, POS["respawn"]] = NO  # a recycling frame that says no
    assert broken_at(edited, actions, t) == {"respawn_token"}
    t = quiet_frame(states, 100, 400, (0.0, 200.0))
    edited = frames.copy()
    assert edited[t, POS["respawn"]] == NO
    edited[t, POS["respawn"]] = YES  # a plain frame that says yes
    assert broken_at(frames, actions, t) == set()
    assert broken_at(edited, actions, t) == {"respawn_token"}


def test_visibility_breaks_when_a_shown_pipe_vanishes(episode):
    states, actions, frames = episode
    t = quiet_frame(states, 100, 400, (0.0, 200.0))
    for k in range(2):  # slot 0 must always show a pipe; slot 1's pipe may not vanish
        edited = frames.copy()
        hide(edited[t], k)
        assert broken_at(edited, actions, t) == {"visibility"}, f"slot {k}"
    assert broken_at(frames, actions, t) == set()


def test_visibility_breaks_when_slot1_appears_mid_screen(episode):
    states, actions, frames = episode
    t = 10
    s = states[t]
    assert not states[t - 1].visible[1] and not s.visible[1], "slot 1 is hidden in the first frames"
    shown = FlappyState(s.bird_y, (True, True), (s.pipe_x[0], 200.0), (s.gap_y[0], GAP_CENTRES[2]), respawn=False,
                        done=False)
    edited = frames.copy()
    edited[t] = SPEC.encode_frame(shown, actions[t])
    assert broken_at(frames, actions, t) == set()
    assert "visibility" in broken_at(edited, actions, t)


# ---- deaths against the frame's geometry ---------------------------------------------------------------------------


def step_once(before: FlappyState, after: FlappyState, action: int = NOOP):
    checker = RuleChecker(SPEC)
    checker.start(SPEC.encode_frame(before, NOOP)[:STATE])
    return checker.step(action, SPEC.encode_frame(after, NOOP)[:STATE])


def one_pipe(bird_y: float, x: float, gap: float, done: bool) -> FlappyState:
    return FlappyState(bird_y, (True, False), (x, NAN), (gap, NAN), respawn=False, done=done)


def test_a_death_far_from_pipes_and_ground_cannot_collide():
    # The bird mid-gap at y 180 (gap 130..230), the only pipe at x 200, far right of the bird (x 57..91).
    tr = step_once(one_pipe(180.0, 204.0, 180.0, False), one_pipe(181.0, 200.0, 180.0, True))
    assert not any(tr.broken.values())
    assert tr.done and not tr.can_collide and not tr.must_collide
    # The same death on the ground is possible.
    rest = GROUND_Y - PLAYER_HEIGHT
    tr = step_once(one_pipe(rest - 5, 204.0, 180.0, False), one_pipe(rest, 200.0, 180.0, True))
    assert tr.done and tr.can_collide


def test_a_bird_inside_a_pipe_must_collide():
    # The pipe at x 50 overlaps the bird (x 57..91); the bird at y 5 is far above the gap's top at 130.
    tr = step_once(one_pipe(4.0, 54.0, 180.0, False), one_pipe(5.0, 50.0, 180.0, False))
    assert not tr.done and tr.can_collide and tr.must_collide
    # In the gap's middle the same pipe cannot touch it.
    tr = step_once(one_pipe(168.0, 54.0, 180.0, False), one_pipe(169.0, 50.0, 180.0, False))
    assert not tr.can_collide and not tr.must_collide


# ---- the env's constants -------------------------------------------------------------------------------------------


def test_pipe_spacings_are_the_distances_on_real_frames(real_games):
    seen = {round(s.pipe_x[1] - s.pipe_x[0], 6) for states, *_ in real_games for s in states if all(s.visible)}
    assert seen == set(pipe_spacings()) == set(SPACINGS)
    assert pipe_spacings() == pytest.approx((144.0, 164.0, 165.6))
    # The second pipe (432) reaches the right edge after 36 frames: only then is a distance counted.
    assert pipe_spacings(30) == () and pipe_spacings(40) == (144.0,)


def test_bird_step_flap_gravity_and_ground():
    y, vel = bird_step(np.array([100.0, -47.0, -48.0, -60.0]), np.array([5.0, 5.0, 5.0, 5.0]), flap=True)
    assert vel.tolist() == [-9, -9, 6, 6]  # a flap only while y > -48; otherwise gravity
    assert y.tolist() == [91, -56, -42, -54]
    y, vel = bird_step(np.full(4, 100.0), np.array([-9.0, 0.0, 9.0, 10.0]), flap=False)
    assert vel.tolist() == [-8, 1, 10, 10]  # gravity adds 1 up to 10
    assert y.tolist() == [92, 101, 110, 110]
    rest = GROUND_Y - PLAYER_HEIGHT
    y, vel = bird_step(np.array([375.0, rest, 300.0]), np.array([10.0, 10.0, -9.0]), flap=False)
    assert y.tolist() == pytest.approx([rest, rest, 292.0])  # the ground stops the bird


def test_bird_step_matches_the_env(game):
    env = game.env.unwrapped
    ignored_flaps = steps = 0
    for seed, flap_prob in [(0, 0.35), (1, 0.2), (2, 0.1), (3, 0.0)]:
        rng = np.random.default_rng(seed)
        game.reset(seed)
        while not game.done:
            y, vel = float(env._player_y), float(env._player_vel_y)
            action = FLAP if rng.random() < flap_prob else NOOP
            ignored_flaps += action == FLAP and y <= -48
            new_y, new_vel = bird_step(np.array([y]), np.array([vel]), flap=action == FLAP)
            game.step(action)
            assert new_y[0] == pytest.approx(env._player_y), (seed, steps)
            if not game.done:  # the env zeroes the velocity on a crash
                assert new_vel[0] == env._player_vel_y, (seed, steps)
            steps += 1
    assert steps > 100 and ignored_flaps > 0, "the games should reach the flap ceiling"


def test_the_rules_guess_a_real_birds_next_bin(real_games):
    """`next_bird_bin`, the rules-only reference for teacher-forced bird_y: on real games the rules,
    knowing the frames so far and the actions, name the next bird_y bin nearly always; with the action swapped they
    mostly miss (a flap moves the bird 10-19 px against a 3.75 px bin), so the guess reads the action and the
    motion, not the last bin."""
    from worldmodels.flappy.evaluate import rules_bird_hits

    hits, swapped = [], []
    for *_, frames, _ in real_games:
        hits += rules_bird_hits(frames)
        flipped = frames.copy()
        flipped[:, -1] = 2 * SPEC.offsets["action"] + 1 - flipped[:, -1]  # noop <-> flap
        swapped += rules_bird_hits(flipped)
    assert len(hits) > 3000 and np.mean(hits) >= 0.99
    assert np.mean(swapped) < 0.5, (np.mean(hits), np.mean(swapped))
