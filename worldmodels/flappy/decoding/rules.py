"""The Flappy decoding rules, which the TypeScript port (`web/src/flappy/`) follows exactly; ids, bin counts and
slot order all come from the token spec. The decoders (`decoder.py`) apply them token by token; the frame graph
(`worldmodels/flappy/frame_graph.py`) applies 3-6 to a whole frame at once from the tables `frame_rules` makes.

1. Positions. Token i of the history has absolute position `start_position + i` (start_position a multiple of 10, so
   `position % 10` is the slot). Positions are never renumbered, not even when the window slides.
2. Window. `reset` keeps the newest whole frames of the context that fit in `context` tokens and prefills them.
   A model with sliding-window attention (a `ring` backend) then never slides: its cache always holds the newest
   `context` tokens. Otherwise the window always starts on a frame boundary: before a token is fed, if the window is
   full, the oldest `slide_frames` frames are dropped and the rest is prefilled again at the same positions (the
   model's prefill graph), then the token is fed with one decode step. With `slide_before_frame=True` (the rule of
   the frame graph, `FrameGraphDecoder`, which feeds a whole frame per call) the check is made once per frame,
   before its action: if the window cannot take the frame's 10 tokens (cache length + 10 > context), it slides
   then, so a frame is never split across a slide. The two rules coincide when context % 10 == 9.
3. A step. Feed the action id (`action.start + action`). Then for slot s = 0..8 in frame order: restrict the latest
   logits to `legal_mask(s, tokens chosen so far in this frame)` (the slot's id range plus the hidden rule, so a
   malformed frame cannot be produced), choose a token, and feed it. Each step thus makes 10 decode calls (or one
   frame-graph call); the logits after the last state token (the action slot's) go unused.
4. Choice. Every slot is greedy: the legal id with the largest logit, the lowest id on a tie, except the gap_y of a
   pipe that is new in this frame, which is sampled with `uniforms[k]` for pipe slot k (see 6).
5. New pipe. Pipe slot k holds a new pipe when it is visible now and the pipe it holds was not visible in the
   previous frame. A respawn is read from the frame being generated: both frames show pipe slot 0 and its pipe_x
   bin grew by at least `pipe_x.bins // 4` (32 bins, 85 px; pipes otherwise only move left, a real respawn jumps
   ~56 bins, and a one-bin wobble of a greedy prediction must not redraw a gap). On a respawn slot k holds what the
   previous frame showed in slot k + 1 (the last slot holds a pipe never shown, so it is new); otherwise slot k holds
   what slot k showed. So: on a respawn pipe1's gap is sampled, pipe0's is copied greedily; a slot that turns
   visible gets a sampled gap.
6. Sampling: p = softmax(logits[legal] / temperature) over the legal ids in increasing id order (float64); the chosen
   id is the first whose cumulative sum exceeds u * (total), u in [0, 1). Every step consumes exactly one uniform per
   pipe slot, used or not: given as `uniforms`, else drawn from the decoder's numpy Generator, so a port given the
   same uniforms produces the same frames (up to logit ties at float32 precision).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worldmodels.flappy.tokens import SPEC, TokenSpec


@dataclass(frozen=True)
class SlotRule:
    """One state slot: its id range [start, stop); for a hideable slot its pipe's marker position and its bin count
    (ids start .. start + bins - 1 are bins, start + bins the hidden id); for a gap_y slot the pipe whose gap is
    sampled when that pipe is new."""

    start: int
    stop: int
    marker_slot: int = -1
    bins: int = 0
    gap_pipe: int = -1


@dataclass(frozen=True)
class FrameRules:
    """The decoding rules' tables (`frame_rules` builds them from a TokenSpec)."""

    vocab_size: int
    slots: tuple[SlotRule, ...]  # the state slots, in frame order
    marker_slots: tuple[int, ...]  # pipe slot k -> frame position of its marker
    x0_slot: int  # frame position of pipe slot 0's pipe_x
    hidden: int  # marker ids
    visible: int
    first_action: int  # the first action label's id (noop): the speculative next action
    respawn_dx: int  # pipe slot 0's pipe_x bin growing by at least this is a respawn (pipe_x.bins // 4)

    def check(self) -> None:
        """Every rule reads only tokens made before it (a hideable slot after its marker, a gap after the markers
        and pipe 0's x), and every sampled gap is a hideable slot with bins."""
        for s, rule in enumerate(self.slots):
            if not 0 <= rule.start < rule.stop <= self.vocab_size:
                raise ValueError(f"frame rules: slot {s} range [{rule.start}, {rule.stop}) outside the vocabulary")
            if rule.marker_slot >= s or (rule.marker_slot >= 0 and rule.start + rule.bins >= rule.stop):
                raise ValueError(f"frame rules: hideable slot {s} needs an earlier marker and bins + a hidden id")
            if rule.gap_pipe >= 0 and not (rule.marker_slot >= 0 and self.x0_slot < s
                                           and rule.gap_pipe < len(self.marker_slots)
                                           and max(self.marker_slots[:rule.gap_pipe + 1]) < s):
                raise ValueError(f"frame rules: gap slot {s} must follow its pipe's marker and pipe 0's x")
        if len({(r.start, r.bins) for r in self.slots if r.gap_pipe >= 0}) > 1:
            raise ValueError("frame rules: every gap slot must share one id range (they are sampled together)")


