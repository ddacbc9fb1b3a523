"""Token decoding for the Flappy world model, frame by frame: what the browser's Web Worker does, in Python.

    decoder = from_manifest("models/flappy/flappy.json")     # an export, decoded as the player decodes it
    decoder.reset(context_tokens)                            # whole frames, ending with a 9-token state (no action)
    while not decoder.done:
        state_tokens = decoder.step(action)                  # (9,) the next frame; render it, read the next action

    decoder = FrameDecoder(TorchBackend(model))              # a PyTorch model (`pytorch.py`), same rules

Decoding an export needs onnxruntime and numpy only: this module, `backends.py`, `rules.py` and `window.py` import
no torch.

The same `FrameDecoder` drives PyTorch (`TorchBackend`) and the exported ONNX graphs (`OrtBackend`), so a test can
pin one to the other; `decode_full_recompute` (`pytorch.py`) is the no-cache reference (a full forward per token)
that pins the KV-cache bookkeeping and serves as the benchmark's baseline. `FrameGraphDecoder` applies rules 3-6
inside one graph call per frame (`worldmodels/flappy/frame_graph.py`; `TorchFrameBackend`, `OrtFrameBackend`) with
rule 2's `slide_before_frame`, and makes the frames `FrameDecoder(..., slide_before_frame=True)` makes.

The rules (positions, window, a step, choice, new pipe, sampling) are `rules.py`'s docstring; the window's
bookkeeping is `window.py`; the models behind the decoders are `backends.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worldmodels.core.manifest import read_manifest
from worldmodels.flappy.decoding.backends import Backend, FrameBackend, OrtBackend, OrtFrameBackend
from worldmodels.flappy.decoding.rules import frame_guess, gap_positions, generate_state
from worldmodels.flappy.decoding.window import window_start
from worldmodels.flappy.tokens import SPEC, TokenSpec


def check_context(tokens, start_position: int, spec: TokenSpec) -> np.ndarray:
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


def frame_uniforms(uniforms, rng: np.random.Generator, spec: TokenSpec) -> np.ndarray:
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

    def reset(self, context_tokens, start_position: int = 0, seed: int | None = None) -> None:
        """Start from real frames: whole frames ending with a 9-token state frame; token 0 at `start_position`.
        `seed` restarts the uniforms' stream (as a new decoder with that seed would)."""
        tokens = check_context(context_tokens, start_position, self.spec)
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self._history, self._start = tokens.tolist(), start_position
        self._window = window_start(len(tokens), self.backend.context, self.spec)
        self.logits, self._state = self.backend.prefill(tokens[self._window:], self._positions(self._window))
        self.tokens_generated = 0
        self.slides = 0

    def step(self, action: int, uniforms: np.ndarray | None = None, choose_gap=None) -> np.ndarray:
        """Feed `action`, generate and commit the next frame's state tokens; returns them, int64 (9,).
        `choose_gap(pipe) -> gap id or None` may give a new pipe's gap instead of the draw (`generate_state`)."""
        action_id, u = self._begin_frame(action, uniforms)
        previous = self._history[-self.spec.state_tokens_per_frame:]
        first = self._feed(action_id)
        frame = generate_state(self._feed, first, previous, u, self.temperature, self.spec, choose_gap)
        self.tokens_generated += len(frame)
        return np.array(frame, np.int64)

    def _begin_frame(self, action: int, uniforms) -> tuple[int, np.ndarray]:
        """Check the action, take this frame's uniforms, slide first under `slide_before_frame`."""
        if not self._history:
            raise RuntimeError(f"{type(self).__name__}.step before reset(context_tokens)")
        actions = len(self.spec.field_named("action").labels)
        if action not in range(actions):
            raise ValueError(f"action must be an int in 0..{actions - 1}, got {action!r}")
        u = frame_uniforms(uniforms, self.rng, self.spec)
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

    def reset(self, context_tokens, start_position: int = 0, seed: int | None = None) -> None:
        super().reset(context_tokens, start_position, seed)
        self.passes = 0
        self.next_first = None

    def first_guess(self, action_id: int) -> np.ndarray:
        """The first pass's guess of the frame that `action_id` leads to."""
        guess = frame_guess(self._history, self.spec)
        if self.next_first is not None and action_id == self.spec.offsets["action"]:
            guess[0] = self.next_first
        return guess

    def step(self, action: int, uniforms: np.ndarray | None = None, choose_gap=None) -> np.ndarray:
        if choose_gap is not None:
            raise ValueError("choose_gap needs the per-token decoder (from_manifest(path, per_token=True)): the frame "
                             "graph draws its gaps inside the graph")
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


def from_manifest(path: str | Path, *, per_token: bool = False, threads: int = 1, seed: int = 0) -> FrameDecoder:
    """The decoder an export is played with, from its manifest alone (`<name>.json`, or its `.onnx`): what the
    browser's player runs. With a frame graph, `FrameGraphDecoder`; `per_token` swaps in a `FrameDecoder` over the
    decode graph that slides before a frame that does not fit, which makes the same frames. Without one (an older
    export), a `FrameDecoder` over the decode graph that slides when the window is full, as the player does. The
    cache's kind (`ring`: the model's sliding window; absent in exports from before it existed, which are ordered),
    `slide_frames`, `temperature` and the token spec are the manifest's."""
    path = Path(path)
    path = path.with_suffix(".json") if path.suffix == ".onnx" else path
    manifest = read_manifest(path)
    if manifest["task"] != "flappy":
        raise ValueError(f"{path} describes a {manifest['task']} export, not a Flappy one")
    decoding, folder = manifest["decoding"], path.parent
    ring = bool(decoding.get("sliding_window", False))
    options = dict(spec=TokenSpec.from_json(manifest["token_spec"]), slide_frames=decoding["slide_frames"],
                   temperature=decoding["temperature"], seed=seed)
    prefill, frame = folder / manifest["prefill_onnx"], manifest.get("frame_onnx")
    if frame and not per_token:
        return FrameGraphDecoder(OrtFrameBackend.from_files(folder / frame, prefill, ring=ring, threads=threads),
                                 **options)
    backend = OrtBackend.from_files(folder / manifest["onnx"], prefill, ring=ring, threads=threads)
    return FrameDecoder(backend, slide_before_frame=bool(frame), **options)
