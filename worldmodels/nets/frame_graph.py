"""A whole Flappy frame per call: the decoding rules of `worldmodels/token_sampling.py` (3-6) inside one graph.

    rules = frame_rules(SPEC)                                    # worldmodels.token_sampling: plain ints from the spec
    graph = FrameGraph(model, rules)
    state, logits, k, v, cache_len = graph(action_id, position, k, v, cache_len, previous, uniforms, temperature)
    export_frame_onnx(model, rules, "flappy.frame.onnx")

One call feeds the action, then for each of the frame's state slots in order restricts the latest logits to the
slot's legal ids (its range and the hidden rule), chooses greedily (the lowest id on a tie) or, for the gap_y of a
pipe that is new in this frame, by inverse CDF in float64 with that pipe slot's uniform, and feeds the choice: 10
decode steps of the TokenTransformer's fixed-size KV cache, unrolled when traced. It returns the frame's state tokens
and the updated cache, which the next call takes as input; nothing in it grows.

The caller keeps the window: the cache must have room for the whole frame (cache_len + tokens per frame <= context),
so when it has not, the caller slides BEFORE the call (drops the oldest slide_frames frames and runs the prefill
graph over the rest at their absolute positions). A frame is therefore never split across a slide; the per-token
FrameDecoder gives the same frames with `slide_before_frame=True` (or always, when context % 10 == 9).

ONNX graph (opset 17, batch fixed at 1, every shape static), `FRAME_INPUTS` -> `FRAME_OUTPUTS`:
    action (1,) int64            the action's token id (action.start + action)
    position (1,) int64          its absolute position; the state tokens follow at position + 1 .. + 9
    k_cache, v_cache             (layers, 1, heads, context, head_dim) float32, cache_len (1,) int64 filled slots
    previous (9,) int64          the previous frame's state tokens (for the new-pipe rule)
    uniforms (2,) float64        one per pipe slot, in [0, 1), consumed used or not
    temperature (1,) float64     of the gap sampling (> 0)
 -> state (9,) int64, logits (10, vocab) float32 (row i: after the frame's i-th fed token; row 9 goes unused by
    the rules), k_cache_out, v_cache_out, cache_len_out (1,) = cache_len + 10.

This module knows nothing of the token spec: `FrameRules` carries the ids and slot layout as plain ints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from worldmodels.nets.transformer import OPSET, KVCache, TokenTransformer

FRAME_INPUTS = ["action", "position", "k_cache", "v_cache", "cache_len", "previous", "uniforms", "temperature"]
FRAME_OUTPUTS = ["state", "logits", "k_cache_out", "v_cache_out", "cache_len_out"]


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
    """The decoding rules' tables (token_sampling.frame_rules builds them from a TokenSpec)."""

    vocab_size: int
    slots: tuple[SlotRule, ...]  # the state slots, in frame order
    marker_slots: tuple[int, ...]  # pipe slot k -> frame position of its marker
    x0_slot: int  # frame position of pipe slot 0's pipe_x
    hidden: int  # marker ids
    visible: int
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