def greedy(logits: np.ndarray, legal: np.ndarray) -> int:
    """The legal id with the largest logit; the lowest such id on a tie."""
    ids = np.flatnonzero(legal)
    return int(ids[np.argmax(logits[ids])])


def sample_inverse_cdf(logits: np.ndarray, legal: np.ndarray, u: float, temperature: float = 1.0) -> int:
    """The first legal id (in id order) whose cumulative softmax probability exceeds u, u in [0, 1)."""
    ids = np.flatnonzero(legal)
    z = logits[ids].astype(np.float64) / temperature
    cdf = np.cumsum(np.exp(z - z.max()))
    return int(ids[min(len(ids) - 1, np.searchsorted(cdf, u * cdf[-1], side="right"))])


def pipe_is_new(pipe: int, frame_prefix, previous_frame, spec: TokenSpec = SPEC) -> bool:
    """Whether pipe slot `pipe` of the frame being generated holds a pipe that `previous_frame` did not show.
    `frame_prefix` must already hold pipe slot 0's marker and x and this pipe's marker."""
    visible, marker = spec.label_id("marker", "visible"), spec.marker_positions
    if frame_prefix[marker[pipe]] != visible:
        return False
    source = pipe + 1 if is_respawn(frame_prefix, previous_frame, spec) else pipe
    return source not in marker or previous_frame[marker[source]] != visible


