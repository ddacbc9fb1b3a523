"""Reference token decoding for the Flappy world model: what the browser's Web Worker does, in Python.

    decoder = FrameDecoder(TorchBackend(model))              # or OrtBackend.from_files("decode.onnx", "prefill.onnx")
    decoder.reset(context_tokens)                            # whole frames, ending with a 9-token state (no action)
    while not decoder.done:
        state_tokens = decoder.step(action)                  # (9,) the next frame; render it, read the next action

    decoder = FrameGraphDecoder(OrtFrameBackend.from_files("frame.onnx", "prefill.onnx"))  # one call per frame
                                                                 # (ring=True for a sliding-window export)

The same `FrameDecoder` drives PyTorch (`TorchBackend`) and the exported ONNX graphs (`OrtBackend`), so a test can
pin one to the other; `decode_full_recompute` is the no-cache reference (a full forward per token) that pins the
KV-cache bookkeeping and serves as the benchmark's baseline. `FrameGraphDecoder` applies rules 3-6 inside one graph
call per frame (`worldmodels/nets/frame_graph.py`; `TorchFrameBackend`, `OrtFrameBackend`) with rule 2's
`slide_before_frame`, and makes the frames `FrameDecoder(..., slide_before_frame=True)` makes.

The rules, which the TypeScript port follows exactly (ids, bin counts and slot order all come from the token spec):

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

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from worldmodels.data.flappy_tokens import SPEC, TokenSpec
from worldmodels.nets.frame_graph import FRAME_OUTPUTS, FrameGraph, FrameRules, SlotRule
from worldmodels.nets.transformer import DECODE_OUTPUTS, PREFILL_OUTPUTS, TokenTransformer

State = Any  # a backend's cache: torch tensors or numpy arrays, opaque to the decoder


class Backend(Protocol):
    """One model behind a fixed-size KV cache of `context` tokens, batch 1, logits as float32 numpy (vocab,).
    `ring`: the model's sliding-window attention keeps the cache as a ring that never slides (the window is always
    the newest `context` tokens); otherwise (or when a backend has no `ring`) the cache holds a frame-aligned
    window that the decoder slides."""

    context: int
    ring: bool

    def prefill(self, tokens: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, State]:
        """A fresh cache holding `tokens` (T <= context) at `positions`; the logits after the last of them."""

    def step(self, token: int, position: int, state: State) -> tuple[np.ndarray, State]:
        """Append one token (the window must have room); the logits after it."""


class TorchBackend:
    """A TokenTransformer, through its `prefill` and `decode_step` (the code the ONNX graphs are traced from)."""

    def __init__(self, model: TokenTransformer):
        self.model = model.eval()
        self.context, self.ring = model.cfg.context, model.cfg.sliding_window
        self.device = model.embed.weight.device

    def _tensor(self, values) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, np.int64), device=self.device)

    @torch.no_grad()
    def prefill(self, tokens, positions):
        logits, k, v, length = self.model.prefill(self._tensor(tokens)[None], self._tensor(positions)[None])
        return logits[0, -1].float().cpu().numpy(), (k, v, length)

    @torch.no_grad()
    def step(self, token, position, state):
        k, v, length = state
        logits, k, v = self.model.decode_step(self._tensor([[token]]), self._tensor([position]), k, v, length)
        return logits[0].float().cpu().numpy(), (k, v, cache_length(length, 1, self))


class OrtBackend:
    """The graphs written by `worldmodels.nets.transformer.export_onnx`, run with onnxruntime."""

    def __init__(self, decode_session, prefill_session, ring: bool = False):
        self.decode, self.prefill_session, self.ring = decode_session, prefill_session, ring
        # The decode graph's k_cache is (layers, batch, heads, context, head_dim), the frame graph's k_cache_0 is
        # layer 0's (1, heads, context, head_dim); only batch may be dynamic.
        shapes = {i.name: i.shape for i in decode_session.get_inputs()}
        self.context = int(shapes["k_cache"][3] if "k_cache" in shapes else shapes["k_cache_0"][2])

    @classmethod
    def from_files(cls, decode_path: str | Path, prefill_path: str | Path, threads: int = 1,
                   ring: bool = False) -> OrtBackend:
        """`ring`: the exported model's `sliding_window` (the manifest's decoding.sliding_window)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        sessions = [ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
                    for p in (decode_path, prefill_path)]
        return cls(*sessions, ring=ring)

    def prefill(self, tokens, positions):
        feeds = {"tokens": np.asarray(tokens, np.int64)[None], "positions": np.asarray(positions, np.int64)[None]}
        logits, k, v, length = self.prefill_session.run(PREFILL_OUTPUTS, feeds)
        return logits[0, -1], (k, v, length)

    def step(self, token, position, state):
        k, v, length = state
        feeds = {"tokens": np.array([[token]], np.int64), "position": np.array([position], np.int64),
                 "k_cache": k, "v_cache": v, "cache_len": length}
        logits, k, v = self.decode.run(DECODE_OUTPUTS, feeds)
        return logits[0], (k, v, cache_length(length, 1, self))


