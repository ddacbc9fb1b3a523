"""The real game's rules, checked on token frames: does a dream move, spawn, score and die as the game would?

A token frame only says which bin each value lies in, so a check cannot compare a dreamed value with "the" true one.
Instead `RuleChecker` keeps, for every object, the set of true values that are consistent with the frames seen so far
under the game's own rules, and a transition breaks a rule when no value of that set survives it (the set then starts
afresh from the new frame). Real frames therefore never break a rule (the true value is always in the set), and a
dream breaks one exactly when no game could have shown its frames. The rules, with the game's constants read from
the installed `flappy_bird_gymnasium`:

* `bird`: the bird's y is an integer moved by its velocity: a flap (while y > -48) sets the velocity to -9, otherwise
  gravity adds 1 up to 10, and the ground stops it. Kept as the set of (y, velocity) pairs in the frame's bin.
* `pipe_speed`: a pipe moves exactly 4 px left a frame. Kept as an x interval per pipe.
* `pipe_spacing`: the two slots' pipes are a legal distance apart (the distances the game's pipe loop makes).
* `settled_gap`: a pipe's gap never changes after the pipe appeared (the same bin).
* `new_gap`: a new pipe's gap is one of the game's 8 heights.
* `respawn_timing`: slot 0's pipe is recycled exactly when it moves past x = -52 (no sooner, no later).
* `respawn_token`: the respawn token says yes exactly on a recycling frame.
* `visibility`: slot 0 always shows a pipe; slot 1 turns visible only at the right edge or on a recycling frame,
  and a shown pipe never vanishes otherwise.

Which pipe a slot shows follows `decoding.rules` (a recycling frame is one where slot 0's x bin grew by at least
`pipe_x.bins // 4`; then slot 0 shows what slot 1 showed, and slot 1 a new pipe).

Deaths against the frame's own geometry: a frame `can_collide` when some consistent bird and pipe position overlap
(the bird's box against a pipe outside its gap, or the ground, as the game's crash check tests them), and
`must_collide` when every one does. A death without a possible collision, or a certain collision without a death,
is a dream the game could not have shown (on real frames neither happens).

Library module: `RuleChecker(spec).check(frames, actions)`; `python -m pytest tests/flappy/test_physics.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from flappy_bird_gymnasium.envs.constants import (
    PIPE_VEL_X,
    PIPE_WIDTH,
    PLAYER_ACC_Y,
    PLAYER_FLAP_ACC,
    PLAYER_HEIGHT,
    PLAYER_MAX_VEL_Y,
    PLAYER_WIDTH,
)

from worldmodels.flappy.decoding.rules import is_respawn
from worldmodels.flappy.game import BIRD_X, GAP_TOP_MAX, GAP_TOP_MIN, GROUND_Y, PIPE_GAP, SCREEN_WIDTH
from worldmodels.flappy.tokens import SPEC, TokenSpec

RULES = ("bird", "pipe_speed", "pipe_spacing", "settled_gap", "new_gap", "respawn_timing", "respawn_token",
         "visibility")
FLAP_CEILING = -2 * PLAYER_HEIGHT  # a flap is ignored unless y > this
RECYCLE_BELOW = -PIPE_WIDTH  # a pipe whose x drops below this is recycled
RECYCLE_X = SCREEN_WIDTH + PIPE_WIDTH + SCREEN_WIDTH * 0.2  # where the env puts a recycled pipe
GAP_CENTRES = tuple(float(top + PIPE_GAP / 2) for top in range(GAP_TOP_MIN, GAP_TOP_MAX + 1, 10))
LEGAL_GAP_BINS = frozenset(SPEC.to_bins("gap_y", GAP_CENTRES).tolist())  # the 8 heights' gap_y bins
EPS = 1e-6


def pipe_spacings(frames: int = 2000) -> tuple[float, ...]:
    """The distances between the two leftmost pipes that the game's pipe loop makes (its x logic alone: the three
    pipes start at 288, 432 and 576, move 4 px a frame and are recycled to RECYCLE_X past x = -52)."""
    xs, seen = [SCREEN_WIDTH, SCREEN_WIDTH * 1.5, SCREEN_WIDTH * 2.0], set()
    for _ in range(frames):
        xs = [x + PIPE_VEL_X for x in xs]
        xs = [RECYCLE_X if x < RECYCLE_BELOW else x for x in xs]
        a, b = sorted(xs)[:2]
        if b <= SCREEN_WIDTH:
            seen.add(round(b - a, 6))
    return tuple(sorted(seen))


SPACINGS = pipe_spacings()


def bird_step(y: np.ndarray, vel: np.ndarray, flap: bool) -> tuple[np.ndarray, np.ndarray]:
    """The env's bird update for arrays of (y, velocity) hypotheses."""
    flapped = np.full(y.shape, bool(flap)) & (y > FLAP_CEILING)
    vel = np.where(flapped, PLAYER_FLAP_ACC, vel)
    vel = np.where(~flapped & (vel < PLAYER_MAX_VEL_Y), vel + PLAYER_ACC_Y, vel)
    return y + np.minimum(vel, GROUND_Y - y - PLAYER_HEIGHT), vel