def is_respawn(frame_prefix, previous_frame, spec: TokenSpec = SPEC) -> bool:
    """Rule 5's respawn test: both frames show pipe slot 0 and its pipe_x bin grew by at least pipe_x.bins // 4.
    `frame_prefix` must hold pipe slot 0's marker and x."""
    visible = spec.label_id("marker", "visible")
    marker, x0 = spec.marker_positions, pipe_x_positions(spec)[0]
    return bool(frame_prefix[marker[0]] == visible and previous_frame[marker[0]] == visible
                and frame_prefix[x0] - previous_frame[x0] >= spec.field_named("pipe_x").bins // 4)


def sampled_gaps(frames, previous_frame, spec: TokenSpec = SPEC) -> tuple[int, int]:
    """(gaps sampled, of which after a respawn) over consecutive state frames (F, 9) following `previous_frame`."""
    sampled = respawns = 0
    for frame in np.asarray(frames, np.int64).reshape(-1, spec.state_tokens_per_frame).tolist():
        new = [pipe for pipe in gap_positions(spec).values() if pipe_is_new(pipe, frame, previous_frame, spec)]
        sampled += len(new)
        respawns += len(new) * is_respawn(frame, previous_frame, spec)
        previous_frame = frame
    return sampled, respawns


def pipe_x_positions(spec: TokenSpec) -> dict[int, int]:
    return {slot.pipe: i for i, slot in enumerate(spec.frame) if slot.field == "pipe_x"}


def gap_positions(spec: TokenSpec) -> dict[int, int]:
    """Frame position of each pipe's gap_y -> pipe slot."""
    return {i: slot.pipe for i, slot in enumerate(spec.frame) if slot.field == "gap_y"}


def choose_token(slot: int, logits: np.ndarray, frame: list[int], previous_frame, uniforms: np.ndarray,
                 temperature: float, spec: TokenSpec = SPEC, choose_gap=None) -> int:
    """Rules 3-6 for one state slot: the token of frame position `slot` from the logits after the tokens before it
    (`frame`, this frame's tokens so far). `choose_gap(pipe) -> id or None`, when given, may supply a new pipe's gap
    instead of the draw (the evaluation's forced-gap rollouts; not a player rule)."""
    legal = spec.legal_mask(slot, frame)
    pipe = gap_positions(spec).get(slot)
    new = pipe is not None and pipe_is_new(pipe, frame, previous_frame, spec)
    forced = choose_gap(pipe) if new and choose_gap is not None else None
    if forced is not None:
        if not legal[forced]:
            raise ValueError(f"choose_gap: id {forced} is not a legal gap for pipe slot {pipe}")
        return int(forced)
    if new:
        return sample_inverse_cdf(logits, legal, float(uniforms[pipe]), temperature)
    return greedy(logits, legal)


def generate_state(logits_after, first_logits: np.ndarray, previous_frame, uniforms: np.ndarray,
                   temperature: float, spec: TokenSpec = SPEC, choose_gap=None) -> list[int]:
    """Rules 3-6 for one frame: `first_logits` follow the action; `logits_after(token)` feeds a chosen token and
    returns the logits after it. Returns the frame's state tokens (`choose_token` for each slot in turn)."""
    logits, frame = first_logits, []
    for slot in range(spec.state_tokens_per_frame):
        token = choose_token(slot, logits, frame, previous_frame, uniforms, temperature, spec, choose_gap)
        frame.append(token)
        logits = logits_after(token)
    return frame


def frame_rules(spec: TokenSpec = SPEC) -> FrameRules:
    """The tables the frame graph applies rules 3-6 with, read from the token spec."""
    gaps, marker = gap_positions(spec), spec.marker_positions
    slots = []
    for i, slot in enumerate(spec.frame[:spec.state_tokens_per_frame]):
        f = spec.field_named(slot.field)
        start, stop = spec.id_range(slot.field)
        hideable = f.hideable and slot.pipe in marker
        slots.append(SlotRule(start, stop, marker_slot=marker[slot.pipe] if hideable else -1,
                              bins=f.bins if hideable else 0, gap_pipe=gaps.get(i, -1)))
    return FrameRules(vocab_size=spec.vocab_size, slots=tuple(slots),
                      marker_slots=tuple(marker[k] for k in range(len(marker))), x0_slot=pipe_x_positions(spec)[0],
                      hidden=spec.label_id("marker", "hidden"), visible=spec.label_id("marker", "visible"),
                      first_action=spec.offsets["action"], respawn_dx=spec.field_named("pipe_x").bins // 4)


def frame_guess(history, spec: TokenSpec = SPEC) -> np.ndarray:
    """The frame graph's first guess of the next state frame from the three newest in `history` (whole frames,
    ending with a state frame). Only the number of passes depends on it, never the frame. Every token repeats
    except the moving ones, which continue (within their bins) as they moved: a pipe shown in all three frames by
    the step it took two frames ago (pipes move a fixed 1.5 bins a frame, so their steps alternate 1, 2, 1, ...),
    the bird by the mean of its last two steps (it accelerates), rounded half up. On held-out episodes of the
    CPU profile's data that guesses pipe 0's x right 95% of the time and the bird's y 55%."""
    n, per = spec.tokens_per_frame, spec.state_tokens_per_frame
    history = np.asarray(history[-(per + 2 * n):], np.int64)  # the tail only: a game's history keeps growing
    frames = [history[len(history) - per - k * n:len(history) - k * n] for k in range(3)
              if len(history) >= per + k * n]  # the newest first
    guess = frames[0].copy()
    if len(frames) < 3:
        return guess
    x, x1, x2 = frames
    visible = spec.label_id("marker", "visible")
    bird = spec.position_of("bird_y")
    steps = {bird: np.floor((x[bird] - x2[bird]) / 2 + 0.5)}
    for k, slot in pipe_x_positions(spec).items():
        if x[spec.marker_positions[k]] == x1[spec.marker_positions[k]] == x2[spec.marker_positions[k]] == visible:
            steps[slot] = x1[slot] - x2[slot]
    for slot, step in steps.items():
        start = spec.id_range(spec.frame[slot].field)[0]
        guess[slot] = np.clip(x[slot] + step, start, start + spec.field_named(spec.frame[slot].field).bins - 1)
    return guess
