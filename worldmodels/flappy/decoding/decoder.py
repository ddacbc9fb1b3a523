"""Token decoding for the Flappy world model, frame by frame: what the browser's Web Worker does, in Python.

    decoder = FrameDecoder(TorchBackend(model))              # or OrtBackend.from_files("decode.onnx", "prefill.onnx")
    decoder.reset(context_tokens)                            # whole frames, ending with a 9-token state (no action)
    while not decoder.done:
        state_tokens = decoder.step(action)                  # (9,) the next frame; render it, read the next action

    decoder = FrameGraphDecoder(OrtFrameBackend.from_files("frame.onnx", "prefill.onnx"))  # one call per frame
                                                                 # (ring=True for a sliding-window export)

The same `FrameDecoder` drives PyTorch (`TorchBackend`) and the exported ONNX graphs (`OrtBackend`), so a test can
pin one to the other; `decode_full_recompute` is the no-cache reference (a full forward per token) that pins the
KV-cache bookkeeping and serves as the benchmark's baseline. `FrameGraphDecoder` applies rules 3-6 inside one graph
call per frame (`worldmodels/flappy/frame_graph.py`; `TorchFrameBackend`, `OrtFrameBackend`) with rule 2's
`slide_before_frame`, and makes the frames `FrameDecoder(..., slide_before_frame=True)` makes.

The rules (positions, window, a step, choice, new pipe, sampling) are `rules.py`'s docstring; the window's
bookkeeping is `window.py`; the models behind the decoders are `backends.py`.
"""

from __future__ import annotations

import numpy as np
import torch

from worldmodels.flappy.decoding.backends import Backend, FrameBackend
from worldmodels.flappy.decoding.rules import frame_guess, gap_positions, generate_state
from worldmodels.flappy.decoding.window import window_start
from worldmodels.flappy.tokens import SPEC, TokenSpec
from worldmodels.flappy.transformer import TokenTransformer


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


def _uniforms(uniforms, rng: np.random.Generator, spec: TokenSpec) -> np.ndarray:
    count = len(gap_positions(spec))
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
        self._window = window_start(len(tokens), self.backend.context, self.spec)
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
    window = window_start(len(history), model.cfg.context, spec)
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