@dataclass
class Pipe:
    lo: float  # x interval [lo, hi) consistent with the frames so far
    hi: float
    gap: int  # the gap bin


@dataclass
class Transition:
    """What one frame did, by the game's rules: the rules it broke, the events it showed."""

    broken: dict[str, bool]
    respawn: bool  # slot 0's pipe was recycled (by the geometry)
    respawn_token: bool
    new_gaps: list[int]  # gap bins of the pipes that appeared
    passed: int  # pipes the bird passed (the game's score rule)
    done: bool
    can_collide: bool
    must_collide: bool


@dataclass
class RuleChecker:
    """Follows one game's frames (state tokens, 9 per frame) and the actions between them."""

    spec: TokenSpec = SPEC
    bird: tuple[np.ndarray, np.ndarray] = field(init=False)
    pipes: list[Pipe | None] = field(init=False)

    def __post_init__(self) -> None:
        s = self.spec
        self._pos = {slot.name: i for i, slot in enumerate(s.frame)}
        self._visible = s.label_id("marker", "visible")
        self._yes = {name: s.label_id(name, "yes") for name in ("respawn", "done")}
        self._legal_gaps = set(s.to_bins("gap_y", GAP_CENTRES).tolist())  # this spec's bins (LEGAL_GAP_BINS: SPEC's)
        self.previous: list[int] | None = None

    # ---- reading a frame -----------------------------------------------------------------------------------------

    def _interval(self, name: str, token: int) -> tuple[float, float]:
        f = self.spec.field_named(name)
        local = token - self.spec.offsets[name]
        lo = f.pixel_range[0] + local * self.spec.bin_width(name)
        # The top bin also holds the range's upper end (binning clips it there).
        return lo, lo + self.spec.bin_width(name) + (2 * EPS if local == f.bins - 1 else 0.0)

    def _shown(self, frame, k: int) -> bool:
        return frame[self._pos[f"pipe{k}_marker"]] == self._visible

    def _fresh_bird(self, frame) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self._interval("bird_y", frame[self._pos["bird_y"]])
        ys = np.arange(np.ceil(lo - EPS), hi, dtype=np.float64)
        resting = GROUND_Y - PLAYER_HEIGHT  # where the ground stops the bird (not an integer)
        ys = np.append(ys, resting) if lo <= resting < hi else ys
        vels = np.arange(PLAYER_FLAP_ACC, PLAYER_MAX_VEL_Y + 1, dtype=np.float64)
        return np.repeat(ys, vels.size), np.tile(vels, ys.size)

    def _fresh_pipe(self, frame, k: int) -> Pipe:
        lo, hi = self._interval("pipe_x", frame[self._pos[f"pipe{k}_x"]])
        return Pipe(lo, hi, int(frame[self._pos[f"pipe{k}_gap_y"]]) - self.spec.offsets["gap_y"])

    # ---- following a game ----------------------------------------------------------------------------------------

    def start(self, frame) -> None:
        frame = [int(t) for t in frame]
        self.previous = frame
        self.bird = self._fresh_bird(frame)
        self.pipes = [self._fresh_pipe(frame, k) if self._shown(frame, k) else None for k in range(2)]

    def step(self, action: int, frame) -> Transition:
        """The frame that `action` (taken after the previous frame) led to."""
        frame, previous = [int(t) for t in frame], self.previous
        broken = dict.fromkeys(RULES, False)
        # The bird: advance every hypothesis, keep those in the new bin.
        ys, vels = bird_step(*self.bird, flap=action == 1)
        lo, hi = self._interval("bird_y", frame[self._pos["bird_y"]])
        keep = (ys >= lo - EPS) & (ys < hi - EPS)
        if not keep.any():
            broken["bird"] = True
            self.bird = self._fresh_bird(frame)
        else:
            self.bird = (ys[keep], vels[keep])
        # The pipes: which pipe each slot shows, then move the intervals.
        respawn = is_respawn(frame, previous, self.spec)
        moved = [None if p is None else Pipe(p.lo + PIPE_VEL_X, p.hi + PIPE_VEL_X, p.gap) for p in self.pipes]
        leaving = moved[0]
        if leaving is not None:
            if respawn and leaving.lo >= RECYCLE_BELOW:  # recycled, but no consistent x had left the screen
                broken["respawn_timing"] = True
            if not respawn and leaving.hi <= RECYCLE_BELOW + EPS:  # every consistent x has left: it must recycle
                broken["respawn_timing"] = True
        sources = [moved[1], None] if respawn else moved
        pipes, new_gaps = [], []
        for k in range(2):
            shown, source = self._shown(frame, k), sources[k]
            if not shown:
                if k == 0 or source is not None:  # slot 0 always shows a pipe; a shown pipe does not vanish
                    broken["visibility"] = True
                pipes.append(None)
                continue
            seen = self._fresh_pipe(frame, k)
            if source is None:  # a new pipe
                new_gaps.append(seen.gap)
                broken["new_gap"] |= seen.gap not in self._legal_gaps
                # slot 1 turns visible when its pipe crosses the right edge: x in (288 - 4, 288]
                entering = seen.lo <= SCREEN_WIDTH + EPS and seen.hi > SCREEN_WIDTH + PIPE_VEL_X + EPS
                if k == 0 or (not respawn and not entering):
                    broken["visibility"] = True
                pipes.append(seen)
                continue
            lo, hi = max(source.lo, seen.lo), min(source.hi, seen.hi)
            if lo >= hi + EPS:  # no x 4 px left of a consistent one lies in the new bin
                broken["pipe_speed"] = True
                lo, hi = seen.lo, seen.hi
            hi = max(hi, lo + EPS)
            broken["settled_gap"] |= seen.gap != source.gap
            pipes.append(Pipe(lo, hi, seen.gap))
        if pipes[0] is not None and pipes[1] is not None:
            low, high = pipes[1].lo - pipes[0].hi, pipes[1].hi - pipes[0].lo
            broken["pipe_spacing"] = not any(low - EPS <= s <= high + EPS for s in SPACINGS)
        respawn_token = frame[self._pos["respawn"]] == self._yes["respawn"]
        broken["respawn_token"] = respawn_token != respawn
        # The score: the env scores a pipe whose centre is in [the bird's centre - 4, the bird's centre] before it
        # moves, i.e. a pipe whose x crossed `mid - 4` on this frame (centres of the consistent intervals).
        passed = 0
        mid = BIRD_X + PLAYER_WIDTH / 2 - PIPE_WIDTH / 2 + PIPE_VEL_X
        for k, source in enumerate(sources):
            if source is not None and pipes[k] is not None:
                before = (source.lo + source.hi) / 2 - PIPE_VEL_X
                after = (pipes[k].lo + pipes[k].hi) / 2
                passed += int(before > mid >= after)
        can, must = self.collisions(pipes)
        self.pipes, self.previous = pipes, frame
        return Transition(broken, respawn, respawn_token, new_gaps, passed,
                          frame[self._pos["done"]] == self._yes["done"], can, must)

    def next_bird_bin(self, action: int) -> int:
        """The bird_y id that most of the (y, velocity) hypotheses consistent with the frames so far reach after
        `action`, each hypothesis counted alike: a rules-only reference that `evaluate` prints beside a model's
        teacher-forced bird_y accuracy. Not a ceiling: it has no prior on the velocity, which a window's first frames
        leave open, where a model can learn what velocities the data's birds have."""
        ys, _ = bird_step(*self.bird, flap=action == 1)
        bins, counts = np.unique(self.spec.to_bins("bird_y", ys), return_counts=True)
        return int(self.spec.offsets["bird_y"] + bins[counts.argmax()])

    def collisions(self, pipes: list[Pipe | None]) -> tuple[bool, bool]:
        """(some consistent state collides, every one does): the env's crash test (the ground, then each pipe's
        upper and lower boxes against the bird's; pygame boxes hold integer corners, so an x is taken +-1 px)."""
        ys = np.unique(self.bird[0])
        ground = ys + PLAYER_HEIGHT >= GROUND_Y - 1
        can, must = ground.copy(), ground.copy()
        bird_left, bird_right = BIRD_X, BIRD_X + PLAYER_WIDTH
        for pipe in pipes:
            if pipe is None:
                continue
            lo_x, hi_x = pipe.lo - 1, pipe.hi + 1
            h_can = lo_x < bird_right and hi_x + PIPE_WIDTH > bird_left
            h_must = hi_x < bird_right and lo_x + PIPE_WIDTH > bird_left
            g_lo, g_hi = self._interval("gap_y", pipe.gap + self.spec.offsets["gap_y"])
            top_lo, top_hi = g_lo - PIPE_GAP / 2, g_hi - PIPE_GAP / 2  # the gap's top edge
            out_can = (ys < top_hi) | (ys + PLAYER_HEIGHT > top_lo + PIPE_GAP)
            out_must = (ys < top_lo) | (ys + PLAYER_HEIGHT > top_hi + PIPE_GAP)
            can |= h_can & out_can
            must |= h_must & out_must
        return bool(can.any()), bool(must.all())


def check_game(frames, actions, spec: TokenSpec = SPEC) -> list[Transition]:
    """Every transition of one game: `frames` (T, 9+) state tokens, `actions[t]` taken after frame t."""
    frames = np.asarray(frames, np.int64)[:, :spec.state_tokens_per_frame]
    checker = RuleChecker(spec)
    checker.start(frames[0])
    return [checker.step(int(actions[t]), frames[t + 1]) for t in range(len(frames) - 1)]