def cache_length(length, added: int, backend: Backend):
    """Filled slots after `added` more tokens (numpy or torch): the ring never holds more than `context`."""
    grown = length + added
    if not backend.ring:
        return grown
    return grown.clamp(max=backend.context) if isinstance(grown, torch.Tensor) else np.minimum(grown, backend.context)


# ---- the choice rules (4-6 in the module docstring) -------------------------------------------------------------

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
    marker, x0 = spec.marker_positions, _pipe_x_positions(spec)[0]
    return bool(frame_prefix[marker[0]] == visible and previous_frame[marker[0]] == visible
                and frame_prefix[x0] - previous_frame[x0] >= spec.field_named("pipe_x").bins // 4)


def sampled_gaps(frames, previous_frame, spec: TokenSpec = SPEC) -> tuple[int, int]:
    """(gaps sampled, of which after a respawn) over consecutive state frames (F, 9) following `previous_frame`."""
    sampled = respawns = 0
    for frame in np.asarray(frames, np.int64).reshape(-1, spec.state_tokens_per_frame).tolist():
        new = [pipe for pipe in _gap_positions(spec).values() if pipe_is_new(pipe, frame, previous_frame, spec)]
        sampled += len(new)
        respawns += len(new) * is_respawn(frame, previous_frame, spec)
        previous_frame = frame
    return sampled, respawns


def _pipe_x_positions(spec: TokenSpec) -> dict[int, int]:
    return {slot.pipe: i for i, slot in enumerate(spec.frame) if slot.field == "pipe_x"}


def _gap_positions(spec: TokenSpec) -> dict[int, int]:
    """Frame position of each pipe's gap_y -> pipe slot."""
    return {i: slot.pipe for i, slot in enumerate(spec.frame) if slot.field == "gap_y"}


def generate_state(logits_after, first_logits: np.ndarray, previous_frame, uniforms: np.ndarray,
                   temperature: float, spec: TokenSpec = SPEC) -> list[int]:
    """Rules 3-6 for one frame: `first_logits` follow the action; `logits_after(token)` feeds a chosen token and
    returns the logits after it. Returns the frame's state tokens."""
    gaps = _gap_positions(spec)
    logits, frame = first_logits, []
    for slot in range(spec.state_tokens_per_frame):
        legal = spec.legal_mask(slot, frame)
        pipe = gaps.get(slot)
        if pipe is not None and pipe_is_new(pipe, frame, previous_frame, spec):
            token = sample_inverse_cdf(logits, legal, float(uniforms[pipe]), temperature)
        else:
            token = greedy(logits, legal)
        frame.append(token)
        logits = logits_after(token)
    return frame


def _check_context(tokens, start_position: int, spec: TokenSpec) -> np.ndarray:
    tokens = np.asarray(tokens, np.int64).reshape(-1)
    n, per_frame = spec.tokens_per_frame, spec.state_tokens_per_frame
    if tokens.size % n != per_frame:
        raise ValueError(f"decoder context: {tokens.size} tokens is not whole frames ending with a {per_frame}-token "
                         f"state frame (no trailing action)")
    if start_position % n:
        raise ValueError(f"decoder context: start_position {start_position} must be a multiple of {n}")
    frames = np.append(tokens, spec.offsets["action"]).reshape(-1, n)  # a stand-in action closes the last frame
    bad = np.flatnonzero(~spec.well_formed_frames(frames))
    if bad.size:
        raise ValueError(f"decoder context: malformed frame(s) at index {bad[:5].tolist()}")
    return tokens


def _window_start(length: int, context: int, spec: TokenSpec) -> int:
    """History index of the oldest token of the newest whole frames that fit in `context` tokens."""
    n = spec.tokens_per_frame
    return -(-max(0, length - context) // n) * n


def _uniforms(uniforms, rng: np.random.Generator, spec: TokenSpec) -> np.ndarray:
    count = len(_gap_positions(spec))
    if uniforms is None:
        return rng.random(count)
    uniforms = np.asarray(uniforms, np.float64).reshape(-1)
    if uniforms.size != count or not ((uniforms >= 0) & (uniforms < 1)).all():
        raise ValueError(f"uniforms: need {count} numbers in [0, 1) (one per pipe slot), got {uniforms.tolist()}")
    return uniforms


class FrameDecoder:
    """Plays the world model frame by frame over a Backend with a sliding KV-cache window (rules in the module
    docstring). `history` is append-only: every committed token, context first. `logits` are the latest ones the
    backend returned (after the newest token); `tokens_generated` counts state tokens made since `reset`, and
    `slides` the window slides."""

    def __init__(self, backend: Backend, spec: TokenSpec = SPEC, slide_frames: int = 4, temperature: float = 1.0,
                 seed: int = 0, slide_before_frame: bool = False):
        if not 0 < slide_frames * spec.tokens_per_frame < backend.context:
            raise ValueError(f"slide_frames={slide_frames}: must drop at least one frame and fewer tokens than the "
                             f"model's context ({backend.context})")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        self.backend, self.spec = backend, spec
        self.slide_frames, self.temperature = slide_frames, temperature
        self.slide_before_frame = slide_before_frame
        self.ring = getattr(backend, "ring", False)
        self.rng = np.random.default_rng(seed)
        self._history: list[int] = []
        self.logits: np.ndarray | None = None
        self.tokens_generated = self.slides = 0

    def reset(self, context_tokens, start_position: int = 0) -> None:
        """Start from real frames: whole frames ending with a 9-token state frame; token 0 at `start_position`."""
        tokens = _check_context(context_tokens, start_position, self.spec)
        self._history, self._start = tokens.tolist(), start_position
        self._window = _window_start(len(tokens), self.backend.context, self.spec)
        self.logits, self._state = self.backend.prefill(tokens[self._window:], self._positions(self._window))
        self.tokens_generated = 0
        self.slides = 0

    def step(self, action: int, uniforms: np.ndarray | None = None) -> np.ndarray:
        """Feed `action`, generate and commit the next frame's state tokens; returns them, int64 (9,)."""
        action_id, u = self._begin_frame(action, uniforms)
        previous = self._history[-self.spec.state_tokens_per_frame:]
        first = self._feed(action_id)
        frame = generate_state(self._feed, first, previous, u, self.temperature, self.spec)
        self.tokens_generated += len(frame)
        return np.array(frame, np.int64)

    def _begin_frame(self, action: int, uniforms) -> tuple[int, np.ndarray]:
        """Check the action, take this frame's uniforms, slide first under `slide_before_frame`."""
        if not self._history:
            raise RuntimeError(f"{type(self).__name__}.step before reset(context_tokens)")
        actions = len(self.spec.field_named("action").labels)
        if action not in range(actions):
            raise ValueError(f"action must be an int in 0..{actions - 1}, got {action!r}")
        u = _uniforms(uniforms, self.rng, self.spec)
        if self.slide_before_frame and not self.ring and \
                len(self._history) - self._window + self.spec.tokens_per_frame > self.backend.context:
            self._slide()
        return self.spec.offsets["action"] + int(action), u

    def _slide(self) -> None:
        self._window += self.slide_frames * self.spec.tokens_per_frame
        _, self._state = self.backend.prefill(self._history[self._window:], self._positions(self._window))
        self.slides += 1

    def _feed(self, token: int) -> np.ndarray:
        if not self.ring and len(self._history) - self._window == self.backend.context:
            self._slide()
        self.logits, self._state = self.backend.step(token, self.position, self._state)
        self._history.append(token)
        self._follow_ring()
        return self.logits

    def _follow_ring(self) -> None:
        """The ring's window is the newest `context` tokens."""
        if self.ring:
            self._window = max(self._window, len(self._history) - self.backend.context)

    def _positions(self, first: int) -> np.ndarray:
        return np.arange(self._start + first, self._start + len(self._history), dtype=np.int64)

    @property
    def position(self) -> int:
        """Absolute position of the next token (the next action)."""
        return self._start + len(self._history)

    @property
    def history(self) -> list[int]:
        return list(self._history)

    @property
    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """The tokens in the KV cache and their absolute positions, oldest first."""
        return np.array(self._history[self._window:], np.int64), self._positions(self._window)

    @property
    def done(self) -> bool:
        """The latest frame's done token says the bird died (the model's own verdict)."""
        if not self._history:
            return False
        done_slot = self.spec.position_of("done")
        latest = self._history[len(self._history) - self.spec.state_tokens_per_frame + done_slot]
        return latest == self.spec.label_id("done", "yes")


@torch.no_grad()
def decode_full_recompute(model: TokenTransformer, context, actions, uniforms: np.ndarray | None = None,
                          slide_frames: int = 4, temperature: float = 1.0, seed: int = 0, start_position: int = 0,
                          spec: TokenSpec = SPEC, slide_before_frame: bool = False) -> np.ndarray:
    """The no-cache reference: the same rules as FrameDecoder (same window, same uniforms: `uniforms` (F, 2) or the
    Generator stream of `seed`), but every token's logits come from a full forward over the window.
    Returns the generated state tokens, int64 (F, 9)."""
    if not 0 < slide_frames * spec.tokens_per_frame < model.cfg.context:
        raise ValueError(f"slide_frames={slide_frames}: must drop at least one frame and fewer tokens than the "
                         f"model's context ({model.cfg.context})")
    model = model.eval()
    device = model.embed.weight.device
    history = _check_context(context, start_position, spec).tolist()
    window = _window_start(len(history), model.cfg.context, spec)
    rng = np.random.default_rng(seed)

    ring = model.cfg.sliding_window  # the banded forward over everything since the reset's window is the reference

    def feed(token: int) -> np.ndarray:
        nonlocal window
        if not ring and len(history) - window == model.cfg.context:
            window += slide_frames * spec.tokens_per_frame
        history.append(token)
        tokens = torch.tensor(history[window:], device=device)[None]  # (1, T)
        positions = torch.arange(start_position + window, start_position + len(history), device=device)
        return model(tokens, positions)[0][0, -1].float().cpu().numpy()

    frames = []
    for f, action in enumerate(actions):
        u = _uniforms(None if uniforms is None else uniforms[f], rng, spec)
        if slide_before_frame and not ring and len(history) - window + spec.tokens_per_frame > model.cfg.context:
            window += slide_frames * spec.tokens_per_frame
        previous = history[-spec.state_tokens_per_frame:]
        first = feed(spec.offsets["action"] + int(action))
        frames.append(generate_state(feed, first, previous, u, temperature, spec))
    return np.array(frames, np.int64).reshape(-1, spec.state_tokens_per_frame)


# ---- one graph call per frame (worldmodels/nets/frame_graph.py) -------------------------------------------------

def frame_rules(spec: TokenSpec = SPEC) -> FrameRules:
    """The tables the frame graph applies rules 3-6 with, read from the token spec."""
    gaps, marker = _gap_positions(spec), spec.marker_positions
    slots = []
    for i, slot in enumerate(spec.frame[:spec.state_tokens_per_frame]):
        f = spec.field_named(slot.field)
        start, stop = spec.id_range(slot.field)
        hideable = f.hideable and slot.pipe in marker
        slots.append(SlotRule(start, stop, marker_slot=marker[slot.pipe] if hideable else -1,
                              bins=f.bins if hideable else 0, gap_pipe=gaps.get(i, -1)))
    return FrameRules(vocab_size=spec.vocab_size, slots=tuple(slots),
                      marker_slots=tuple(marker[k] for k in range(len(marker))), x0_slot=_pipe_x_positions(spec)[0],
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
    for k, slot in _pipe_x_positions(spec).items():
        if x[spec.marker_positions[k]] == x1[spec.marker_positions[k]] == x2[spec.marker_positions[k]] == visible:
            steps[slot] = x1[slot] - x2[slot]
    for slot, step in steps.items():
        start = spec.id_range(spec.frame[slot].field)[0]
        guess[slot] = np.clip(x[slot] + step, start, start + spec.field_named(spec.frame[slot].field).bins - 1)
    return guess


def _check_room(length: int, tokens: int, backend) -> None:
    if not backend.ring and length + tokens > backend.context:
        raise ValueError(f"frame graph: the window holds {length} of {backend.context} tokens, no room for a "
                         f"{tokens}-token frame (slide first)")


class FrameBackend(Protocol):
    """A model behind a fixed-size KV cache that makes a whole frame per call (the frame graph), plus the prefill."""

    context: int
    ring: bool

    def prefill(self, tokens: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, State]:
        """As Backend.prefill."""

    def frame(self, action_id: int, position: int, state: State, previous, guess, uniforms: np.ndarray,
              temperature: float) -> tuple[np.ndarray, np.ndarray, State, int, int]:
        """Feed the action at `position` and make the frame (an ordered window must have room for all its
        tokens): (state tokens int64 (9,), logits float32 (10, vocab) after each fed token, the cache with the
        frame written into it, the passes the frame took, the next frame's first slot after the first action)."""


class TorchFrameBackend(TorchBackend):
    """`FrameGraph` in PyTorch (the module the ONNX frame graph is traced from) and the model's prefill."""

    def __init__(self, model: TokenTransformer, spec: TokenSpec = SPEC):
        super().__init__(model)
        self.graph = FrameGraph(self.model, frame_rules(spec)).eval()

    @torch.no_grad()
    def frame(self, action_id, position, state, previous, guess, uniforms, temperature):
        k, v, length = state
        _check_room(int(length.reshape(-1)[0]), self.graph.tokens_per_call, self)
        f64 = dict(dtype=torch.float64, device=self.device)
        frame, logits, k_frame, v_frame, slots, passes, next_first = self.graph(
            self._tensor([action_id]), self._tensor([position]), k, v, length, self._tensor(previous),
            self._tensor(guess), torch.as_tensor(np.asarray(uniforms, np.float64), **f64),
            torch.tensor([float(temperature)], **f64))
        index = slots[None, None, None, :, None].expand(k_frame.shape)  # (layers, 1, heads, 10, head_dim)
        state = (k.scatter(3, index, k_frame), v.scatter(3, index, v_frame),
                 cache_length(length, len(slots), self))
        return frame.cpu().numpy(), logits.float().cpu().numpy(), state, int(passes), int(next_first)


class OrtFrameBackend(OrtBackend):
    """The frame graph written by `worldmodels.nets.frame_graph.export_frame_onnx` and the prefill graph. The
    cache arrays are written in place: a frame's 10 rows go into their slots, nothing is reallocated."""

    def __init__(self, frame_session, prefill_session, ring: bool = False):
        super().__init__(frame_session, prefill_session, ring)
        self.frame_session = frame_session
        logits = next(o for o in frame_session.get_outputs() if o.name == "logits")
        self.tokens_per_call = int(logits.shape[0])  # (tokens per frame, vocab)

    @classmethod
    def from_files(cls, frame_path: str | Path, prefill_path: str | Path, threads: int = 1,
                   ring: bool = False) -> OrtFrameBackend:
        return super().from_files(frame_path, prefill_path, threads, ring)

    def step(self, token, position, state):
        raise NotImplementedError("the frame graph makes whole frames: use frame()")

    def frame(self, action_id, position, state, previous, guess, uniforms, temperature):
        k, v, length = state
        _check_room(int(np.asarray(length).reshape(-1)[0]), self.tokens_per_call, self)
        feeds = {"action": np.array([action_id], np.int64), "position": np.array([position], np.int64),
                 **{f"k_cache_{i}": layer for i, layer in enumerate(k)},
                 **{f"v_cache_{i}": layer for i, layer in enumerate(v)},
                 "cache_len": np.asarray(length, np.int64).reshape(1),
                 "previous": np.asarray(previous, np.int64).reshape(-1),
                 "guess": np.asarray(guess, np.int64).reshape(-1),
                 "uniforms": np.asarray(uniforms, np.float64).reshape(-1),
                 "temperature": np.array([temperature], np.float64)}
        frame, logits, k_frame, v_frame, slots, passes, next_first = self.frame_session.run(FRAME_OUTPUTS, feeds)
        k[:, :, :, slots] = k_frame
        v[:, :, :, slots] = v_frame
        return frame, logits, (k, v, cache_length(length, len(slots), self)), int(passes[0]), int(next_first[0])


class FrameGraphDecoder(FrameDecoder):
    """FrameDecoder's rules with one frame-graph call per frame: the same history, positions, uniforms stream and
    bookkeeping; an ordered window slides before a frame that does not fit (`slide_before_frame`). Its frames equal
    `FrameDecoder(..., slide_before_frame=True)`'s for the same inputs. `frame_logits` (10, vocab) are the last
    call's logits after each fed token; `logits` the last of them; `passes` counts the graph's passes since reset.
    The first guess is `frame_guess`, its first slot replaced by the graph's own `next_first` when the action is
    the first label (the graph speculated on it), which most frames need only one pass with."""

    def __init__(self, backend: FrameBackend, spec: TokenSpec = SPEC, slide_frames: int = 4,
                 temperature: float = 1.0, seed: int = 0):
        super().__init__(backend, spec, slide_frames, temperature, seed, slide_before_frame=True)
        self.frame_logits: np.ndarray | None = None
        self.passes = 0
        self.next_first: int | None = None

    def reset(self, context_tokens, start_position: int = 0) -> None:
        super().reset(context_tokens, start_position)
        self.passes = 0
        self.next_first = None

    def first_guess(self, action_id: int) -> np.ndarray:
        """The first pass's guess of the frame that `action_id` leads to."""
        guess = frame_guess(self._history, self.spec)
        if self.next_first is not None and action_id == self.spec.offsets["action"]:
            guess[0] = self.next_first
        return guess

    def step(self, action: int, uniforms: np.ndarray | None = None) -> np.ndarray:
        action_id, u = self._begin_frame(action, uniforms)
        previous = self._history[-self.spec.state_tokens_per_frame:]
        frame, self.frame_logits, self._state, passes, self.next_first = self.backend.frame(
            action_id, self.position, self._state, previous, self.first_guess(action_id), u, self.temperature)
        frame = np.asarray(frame, np.int64).reshape(-1)
        self._history += [action_id, *frame.tolist()]
        self._follow_ring()
        self.logits = self.frame_logits[-1]
        self.tokens_generated += len(frame)
        self.passes += passes
        return frame
