"""The PyTorch side of decoding: the TokenTransformer behind the decoders' backends (`TorchBackend`,
`TorchFrameBackend`, the code the ONNX graphs are traced from) and `decode_full_recompute`, the no-cache reference.
Only training, export checks and tests need it; decoding an export needs no torch (`backends.py`, `decoder.py`).
"""

from __future__ import annotations

import numpy as np
import torch

from worldmodels.flappy.decoding.decoder import check_context, frame_uniforms
from worldmodels.flappy.decoding.rules import frame_rules, generate_state
from worldmodels.flappy.decoding.window import cache_length, check_room, window_start
from worldmodels.flappy.frame_graph import FrameGraph
from worldmodels.flappy.tokens import SPEC, TokenSpec
from worldmodels.flappy.transformer import TokenTransformer


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


class TorchFrameBackend(TorchBackend):
    """`FrameGraph` in PyTorch (the module the ONNX frame graph is traced from) and the model's prefill."""

    def __init__(self, model: TokenTransformer, spec: TokenSpec = SPEC):
        super().__init__(model)
        self.graph = FrameGraph(self.model, frame_rules(spec)).eval()

    @torch.no_grad()
    def frame(self, action_id, position, state, previous, guess, uniforms, temperature):
        k, v, length = state
        check_room(int(length.reshape(-1)[0]), self.graph.tokens_per_call, self)
        f64 = dict(dtype=torch.float64, device=self.device)
        frame, logits, k_frame, v_frame, slots, passes, next_first = self.graph(
            self._tensor([action_id]), self._tensor([position]), k, v, length, self._tensor(previous),
            self._tensor(guess), torch.as_tensor(np.asarray(uniforms, np.float64), **f64),
            torch.tensor([float(temperature)], **f64))
        index = slots[None, None, None, :, None].expand(k_frame.shape)  # (layers, 1, heads, 10, head_dim)
        state = (k.scatter(3, index, k_frame), v.scatter(3, index, v_frame),
                 cache_length(length, len(slots), self))
        return frame.cpu().numpy(), logits.float().cpu().numpy(), state, int(passes), int(next_first)


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
    history = check_context(context, start_position, spec).tolist()
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
        u = frame_uniforms(None if uniforms is None else uniforms[f], rng, spec)
        if slide_before_frame and not ring and len(history) - window + spec.tokens_per_frame > model.cfg.context:
            window += slide_frames * spec.tokens_per_frame
        previous = history[-spec.state_tokens_per_frame:]
        first = feed(spec.offsets["action"] + int(action))
        frames.append(generate_state(feed, first, previous, u, temperature, spec))
    return np.array(frames, np.int64).reshape(-1, spec.state_tokens_per_frame)