def legal_mask(rules: FrameRules, slot: int, frame: list[torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """bool (vocab,): the ids allowed at `slot` given the frame's tokens so far ((1,) int64 each), as
    TokenSpec.legal_mask: the slot's range, narrowed by its pipe's marker to the bins (visible) or the hidden id."""
    rule = rules.slots[slot]
    if rule.marker_slot < 0:
        return (ids >= rule.start) & (ids < rule.stop)
    bins = (ids >= rule.start) & (ids < rule.start + rule.bins)
    hidden = frame[rule.marker_slot] == rules.hidden  # (1,); And/Or, not Where: onnxruntime has no bool Where
    return (hidden & (ids == rule.start + rule.bins)) | (~hidden & bins)


def pipe_is_new(rules: FrameRules, pipe: int, frame: list[torch.Tensor], previous: torch.Tensor) -> torch.Tensor:
    """bool (1,): token_sampling.pipe_is_new on tensors. Pipe slot `pipe` is visible now and the pipe it holds
    (slot pipe + 1 of `previous` after a respawn, else slot pipe) was not visible in `previous` (9,)."""
    marker, x0 = rules.marker_slots, rules.x0_slot

    def shown(k: int) -> torch.Tensor:
        return previous[marker[k]:marker[k] + 1] == rules.visible

    respawn = ((frame[marker[0]] == rules.visible) & shown(0)
               & (frame[x0] - previous[x0:x0 + 1] >= rules.respawn_dx))
    same = shown(pipe)
    following = shown(pipe + 1) if pipe + 1 < len(marker) else torch.zeros_like(same)
    return (frame[marker[pipe]] == rules.visible) & ~((respawn & following) | (~respawn & same))


def greedy(logits: torch.Tensor, legal: torch.Tensor) -> torch.Tensor:
    """(1,) int64: the legal id with the largest logit, the lowest on a tie (ArgMax keeps the first maximum)."""
    return logits.masked_fill(~legal, float("-inf")).argmax(0, keepdim=True)


def sample_bins(logits: torch.Tensor, start: int, bins: int, u: torch.Tensor,
                temperature: torch.Tensor) -> torch.Tensor:
    """(1,) int64: token_sampling.sample_inverse_cdf over the ids start .. start + bins - 1 (a visible pipe's legal
    gaps), in float64: the first id whose cumulative softmax exceeds u * total."""
    z = logits[start:start + bins].to(torch.float64) / temperature
    cdf = torch.cumsum(torch.exp(z - z.max()), 0)
    below = (cdf <= u * cdf[-1:]).to(torch.int64).sum(0, keepdim=True)  # numpy's searchsorted(..., side="right")
    return start + torch.minimum(below, torch.full_like(below, bins - 1))


class FrameGraph(nn.Module):
    """One Flappy frame per call over a TokenTransformer's fixed-size KV cache (inputs/outputs: module docstring)."""

    def __init__(self, model: TokenTransformer, rules: FrameRules):
        super().__init__()
        rules.check()
        if rules.vocab_size != model.cfg.vocab_size:
            raise ValueError(f"frame rules: vocab {rules.vocab_size} but the model has {model.cfg.vocab_size}")
        self.model, self.rules = model, rules
        self.register_buffer("ids", torch.arange(rules.vocab_size, device=model.embed.weight.device),
                             persistent=False)

    @property
    def tokens_per_call(self) -> int:
        return len(self.rules.slots) + 1

    def forward(self, action, position, k_cache, v_cache, cache_len, previous, uniforms, temperature):
        logits, k, v = self.model.decode_step(action.reshape(1, 1), position, k_cache, v_cache, cache_len)
        rows, frame = [logits], []
        for s, rule in enumerate(self.rules.slots):
            last = logits[0]
            token = greedy(last, legal_mask(self.rules, s, frame, self.ids))
            if rule.gap_pipe >= 0:
                pipe = rule.gap_pipe
                sampled = sample_bins(last, rule.start, rule.bins, uniforms[pipe:pipe + 1], temperature)
                token = torch.where(pipe_is_new(self.rules, pipe, frame, previous), sampled, token)
            frame.append(token)
            logits, k, v = self.model.decode_step(token.reshape(1, 1), position + (s + 1), k, v, cache_len + (s + 1))
            rows.append(logits)
        return torch.cat(frame), torch.cat(rows), k, v, cache_len + self.tokens_per_call


def frame_graph_example(model: TokenTransformer, rules: FrameRules) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes and dtypes (an empty cache) for tracing or a smoke call."""
    device = model.embed.weight.device
    cache = KVCache.empty(model.cfg, 1, device)
    long = dict(dtype=torch.long, device=device)
    return (torch.zeros(1, **long), torch.zeros(1, **long), cache.k, cache.v, cache.length,
            torch.tensor([rules.slots[i].start for i in range(len(rules.slots))], **long),
            torch.full((len(rules.marker_slots),), 0.5, dtype=torch.float64, device=device),
            torch.ones(1, dtype=torch.float64, device=device))


def export_frame_onnx(model: TokenTransformer, rules: FrameRules, path: str | Path) -> None:
    """Write the frame graph (TorchScript exporter, opset 17, batch 1, static shapes; names at the top)."""
    graph = FrameGraph(model.eval(), rules).eval()
    with torch.no_grad():
        torch.onnx.export(graph, frame_graph_example(model, rules), str(path), input_names=FRAME_INPUTS,
                          output_names=FRAME_OUTPUTS, opset_version=OPSET, dynamo=False)
